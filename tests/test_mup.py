"""muP (models/mup.py): SP untouched, the multipliers where they belong, and the coordinate check.

The coordinate check trains 2-layer models of width 32, 128 and 512 for 3 Adam steps on one
8-token batch and fits log RMS against log width per sublayer output: under muP the slopes stay
near 0, under SP they are large (measured ~1.4-2.4 for both families). The margins are wide so
that the test checks the parametrization, not the numbers.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs.errors import ConfigError
from figures import mup_check
from models import mup
from trainlib import optim

WIDTHS = (32, 128, 512)
SHAPE = dict(seq_len=8, vocab_size=32)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_coordinate_check_flat_under_mup_growing_under_sp(family):
  kwargs = dict(steps=3, batch_size=2, **SHAPE)
  sp = mup_check.slopes(WIDTHS, mup_check.coord_check(family, "sp", WIDTHS, **kwargs))
  mu = mup_check.slopes(WIDTHS, mup_check.coord_check(family, "mup", WIDTHS, **kwargs))
  hidden = [k for k in sp if k != "logits"]
  assert len(hidden) == 4  # 2 layers x (attention, mlp)
  assert min(sp[k] for k in hidden) > 0.8, sp
  assert max(abs(mu[k]) for k in hidden) < 0.4, mu
  assert abs(mu["logits"]) < 0.3 and sp["logits"] > mu["logits"] + 0.2, (sp, mu)


def test_mup_at_base_width_equals_sp():
  """width_mult 1: the same parameters and logits as SP (the attention scale is the same number)."""
  ids = jnp.arange(16, dtype=jnp.int32).reshape(2, 8) % 32
  outs = []
  for p in ("sp", "mup"):
    c = mup_check.model_config("decoder", p, 64, 64, **SHAPE)
    model = models.build_model(c.model)
    params = model.init(jax.random.key(0), ids)
    outs.append(model.apply(params, ids)["logits"])
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def test_learning_rate_multipliers_and_init():
  c = mup_check.model_config("encoder", "mup", 128, 32, **SHAPE)
  c.model.nsp_head = True
  c.model.tie_embeddings = False
  model = models.build_model(c.model)
  assert model.spec.width_mult == 4.0
  ids = jnp.ones((1, 8), jnp.int32)
  params = model.init(jax.random.key(0), ids)["params"]
  factors = mup.learning_rate_multipliers(model.spec, params)
  flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(
      factors, is_leaf=lambda x: isinstance(x, float))[0]}
  hidden = [k for k, v in flat.items() if v == 0.25]
  assert any("['query']['kernel']" in k for k in hidden)
  assert any("['mlm_head']['dense']['kernel']" in k for k in hidden)
  for name in ("token", "mlm_decoder", "nsp_classifier", "bias", "scale"):
    assert all(flat[k] == 1.0 for k in flat if name in k), name
  wi = params["stack"]["layers_0"]["mlp"]["wi"]["kernel"].value
  assert abs(float(jnp.std(wi)) - 0.02 * 0.5 * 0.88) < 0.003  # truncated normal at 2 std: 0.88
  assert model.spec.d_head == 32 and mup.attention_scale(model.spec) == pytest.approx(
      (32 / 4) ** 0.5 / 32)


def test_optimizer_applies_multipliers():
  c = mup_check.model_config("decoder", "mup", 64, 32, **SHAPE)
  c.optim.update(warmup_steps=0, schedule="constant", clip_norm=0.0, weight_decay=0.0)
  tx, _ = optim.make_optimizer(c)
  params = {"stack": {"mlp": {"wi": {"kernel": jnp.ones((2, 2))}}},
            "embeddings": {"token": {"embedding": jnp.ones((2, 2))}}}
  updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
  lr = c.optim.learning_rate
  np.testing.assert_allclose(updates["stack"]["mlp"]["wi"]["kernel"], -lr / 2, rtol=1e-4)
  np.testing.assert_allclose(updates["embeddings"]["token"]["embedding"], -lr, rtol=1e-4)


def test_bad_parametrization_is_config_error():
  c = mup_check.model_config("decoder", "sp", 64, 32)
  c.model.parametrization = "ntk"
  with pytest.raises(ConfigError, match="model.parametrization='ntk' is not one of 'sp', 'mup'"):
    models.build_model(c.model)


def test_coord_check_figure_writes_the_figure_and_its_numbers(tmp_path, monkeypatch):
  # The numbers are the coordinate check's (tested above); this checks the figure and its record.
  calls = []

  def fake_coord_check(family, parametrization, widths, steps, **shape):
    calls.append((family, parametrization, tuple(widths), steps))
    growth = 2.0 if parametrization == "sp" else 1.0
    return {"layers_0/attention": [0.1 * (w / widths[0]) ** growth for w in widths],
            "logits": [0.5 for _ in widths]}
  monkeypatch.setattr(mup_check, "coord_check", fake_coord_check)
  paths = mup_check.coord_check_figure(str(tmp_path), widths=(16, 32), steps=1, log=lambda *_: None)
  assert calls == [(f, p, (16, 32), 1) for f in ("decoder", "encoder") for p in ("sp", "mup")]
  assert sorted(os.path.basename(p) for p in paths) == [
      "coord_check.json", "coord_check.pdf", "coord_check.png"]
  with open(tmp_path / "coord_check.json") as f:
    record = json.load(f)
  assert record["widths"] == [16, 32] and record["base_width"] == 16
  for key in ("decoder/sp", "decoder/mup", "encoder/sp", "encoder/mup"):
    rms = record["results"][key]["rms"]
    assert set(rms) == set(record["results"][key]["slopes"]) and "logits" in rms
    assert all(len(v) == 2 and all(x > 0 for x in v) for v in rms.values())
  assert record["results"]["decoder/sp"]["slopes"]["layers_0/attention"] == pytest.approx(2.0)
  assert record["results"]["encoder/mup"]["slopes"]["logits"] == pytest.approx(0.0, abs=1e-9)
