"""One owner for the run directory's layout: outside trainlib/rundir.py (and tests/), no string
literal spells a run-directory file name; code asks trainlib.rundir for paths instead.

Docstrings may name the files (they document them). A Hugging Face model directory has a
config.json of its own: interop/hf_config.py and the benches that write one are allowed that
name, nothing else.
"""

import ast
import os
import re

from trainlib import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWNER = os.path.join("trainlib", "rundir.py")
SKIP = (".git", ".venv", ".cache", "__pycache__", "runs", "results", "shared", "tests")
# Not a run directory's config.json: that of a Hugging Face model directory.
HF_CONFIG_JSON = {os.path.join("interop", "hf_config.py"), os.path.join("interop", "hf.py"),
                  os.path.join("bench", "hf_import_memory.py")}


def _library_files():
  for dirpath, dirnames, filenames in os.walk(REPO):
    dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith(".")]
    for name in filenames:
      if name.endswith(".py"):
        path = os.path.join(dirpath, name)
        if os.path.relpath(path, REPO) != OWNER:
          yield path


def _docstrings(tree):
  return {id(node.value) for node in ast.walk(tree)
          if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def spelled(value):
  """Run-directory names a string spells: as a path part ("a/status.json"), or, for names with
  a dot, as a word of a message ("status.json says ...")."""
  parts = set(value.split("/")) | set(re.findall(r"[\w\-]+(?:\.[\w\-]+)+", value))
  return sorted(n for n in rundir.FILE_NAMES if n in parts or (n.startswith(".") and n in value))


def _spelled_names(path):
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  docs = _docstrings(tree)
  rel = os.path.relpath(path, REPO)
  for node in ast.walk(tree):
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
      for name in spelled(node.value):
        if not (name == rundir.CONFIG and rel in HF_CONFIG_JSON):
          yield node.lineno, name


def test_the_scan_sees_the_library():
  files = {os.path.relpath(p, REPO) for p in _library_files()}
  assert {"train.py", "eval.py", "trainlib/loop.py", "trainlib/metrics.py", "evals/runner.py",
          "interop/hf.py", "figures/rundir.py", "launch/sweep.py"} <= files
  assert OWNER not in files and not any(f.startswith("tests") for f in files)


def test_no_run_directory_file_name_outside_its_owner():
  hits = [f"{os.path.relpath(path, REPO)}:{line}: {name!r}"
          for path in _library_files() for line, name in _spelled_names(path)]
  assert not hits, ("run-directory file names spelled outside trainlib/rundir.py (ask "
                    "trainlib.rundir for the path):\n" + "\n".join(hits))


def test_the_scan_finds_a_name(tmp_path):
  planted = tmp_path / "planted.py"
  planted.write_text('"""Writes status.json (a docstring may say so)."""\n'
                     'import os\n'
                     'p = os.path.join(w, "checkpoints")\n'
                     'q = f"{w}/metrics.jsonl"\n'
                     'log(f"{head}: provenance.json is old")\n'
                     'r = d + ".orbax-checkpoint-tmp"\n'
                     'ok = "the checkpoints are fine"\n')
  assert sorted(_spelled_names(str(planted))) == [
      (3, "checkpoints"), (4, "metrics.jsonl"), (5, "provenance.json"),
      (6, ".orbax-checkpoint-tmp")]
