"""Rows of the decoder objectives beyond plain causal LM: prefix LM and GPT-BERT's hybrid.

Both start from the causal objective's packed windows (pipeline/causal_examples.py: same
(seed, split, epoch, slot) -> window map, so the text of a row is the causal row's) and add
`prefix_len[B]`, which the decoder turns into its attention mask (models/attention.py).

- PrefixLMExamples (objectives/prefix_lm.py): prefix_len uniform in [1, L - 1], drawn from
  (seed, split, PREFIX, epoch, slot); target_weights are 0 before position prefix_len - 1.
- GptBertExamples (objectives/gpt_bert.py): row r of global batch s (global example
  g = s * B + r) is causal iff r < round(causal_fraction * B), else masked next-token: the
  window's positions 1..L-1 are masked as BERT does (pipeline/masking.py, keyed by (seed,
  split, MASK, slot, epoch or its static draw)), targets[j - 1] = the original token j and
  weight 1 exactly where j was selected; prefix_len = L (bidirectional).
"""
import numpy as np

from pipeline import causal_examples
from pipeline import masking
from pipeline import sampling


class PrefixLMExamples:

  def __init__(self, data, tokenizer, config, split: str):
    d = config.data
    self.causal = causal_examples.CausalExamples(data, tokenizer, d.seq_len, d.seed, split)
    self.seq_len, self.seed, self.split_code = d.seq_len, d.seed, sampling.split_code(split)

  def prefix_len(self, epoch: int, slot: int) -> int:
    r = sampling.rng(self.seed, self.split_code, sampling.PREFIX, epoch, slot)
    return int(r.integers(1, self.seq_len))

  def rows(self, global_indices: np.ndarray) -> dict[str, np.ndarray]:
    out = self.causal.rows(global_indices)
    epochs, slots = sampling.epoch_slots(global_indices, self.causal.num_slots, self.seed,
                                         self.causal.split)
    prefix = np.asarray([self.prefix_len(int(e), int(s)) for e, s in zip(epochs, slots)],
                        np.int32)  # [B]
    arange = np.arange(self.seq_len)[None, :]
    out["target_weights"] = (arange >= prefix[:, None] - 1).astype(np.float32)  # [B, L]
    out["prefix_len"] = prefix
    return out


class GptBertExamples:

  def __init__(self, data, tokenizer, config, split: str):
    d, o = config.data, config.objective
    self.causal = causal_examples.CausalExamples(data, tokenizer, d.seq_len, d.seed, split)
    self.obj, self.seq_len, self.seed = o, d.seq_len, d.seed
    self.split_code = sampling.split_code(split)
    self.global_batch = config.train.global_batch_size
    self.num_causal = int(round(o.causal_fraction * self.global_batch))
    # MNTP rows predict every selected token (the logits are dense): no cap below the length.
    self.masker = masking.Masker(tokenizer, o, d.seq_len)

  def is_causal(self, global_indices: np.ndarray) -> np.ndarray:
    return np.asarray(global_indices) % self.global_batch < self.num_causal

  def rows(self, global_indices: np.ndarray) -> dict[str, np.ndarray]:
    global_indices = np.asarray(global_indices, np.int64)
    out = self.causal.rows(global_indices)
    epochs, slots = sampling.epoch_slots(global_indices, self.causal.num_slots, self.seed,
                                         self.causal.split)
    causal = self.is_causal(global_indices)
    out["prefix_len"] = np.where(causal, 0, self.seq_len).astype(np.int32)
    for row in np.flatnonzero(~causal):
      epoch, slot = int(epochs[row]), int(slots[row])
      draw = epoch if self.obj.dynamic_masking else epoch % self.obj.static_masking_dupes
      mask_rng = sampling.rng(self.seed, self.split_code, sampling.MASK, slot, draw)
      ids = out["input_ids"][row].astype(np.int64)
      inputs, positions, originals = self.masker.mask(ids[1:], mask_rng)  # positions 1..L-1
      out["input_ids"][row, 1:] = inputs
      out["targets"][row] = 0
      out["targets"][row, positions] = originals  # position j - 1 predicts token j
      out["target_weights"][row] = 0.0
      out["target_weights"][row, positions] = 1.0
    return out
