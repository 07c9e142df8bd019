"""Train steps on 8 fake CPU devices: accumulation, mesh presets, re-meshing restore, NaN guard.

Real (tiny) models from models/, synthetic batches (tests/train_testlib.py): these test the step,
the shardings and the checkpoints, not the input pipeline.
"""

import jax
import numpy as np
import pytest

from configs import mesh_presets
from tests.train_testlib import random_batch, tiny_config
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib
from trainlib import step as step_lib
from trainlib.checkpoint import Checkpointer, NonFiniteError


def _run(config, devices, num_steps, state=None, setup=None, first_step=0):
  """-> (losses per step, final state, setup) training on batches first_step.. of seed i."""
  if setup is None:
    setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, devices))
  if state is None:
    state = state_lib.init_state(setup)
  train_step = step_lib.make_train_step(setup)
  losses = []
  for i in range(first_step, first_step + num_steps):
    batch = step_lib.global_batch(setup, random_batch(config, setup.objective, seed=i))
    state, metrics = train_step(state, batch)
    metrics = jax.device_get(metrics)
    assert metrics["finite"]
    losses.append(setup.objective.summarize(metrics["sums"])["loss"])
  return np.array(losses), state, setup


def _host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _assert_trees_close(a, b, **tol):
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(_host(a))[0], jax.tree.leaves(_host(b))):
    np.testing.assert_allclose(x, y, err_msg=jax.tree_util.keystr(path), **tol)


@pytest.mark.parametrize("objective", ["causal", "mlm_nsp"])
def test_gradient_accumulation_equals_the_big_batch(objective):
  # mlm_nsp rows carry 1..4 real predictions each, so micro-batches weigh differently: a mean of
  # micro-batch means would not match; normalising by the full batch's weights does.
  one = jax.devices()[:1]
  big_losses, big, _ = _run(tiny_config(objective), one, 2)
  config = tiny_config(objective)
  config.train.microbatches = 4
  acc_losses, acc, _ = _run(config, one, 2)
  np.testing.assert_allclose(acc_losses, big_losses, rtol=1e-5)
  _assert_trees_close(acc.params, big.params, rtol=1e-4, atol=1e-6)
  _assert_trees_close(acc.opt_state, big.opt_state, rtol=1e-4, atol=1e-7)


def test_each_mesh_preset_matches_one_device():
  ref_losses, ref, _ = _run(tiny_config(), jax.devices()[:1], 3)
  for name in mesh_presets.PRESETS:
    config = mesh_presets.apply(tiny_config(), name)
    losses, state, setup = _run(config, jax.devices(), 3)
    assert len(setup.mesh.devices.flat) == 8
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, err_msg=name)
    _assert_trees_close(state.params, ref.params, rtol=1e-4, atol=1e-6)
    if name == "fsdp_tensor":  # the layout really is sharded: kernels split over fsdp and tensor
      specs = {tuple(x.sharding.spec) for x in jax.tree.leaves(state.params)}
      assert any("fsdp" in s and "tensor" in s for s in specs), specs


def test_encoder_on_fsdp_tensor_matches_one_device():
  ref_losses, _, _ = _run(tiny_config("mlm_nsp"), jax.devices()[:1], 2)
  config = mesh_presets.apply(tiny_config("mlm_nsp"), "fsdp_tensor")
  losses, _, _ = _run(config, jax.devices(), 2)
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)


def test_restore_onto_a_different_mesh_continues_the_loss_curve(tmp_path):
  fsdp = tiny_config()
  fsdp.mesh.data, fsdp.mesh.fsdp = 1, 8
  _, state, setup = _run(fsdp, jax.devices(), 2)
  with Checkpointer(tmp_path / "ckpt", keep=2) as ckpt:
    ckpt.save(2, state, {"note": "fsdp=8"})
  later_losses, _, _ = _run(fsdp, jax.devices(), 2, state=state, setup=setup, first_step=2)

  other = tiny_config()
  other.mesh.data, other.mesh.fsdp, other.mesh.tensor = 2, 1, 4
  other_setup = state_lib.build_setup(other, mesh_lib.make_mesh(other))
  with Checkpointer(tmp_path / "ckpt") as ckpt:
    restored, meta = ckpt.restore(other_setup.abstract_state)
  checksums = meta.pop("checksums")  # verified on this other mesh by the restore itself
  assert meta == {"note": "fsdp=8", "step": 2} and len(checksums) == len(jax.tree.leaves(state))
  assert int(restored.step) == 2
  kernel = restored.params["stack"]["layers"]["mlp"]["wi"]["kernel"]
  assert kernel.sharding == other_setup.shardings.params["stack"]["layers"]["mlp"]["wi"]["kernel"]
  assert "tensor" in tuple(kernel.sharding.spec)
  resumed_losses, _, _ = _run(other, None, 2, state=restored, setup=other_setup, first_step=2)
  np.testing.assert_allclose(resumed_losses, later_losses, rtol=1e-5)


def test_non_finite_loss_skips_the_update_and_is_never_checkpointed(tmp_path):
  config = tiny_config()
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  state = state_lib.init_state(setup)
  before = _host(state.params)
  batch = random_batch(config, setup.objective, seed=0)
  batch["target_weights"][0, 0] = np.nan
  state, metrics = step_lib.make_train_step(setup)(state, step_lib.global_batch(setup, batch))
  assert not bool(metrics["finite"])
  assert int(state.step) == 1  # the data stream stays aligned
  _assert_trees_close(state.params, before, rtol=0, atol=0)  # ... but nothing was applied

  poisoned = state.replace(params=jax.tree.map(lambda x: x * np.nan, state.params))
  with Checkpointer(tmp_path / "ckpt") as ckpt:
    with pytest.raises(NonFiniteError, match="not finite"):
      ckpt.save(1, poisoned, {})
    assert ckpt.all_steps() == []


def test_bfloat16_compute_keeps_float32_params_and_optimizer_state():
  ref_losses, _, _ = _run(tiny_config(), jax.devices()[:1], 2)
  config = tiny_config()
  config.model.dtype = "bfloat16"
  losses, state, _ = _run(config, jax.devices()[:1], 2)
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype("float32")}
  assert {x.dtype for x in jax.tree.leaves(state.opt_state) if x.ndim} == {np.dtype("float32")}
  np.testing.assert_allclose(losses, ref_losses, rtol=2e-2)  # bf16 matmuls, f32 loss
  assert not np.array_equal(losses, ref_losses)  # ... and the compute really was bf16
