"""prefix_lm and gpt_bert rows over thousands of generated examples: prefix lengths, suffix-only
losses, the exact causal/masked split of every batch and BERT's masking statistics."""
import numpy as np
import pytest

import objectives
import pipeline
from pipeline import stats as stats_lib

L, B = 64, 32


def _batches(pipe, steps):
  return [pipe.batch(s) for s in range(steps)]


def _config(embedded_config, name, **overrides):
  return embedded_config(name, "bpe", model__family="decoder", model__nsp_head=False,
                         data__seq_len=L, train__global_batch_size=B, **overrides)


@pytest.fixture(scope="module")
def causal_batches(embedded_config):
  pipe = objectives.make_pipeline(embedded_config("causal", data__seq_len=L,
                                                train__global_batch_size=B), "train")
  return _batches(pipe, 100)


@pytest.fixture(scope="module")
def prefix_run(embedded_config):
  pipe = objectives.make_pipeline(_config(embedded_config, "prefix_lm"), "train")
  return pipe, _batches(pipe, 100)


@pytest.fixture(scope="module")
def gpt_bert_run(embedded_config):
  pipe = objectives.make_pipeline(_config(embedded_config, "gpt_bert", objective__causal_fraction=0.25),
                                "train")
  return pipe, _batches(pipe, 100)


def test_prefix_rows_are_the_causal_rows_with_a_uniform_prefix(prefix_run, causal_batches):
  _, batches = prefix_run
  for b, c in zip(batches, causal_batches):
    for k in ("input_ids", "targets", "positions", "doc_ids"):
      np.testing.assert_array_equal(b[k], c[k])  # same text: only mask and loss differ
  prefix = np.concatenate([b["prefix_len"] for b in batches])  # 3,200 draws in [1, L - 1]
  assert prefix.min() >= 1 and prefix.max() <= L - 1
  counts = np.bincount(prefix, minlength=L)[1:]
  expected = len(prefix) / (L - 1)
  chi2 = float(((counts - expected) ** 2 / expected).sum())
  assert chi2 < 110, chi2  # 62 degrees of freedom: p < 1e-4 above ~110
  assert abs(prefix.mean() - L / 2) < 1.0


def test_prefix_loss_is_on_the_suffix_only(prefix_run):
  pipe, batches = prefix_run
  for b in batches[:10]:
    for r in range(B):
      p = int(b["prefix_len"][r])
      w = b["target_weights"][r]
      assert np.all(w[:p - 1] == 0) and np.all(w[p - 1:] == 1)  # predicts tokens p .. L
  s = objectives.get("prefix_lm").stats(batches, pipe.tokenizer)
  assert s["loss_on_suffix_only"] and s["targets_are_shifted_inputs"]
  assert abs(s["mean_prefix_fraction"] - 0.5) < 0.02
  # E[(L - P + 1) / L] for P uniform in [1, L - 1]
  assert s["loss_token_fraction"] == pytest.approx(0.5 + 1.5 / L, abs=0.02)


def test_gpt_bert_splits_every_batch_exactly(gpt_bert_run, causal_batches):
  _, batches = gpt_bert_run
  for b, c in zip(batches, causal_batches):
    causal = b["prefix_len"] == 0
    assert np.array_equal(causal, np.arange(B) < B // 4)  # round(0.25 * 32) rows, first
    assert np.all(b["prefix_len"][~causal] == L)
    for k in b:
      if k != "prefix_len":
        np.testing.assert_array_equal(b[k][causal], c[k][causal])
    np.testing.assert_array_equal(b["doc_ids"], c["doc_ids"])
    np.testing.assert_array_equal(b["input_ids"][:, 0], c["input_ids"][:, 0])  # never masked


def test_gpt_bert_masked_rows_predict_the_next_masked_token(gpt_bert_run, causal_batches):
  pipe, batches = gpt_bert_run
  tok = pipe.tokenizer
  specials = tok.special_ids
  selected = candidates = 0
  for b, c in zip(batches, causal_batches):
    for r in np.flatnonzero(b["prefix_len"] > 0):
      w = b["target_weights"][r] > 0
      assert not w[-1]  # the last position has no token after it in the row
      n = int((~np.isin(c["input_ids"][r][1:], specials)).sum())  # candidates: positions 1..L-1
      assert w.sum() == max(1, round(0.15 * n))  # BERT's count, no per-row cap
      selected, candidates = selected + int(w.sum()), candidates + n
      j = np.flatnonzero(w) + 1  # the masked positions; the one before each predicts it
      original = c["input_ids"][r]
      np.testing.assert_array_equal(b["targets"][r][w], original[j])
      assert not np.isin(original[j], specials).any()
      unmasked = np.setdiff1d(np.arange(L), j)
      np.testing.assert_array_equal(b["input_ids"][r][unmasked], original[unmasked])
  s = objectives.get("gpt_bert").stats(batches, tok)
  assert s["causal_row_fraction"] == 0.25 and s["causal_targets_are_shifted_inputs"]
  assert s["special_tokens_selected"] == 0
  assert s["masked_fraction"] == pytest.approx(selected / candidates)
  assert abs(s["masked_fraction"] - 0.15) <= 0.01, s  # rounding 0.15 * ~63 candidates
  assert abs(s["mask_token_fraction"] - 0.8) <= 0.015
  assert abs(s["unchanged_fraction"] - 0.1) <= 0.012
  assert abs(s["random_token_fraction"] - 0.1) <= 0.012


def test_decoder_objectives_resume_and_split_over_hosts(embedded_config):
  for name in ("prefix_lm", "gpt_bert"):
    config = _config(embedded_config, name)
    whole = objectives.make_pipeline(config, "train").batch(7)
    halves = [objectives.make_pipeline(config, "train", process_index=i, process_count=2).batch(7)
              for i in range(2)]
    for k in whole:
      np.testing.assert_array_equal(whole[k], np.concatenate([h[k] for h in halves]))


def test_gpt_bert_checks_its_ratio(embedded_config):
  for fraction, batch in ((0.0, 32), (1.0, 32), (0.01, 32)):
    config = _config(embedded_config, "gpt_bert", objective__causal_fraction=fraction)
    config.train.global_batch_size = batch
    with pytest.raises(pipeline.ConfigError, match="objective.causal_fraction"):
      pipeline.validate(config, objectives.get(config.objective.name))


@pytest.mark.parametrize("name", ["prefix_lm", "gpt_bert"])
def test_inspect_prints_rows_and_stats(name, embedded_data_dir):
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  base = [sys.executable, "-m", "pipeline.inspect", "--config", "configs/base.py",
          f"--config.objective.name={name}", f"--config.data.data_dir={embedded_data_dir}",
          "--config.data.train_vocab_size=512", "--config.data.seq_len=32",
          "--config.train.global_batch_size=8", "--config.objective.causal_fraction=0.25"]
  rows = subprocess.run(base + ["--num", "3"], cwd=repo, capture_output=True, text=True,
                        timeout=300, check=True).stdout
  assert ("prefix_len=" if name == "prefix_lm" else "mode=masked next-token") in rows
  stats = json.loads(subprocess.run(base + ["--stats", "64"], cwd=repo, capture_output=True,
                                    text=True, timeout=300, check=True).stdout.splitlines()[-1])
  assert stats["objective"] == name and stats["examples"] == 64
