"""Local paths made absolute once, at the entry point; object-store URLs (gs://...) left alone.

Why at the entry point: orbax refuses relative checkpoint paths (in its background save thread,
where the error cannot stop the run), and subprocesses (sweeps, local multi-process launches)
may run in another directory. So train.py, eval.py, launch.sweep and figures.make turn every
local path they are given into an absolute one before anything else reads it, and the library
below them can assume absolute paths.

`CONFIG_PATH_FIELDS` is the one list of config fields that hold paths; a new path field goes here.
"""

import os
import tempfile

from configs.errors import ConfigError

# config fields holding local paths or object-store URLs ("" = the field's default location).
# data.text_files is a comma-separated list of files or globs: each item is made absolute.
CONFIG_PATH_FIELDS = ("data.data_dir", "data.cache_dir", "data.text_files", "data.vocab_file",
                      "data.merges_file", "data.tokenizer_file", "init.from_hf",
                      "init.from_run", "optim.cooldown_from_run")
_LISTS = ("data.text_files",)


def is_remote(path) -> bool:
  return "://" in str(path)


def absolute(path: str) -> str:
  """`path` made absolute (with ~ expanded), or unchanged if empty or an object-store URL."""
  if not path or is_remote(path):
    return path
  return os.path.abspath(os.path.expanduser(path))


def absolute_list(paths: str) -> str:
  """A comma-separated list of paths or globs, each made absolute."""
  return ",".join(absolute(p.strip()) for p in paths.split(",") if p.strip())


def absolutize_config(config) -> None:
  """Makes every field of CONFIG_PATH_FIELDS absolute, in place (a locked ConfigDict is fine)."""
  for dotted in CONFIG_PATH_FIELDS:
    section, name = dotted.rsplit(".", 1)
    node = config
    for part in section.split("."):
      node = node[part]
    value = node[name]
    if isinstance(value, str) and value:
      node[name] = absolute_list(value) if dotted in _LISTS else absolute(value)


def check_writable_dir(path: str, flag: str = "--workdir") -> None:
  """ConfigError unless `path` is, or can be created as, a writable directory.

  Creates nothing: it walks up to the nearest existing ancestor, which must be a directory that
  a file can be created in (tried for real, then removed, since os.access says yes to root even
  on a read-only file system). Object-store URLs are not checked here (orbax checks on write).
  """
  if is_remote(path):
    return
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f"{flag}={path} exists and is not a directory; give a directory path "
                      "(created if missing, resumed if it holds a run)")
  existing = path
  while not os.path.exists(existing):
    parent = os.path.dirname(existing)
    if parent == existing:
      break
    existing = parent
  if not os.path.isdir(existing):
    raise ConfigError(f"{flag}={path} cannot be created: {existing} is a file, not a directory")
  try:
    fd, probe = tempfile.mkstemp(dir=existing, prefix=".pancake-write-probe-")
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"{flag}={path} is not writable ({existing}: {e.strerror or e}); "
                      "give a directory you can write to") from None
