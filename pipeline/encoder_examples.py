"""Encoder examples faithful to google-research/bert create_pretraining_data.py, by random access.

BERT walks every document once, cutting it into chunks of ~max_num_tokens; here the corpus is
tiled by num_slots = num_tokens // max_num_tokens instance slots, and slot i starts at the
sentence holding token ~(i + u) * num_tokens / num_slots (u uniform, drawn per slot), so the
instances cover the corpus like BERT's pass while any one of them can be built alone. The text of
a slot (segments, NSP partner) is fixed by (seed, split, slot), like BERT's pre-built instances;
its mask is drawn per epoch (dynamic masking, RoBERTa) or from objective.static_masking_dupes
fixed draws (static masking, BERT's dupe_factor).

text (the objective's choice, objectives/mlm.py):
- "pair" (mlm_nsp): BERT. Chunk of sentences up to a target length (short_seq_prob: uniform in
  [2, max_num_tokens]), split at a random sentence into A and B; with nsp_random_prob (and
  always for one-sentence chunks) B is replaced by text from a random other document;
  truncate_seq_pair trims the longer side from a random end; [CLS] A [SEP] B [SEP].
- "document" (mlm): BERT's "No NSP" ablation. Contiguous sentences of one document from a
  sentence start, cut at the end to the target length (seq_len - 2, or with short_seq_prob
  uniform in [2, seq_len - 2]); [CLS] X [SEP]; segment ids 0.
- "full_sentences" (mlm_full_sentences): RoBERTa FULL-SENTENCES. Whole sentences in corpus
  order, crossing documents with an extra [SEP] at each document boundary, up to seq_len - 2;
  no short inputs.

Masking (create_masked_lm_predictions, pipeline/masking.py): the candidates are all tokens but [CLS]/[SEP]/[PAD]
(whole words when whole_word_masking: a WordPiece "##" piece joins the previous word);
num_to_predict = min(max_predictions_per_seq, max(1, round(num_candidates * mask_prob))) --
BERT multiplies the length including [CLS]/[SEP]; the candidate count is what the paper
describes as "15% of the tokens". Words are taken in random order, skipping a word that would
overshoot. Each chosen position: mask_token_frac -> [MASK], random_token_frac -> a random
non-special token, else unchanged. (BERT may draw any vocabulary entry, specials included, as
the random token; here specials are excluded.)
"""
import numpy as np

from pipeline import masking
from pipeline import sampling


class EncoderExamples:
  """Builds encoder rows of global example indices (see module docstring)."""

  def __init__(self, data, tokenizer, objective_cfg, seq_len: int, seed: int, split: str, *,
               text: str, row_layout: dict):
    # text: "pair" | "document" | "full_sentences" (module docstring); row_layout: the
    # objective's {key: (per-row shape, dtype)} (objectives/mlm.py), allocated here as is.
    self.data, self.tok, self.obj = data, tokenizer, objective_cfg
    self.text, self.layout = text, row_layout
    self.nsp = "nsp_labels" in row_layout
    self.seq_len, self.seed, self.split = seq_len, seed, split
    self.split_code = sampling.split_code(split)
    self.max_num_tokens = seq_len - (3 if text == "pair" else 2)
    self.num_slots = max(1, data.num_tokens // self.max_num_tokens)
    self.num_predictions = objective_cfg.max_predictions_per_seq
    self.masker = masking.Masker(tokenizer, objective_cfg, self.num_predictions)

  # ------------------------------------------------------------------ text of one slot

  def _target_length(self, rng) -> int:
    if self.text != "full_sentences" and rng.random() < self.obj.short_seq_prob:
      return int(rng.integers(2, self.max_num_tokens + 1))
    return self.max_num_tokens

  def _start_sentence(self, slot: int, rng) -> int:
    t = int((slot + rng.random()) * self.data.num_tokens / self.num_slots)
    return int(max(0, self.data.sentence_of_token(min(t, self.data.num_tokens - 1))))

  def _doc_range(self, doc: int) -> tuple[int, int]:
    return int(self.data.doc_sents[doc]), int(self.data.doc_sents[doc + 1])

  def _gather(self, first: int, stop: int, target: int) -> list[np.ndarray]:
    """Sentences from `first` (before `stop`) until at least `target` tokens (or `stop`)."""
    chunk, length = [], 0
    starts, ends = self.data.sent_starts, self.data.sent_ends
    for s in range(first, stop):
      chunk.append(np.asarray(self.data.tokens[starts[s]:ends[s]], dtype=np.int32))
      length += len(chunk[-1])
      if length >= target:
        break
    return chunk

  def _nsp_text(self, rng, s0: int):
    doc = int(self.data.doc_of_sentence(s0))
    _, doc_stop = self._doc_range(doc)
    target = self._target_length(rng)
    chunk = self._gather(s0, doc_stop, target)
    if len(chunk) == 1 and s0 + 1 < doc_stop:
      chunk += self._gather(s0 + 1, doc_stop, 1)  # a second sentence, so B can be the true one
    if len(chunk) == 1 and len(chunk[0]) >= 2:  # one-sentence document: split inside it
      cut = int(rng.integers(1, len(chunk[0])))
      chunk = [chunk[0][:cut], chunk[0][cut:]]
    a_end = 1 if len(chunk) == 1 else int(rng.integers(1, len(chunk)))
    tokens_a = np.concatenate(chunk[:a_end])
    is_random = len(chunk) == 1 or rng.random() < self.obj.nsp_random_prob
    if is_random:
      num_docs = self.data.num_docs
      other = int(rng.integers(num_docs - 1)) if num_docs > 1 else 0
      if num_docs > 1 and other >= doc:
        other += 1  # uniform over the other documents
      lo, hi = self._doc_range(other)
      start = int(rng.integers(lo, hi))
      tokens_b = np.concatenate(self._gather(start, hi, max(1, target - len(tokens_a))))
    else:
      tokens_b = np.concatenate(chunk[a_end:])
    tokens_a, tokens_b = self._truncate_pair(tokens_a, tokens_b, rng)
    t = self.tok
    ids = np.concatenate([[t.cls_id], tokens_a, [t.sep_id], tokens_b, [t.sep_id]])
    types = np.zeros(len(ids), np.int32)
    types[len(tokens_a) + 2:] = 1
    return ids, types, int(is_random)

  def _truncate_pair(self, a, b, rng):
    """BERT's truncate_seq_pair: drop one token at a time from the longer side (B on ties), from
    the front or the back with equal odds; here as counts, the same distribution in one draw."""
    excess = len(a) + len(b) - self.max_num_tokens
    if excess <= 0:
      return a, b
    gap = abs(len(a) - len(b))
    from_longer = min(excess, gap)
    rest = excess - from_longer
    cut_a = (from_longer if len(a) > len(b) else 0) + rest // 2
    cut_b = (from_longer if len(a) <= len(b) else 0) + rest - rest // 2
    out = []
    for tokens, cut in ((a, cut_a), (b, cut_b)):
      front = int(rng.binomial(cut, 0.5)) if cut else 0
      out.append(tokens[front:len(tokens) - (cut - front)])
    return out

  def _single_text(self, rng, s0: int):
    if self.text == "document":
      _, stop = self._doc_range(int(self.data.doc_of_sentence(s0)))
      target = self._target_length(rng)
      body = np.concatenate(self._gather(s0, stop, target))[:target]
    else:
      body = self._full_sentences(s0)
    ids = np.concatenate([[self.tok.cls_id], body, [self.tok.sep_id]])
    return ids, np.zeros(len(ids), np.int32), -1

  def _full_sentences(self, s0: int) -> np.ndarray:
    """Whole sentences from s0 on, [SEP] between documents, at most max_num_tokens."""
    parts, length = [], 0
    doc_stop = self._doc_range(int(self.data.doc_of_sentence(s0)))[1]
    for s in range(s0, self.data.num_sentences):
      sentence = np.asarray(self.data.tokens[self.data.sent_starts[s]:self.data.sent_ends[s]],
                            dtype=np.int32)
      boundary = s == doc_stop
      if boundary:
        doc_stop = self._doc_range(int(self.data.doc_of_sentence(s)))[1]
      extra = len(sentence) + int(boundary)
      if parts and length + extra > self.max_num_tokens:
        break
      if boundary and parts:
        parts.append(np.asarray([self.tok.sep_id], np.int32))
      parts.append(sentence)
      length += extra
    return np.concatenate(parts)[:self.max_num_tokens]

  # ------------------------------------------------------------------ rows

  def example(self, epoch: int, slot: int) -> dict:
    text_rng = sampling.rng(self.seed, self.split_code, sampling.TEXT, slot)
    s0 = self._start_sentence(slot, text_rng)
    if self.text == "pair":
      ids, types, nsp = self._nsp_text(text_rng, s0)
    else:
      ids, types, nsp = self._single_text(text_rng, s0)
    draw = epoch if self.obj.dynamic_masking else epoch % self.obj.static_masking_dupes
    mask_rng = sampling.rng(self.seed, self.split_code, sampling.MASK, slot, draw)
    inputs, positions, originals = self.masker.mask(ids.astype(np.int64), mask_rng)
    return dict(ids=inputs, types=types, nsp=nsp, positions=positions, originals=originals)

  def rows(self, global_indices: np.ndarray) -> dict[str, np.ndarray]:
    n = len(global_indices)
    out = {k: np.zeros((n,) + shape, np.dtype(dtype)) for k, (shape, dtype) in self.layout.items()}
    out["input_ids"][:] = self.tok.pad_id
    epochs, slots = sampling.epoch_slots(global_indices, self.num_slots, self.seed, self.split)
    for row, (epoch, slot) in enumerate(zip(epochs, slots)):
      ex = self.example(int(epoch), int(slot))
      k, m = len(ex["ids"]), len(ex["positions"])
      out["input_ids"][row, :k] = ex["ids"]
      out["token_type_ids"][row, :k] = ex["types"]
      out["input_mask"][row, :k] = 1
      out["masked_positions"][row, :m] = ex["positions"]
      out["masked_ids"][row, :m] = ex["originals"]
      out["masked_weights"][row, :m] = 1.0
      if self.nsp:
        out["nsp_labels"][row] = ex["nsp"]
    return out
