"""objectives/: token-weighted losses, BERT's MLM+NSP total, exact micro-batch normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import objectives
from configs.errors import ConfigError
from tests.train_testlib import random_batch, tiny_config


def _numpy_xent(logits, labels):
  logits = logits - logits.max(-1, keepdims=True)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


def test_causal_loss_is_a_token_weighted_mean_that_ignores_padding():
  config = tiny_config("causal")
  objective = objectives.get("causal")
  batch = random_batch(config, objective, seed=0)
  rs = np.random.RandomState(1)
  logits = rs.randn(8, 16, config.model.vocab_size).astype(np.float32)
  loss_sum, weight_sum, metrics = objective.loss({"logits": jnp.asarray(logits)}, batch)
  nll = _numpy_xent(logits, batch["targets"])
  w = batch["target_weights"]
  expected = (nll * w).sum() / w.sum()  # rows of different lengths weigh by their tokens
  np.testing.assert_allclose(loss_sum / weight_sum, expected, rtol=1e-5)
  assert float(weight_sum) == w.sum()
  # Garbage logits on padded positions change nothing.
  noisy = np.where(w[..., None] > 0, logits, 1e4 * rs.randn(*logits.shape)).astype(np.float32)
  noisy_sum, _, _ = objective.loss({"logits": jnp.asarray(noisy)}, batch)
  np.testing.assert_allclose(noisy_sum, loss_sum, rtol=1e-6)
  summary = objective.summarize(jax.device_get(metrics))
  np.testing.assert_allclose(summary["loss"], expected, rtol=1e-5)
  np.testing.assert_allclose(summary["perplexity"], np.exp(expected), rtol=1e-4)
  accuracy = ((logits.argmax(-1) == batch["targets"]) * w).sum() / w.sum()
  np.testing.assert_allclose(summary["lm_accuracy"], accuracy, rtol=1e-6)


def test_mlm_nsp_total_is_mean_mlm_plus_mean_nsp():
  config = tiny_config("mlm_nsp")
  objective = objectives.get("mlm_nsp")
  batch = random_batch(config, objective, seed=2)
  rs = np.random.RandomState(3)
  mlm_logits = rs.randn(8, 4, config.model.vocab_size).astype(np.float32)
  nsp_logits = rs.randn(8, 2).astype(np.float32)
  outputs = {"mlm_logits": jnp.asarray(mlm_logits), "nsp_logits": jnp.asarray(nsp_logits)}
  loss_sum, weight_sum, metrics = objective.loss(outputs, batch)
  w = batch["masked_weights"]
  mlm = (_numpy_xent(mlm_logits, batch["masked_ids"]) * w).sum() / w.sum()
  nsp = _numpy_xent(nsp_logits, batch["nsp_labels"]).mean()
  np.testing.assert_allclose(loss_sum / weight_sum, mlm + nsp, rtol=1e-5)
  summary = objective.summarize(jax.device_get(metrics))
  np.testing.assert_allclose([summary["mlm_loss"], summary["nsp_loss"], summary["loss"]],
                             [mlm, nsp, mlm + nsp], rtol=1e-5)
  weights = objective.term_weights(batch)
  np.testing.assert_allclose(objective.normalized_loss(metrics, weights), mlm + nsp, rtol=1e-5)


@pytest.mark.parametrize("name", ["mlm_nsp", "causal"])
def test_microbatch_losses_normalised_by_full_batch_weights_add_up_to_the_big_batch(name):
  config = tiny_config(name)
  objective = objectives.get(name)
  batch = random_batch(config, objective, seed=4)
  rs = np.random.RandomState(5)
  key = "logits" if name == "causal" else "mlm_logits"
  shape = (8, 16 if name == "causal" else 4, config.model.vocab_size)
  outputs = {key: rs.randn(*shape).astype(np.float32), "nsp_logits": rs.randn(8, 2).astype(np.float32)}
  weights = objective.term_weights(batch)
  full = objective.normalized_loss(objective.metrics(outputs, batch), weights)
  parts = 0.0
  for rows in (slice(0, 3), slice(3, 8)):  # uneven halves: per-half means would be wrong
    part = lambda d: {k: v[rows] for k, v in d.items()}
    parts += objective.normalized_loss(objective.metrics(part(outputs), part(batch)), weights)
  np.testing.assert_allclose(parts, full, rtol=1e-5)
  # ... while averaging the two halves' own means is not the same number.
  means = [objective.normalized_loss(objective.metrics({k: v[r] for k, v in outputs.items()},
                                                       {k: v[r] for k, v in batch.items()}),
                                     objective.term_weights({k: v[r] for k, v in batch.items()}))
           for r in (slice(0, 3), slice(3, 8))]
  assert abs(float(np.mean(means)) - float(full)) > 1e-4


def test_registry_and_config_checks():
  assert set(objectives.NAMES) == {"mlm_nsp", "mlm", "mlm_full_sentences", "causal", "prefix_lm",
                                   "gpt_bert"}
  assert objectives.get("mlm").loss_terms == ("mlm_loss",)
  with pytest.raises(ConfigError, match="objective.name='nope'"):
    objectives.get("nope")
  config = tiny_config("causal")
  config.model.family = "encoder"
  with pytest.raises(ConfigError, match="model.family='encoder'"):
    objectives.validate(config)
  config = tiny_config("mlm_nsp")
  config.model.nsp_head = False
  with pytest.raises(ConfigError, match="nsp_head"):
    objectives.validate(config)

  class NoMask:
    vocab_size, cls_id, sep_id, mask_id = 50, 1, 2, None
  with pytest.raises(ConfigError, match="mask_id"):
    objectives.check_tokenizer(tiny_config("mlm"), NoMask())


def test_flops_per_token_uses_the_models_formula_with_the_objectives_predictions():
  import models
  config = tiny_config("mlm_nsp")
  got = objectives.get("mlm_nsp").flops_per_token(config.model, config.data, config.objective)
  want = objectives.train_flops_per_token(config.model, 16, "mlm_nsp", predictions_per_seq=4)
  assert got == want
  # Fewer gathered predictions -> fewer head FLOPs.
  config.objective.max_predictions_per_seq = 2
  assert objectives.get("mlm_nsp").flops_per_token(config.model, config.data, config.objective) < got


def test_is_argmax_matches_jnp_argmax_including_ties():
  from objectives.base import is_argmax
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 5, 9)).astype(np.float32)
  logits[0, :, [2, 6]] = 9.0   # a tie: argmax picks index 2, not 6
  logits[1, :, :] = 0.0        # all tied: index 0
  labels = rng.integers(0, 9, (6, 5))
  labels[0, :3], labels[0, 3:] = 2, 6
  labels[1, :2] = 0
  labels[2] = np.argmax(logits[2], -1)  # every row right
  got = np.asarray(is_argmax(jnp.asarray(logits), jnp.asarray(labels)))
  np.testing.assert_array_equal(got, np.argmax(logits, -1) == labels)
  assert got[0].tolist() == [True] * 3 + [False] * 2 and got[2].all() and got[1, :2].all()
