"""A config file that cannot give a config (cli.py load_config_file): a syntax error, an
exception inside get_config(), a missing file, a file without get_config. Every entry point
(train.py, eval.py, the `python -m` tools) exits 2 with one line naming the file, before JAX
starts."""

import os
import subprocess
import sys

import pytest

import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "syntax": ("def get_config(:\n  pass\n", "line 1: syntax error"),
    "raises": ("def get_config():\n  x = 1\n  raise ValueError('no such preset')\n",
               "line 3: get_config() raised ValueError: no such preset"),
    "missing": (None, "does not exist"),
    "no_get_config": ("CONFIG = {}\n", "defines no get_config()"),
}


def _config_file(tmp_path, case):
  source, _ = CASES[case]
  path = tmp_path / f"{case}.py"
  if source is not None:
    path.write_text(source)
  return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_loader_names_the_file_in_one_line(tmp_path, case):
  path = _config_file(tmp_path, case)
  with pytest.raises(cli.ConfigFileError) as raised:
    cli.load_config_file(path, "test_config_files_module")
  message = str(raised.value)
  assert message.startswith(f"config file {path}") and CASES[case][1] in message, message
  assert "\n" not in message


def test_a_good_file_and_its_argument_load(tmp_path):
  path = tmp_path / "good.py"
  path.write_text("def get_config(size='s'):\n  return {'size': size}\n")
  assert cli.load_config_file(str(path), "test_config_files_module") == {"size": "s"}
  assert cli.load_config_file(f"{path}:xl", "test_config_files_module") == {"size": "xl"}


def _run(args, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_py_exits_2_with_one_line(tmp_path, case):
  path = _config_file(tmp_path, case)
  proc = _run(["train.py", "--config", path, "--workdir", str(tmp_path / "run")], tmp_path)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith(f"error: config file {path}") and CASES[case][1] in lines[0]
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("entry, case", [
    (["eval.py", "--workdir", "{tmp}/run"], "syntax"),
    (["-m", "models.summary"], "raises"),
    (["-m", "interop.hf", "export", "--workdir", "{tmp}/run", "--out", "{tmp}/out"], "missing"),
    (["-m", "pipeline.inspect"], "no_get_config"),
])
def test_every_entry_point_exits_2_with_one_line(tmp_path, entry, case):
  path = _config_file(tmp_path, case)
  args = [a.format(tmp=tmp_path) for a in entry] + ["--config", path]
  proc = _run(args, tmp_path)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith(f"error: config file {path}") and CASES[case][1] in lines[0]
