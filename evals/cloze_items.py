"""Cloze items from held-out text, the same for every model: chosen on characters, not tokens.

An item is a held-out sentence with one lower-case word blanked out, and K candidate words: the
answer and K - 1 distractors. Everything is decided on the raw text with eval.seed, so encoders
with WordPiece and decoders with byte-level BPE answer exactly the same questions (the item
fingerprint in the JSON shows it).

- Sentences: the pipeline's sentence segmentation (pipeline.token_cache.sentence_spans) of the
  eval split's documents, kept if they read as prose: 6 to 40 words, at least 70% letters.
- The blank: a lower-case alphabetic word of 3 to 12 letters that is not the sentence's first.
- Distractors: other word occurrences drawn from the same held-out text (so in proportion to
  their frequency, as a unigram model would guess), lower-case, 3 to 12 letters, all distinct.
"""
import dataclasses
import hashlib
import json
import re

import numpy as np

from configs.errors import ConfigError
from pipeline.token_cache import sentence_spans

_WORD = re.compile(r"(?<![\w'-])[a-z]{3,12}(?![\w'-])")
_MIN_WORDS, _MAX_WORDS, _MIN_LETTERS = 6, 40, 0.7
_SALT = 0xC102E  # keeps the item draw apart from other users of eval.seed


@dataclasses.dataclass(frozen=True)
class ClozeItem:
  left: str                  # sentence text before the blank
  right: str                 # sentence text after the blank
  candidates: tuple          # K words
  answer: int                # index of the true word in candidates

  def filled(self, k: int) -> tuple[str, int, int]:
    """(sentence with candidate k, char start, char end of the candidate)."""
    word = self.candidates[k]
    return self.left + word + self.right, len(self.left), len(self.left) + len(word)

  def with_blank(self) -> str:
    return self.left + "____" + self.right


def prose_sentences(documents) -> list[str]:
  out = []
  for doc in documents:
    for start, end in sentence_spans(doc):
      text = doc[start:end].strip()
      words = text.split()
      letters = sum(c.isalpha() for c in text) / max(1, sum(not c.isspace() for c in text))
      if _MIN_WORDS <= len(words) <= _MAX_WORDS and letters >= _MIN_LETTERS:
        out.append(text)
  return out


def build_items(documents, num_items: int, num_candidates: int, seed: int) -> list[ClozeItem]:
  """Up to num_items items (fewer if the text has fewer usable sentences), deterministic."""
  sentences = prose_sentences(documents)
  pool = [m.group() for s in sentences for m in _WORD.finditer(s)]
  if len(set(pool)) < num_candidates + 1:
    raise ConfigError(f"eval.cloze_candidates={num_candidates} needs more distinct words than "
                      f"the held-out text has ({len(set(pool))}); lower it")
  rng = np.random.default_rng([seed, _SALT])
  items = []
  for s in rng.permutation(len(sentences)):
    if len(items) >= num_items:
      break
    text = sentences[s]
    blanks = [m for m in _WORD.finditer(text) if m.start() > 0]
    if not blanks:
      continue
    m = blanks[int(rng.integers(len(blanks)))]
    answer = m.group()
    distractors = []
    while len(distractors) < num_candidates - 1:
      word = pool[int(rng.integers(len(pool)))]
      if word != answer and word not in distractors:
        distractors.append(word)
    position = int(rng.integers(num_candidates))
    candidates = distractors[:position] + [answer] + distractors[position:]
    items.append(ClozeItem(text[:m.start()], text[m.end():], tuple(candidates), position))
  if not items:
    raise ConfigError("the held-out split (data.eval_split) has no prose sentence to make a "
                      "cloze item from")
  return items


def fingerprint(items) -> str:
  raw = json.dumps([dataclasses.astuple(i) for i in items], sort_keys=True)
  return hashlib.sha256(raw.encode()).hexdigest()[:16]
