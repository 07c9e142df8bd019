"""docs/ARCHITECTURE.md names only things that exist: every dotted pancake name in backticks
imports (module, then attribute), and every repository path in backticks is there."""

import importlib
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("configs", "models", "objectives", "pipeline", "trainlib", "evals", "launch", "bench",
            "figures", "interop")
FOLDERS = PACKAGES + ("docs", "tests", "results")


def _spans():
  with open(os.path.join(REPO, "docs", "ARCHITECTURE.md")) as f:
    return re.findall(r"`([^`\n]+)`", f.read())


def _dotted_names():
  names = set()
  for span in _spans():
    m = re.match(r"^((?:%s)(?:\.\w+)+)(?:\(.*\))?$" % "|".join(PACKAGES), span.split(" ")[0])
    if m:
      names.add(m.group(1))
  return sorted(names)


def _repo_paths():
  paths = set()
  for span in _spans():
    if re.match(r"^(?:%s)/[\w./]*$" % "|".join(FOLDERS), span):
      paths.add(span)
  return sorted(paths)


def _resolve(name):
  parts = name.split(".")
  for cut in range(len(parts), 0, -1):
    try:
      obj = importlib.import_module(".".join(parts[:cut]))
    except ModuleNotFoundError:
      continue
    for attr in parts[cut:]:
      obj = getattr(obj, attr)  # AttributeError: the doc names something that does not exist
    return obj
  raise ModuleNotFoundError(name)


def test_the_doc_names_enough_to_be_checked():
  assert len(_dotted_names()) > 30 and len(_repo_paths()) > 8


@pytest.mark.parametrize("name", _dotted_names())
def test_every_named_module_and_function_exists(name):
  assert _resolve(name) is not None


@pytest.mark.parametrize("path", _repo_paths())
def test_every_named_file_exists(path):
  assert os.path.exists(os.path.join(REPO, path)), path


def test_the_check_can_fail():
  with pytest.raises(AttributeError):
    _resolve("trainlib.rundir.read_json")  # what the doc once named, and no longer exists
