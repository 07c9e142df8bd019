"""Stateless randomness: which example fills row r of step s, and the random draws it makes.

Every random choice is a pure function of (data.seed, split, purpose, integers), so batch(step)
needs no iterator state: resume at any step and any host count is exact.

Order: an epoch is one pass over `n` example slots (encoder: instance slots tiling the corpus;
causal: fixed-length windows of the token stream). Global example g = step * global_batch + row
falls in epoch g // n at position g % n, and position -> slot is a keyed pseudo-random
permutation of range(n) (a 4-round Feistel network on the next power of 4, with cycle walking),
so each slot is used exactly once per epoch, epochs differ in order, and nothing of size n is
ever materialised (pod-scale corpora have 10^8+ slots).
"""
import hashlib
import zlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(z: np.ndarray) -> np.ndarray:
  """splitmix64's finalizer: a cheap, well-mixed 64-bit hash (uint64 arithmetic wraps)."""
  z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return z ^ (z >> np.uint64(31))


def split_code(split: str) -> int:
  return zlib.crc32(split.encode())


def _round_keys(*key_parts: int) -> np.ndarray:
  digest = hashlib.sha256(repr(key_parts).encode()).digest()
  return np.frombuffer(digest, dtype=np.uint64)[:4].copy()


def permute(index, n: int, *key_parts: int) -> np.ndarray:
  """A bijection of range(n), chosen by key_parts, applied to `index` (array of ints < n)."""
  index = np.asarray(index, dtype=np.uint64)
  if n <= 1:
    return np.zeros_like(index, dtype=np.int64)
  half_bits = max(1, (int(n - 1).bit_length() + 1) // 2)
  half_mask = np.uint64((1 << half_bits) - 1)
  keys = _round_keys(*key_parts)

  def encrypt(x):
    left, right = x >> np.uint64(half_bits), x & half_mask
    for k in keys:
      left, right = right, left ^ (_mix64(right ^ k) & half_mask)
    return (left << np.uint64(half_bits)) | right

  out = encrypt(index)
  while True:  # cycle walking: the domain is < 4n, so a few rounds at most on average
    outside = out >= np.uint64(n)
    if not outside.any():
      return out.astype(np.int64)
    out[outside] = encrypt(out[outside])


def rng(*key_parts: int) -> np.random.Generator:
  """A counter-based generator keyed by a hash of non-negative integers (platform independent).

  Philox with an explicit key costs ~2/3 of a SeedSequence-seeded PCG64, and this runs twice
  per example.
  """
  parts = np.asarray(key_parts, dtype=np.uint64).tobytes()
  key = int.from_bytes(hashlib.blake2b(parts, digest_size=16).digest(), "little")
  return np.random.Generator(np.random.Philox(key=key))


# Purposes, so that different draws of the same example never share a stream.
ORDER, TEXT, MASK, SHIFT, PREFIX = 1, 2, 3, 4, 5


def epoch_slots(global_indices: np.ndarray, num_slots: int, seed: int, split: str):
  """(epoch[B], slot[B]) of global example indices."""
  global_indices = np.asarray(global_indices, dtype=np.int64)
  epochs = global_indices // num_slots
  positions = global_indices % num_slots
  slots = np.empty_like(positions)
  for e in np.unique(epochs):
    sel = epochs == e
    slots[sel] = permute(positions[sel], num_slots, seed, split_code(split), ORDER, int(e))
  return epochs, slots
