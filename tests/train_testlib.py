"""Shared by the tests/test_train_*.py files: tiny configs and synthetic batches.

Synthetic batches (random ids with the objective's layout) keep the step-level tests independent
of the input pipeline; the loop and CLI tests use the real pipeline on the embedded corpus.
"""

import os

import numpy as np

from configs import base


def tiny_config(objective="causal", *, vocab=96, seq_len=16, batch=8, layers=2, d_model=32):
  """A model small enough that compiling it costs a second, still with every kind of layer."""
  c = base.get_config()
  m = c.model
  m.family = "decoder" if objective == "causal" else "encoder"
  m.vocab_size, m.max_len, m.num_layers, m.d_model, m.num_heads = vocab, seq_len, layers, d_model, 4
  m.ln_placement = "pre" if objective == "causal" else "post"
  c.objective.name = objective
  c.objective.max_predictions_per_seq = 4
  c.data.seq_len = seq_len
  c.data.tokenizer = "bpe" if objective == "causal" else "wordpiece"
  c.train.global_batch_size = batch
  c.train.num_steps = 4
  c.optim.learning_rate = 1e-2
  c.optim.warmup_steps = 1
  return c


def random_batch(config, objective, seed):
  """A global batch of `objective`'s layout with uneven padding, so weights differ per row."""
  rs = np.random.RandomState(seed)
  out = {}
  vocab, l = config.model.vocab_size, config.data.seq_len
  for key, (shape, dtype) in objective.batch_spec(config).items():
    out[key] = np.zeros(shape, dtype)
  b = config.train.global_batch_size
  out["input_ids"] = rs.randint(0, vocab, (b, l)).astype(np.int32)
  if objective.family == "decoder":
    lengths = rs.randint(l // 2, l + 1, b)
    valid = (np.arange(l)[None, :] < lengths[:, None])
    out["targets"] = rs.randint(0, vocab, (b, l)).astype(np.int32)
    out["target_weights"] = valid.astype(np.float32)
    out["positions"] = np.tile(np.arange(l, dtype=np.int32), (b, 1))
    out["doc_ids"] = valid.astype(np.int32)
  else:
    p = config.objective.max_predictions_per_seq
    lengths = rs.randint(l // 2, l + 1, b)
    out["input_mask"] = (np.arange(l)[None, :] < lengths[:, None]).astype(np.int32)
    out["token_type_ids"] = (np.arange(l)[None, :] >= lengths[:, None] // 2).astype(np.int32)
    out["masked_positions"] = np.stack([rs.choice(n, p, replace=False) for n in lengths]).astype(np.int32)
    out["masked_ids"] = rs.randint(0, vocab, (b, p)).astype(np.int32)
    n_pred = rs.randint(1, p + 1, b)  # 1..p real predictions per row, the rest padding
    out["masked_weights"] = (np.arange(p)[None, :] < n_pred[:, None]).astype(np.float32)
    if "nsp_labels" in out:
      out["nsp_labels"] = rs.randint(0, 2, b).astype(np.int32)
  return out


def loop_config(data_dir=""):
  """The tiny causal run of the loop/CLI tests: embedded corpus, the session's 512-entry BPE."""
  from tests.conftest import TEST_VOCAB_SIZE
  c = tiny_config("causal", vocab=TEST_VOCAB_SIZE, seq_len=32, batch=8)
  c.data.corpus, c.data.data_dir = "embedded", data_dir
  c.data.train_vocab_size = TEST_VOCAB_SIZE
  t = c.train
  t.num_steps, t.log_every, t.eval_every, t.eval_batches = 12, 1, 0, 1
  t.checkpoint_every, t.keep_checkpoints = 3, 10
  c.optim.learning_rate, c.optim.warmup_steps = 3e-3, 2
  return c


def tree_bytes(root):
  """{relative path: file bytes} of every file under `root` (a run directory)."""
  out = {}
  for dirpath, _, files in os.walk(root):
    for name in files:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = f.read()
  return out
