"""Run directories on gs:// (trainlib/fs.py): the writers of train.py / eval.py and the readers of
figures/ on an in-memory stand-in for GCS that, like gcsfs, turns an append into an overwrite.

Checkpoints are not covered here: orbax writes them through tensorstore's own GCS driver, which
this offline machine cannot reach.
"""
import importlib
import json
import logging
import os
import subprocess
import sys

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from configs.base import get_config
from figures import rundir as figures_rundir
from trainlib import fs, metrics, rundir

ROOT = "gs://bucket/runs"


class FakeGCS(MemoryFileSystem):
  """fsspec's memory filesystem under gs:// (own store). Like gcsfs, it opens a file for append
  as a fresh write (GCS objects cannot be appended to), so an append would lose the rows."""
  protocol = ("gs", "gcs")
  store = {}
  pseudo_dirs = [""]

  def _open(self, path, mode="rb", **kwargs):
    return super()._open(path, mode.replace("a", "w"), **kwargs)


@pytest.fixture
def gcs(monkeypatch):
  from etils.epath import backend
  FakeGCS.store.clear()
  FakeGCS.pseudo_dirs[:] = [""]
  registry = importlib.import_module("fsspec.registry")._registry  # (fsspec.registry is a view)
  for name in ("gs", "gcs"):
    monkeypatch.setitem(registry, name, FakeGCS)  # undone after the test
  backend.fsspec_backend._get_filesystem.cache_clear()  # epath caches the filesystem per scheme
  yield FakeGCS.store
  backend.fsspec_backend._get_filesystem.cache_clear()


def test_remote_paths_really_use_the_object_store(gcs):
  fs.write_json(f"{ROOT}/a/x.json", {"k": 1})
  assert any(key.endswith("runs/a/x.json") for key in gcs)
  assert not os.path.exists("gs:")  # nothing went to a local folder named "gs:"
  assert fs.read_json(f"{ROOT}/a/x.json") == {"k": 1}
  assert fs.exists(f"{ROOT}/a/x.json") and not fs.exists(f"{ROOT}/a/y.json")
  assert fs.isdir(f"{ROOT}/a") and not fs.isdir(f"{ROOT}/b")
  assert fs.listdir(f"{ROOT}/a") == ["x.json"] and fs.listdir(f"{ROOT}/b") == []


def test_append_rewrites_on_remote_and_appends_locally(gcs, tmp_path):
  for path in (f"{ROOT}/m.jsonl", str(tmp_path / "m.jsonl")):
    grown = fs.GrowingFile(path)
    grown.append("1\n")
    grown.append("2\n")
    assert fs.read_text(path) == "1\n2\n", path
  assert sorted(os.listdir(tmp_path)) == ["m.jsonl"]  # no temporary file left behind


def test_local_write_is_atomic_when_the_writer_fails(tmp_path):
  path = str(tmp_path / "status.json")
  fs.write_json(path, {"state": "running"})
  with pytest.raises(TypeError):
    fs.write_json(path, {"state": object()})  # not JSON: fails before anything is replaced
  assert fs.read_json(path) == {"state": "running"}
  assert os.listdir(tmp_path) == ["status.json"]


class _TensorBoardStub:
  """tensorboardX would open a real GCS connection for gs://; record the calls instead."""
  logdirs = []

  def __init__(self, logdir):
    self.logdirs.append(logdir)
    self.scalars = []

  def add_scalar(self, tag, value, step):
    self.scalars.append((tag, value, step))

  def flush(self):
    pass

  def close(self):
    pass


def test_a_run_directory_on_gcs_is_written_and_read_back(gcs, monkeypatch):
  import tensorboardX
  monkeypatch.setattr(tensorboardX, "SummaryWriter", _TensorBoardStub)
  workdir = f"{ROOT}/gpt/seed0"
  config = get_config()
  config.name, config.train.num_steps = "gpt", 20
  fs.makedirs(workdir)
  rundir.write_config(workdir, config)
  rundir.write_provenance(workdir, config, data_fingerprint="abc", mesh={"data": 1})
  writer = metrics.MetricsWriter(workdir, enabled=True)
  for step in (10, 20):
    writer.write({"step": step, "split": "train", "loss": 5.0 - step / 10})
  writer.drop_after(10)  # a resume from step 10: step 20 is produced again
  writer.write({"step": 20, "split": "train", "loss": 2.5})
  writer.write({"step": 20, "split": "eval", "loss": 2.75})
  writer.close()
  rundir.write_status(workdir, "finished", 20, 20)
  fs.write_json(f"{workdir}/eval/heldout.json",
                {"suite": "heldout", "checkpoint_step": 20, "metrics": {"loss": 2.7}})
  assert _TensorBoardStub.logdirs[-1] == f"{workdir}/tb"

  run = figures_rundir.load_run(workdir)
  assert run.complete and run.name == "gpt" and run.step == 20
  assert [(r["step"], r["loss"]) for r in run.train_rows] == [(10, 4.0), (20, 2.5)]
  assert [r["loss"] for r in run.eval_rows] == [2.75]
  assert run.evals["heldout"]["metrics"] == {"loss": 2.7}
  assert run.provenance["data_fingerprint"] == "abc"
  assert run.provenance["config_hash"] == rundir.config_hash(config)
  assert json.loads(fs.read_text(f"{workdir}/config.json"))["name"] == "gpt"
  sweeps = figures_rundir.load_sweeps(ROOT)  # no sweep.json: run directories are discovered
  assert [r.path for s in sweeps for r in s.runs] == [workdir]


def test_local_dir_uploads_what_was_written_under_the_same_names(gcs, tmp_path):
  with fs.local_dir(f"{ROOT}/eval/attention") as local:
    os.makedirs(os.path.join(local, "sub"))
    for name in ("a.png", "sub/b.html"):
      with open(os.path.join(local, name), "w") as f:
        f.write(name)
  assert not os.path.exists(local)  # staging removed
  assert fs.read_text(f"{ROOT}/eval/attention/sub/b.html") == "sub/b.html"
  assert fs.listdir(f"{ROOT}/eval/attention") == ["a.png", "sub"]
  with fs.local_dir(str(tmp_path / "views")) as local:  # local: written in place
    assert local == str(tmp_path / "views") and os.path.isdir(local)


def test_the_writer_lock_on_gcs_is_an_object_created_only_if_absent(gcs, caplog):
  """gs:// locks go through fsspec's pipe_file(mode="create") (gcsfs: ifGenerationMatch=0). The
  stand-in refuses a second create as GCS's precondition would; that GCS itself answers 412 to
  the second of two racing uploads is gcsfs's and GCS's part, not testable offline."""
  workdir = f"{ROOT}/locked"
  fs.makedirs(workdir)
  first = rundir.acquire_writer_lock(workdir)
  holder = json.loads(fs.read_text(rundir.lock_path(workdir)))
  assert holder["pid"] == os.getpid() and set(holder) >= {"host", "pid", "started", "command"}
  with pytest.raises(rundir.LockHeld, match=f"pid {os.getpid()} on host"):
    rundir.acquire_writer_lock(workdir)
  first.release()
  assert not fs.exists(rundir.lock_path(workdir))

  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  stale = dict(holder, pid=int(dead.stdout), token="stale")  # ran here, no longer running
  fs.write_text(rundir.lock_path(workdir), json.dumps(stale))
  caplog.set_level(logging.WARNING)
  with rundir.acquire_writer_lock(workdir):
    assert json.loads(fs.read_text(rundir.lock_path(workdir)))["pid"] == os.getpid()
  assert any("taking over" in r.getMessage() for r in caplog.records)
  elsewhere = dict(holder, host="another-host", token="other")  # cannot tell: refused
  fs.write_text(rundir.lock_path(workdir), json.dumps(elsewhere))
  with pytest.raises(rundir.LockHeld, match="on host another-host"):
    rundir.acquire_writer_lock(workdir)


def test_damaged_files_on_gcs_are_read_around(gcs, caplog):
  workdir = f"{ROOT}/damaged"
  fs.write_text(rundir.metrics_path(workdir), '{"split": "train", "step": 1, "loss": 2.0}\n'
                '{"split": "train", "st')
  fs.write_text(rundir.status_path(workdir), "{")
  train, _ = rundir.read_metrics(rundir.metrics_path(workdir))
  assert [r["step"] for r in train] == [1]
  assert rundir.read_status(workdir) is None
  messages = [r.getMessage() for r in caplog.records]
  assert any("torn last line of 22 bytes" in m for m in messages), messages
