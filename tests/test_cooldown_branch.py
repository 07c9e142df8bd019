"""Cooldown branches end to end (trainlib/loop.py, optim.cooldown_*): a stable-phase wsd run
checkpoints every 3 steps; a branch restores its step-6 checkpoint into a new workdir and decays
over 3 steps, continuing the stable run's updates bit for bit until the decay starts."""

import json
import os

import numpy as np

from trainlib import loop
from tests.train_testlib import loop_config


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r.get("split", "train") == "train"]


def test_branch_from_stable_run(tmp_path, embedded_data_dir):
  stable = loop_config(embedded_data_dir)
  stable.train.num_steps = 9
  stable.optim.update(schedule="wsd", decay_frac=0.0)  # never decays: the stable phase
  stable_dir = str(tmp_path / "stable")
  loop.train_and_evaluate(stable, stable_dir)

  branch = loop_config(embedded_data_dir)
  branch.train.num_steps = 9
  branch.optim.update(schedule="wsd", decay_shape="linear", end_lr_frac=0.0,
                      cooldown_from_run=stable_dir, cooldown_from_step=6, cooldown_steps=3)
  branch_dir = str(tmp_path / "branch")
  loop.train_and_evaluate(branch, branch_dir)

  with open(os.path.join(branch_dir, "status.json")) as f:
    assert json.load(f)["state"] == "finished"
  rows = {r["step"]: r for r in _rows(branch_dir)}
  assert min(rows) == 7 and max(rows) == 9  # only the branch's own steps
  stable_rows = {r["step"]: r for r in _rows(stable_dir)}
  # step 7 uses lr(6), still the peak: the same update as the stable run's step 7
  np.testing.assert_allclose(rows[7]["loss"], stable_rows[7]["loss"], rtol=1e-6)
  assert rows[9]["learning_rate"] < stable_rows[9]["learning_rate"]
