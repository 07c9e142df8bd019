"""Causal LM rows: fixed-length windows of the packed token stream, no padding.

The tokenized split is one stream doc_0 <eot> doc_1 <eot> ... (documents in the corpus order that
TFDS fixed when it wrote the split). Row slot i of an epoch is the window of seq_len + 1 tokens
starting at i * seq_len + shift, where shift in [0, seq_len) is drawn per epoch so packing
boundaries move between epochs; windows wrap around the end of the stream, so every token of
every row is real text (target_weights are all 1; a corpus shorter than a row just repeats).
Slots are visited in a keyed random order per epoch (sampling.epoch_slots): every token is
trained on once per epoch.

Per row: input_ids = window[:-1], targets = window[1:]. The end-of-text token both ends a
document (it is the target after its last token) and starts the next one (as GPT-2's
<|endoftext|> does), so a new document segment begins at each <eot> input: doc_ids count
segments 1, 2, ... within the row and positions restart at 0 there and at the row start.
"""
import numpy as np

from pipeline import sampling


class CausalExamples:

  def __init__(self, data, tokenizer, seq_len: int, seed: int, split: str):
    self.data, self.seq_len, self.seed, self.split = data, seq_len, seed, split
    self.eot_id = tokenizer.eot_id
    self.num_tokens = data.num_tokens
    self.num_slots = max(1, self.num_tokens // seq_len)

  def _shift(self, epoch: int) -> int:
    r = sampling.rng(self.seed, sampling.split_code(self.split), sampling.SHIFT, epoch)
    return int(r.integers(self.seq_len))

  def window(self, epoch: int, slot: int) -> np.ndarray:
    """[seq_len + 1] tokens of a row slot."""
    start = (slot * self.seq_len + self._shift(epoch)) % self.num_tokens
    stop = start + self.seq_len + 1
    if stop <= self.num_tokens:
      return np.asarray(self.data.tokens[start:stop], dtype=np.int32)
    index = np.arange(start, stop) % self.num_tokens
    return np.asarray(self.data.tokens[index], dtype=np.int32)

  def rows(self, global_indices: np.ndarray) -> dict[str, np.ndarray]:
    epochs, slots = sampling.epoch_slots(global_indices, self.num_slots, self.seed, self.split)
    windows = np.stack([self.window(int(e), int(s)) for e, s in zip(epochs, slots)])
    inputs, targets = windows[:, :-1], windows[:, 1:]  # [B, L] each
    starts = inputs == self.eot_id
    starts[:, 0] = True
    doc_ids = np.cumsum(starts, axis=1, dtype=np.int32)
    arange = np.broadcast_to(np.arange(self.seq_len, dtype=np.int32), inputs.shape)
    segment_start = np.maximum.accumulate(np.where(starts, arange, 0), axis=1)
    return dict(input_ids=np.ascontiguousarray(inputs), targets=np.ascontiguousarray(targets),
                positions=(arange - segment_start).astype(np.int32), doc_ids=doc_ids,
                target_weights=np.ones(inputs.shape, np.float32))
