"""Atomic writes and a cross-process lock for everything the pipeline caches on disk.

Every cache file (trained tokenizer, tokenized corpus) is written under a temporary name in the
same directory and renamed into place, so a crash or an error leaves either the old state or the
complete new file, never a half-written one. The lock serializes preparation when several local
processes (multi-process tests, one host with several workers) build the same cache at once; the
loser of the race then finds the finished file and reuses it.
"""
import contextlib
import fcntl
import os
import tempfile

import numpy as np

from configs.paths import is_remote  # noqa: F401  (one definition; files.is_remote for callers)


def default_data_dir() -> str:
  return os.path.join(os.path.expanduser("~"), ".cache", "pancake", "tfds")


@contextlib.contextmanager
def locked(path: str):
  """Exclusive advisory lock on `path + '.lock'` (local paths only; remote paths run unlocked)."""
  if is_remote(path):
    yield
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path + ".lock", "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path next to `path`; renamed onto `path` only if the block succeeds."""
  directory = os.path.dirname(path) or "."
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path) + "-")
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def save_npy_atomic(path: str, array: np.ndarray) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.save(f, array)


def write_text_atomic(path: str, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
