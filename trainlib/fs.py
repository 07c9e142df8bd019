"""Run-directory files on local disk or in an object store (gs://, s3://), through etils.epath.

On a pod every host must see one run directory, so --workdir is normally gs://bucket/...: orbax
writes the checkpoints there itself, and this module carries the rest of the run directory
(config/provenance/status JSON, metrics.jsonl, eval results and views) and the readers in
figures/ and launch/. Paths stay plain strings (os.path.join works on "gs://b/x"); only the
operations differ.

Writes are atomic on both: locally a temporary file is renamed into place; an object store
publishes an object only when its upload completes, so readers see the old or the new whole
file. Object stores cannot append (gcsfs turns "a" into an overwrite): `GrowingFile` rewrites
the object from a copy it keeps in memory (metrics.jsonl is small), so it never reads it back.
Remote paths need gcsfs (pinned in requirements.txt) and the usual Google credentials.
"""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

from configs.paths import is_remote  # noqa: F401  (one definition; fs.is_remote for callers)


def _epath(path):
  from etils import epath  # late: start-up time (orbax's path library; figures/ read runs without it)
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
  if is_remote(path):  # objects have no parent directories to create
    _epath(path).write_text(text)
    return
  makedirs(os.path.dirname(path) or ".")
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


class GrowingFile:
  """A file written a row at a time (metrics.jsonl), by one writer. Locally each row is appended;
  on an object store the whole object is rewritten from the text kept here, read once."""

  def __init__(self, path):
    self.path = path
    self._text = None  # object stores: the object's content, once read

  def append(self, text: str) -> None:
    if not is_remote(self.path):
      with open(self.path, "a") as f:
        f.write(text)
      return
    if self._text is None:
      self._text = read_text(self.path) if exists(self.path) else ""
    self._text += text
    write_text(self.path, self._text)

  def replace(self, text: str) -> None:
    """The whole content (atomically), e.g. the rows kept on resume."""
    write_text(self.path, text)
    self._text = text if is_remote(self.path) else None


def remove(path) -> None:
  if is_remote(path):
    _epath(path).unlink()
  else:
    os.remove(path)


def rmtree(path) -> None:
  if is_remote(path):
    _epath(path).rmtree()
  else:
    shutil.rmtree(path)


def create_exclusive(path, text: str) -> None:
  """Writes `text` to `path` only if nothing is there (FileExistsError otherwise), in one step
  no other writer can interleave with: locally O_EXCL; on an object store fsspec's
  `pipe_file(mode="create")`, which gcsfs sends as a GCS upload with `ifGenerationMatch=0`."""
  if is_remote(path):
    import fsspec  # late: start-up time (object stores only)
    filesystem, key = fsspec.core.url_to_fs(path)
    filesystem.pipe_file(key, text.encode(), mode="create")
    return
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  with os.fdopen(fd, "w") as f:
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
