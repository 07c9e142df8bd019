"""prefix_lm and gpt_bert losses: suffix-only token means, GPT-BERT's mean MNTP + mean causal
loss, exact micro-batch normalisation, FLOP terms, and the checks of their fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import objectives
from configs.errors import ConfigError
from tests.train_testlib import random_batch, tiny_config


def _nll(logits, labels):
  logits = logits - logits.max(-1, keepdims=True)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


def _batch(name, seed):
  config = tiny_config("causal")
  config.objective.name = name
  objective = objectives.get(name)
  batch = random_batch(config, objective, seed)
  rs = np.random.RandomState(seed)
  batch["prefix_len"] = np.where(np.arange(8) < 3, 0, 16).astype(np.int32)  # 3 causal rows
  if name == "prefix_lm":
    batch["prefix_len"] = rs.randint(1, 16, 8).astype(np.int32)
    batch["target_weights"] *= (np.arange(16)[None] >= batch["prefix_len"][:, None] - 1)
  logits = rs.randn(8, 16, config.model.vocab_size).astype(np.float32)
  return config, objective, batch, {"logits": jnp.asarray(logits)}


def test_gpt_bert_total_is_mean_mntp_plus_mean_causal_and_microbatches_add_up():
  _, objective, batch, outputs = _batch("gpt_bert", 0)
  nll = _nll(np.asarray(outputs["logits"]), batch["targets"])
  w = batch["target_weights"]
  masked = (batch["prefix_len"] > 0)[:, None]
  mntp = (nll * w * masked).sum() / (w * masked).sum()
  causal = (nll * w * ~masked).sum() / (w * ~masked).sum()
  loss_sum, weight_sum, metrics = objective.loss(outputs, batch)
  np.testing.assert_allclose(loss_sum / weight_sum, mntp + causal, rtol=1e-5)
  summary = objective.summarize(jax.device_get(metrics))
  np.testing.assert_allclose([summary["mntp_loss"], summary["lm_loss"]], [mntp, causal], rtol=1e-5)
  weights = objective.term_weights(batch)
  full = objective.normalized_loss(objective.metrics(outputs, batch), weights)
  parts = 0.0
  for rows in (slice(0, 2), slice(2, 8)):  # the first half holds causal rows only
    part = lambda d, rows=rows: {k: v[rows] for k, v in d.items()}
    parts += objective.normalized_loss(objective.metrics(part(outputs), part(batch)), weights)
  np.testing.assert_allclose(parts, full, rtol=1e-5)
  np.testing.assert_allclose(full, mntp + causal, rtol=1e-5)


def test_prefix_lm_loss_is_the_token_mean_over_the_suffix():
  _, objective, batch, outputs = _batch("prefix_lm", 1)
  nll = _nll(np.asarray(outputs["logits"]), batch["targets"])
  w = batch["target_weights"]
  loss_sum, weight_sum, _ = objective.loss(outputs, batch)
  np.testing.assert_allclose(loss_sum / weight_sum, (nll * w).sum() / w.sum(), rtol=1e-5)
  assert set(objective.model_inputs(batch)) == {"input_ids", "positions", "doc_ids", "prefix_len"}


def test_decoder_objective_flops():
  m = tiny_config("causal", seq_len=64).model
  causal = objectives.train_flops_per_token(m, 64, "causal")
  attention = 12 * m.num_layers * 64 * m.d_model  # the whole score matrix
  config = tiny_config("causal")
  config.objective.causal_fraction = 0.25
  hybrid = objectives.train_flops_per_token(m, 64, "gpt_bert", objective_cfg=config.objective)
  assert hybrid == pytest.approx(causal + attention * 0.75 / 2)  # 3/4 of the rows bidirectional
  prefix = objectives.train_flops_per_token(m, 64, "prefix_lm")
  assert causal < prefix < causal + attention / 2
  with pytest.raises(ConfigError, match="model.family"):
    objectives.train_flops_per_token(tiny_config("mlm").model, 16, "gpt_bert")


def test_the_registry_declares_everything_once():
  for name in objectives.NAMES:
    o = objectives.get(name)
    config = tiny_config("causal" if o.family == "decoder" else "mlm_nsp")
    config.objective.name = name
    spec, layout = o.batch_spec(config), o.layout(config)
    assert {k: s[0][1:] for k, s in spec.items()} == {k: s[0] for k, s in layout.items()}
    assert o.family in ("encoder", "decoder") and o.min_seq_len >= 1 and o.layout_text
    dummy = o.dummy_batch(config, batch_size=2)
    assert set(o.term_weights(dummy)) == set(o.loss_terms)
    assert all(v is dummy[k] for k, v in o.model_inputs(dummy).items())
    assert name in objectives.for_family(o.family)
  assert objectives.default_for("encoder") in objectives.for_family("encoder")
  assert objectives.default_for("decoder") in objectives.for_family("decoder")


def test_decoder_objectives_need_a_decoder():
  config = tiny_config("mlm")
  config.objective.name = "prefix_lm"
  with pytest.raises(ConfigError, match="use one of 'mlm_nsp', 'mlm', 'mlm_full_sentences'"):
    objectives.validate(config)
