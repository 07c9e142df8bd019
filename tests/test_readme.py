"""The README's set-up commands are what CI runs: `.ci/run` holds each, character for character."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
  with open(os.path.join(REPO, name)) as f:
    return f.read()


def readme_setup_commands():
  """The first line of the README's first two ```bash blocks: train, then test."""
  blocks = re.findall(r"^```bash\n(.*?)^```", _read("README.md"), re.S | re.M)
  return [block.splitlines()[0] for block in blocks[:2]]


def test_ci_runs_the_readme_set_up_commands_verbatim():
  train, test = readme_setup_commands()
  assert "train.py --config configs/quickstart.py --workdir runs/quickstart" in train
  assert "-m pytest tests" in test
  ci_lines = _read(".ci/run").splitlines()
  assert train in ci_lines and test in ci_lines
  # and nothing else in .ci/run creates the venv: its set-up is the README's, not a variant
  venv_lines = [line for line in ci_lines if line.startswith("python3 -m venv")]
  assert sorted(venv_lines) == sorted([train, test])
  # the tests run first, then the first command (whose run the checks after it read)
  assert ci_lines.index(test) < ci_lines.index(train)


def test_every_requirements_file_the_commands_name_exists_and_pins_exact_versions():
  for command in readme_setup_commands():
    for name in re.findall(r"-r (\S+)", command):
      for line in _read(name).splitlines():
        line = line.split("#")[0].strip()
        if not line:
          continue
        if line.startswith(("-r ", "-c ")):
          assert os.path.exists(os.path.join(REPO, line.split()[1])), (name, line)
        else:
          assert "==" in line, f"{name}: {line!r} is not pinned to an exact version"
