"""train.py as users run it: bad input exits 2 before compiling; kill -9 / SIGTERM and resume give
the uninterrupted run's parameters bitwise; 2 processes x 4 devices match 1 process x 8 devices.

Subprocesses share the persistent compile cache of the test session, and one uninterrupted
reference run (in this process, same 8-device program) serves both comparisons.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from launch import local
from tests.train_testlib import loop_config, tree_bytes
from trainlib import fs, loop
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib
from trainlib.checkpoint import restore_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("tests", "train_cli_config.py")


def _env():
  env = dict(os.environ)
  env["JAX_COMPILATION_CACHE_DIR"] = str(jax.config.jax_compilation_cache_dir)
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
  return env


def _command(workdir, data_dir, *overrides):
  return [sys.executable, "train.py", "--config", CONFIG, "--workdir", workdir,
          f"--config.data.data_dir={data_dir}", *overrides]


def _train_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r["split"] == "train"]


def _params(workdir, step=None):
  config = loop_config()
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, jax.devices()[:1]))
  params, got = restore_params(os.path.join(workdir, "checkpoints"), setup.abstract_state.params, step)
  return jax.tree.map(np.asarray, params), got


@pytest.fixture(scope="module")
def reference(embedded_data_dir, tmp_path_factory):
  """The uninterrupted 12-step run on 1 process x 8 devices."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  loop.train_and_evaluate(loop_config(embedded_data_dir), workdir)
  return workdir


@pytest.mark.parametrize("override, message", [
    ("--config.train.global_batch_size=12", "not divisible by the data-parallel degree 8"),
    ("--config.mesh.data=16", "needs 16 devices but 8 exist"),
    ("--config.train.nonexistent_field=1", "unknown config key 'nonexistent_field'"),
    ("--config.data.seq_len=64", "longer than the position table"),
])
def test_bad_input_exits_2_with_one_line_before_compiling(tmp_path, override, message):
  workdir = str(tmp_path / "run")
  proc = subprocess.run(_command(workdir, str(tmp_path), override), cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=300)
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
  assert not os.path.exists(workdir)  # failed before the run directory (or a compile) existed


@pytest.mark.parametrize("workdir, message", [
    ("{tmp}/a_file", "exists and is not a directory"),
    ("{tmp}/a_file/run", "is a file, not a directory"),
    ("/proc/pancake_run", "is not writable"),
])
def test_a_workdir_that_cannot_hold_a_run_exits_2_naming_it(tmp_path, workdir, message):
  (tmp_path / "a_file").write_text("not a directory\n")
  workdir = workdir.format(tmp=tmp_path)
  proc = subprocess.run(_command(workdir, str(tmp_path)), cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=300)
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(errors) == 1 and message in errors[0] and workdir in errors[0], proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert (tmp_path / "a_file").read_text() == "not a directory\n"


@pytest.mark.slow
def test_relative_paths_a_rerun_that_changes_nothing_and_eval(embedded_data_dir, tmp_path):
  """As the README's first command runs: relative --workdir (orbax itself refuses relative
  checkpoint paths) and a relative data_dir, from another directory; then the same command
  again, then eval.py on the same relative workdir."""
  here = tmp_path / "here"
  here.mkdir()
  data_dir = os.path.relpath(embedded_data_dir, here)
  command = [sys.executable, os.path.join(REPO, "train.py"), "--config",
             os.path.join(REPO, CONFIG), "--workdir", "runs/relative",
             f"--config.data.data_dir={data_dir}"]
  first = subprocess.run(command, cwd=here, env=_env(), capture_output=True, text=True,
                         timeout=600)
  assert first.returncode == 0, first.stderr[-3000:]
  workdir = here / "runs" / "relative"
  assert fs.read_json(str(workdir / "status.json"))["state"] == "finished"
  assert sorted(os.listdir(workdir / "checkpoints")) == ["12", "3", "6", "9"]
  assert fs.read_json(str(workdir / "config.json"))["data"]["data_dir"] == embedded_data_dir
  before = tree_bytes(workdir)

  again = subprocess.run(command, cwd=here, env=_env(), capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "this run finished at step 12" in again.stdout
  assert tree_bytes(workdir) == before

  evaluated = subprocess.run(
      [sys.executable, os.path.join(REPO, "eval.py")] + command[2:] + ["--suite", "heldout"],
      cwd=here, env=_env(), capture_output=True, text=True, timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  record = fs.read_json(str(workdir / "eval" / "heldout.json"))
  assert record["checkpoint_step"] == 12 and record["metrics"]["loss"] > 0


def _wait_for_step(proc, workdir, step, timeout=600):
  deadline = time.monotonic() + timeout
  path = os.path.join(workdir, "metrics.jsonl")
  while time.monotonic() < deadline:
    assert proc.poll() is None, f"run exited early with {proc.returncode}"
    if os.path.exists(path):
      with open(path) as f:
        if any(json.loads(line)["step"] >= step for line in f if line.strip()):
          return
    time.sleep(0.05)
  raise TimeoutError(f"step {step} not reached")


def _wait_for_status(proc, workdir, timeout=600):
  """status.json, once the run in `workdir` has written it (it is written whole, by rename)."""
  deadline = time.monotonic() + timeout
  path = os.path.join(workdir, "status.json")
  while time.monotonic() < deadline:
    assert proc.poll() is None, f"run exited early with {proc.returncode}"
    if os.path.exists(path):
      return fs.read_json(path)
    time.sleep(0.01)
  raise TimeoutError(f"{path} not written")


@pytest.mark.slow
def test_kill_9_then_sigterm_then_resume_equals_the_uninterrupted_run(reference, embedded_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  command = _command(workdir, embedded_data_dir)
  kill_at = random.randrange(2, 9)       # printed by pytest on failure
  log = open(tmp_path / "log.txt", "w")
  proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
  _wait_for_step(proc, workdir, kill_at)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  assert fs.read_json(os.path.join(workdir, "status.json"))["state"] == "running"  # died

  # The resumed run writes status.json once it has restored its checkpoint, after its SIGTERM
  # handler is installed and before its first step. A signal sent then always lands with steps
  # left to run (waiting for a late step raced the run's end on a slow machine: it exited 0).
  os.remove(os.path.join(workdir, "status.json"))
  proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
  restored = _wait_for_status(proc, workdir)["step"]
  assert restored < 12
  proc.send_signal(signal.SIGTERM)     # preemption: save at the next step boundary, exit 143
  assert proc.wait(timeout=300) == 143, open(tmp_path / "log.txt").read()[-3000:]
  status = fs.read_json(os.path.join(workdir, "status.json"))
  assert status["state"] == "running" and "preempted" in status["error"]
  preempted_params, saved_step = _params(workdir)
  assert saved_step == status["step"] == restored + 1, (restored, saved_step, status)

  proc = subprocess.run(command, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT, timeout=600)
  assert proc.returncode == 0, open(tmp_path / "log.txt").read()[-3000:]
  assert fs.read_json(os.path.join(workdir, "status.json"))["state"] == "finished"
  final, step = _params(workdir)
  expected, _ = _params(reference)
  assert step == 12
  for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(a, b, err_msg=f"killed at step {kill_at}")
  # One row per step, each with exactly the uninterrupted run's loss.
  got, want = _train_rows(workdir), _train_rows(reference)
  assert [r["step"] for r in got] == list(range(1, 13))
  assert [r["loss"] for r in got] == [r["loss"] for r in want], f"killed at step {kill_at}"


@pytest.mark.slow
def test_two_processes_of_four_devices_match_one_process_of_eight(reference, embedded_data_dir, tmp_path):
  workdir = str(tmp_path / "multi")
  results = local.run_local(_command(workdir, embedded_data_dir)[1:], num_processes=2,
                            devices_per_process=4, env=_env(), cwd=REPO, timeout=900, echo=False)
  assert [r.returncode for r in results] == [0, 0], results[0].output[-3000:] + results[1].output[-3000:]
  prov = fs.read_json(os.path.join(workdir, "provenance.json"))
  assert (prov["process_count"], prov["num_devices"]) == (2, 8)
  got, want = _train_rows(workdir), _train_rows(reference)
  assert [r["step"] for r in got] == list(range(1, 13))  # process 0 alone wrote the rows
  np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in want], rtol=2e-5)
  final, step = _params(workdir)  # written jointly by both processes, readable as one
  expected, _ = _params(reference)
  assert step == 12
  for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
