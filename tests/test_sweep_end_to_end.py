"""A real two-run sweep, end to end: launch.sweep -> train.py + eval.py -> figures.make."""

import json
import os

import pytest

from figures import make
from launch import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_two_run_sweep_trains_evaluates_and_ends_in_a_table(embedded_data_dir, tmp_path, monkeypatch):
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  # The session's prepared corpus and its 512-entry BPE vocabulary: nothing is rebuilt.
  overrides = {"data.data_dir": embedded_data_dir, "data.train_vocab_size": 512,
               "model.vocab_size": 512}
  # train.py and eval.py run on one CPU device, not the 8 fake ones conftest gives this process.
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  cwd = os.getcwd()
  os.chdir(REPO)  # the sweep names its configs relative to the repository
  try:
    results = sweep.run_sweep("configs/sweeps/smoke.py", root, overrides=overrides,
                              eval_suites="heldout", log=lambda *_: None)
  finally:
    os.chdir(cwd)
  assert [r["state"] for r in results] == ["finished", "finished"], results
  for r in results:
    status = json.load(open(os.path.join(root, r["workdir"], "status.json")))
    assert status["state"] == "finished" and status["step"] == status["num_steps"] > 0
    heldout = json.load(open(os.path.join(root, r["workdir"], "eval", "heldout.json")))
    assert heldout["checkpoint_step"] == status["step"]
    assert 0 < heldout["metrics"]["lm_loss"] < 10  # ln(512) = 6.24 at the start
  written = make.make_all(root, out, num_samples=20, formats=("png",))
  files = [f for fs in written.values() for f in fs]
  table = [f for f in files if f.endswith(".md") and "table" in os.path.basename(f)]
  assert table, files
  text = open(table[0]).read()
  for r in results:  # both runs are rows of the table, marked finished
    assert r["name"] in text
  assert text.count("finished") >= 2
  assert all(os.path.getsize(f) > 0 for f in files)
