"""Loading a config file by path ("file.py" or "file.py:arg"), with one-line errors.

The entry points' flag parser (cli.py) and library code that is handed a config path (the
lm-evaluation-harness model built from lm_eval's model_args, evals.harness_lm) load configs
through `load_config_file`: a missing file, a syntax error (with its line), an exception while
loading it or inside get_config() (with the config file's line), or a file without get_config
each name the file.
"""
import importlib.machinery
import importlib.util
import os
import sys
import traceback


class ConfigFileError(Exception):
  """A config file that cannot give a config. Not a ValueError: absl would wrap that in a
  multi-line flag error."""


def load_config_file(spec, module_name="config_config"):
  """The config of `spec` ("file.py" or "file.py:arg", as ml_collections reads it: arg goes
  to get_config). Raises ConfigFileError with one line naming the file."""
  path, colon, arg = spec.partition(":")
  args = (arg,) if colon else ()
  if not path:
    raise ConfigFileError("--config is empty; give a config file, e.g. configs/quickstart.py")
  if not os.path.exists(path):
    raise ConfigFileError(f"config file {path} does not exist (relative paths are from "
                          f"{os.getcwd()})")
  if not os.path.isfile(path):
    raise ConfigFileError(f"config file {path} is not a file")
  loader = importlib.machinery.SourceFileLoader(module_name, path)
  module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader))
  sys.modules[module_name] = module  # as ml_collections' loader does
  try:
    loader.exec_module(module)
  except SyntaxError as e:
    if os.path.abspath(e.filename or "") == os.path.abspath(path):
      raise ConfigFileError(f"config file {path} line {e.lineno}: syntax error: {e.msg}") from None
    raise ConfigFileError(f"config file {path}: loading it raised SyntaxError in {e.filename} "
                          f"line {e.lineno}: {e.msg}") from None
  except Exception as e:  # noqa: BLE001  (whatever the file's own code raises)
    raise ConfigFileError(f"config file {path}{_line_in(e, path)}: loading it raised "
                          f"{_one_line(e)}") from None
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise ConfigFileError(f"config file {path} defines no get_config(); a config file is a "
                          "Python file whose get_config() returns the config (e.g. "
                          "configs/quickstart.py)")
  try:
    return get_config(*args)
  except Exception as e:  # noqa: BLE001
    call = f"get_config({arg!r})" if colon else "get_config()"
    raise ConfigFileError(f"config file {path}{_line_in(e, path)}: {call} raised "
                          f"{_one_line(e)}") from None


def _line_in(error, path):
  """" line N": the last line of `path` the error passed through, or ""."""
  lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
           if os.path.abspath(frame.filename) == os.path.abspath(path)]
  return f" line {lines[-1]}" if lines else ""


def _one_line(error):
  return f"{type(error).__name__}: {' '.join(str(error).split())}"


