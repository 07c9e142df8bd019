"""trainlib mesh, sharding rules and optimizer: -1 filling, clear errors, decay mask, schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import mesh_presets
from configs.errors import ConfigError
from tests.train_testlib import tiny_config
from trainlib import mesh as mesh_lib
from trainlib import optim, sharding
from trainlib import state as state_lib


def _mesh(**sizes):
  c = tiny_config()
  for k, v in sizes.items():
    setattr(c.mesh, k, v)
  return c, mesh_lib.make_mesh(c)


def test_minus_one_fills_the_remaining_devices():
  assert mesh_lib.mesh_dict(_mesh()[1]) == {"data": 8, "fsdp": 1, "tensor": 1}
  assert mesh_lib.mesh_dict(_mesh(data=1, fsdp=-1, tensor=2)[1]) == {"data": 1, "fsdp": 4, "tensor": 2}
  c, mesh = _mesh(data=2, fsdp=1, tensor=-1)
  assert mesh_lib.mesh_dict(mesh) == {"data": 2, "fsdp": 1, "tensor": 4}
  assert sharding.batch_degree(c, mesh) == 2
  assert mesh_lib.host_batch_rows(c, mesh) == (0, 1)  # one process feeds every row


@pytest.mark.parametrize("sizes, message", [
    (dict(data=4, fsdp=4), "needs 16 devices but 8 exist"),
    (dict(data=-1, fsdp=-1), "at most one"),
    (dict(data=3, tensor=-1), "cannot fill 8"),
    (dict(data=2, fsdp=2, tensor=1), "uses only 4 devices"),
    (dict(tensor=0), "mesh.tensor=0"),
])
def test_impossible_meshes_are_config_errors(sizes, message):
  with pytest.raises(ConfigError, match=message):
    _mesh(**sizes)


def test_batch_must_divide_by_the_data_parallel_degree_and_microbatches():
  c, mesh = _mesh(data=2, fsdp=4)
  mesh_lib.validate_batch(c, mesh)  # 8 rows over 8 ways
  c.train.global_batch_size = 12
  with pytest.raises(ConfigError, match="global_batch_size=12.*data-parallel degree 8"):
    mesh_lib.validate_batch(c, mesh)
  c.train.global_batch_size, c.train.microbatches = 16, 4  # micro-batches of 4 over 8 ways
  with pytest.raises(ConfigError, match="multiple of 32"):
    mesh_lib.validate_batch(c, mesh)


def test_rules_naming_an_unknown_mesh_axis_are_rejected():
  c = tiny_config()
  c.logical_axis_rules = [["embed", "model"]]
  with pytest.raises(ConfigError, match="model"):
    sharding.rules(c)


def test_mesh_presets_give_the_documented_layouts():
  layouts = {}
  for name in mesh_presets.PRESETS:
    c = mesh_presets.apply(tiny_config(), name)
    layouts[name] = mesh_lib.mesh_dict(mesh_lib.make_mesh(c))
  assert layouts == {"data_parallel": {"data": 8, "fsdp": 1, "tensor": 1},
                     "fsdp": {"data": 1, "fsdp": 8, "tensor": 1},
                     "fsdp_tensor": {"data": 1, "fsdp": 2, "tensor": 4}}
  assert "--config.mesh.fsdp=-1" in mesh_presets.overrides("fsdp")


def test_weight_decay_skips_layernorm_and_biases_of_the_real_models():
  for objective in ("causal", "mlm_nsp"):
    c = tiny_config(objective)
    setup = state_lib.build_setup(c, mesh_lib.make_mesh(c, jax.devices()[:1]))
    flat = jax.tree_util.tree_flatten_with_path(setup.abstract_state.params)[0]
    decayed = {jax.tree_util.keystr(p) for p, _ in flat if optim.decays(p)}
    skipped = {jax.tree_util.keystr(p) for p, _ in flat if not optim.decays(p)}
    assert all("bias" in p or "scale" in p for p in skipped)
    assert all(("kernel" in p or "embedding" in p) for p in decayed), decayed
    assert any("ln" in p and "scale" in p for p in skipped)
    if objective == "mlm_nsp":
      assert "['mlm_output_bias']" in skipped  # BERT's "output_bias" matched "bias" too


def test_adamw_decays_kernels_only_and_clips_by_global_norm():
  c = tiny_config()
  c.optim.warmup_steps, c.optim.schedule, c.optim.learning_rate = 0, "constant", 0.1
  c.optim.weight_decay, c.optim.clip_norm = 0.5, 1.0
  tx, _ = optim.make_optimizer(c)
  params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "ln": {"scale": jnp.ones(2)}}
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero, tx.init(params), params)
  np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5 * np.ones((2, 2)), rtol=1e-6)
  np.testing.assert_allclose(updates["dense"]["bias"], 0.0)
  np.testing.assert_allclose(updates["ln"]["scale"], 0.0)
  # A huge gradient is clipped to global norm 1 before Adam sees it: the first Adam step is
  # sign-like either way, so compare the clipped moments instead.
  big = jax.tree.map(lambda p: 100.0 * jnp.ones_like(p), params)
  _, state = tx.update(big, tx.init(params), params)
  mu = state[1][0].mu
  norm = optax.global_norm(jax.tree.map(lambda m: m / (1 - c.optim.b1), mu))
  np.testing.assert_allclose(norm, 1.0, rtol=1e-5)


@pytest.mark.parametrize("schedule, end", [("linear", 0.0), ("cosine", 0.1), ("constant", 1.0)])
def test_schedule_warms_up_linearly_then_decays_to_end_fraction(schedule, end):
  c = tiny_config()
  c.train.num_steps, c.optim.warmup_steps, c.optim.learning_rate = 110, 10, 1.0
  c.optim.schedule, c.optim.end_lr_frac = schedule, end if schedule != "constant" else 0.3
  lr = optim.make_schedule(c)
  np.testing.assert_allclose([lr(0), lr(5), lr(10)], [0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_allclose(lr(110), end, atol=1e-6)
  if schedule == "linear":
    np.testing.assert_allclose(lr(60), 0.5, atol=1e-6)
  if schedule == "cosine":
    np.testing.assert_allclose(lr(60), 0.1 + 0.9 * 0.5, atol=1e-6)


def test_bad_optimizer_values_are_config_errors():
  c = tiny_config()
  c.optim.schedule = "step"
  with pytest.raises(ConfigError, match="optim.schedule='step'"):
    optim.make_optimizer(c)
  c = tiny_config()
  c.optim.b2 = 1.0
  with pytest.raises(ConfigError, match="optim.b2"):
    optim.make_optimizer(c)


def test_quickstart_config_passes_every_check_on_one_and_eight_devices():
  from trainlib import loop
  import importlib
  config = importlib.import_module("configs.quickstart").get_config()
  loop.validate(config)
  for devices in (jax.devices()[:1], jax.devices()):
    mesh_lib.validate_batch(config, mesh_lib.make_mesh(config, devices))
