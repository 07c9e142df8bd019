"""BERT's masking (create_masked_lm_predictions), shared by every objective that masks tokens.

The rule itself is described in pipeline/encoder_examples.py's docstring: candidates are the
non-special tokens (whole words with objective.whole_word_masking), num_to_predict =
min(cap, max(1, round(num_candidates * mask_prob))), then [MASK] / random / unchanged by
mask_token_frac and random_token_frac. Every draw comes from the caller's generator, so a row is
a pure function of the generator's key.
"""
import numpy as np


class Masker:

  def __init__(self, tokenizer, objective_cfg, num_predictions: int):
    self.tok, self.obj, self.num_predictions = tokenizer, objective_cfg, num_predictions
    specials = np.asarray(tokenizer.special_ids, dtype=np.int64)
    self.is_special = np.zeros(tokenizer.vocab_size, bool)
    self.is_special[specials] = True
    self.random_pool = np.flatnonzero(~self.is_special)
    if objective_cfg.whole_word_masking:
      self.starts_word, self.ends_space = tokenizer.word_boundary_tables()

  def _candidate_words(self, ids: np.ndarray) -> list[np.ndarray]:
    cand = np.flatnonzero(~self.is_special[ids])
    if len(cand) == 0:
      return []
    prev = ids[np.maximum(cand - 1, 0)]
    new_word = (self.starts_word[ids[cand]] | self.ends_space[prev]
                | self.is_special[prev] | (cand == 0))
    new_word[0] = True
    return np.split(cand, np.flatnonzero(new_word)[1:])

  def choose_positions(self, ids: np.ndarray, rng) -> np.ndarray:
    if not self.obj.whole_word_masking:  # one-token words: BERT's greedy pass takes a prefix
      cand = np.flatnonzero(~self.is_special[ids])
      num = min(self.num_predictions, max(1, int(round(len(cand) * self.obj.mask_prob))))
      return np.sort(rng.permutation(cand)[:num])
    words = self._candidate_words(ids)
    num_cand = sum(len(w) for w in words)
    num_to_predict = min(self.num_predictions, max(1, int(round(num_cand * self.obj.mask_prob))))
    chosen, count = [], 0
    for w in rng.permutation(len(words)):
      if count >= num_to_predict:
        break
      if count + len(words[w]) > num_to_predict:
        continue
      chosen.append(words[w])
      count += len(words[w])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)

  def mask(self, ids: np.ndarray, rng):
    """ids [N] int64 -> (inputs [N], positions [M] sorted, originals [M])."""
    positions = self.choose_positions(ids, rng)
    originals = ids[positions]
    r = rng.random(len(positions))
    inputs = ids.copy()
    use_mask = r < self.obj.mask_token_frac
    use_random = ~use_mask & (r < self.obj.mask_token_frac + self.obj.random_token_frac)
    inputs[positions[use_mask]] = self.tok.mask_id
    inputs[positions[use_random]] = self.random_pool[
        rng.integers(len(self.random_pool), size=int(use_random.sum()))]
    return inputs, positions, originals
