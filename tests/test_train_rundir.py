"""The run directory under a second writer, a torn file and a full disk (trainlib/rundir.py):
two train.py on one workdir, a killed holder's lock, a torn metrics.jsonl line, a damaged
status.json / provenance.json, an eval beside a training, a disk that fills during a save.

The tiny run of tests/train_testlib.loop_config (12 steps, checkpoints every 3) throughout; one
uninterrupted reference run in this process serves every comparison.
"""

import errno
import json
import logging  # absl logs through the standard logging module: caplog sees it
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from figures import make
from figures import rundir as figures_rundir
from tests.test_train_cli import REPO, _command, _env, _params
from tests.train_testlib import loop_config
from trainlib import fs, loop, metrics, rundir


def _rows(workdir):
  return [json.loads(line) for line in open(rundir.metrics_path(workdir)) if line.strip()]


def _keys(rows):
  return [(r["split"], r["step"]) for r in rows]


def _same_rows(got, want):
  """The rows of two runs agree in every (split, step) and every value but wall-clock ones."""
  clock = ("time", "tokens_per_sec", "mfu")
  strip = lambda rows: [{k: v for k, v in r.items() if k not in clock} for r in rows]
  assert strip(got) == strip(want)


@pytest.fixture(scope="module")
def reference(embedded_data_dir, tmp_path_factory):
  """The uninterrupted 12-step run (checkpoints 3, 6, 9, 12)."""
  workdir = str(tmp_path_factory.mktemp("reference") / "run")
  loop.train_and_evaluate(loop_config(embedded_data_dir), workdir)
  return workdir


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_torn_metrics_line_and_damaged_json_files_are_read_around_and_rebuilt(
    reference, embedded_data_dir, tmp_path, monkeypatch, caplog):
  workdir = str(tmp_path / "runs" / "run")
  config = loop_config(embedded_data_dir)
  with monkeypatch.context() as m:  # stopped at step 8 (checkpoint saved there), as by SIGTERM
    m.setattr(loop._Preemption, "reached", lambda self, step: step == 8)
    assert loop.train_and_evaluate(config, workdir).preempted
  torn = '{"split": "train", "step": 10'
  with open(rundir.metrics_path(workdir), "a") as f:
    f.write(torn)  # what a kill or a full disk leaves mid-append
  with open(rundir.status_path(workdir), "w") as f:
    f.write('{"state": "runn')
  with open(rundir.provenance_path(workdir), "w") as f:
    f.write("")

  caplog.set_level(logging.WARNING)
  run = figures_rundir.load_run(workdir)  # figures: every intact row, and the run incomplete
  assert [r["step"] for r in run.train_rows] == list(range(1, 9))
  assert not run.complete and run.provenance == {}
  make.make_all(str(tmp_path / "runs"), str(tmp_path / "out"), log=lambda *_: None, formats=())
  table = open(tmp_path / "out" / "runs" / "ablation_table.md").read()
  assert "incomplete" in table
  said = _warnings(caplog)
  assert any(f"dropped a torn last line of {len(torn)} bytes" in w for w in said), said
  assert any(rundir.status_path(workdir) in w and "not valid JSON" in w for w in said), said
  assert any(rundir.provenance_path(workdir) in w for w in said), said

  caplog.clear()
  result = loop.train_and_evaluate(config, workdir)  # resumes from 8, no traceback
  assert result.step == 12 and not result.already_finished
  assert any(f"dropped a torn last line of {len(torn)} bytes" in w for w in _warnings(caplog))
  _same_rows(_rows(workdir), _rows(reference))  # the later rows are the uninterrupted run's
  assert rundir.read_status(workdir)["state"] == "finished"  # rebuilt
  assert rundir.read_provenance(workdir)["config_hash"] == rundir.config_hash(config)
  assert not os.path.exists(rundir.lock_path(workdir))  # released


def test_a_killed_holders_lock_is_taken_over_and_a_live_one_refused(tmp_path, caplog):
  workdir = str(tmp_path)
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from trainlib import rundir; "
       "rundir.acquire_writer_lock(sys.argv[1]); print('held', flush=True); time.sleep(600)",
       workdir], cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(rundir.LockHeld) as refused:
      rundir.acquire_writer_lock(workdir)
    assert f"pid {holder.pid} on host" in str(refused.value)
    assert "\n" not in str(refused.value)
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  caplog.set_level(logging.WARNING)
  with rundir.acquire_writer_lock(workdir) as lock:  # the kernel dropped the dead holder's lock
    assert json.load(open(lock.path))["pid"] == os.getpid()
  assert any("taking over" in w and f"pid {holder.pid}" in w for w in _warnings(caplog))
  assert not os.path.exists(rundir.lock_path(workdir))  # released


def _full_disk(*args, **kwargs):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_eval_reads_and_writes_beside_a_running_training(reference, embedded_data_dir, tmp_path,
                                                          monkeypatch):
  from evals import runner
  workdir = str(tmp_path / "run")
  shutil.copytree(reference, workdir)
  config = loop_config(embedded_data_dir)
  with rundir.acquire_writer_lock(workdir):  # as a training holds it
    records = runner.run(config, workdir, "heldout", echo=lambda *_: None)
    assert os.path.exists(rundir.lock_path(workdir))  # eval neither took nor touched it
  assert records["heldout"]["checkpoint_step"] == 12
  assert rundir.read_record(rundir.eval_result_path(workdir, "heldout"))["metrics"]

  monkeypatch.setattr(fs, "write_text", _full_disk)  # the disk is full when the result is due
  with pytest.raises(rundir.WriteFailed) as failed:
    runner.run(config, workdir, "heldout", echo=lambda *_: None)
  assert str(failed.value).startswith(
      f"cannot write {rundir.eval_result_path(workdir, 'heldout')}: no space left on device (")
  assert "MiB free there" in str(failed.value) and "\n" not in str(failed.value)


def test_a_metrics_row_on_a_full_disk_names_the_file_and_the_free_space(tmp_path, monkeypatch):
  writer = metrics.MetricsWriter(str(tmp_path), enabled=True)
  monkeypatch.setattr(fs.GrowingFile, "append", _full_disk)
  with pytest.raises(rundir.WriteFailed, match=(
      f"^cannot write {rundir.metrics_path(str(tmp_path))}: no space left on device "
      r"\([0-9.]+ MiB free there\)$")):
    writer.write({"split": "train", "step": 1, "loss": 2.0})
  writer.close()


def _error_lines(stderr):
  return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.slow
def test_a_second_train_py_on_a_locked_workdir_exits_2_naming_the_first(
    reference, embedded_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  log = open(tmp_path / "first.log", "w")
  first = subprocess.Popen(_command(workdir, embedded_data_dir), cwd=REPO, env=_env(),
                           stdout=log, stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 300
  while not os.path.exists(rundir.lock_path(workdir)):
    assert first.poll() is None and time.monotonic() < deadline, open(tmp_path / "first.log").read()
    time.sleep(0.05)
  second = subprocess.run(_command(workdir, embedded_data_dir), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
  assert first.wait(timeout=600) == 0, open(tmp_path / "first.log").read()[-3000:]
  errors = _error_lines(second.stderr)
  assert second.returncode == 2, second.stderr[-3000:]
  assert len(errors) == 1 and f"pid {first.pid} on host" in errors[0], second.stderr[-3000:]
  assert "Traceback" not in second.stderr
  keys = _keys(_rows(workdir))
  assert len(keys) == len(set(keys)) and sorted(keys) == sorted(_keys(_rows(reference)))
  _same_rows(_rows(workdir), _rows(reference))
  assert not os.path.exists(rundir.lock_path(workdir))


@pytest.mark.slow
def test_a_full_disk_during_a_save_is_one_line_and_the_rerun_ends_bitwise_equal(
    reference, embedded_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  flags = _command(workdir, embedded_data_dir)[2:]
  full = subprocess.run([sys.executable, os.path.join("tests", "full_disk_train.py"), *flags],
                        cwd=REPO, env=dict(_env(), PANCAKE_FULL_AT="9"), capture_output=True,
                        text=True, timeout=600)
  assert full.returncode == 1, full.stderr[-3000:]
  errors = _error_lines(full.stderr)
  assert len(errors) == 1, full.stderr[-3000:]
  checkpoints = rundir.checkpoints_dir(workdir)
  assert (f"cannot write {checkpoints}/9.orbax-checkpoint-tmp/" in errors[0]
          and "no space left on device" in errors[0] and "MiB free there" in errors[0]
          and f"the last intact checkpoint is step 6 ({checkpoints}/6)" in errors[0]), errors[0]
  assert "Traceback" not in full.stderr
  status = rundir.read_status(workdir)
  assert status["state"] == "failed" and status["error"] == errors[0][len("error: "):]
  assert rundir.partial_checkpoints(workdir) == [f"{checkpoints}/9.orbax-checkpoint-tmp"]

  again = subprocess.run(_command(workdir, embedded_data_dir), cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=600)  # space freed
  assert again.returncode == 0, again.stderr[-3000:]
  assert "removing" in again.stderr and rundir.partial_checkpoints(workdir) == []
  assert rundir.checkpoint_steps(workdir) == [3, 6, 9, 12]
  final, step = _params(workdir)
  expected, _ = _params(reference)
  assert step == 12
  for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(a, b)
  _same_rows(_rows(workdir), _rows(reference))
