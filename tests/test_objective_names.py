"""No library code names an objective: outside objectives/, configs/ and tests/, no string literal
is an objective's name (they read objectives' declarations through the registry instead)."""

import ast
import os

import objectives

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where objectives may be named: their own modules, the configs that choose one, and tests.
ALLOWED = ("objectives", "configs", "tests")
SKIP = (".git", ".venv", ".cache", "__pycache__", "runs", "results", "shared")
NAMES = set(objectives.NAMES) | {"mlm_nsp", "mlm_full_sentences", "mlm", "causal", "prefix_lm",
                                 "gpt_bert"}


def _library_files():
  for dirpath, dirnames, filenames in os.walk(REPO):
    rel = os.path.relpath(dirpath, REPO)
    top = rel.split(os.sep)[0]
    if rel != "." and (top in ALLOWED or top in SKIP or top.startswith(".")):
      dirnames[:] = []
      continue
    dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith(".")
                   and not (rel == "." and d in ALLOWED)]
    for name in filenames:
      if name.endswith(".py"):
        yield os.path.join(dirpath, name)


def _named_objectives(path):
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
      yield node.lineno, node.value


def test_the_scan_sees_the_library():
  files = {os.path.relpath(p, REPO) for p in _library_files()}
  assert {"train.py", "pipeline/pipeline.py", "models/counting.py", "trainlib/loop.py",
          "evals/runner.py", "interop/hf.py", "bench/train_step.py"} <= files
  assert not any(f.startswith(ALLOWED) for f in files)


def test_no_objective_name_outside_objectives_and_configs():
  hits = [f"{os.path.relpath(path, REPO)}:{line}: {value!r}"
          for path in _library_files() for line, value in _named_objectives(path)]
  assert not hits, "objective names in library code (read them from objectives/):\n" + \
      "\n".join(hits)


def test_the_scan_finds_a_name(tmp_path):
  planted = tmp_path / "planted.py"
  planted.write_text('x = 1\nif name == "causal":\n  pass\n')
  assert list(_named_objectives(str(planted))) == [(2, "causal")]
