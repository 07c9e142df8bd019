"""Run-directory files on local disk or in an object store (gs://, s3://), through etils.epath.

On a pod every host must see one run directory, so --workdir is normally gs://bucket/...: orbax
writes the checkpoints there itself, and this module carries the rest of the run directory
(config/provenance/status JSON, metrics.jsonl, eval results and views) and the readers in
figures/ and launch/. Paths stay plain strings (os.path.join works on "gs://b/x"); only the
operations differ.

Writes are atomic on both: locally a temporary file is renamed into place; an object store
publishes an object only when its upload completes, so readers see the old or the new whole
file. Object stores cannot append: `append_text` rewrites the object (metrics.jsonl is small).
Remote paths need gcsfs (pinned in requirements.txt) and the usual Google credentials.
"""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile


def is_remote(path) -> bool:
  return "://" in str(path)


def _epath(path):
  from etils import epath  # orbax's path library, already a dependency
  return epath.Path(path)


def exists(path) -> bool:
  return _epath(path).exists() if is_remote(path) else os.path.exists(path)


def isdir(path) -> bool:
  return _epath(path).is_dir() if is_remote(path) else os.path.isdir(path)


def makedirs(path) -> None:
  if is_remote(path):
    _epath(path).mkdir(parents=True, exist_ok=True)
  else:
    os.makedirs(path, exist_ok=True)


def listdir(path) -> list[str]:
  """Entry names in `path`, sorted; [] if it does not exist."""
  if not isdir(path):
    return []
  if is_remote(path):
    return sorted(p.name for p in _epath(path).iterdir())
  return sorted(os.listdir(path))


def walk(root):
  """os.walk-style (dirpath, dirnames, filenames), top-down; pruning dirnames in place works."""
  if not is_remote(root):
    yield from os.walk(root)
    return
  for dirpath, dirnames, filenames in _epath(root).walk():
    yield os.fspath(dirpath), dirnames, filenames


def read_text(path) -> str:
  if is_remote(path):
    return _epath(path).read_text()
  with open(path) as f:
    return f.read()


def write_text(path, text: str) -> None:
  """Writes `text` atomically (see module docstring); creates missing parent directories."""
  makedirs(os.path.dirname(path) or ".")
  if is_remote(path):
    _epath(path).write_text(text)
    return
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def append_text(path, text: str) -> None:
  if is_remote(path):  # no append on object stores: rewrite the whole object
    write_text(path, (read_text(path) if exists(path) else "") + text)
    return
  with open(path, "a") as f:
    f.write(text)


def read_json(path):
  return json.loads(read_text(path))


def write_json(path, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def local_dir(path):
  """A local directory to write files for `path` into: `path` itself if local; for a remote
  path a temporary directory, copied to `path` (same relative names) when the block succeeds.
  For writers that only take local files (matplotlib, HTML templates)."""
  if not is_remote(path):
    os.makedirs(path, exist_ok=True)
    yield path
    return
  staging = tempfile.mkdtemp(prefix="pancake-upload-")
  try:
    yield staging
    for dirpath, _, filenames in os.walk(staging):
      for name in filenames:
        local = os.path.join(dirpath, name)
        remote = os.path.join(path, os.path.relpath(local, staging))
        makedirs(os.path.dirname(remote))
        _epath(remote).write_bytes(pathlib.Path(local).read_bytes())
  finally:
    shutil.rmtree(staging, ignore_errors=True)
