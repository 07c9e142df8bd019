"""pancake's real train step, fed one fixed synthetic batch: what the benches time.

`JaxTrainer(config=c).step()` runs one jitted step of trainlib (AdamW, clipping, donated state)
and waits for it; bench/train_step.py (CPU, against HF torch) and bench/gpu_step.py use it.
On CPU it uses as many devices as train.py would (trainlib/cpu_devices.py: one per core, the
batch split over them); on an accelerator one device.
"""

import numpy as np


def synthetic_batch(objective, config, seed=0):
  """A random global batch with the objective's keys, shapes and dtypes (no pipeline needed)."""
  rng = np.random.default_rng(seed)
  vocab, length = config.model.vocab_size, config.data.seq_len
  batch = {}
  for key, (shape, dtype) in objective.batch_spec(config).items():
    if key in ("input_ids", "targets", "masked_ids"):
      value = rng.integers(0, vocab, shape)
    elif key == "masked_positions":  # distinct sorted positions per row
      value = np.sort(np.stack([rng.permutation(length)[:shape[1]] for _ in range(shape[0])]), 1)
    elif key == "positions":
      value = np.broadcast_to(np.arange(length), shape)
    elif key == "token_type_ids":  # sentence A then sentence B
      value = np.broadcast_to(np.arange(length) >= length // 2, shape)
    elif key == "nsp_labels":
      value = rng.integers(0, 2, shape)
    else:  # doc_ids (one document per row), input_mask, *_weights: all real tokens
      value = np.ones(shape)
    batch[key] = np.asarray(value, dtype=dtype)
  return batch


class JaxTrainer:
  """trainlib's jitted train step for `config` on a 1-device mesh, fed one fixed batch."""

  def __init__(self, config):
    # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
    import jax
    from trainlib import cpu_devices
    from trainlib import mesh as mesh_lib
    from trainlib import state as state_lib
    from trainlib import step as step_lib

    self.config = config
    count = 1
    if jax.default_backend() == "cpu":  # the bench process exposes every core as a device
      count = cpu_devices.device_count(config, len(jax.devices())) or 1
    self.devices = count
    config.mesh.data = count  # only the devices used: the mesh names them all
    mesh = mesh_lib.make_mesh(self.config, jax.devices()[:count])
    self.state, setup = state_lib.init_state_sharded(self.config, mesh)
    self.step_fn = step_lib.make_train_step(setup)
    self.batch = step_lib.global_batch(setup, synthetic_batch(setup.objective, self.config))
    self.objective = setup.objective
    self.params = state_lib.param_count(self.state.params)
    self.flops_per_token = setup.objective.flops_per_token(
        self.config.model, self.config.data, self.config.objective)
    self.step()  # compile

  def step(self):
    self.state, metrics = self.step_fn(self.state, self.batch)
    return float(metrics["grad_norm"])  # reading a result back waits for the step
