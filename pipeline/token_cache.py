"""A split tokenized once: a flat token stream plus sentence and document bounds, memory-mapped.

Layout (all raw little-endian arrays, memory-mapped on load):
- tokens.bin   uint16 (vocab <= 65536) or int32: doc_0, [eot], doc_1, [eot], ... (the end-of-text
               separator is there when the tokenizer has one; causal packing reads this stream).
- sent_starts.bin, sent_ends.bin int64 [S]: token offsets of every sentence, in corpus order
               (two flat files so that binary searches on a memory map touch few pages).
- doc_sents.bin int64 [D + 1]: first sentence of each document (plus a final sentinel).

Sentence segmentation (for NSP's segments and the sentence-aligned encoder inputs): BERT's input
format has one sentence per line, so every line is a sentence boundary; each line is further
split after ., ! or ? (optionally followed by closing quotes/brackets) when whitespace and an
upper-case letter, digit or opening quote/bracket follow. A regex rather than a library: the
well-kept statistical splitters (NLTK punkt, spaCy) need model downloads; this rule gets prose
right and errs only on abbreviations ("e.g. The"), which shifts a segment boundary, nothing more.
Documents are tokenized whole (exact text, spaces included) and tokens are assigned to the
sentence containing their last character.

The cache directory is keyed by corpus, tokenizer and segmentation version, and written into a
temporary directory that is renamed into place when complete.
"""
import itertools
import json
import os
import re
import shutil
import tempfile

import numpy as np

from pipeline import files as files_lib

SEGMENTATION_VERSION = "lines-regex-1"
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_CHUNK_DOCS = 512


def sentence_spans(doc: str) -> list[tuple[int, int]]:
  """(start, end) character spans of the sentences of a document (see module docstring)."""
  spans = []
  pos = 0
  for line in doc.split("\n"):
    start = pos
    pos += len(line) + 1
    if not line.strip():
      continue
    cut = 0
    for m in _SENTENCE_END.finditer(line):
      spans.append((start + cut, start + m.end()))
      cut = m.end()
    if line[cut:].strip():
      spans.append((start + cut, start + len(line)))
  return spans


def _tokenize_chunk(tokenizer, docs: list[str], token_base: int):
  """Token stream, sentence (start, end) offsets and per-document sentence counts of a chunk."""
  encodings = tokenizer.hf.encode_batch(docs, add_special_tokens=False)
  eot = tokenizer.eot_id
  streams, sentences, counts = [], [], []
  offset = token_base
  for doc, enc in zip(docs, encodings):
    ids = np.asarray(enc.ids, dtype=np.int64)
    spans = sentence_spans(doc)
    if len(ids) == 0 or not spans:
      counts.append(0)
      continue
    ends = np.asarray([e for _, e in enc.offsets], dtype=np.int64)
    # Sentence k owns the tokens whose last character lies in [span_k.start, next span start).
    cuts = np.searchsorted(ends, [s for s, _ in spans], side="right")
    cuts[0] = 0
    bounds = np.append(cuts, len(ids))
    keep = bounds[1:] > bounds[:-1]  # drop sentences that got no token (whitespace, controls)
    starts, stops = bounds[:-1][keep], bounds[1:][keep]
    sentences.append(np.stack([starts, stops], axis=1) + offset)
    counts.append(int(keep.sum()))
    streams.append(ids)
    offset += len(ids)
    if eot is not None:
      streams.append(np.asarray([eot], dtype=np.int64))
      offset += 1
  return streams, sentences, counts, offset


class TokenizedSplit:
  """Memory-mapped token stream with sentence and document boundaries (see module docstring)."""

  def __init__(self, directory: str):
    with open(os.path.join(directory, "meta.json")) as f:
      self.meta = json.load(f)
    self.tokens = np.memmap(os.path.join(directory, "tokens.bin"), dtype=self.meta["dtype"],
                            mode="r", shape=(self.meta["num_tokens"],))
    self.sent_starts, self.sent_ends = (
        np.memmap(os.path.join(directory, f"sent_{k}.bin"), dtype=np.int64, mode="r",
                  shape=(self.meta["num_sentences"],)) for k in ("starts", "ends"))
    self.doc_sents = np.memmap(os.path.join(directory, "doc_sents.bin"), dtype=np.int64,
                               mode="r", shape=(self.meta["num_docs"] + 1,))
    # Plain ndarray views of the maps: slicing a np.memmap wraps every slice in a new memmap
    # object (~5 us each), and examples slice per sentence.
    self.tokens, self.sent_starts, self.sent_ends, self.doc_sents = (
        a.view(np.ndarray) for a in (self.tokens, self.sent_starts, self.sent_ends,
                                     self.doc_sents))

  @property
  def num_tokens(self) -> int:
    return self.meta["num_tokens"]

  @property
  def num_sentences(self) -> int:
    return self.meta["num_sentences"]

  @property
  def num_docs(self) -> int:
    return self.meta["num_docs"]

  def doc_of_sentence(self, s):
    return np.searchsorted(self.doc_sents, s, side="right") - 1

  def sentence_of_token(self, t):
    return np.searchsorted(self.sent_starts, t, side="right") - 1

  def span_tokens(self, first_sentence: int, stop_sentence: int) -> list[np.ndarray]:
    """Token arrays of sentences first_sentence .. stop_sentence - 1."""
    starts = self.sent_starts[first_sentence:stop_sentence]
    ends = self.sent_ends[first_sentence:stop_sentence]
    return [np.asarray(self.tokens[a:b], dtype=np.int32) for a, b in zip(starts, ends)]


def _write(directory: str, docs, tokenizer) -> None:
  dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.int32
  num_tokens = num_sentences = 0
  doc_sents = [0]
  paths = {k: os.path.join(directory, k + ".bin")
           for k in ("tokens", "sent_starts", "sent_ends", "doc_sents")}
  with open(paths["tokens"], "wb") as tok_f, open(paths["sent_starts"], "wb") as starts_f, \
       open(paths["sent_ends"], "wb") as ends_f:
    batch = []
    for doc in itertools.chain(docs, [None]):  # None flushes the last chunk
      if doc is not None:
        batch.append(doc)
        if len(batch) < _CHUNK_DOCS:
          continue
      if not batch:
        break
      streams, sentences, counts, num_tokens = _tokenize_chunk(tokenizer, batch, num_tokens)
      for s in streams:
        tok_f.write(s.astype(dtype).tobytes())
      for s in sentences:
        starts_f.write(np.ascontiguousarray(s[:, 0], dtype=np.int64).tobytes())
        ends_f.write(np.ascontiguousarray(s[:, 1], dtype=np.int64).tobytes())
      for c in counts:
        if c:
          num_sentences += c
          doc_sents.append(num_sentences)
      batch = []
  np.asarray(doc_sents, np.int64).tofile(paths["doc_sents"])
  meta = dict(dtype=np.dtype(dtype).name, num_tokens=num_tokens, num_sentences=num_sentences,
              num_docs=len(doc_sents) - 1, eot_id=tokenizer.eot_id,
              segmentation=SEGMENTATION_VERSION)
  with open(os.path.join(directory, "meta.json"), "w") as f:
    json.dump(meta, f)


def tokenized_split(cache_dir: str, key: str, documents, tokenizer) -> TokenizedSplit:
  """Returns the cached tokenized split `key`, building it from `documents` first if needed."""
  directory = os.path.join(cache_dir, f"tokens-{key}-{SEGMENTATION_VERSION}")
  if not os.path.exists(os.path.join(directory, "meta.json")):
    with files_lib.locked(directory):
      if not os.path.exists(os.path.join(directory, "meta.json")):
        os.makedirs(cache_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-tokens-")
        try:
          _write(tmp, documents.iter_range(0, len(documents)), tokenizer)
          if os.path.exists(directory):  # a stale directory without meta.json: replace it
            shutil.rmtree(directory)
          os.rename(tmp, directory)
        finally:
          if os.path.exists(tmp):
            shutil.rmtree(tmp)
  return TokenizedSplit(directory)
