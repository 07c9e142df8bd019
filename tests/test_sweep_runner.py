"""launch/sweep.py with a fake train/eval entry point (tests/fake_entry.py): dry runs, local runs
that skip finished work and record failures, job scripts for TPU pods and SLURM."""

import json
import os
import stat

import pytest

from configs.errors import ConfigError
from figures import make, rundir, tables
from launch import sweep

SMOKE = "configs/sweeps/smoke.py"
FAKE = {"train_command": "{python} tests/fake_entry.py train --config {config} --workdir {workdir}",
        "eval_command": "{python} tests/fake_entry.py eval --config {config} --workdir {workdir} "
                        "--suite {suites}"}
FAKE_FLAGS = [f"--{k}={v}" for k, v in FAKE.items()]


def _calls(root, name, seed):
  with open(os.path.join(root, name, f"seed{seed}", "fake_calls.txt")) as f:
    return [line.split()[0] for line in f]


def _record(root):
  with open(os.path.join(root, "sweep.json")) as f:
    return json.load(f)["sweeps"]


def test_dry_run_prints_every_command_and_writes_nothing(tmp_path, capsys):
  root = tmp_path / "runs"
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--seeds", "0,1", "--dry_run",
                     "--override", "train.num_steps=7"]) == 0
  out = capsys.readouterr().out
  trains = [l for l in out.splitlines() if " train.py " in l]
  evals = [l for l in out.splitlines() if " eval.py " in l]
  assert len(trains) == len(evals) == 4
  assert all("--config.train.num_steps=7" in l for l in trains + evals)
  assert sum("--config.seed=1 --config.data.seed=1" in l for l in trains) == 2
  assert f"--workdir {root}/L1_d32/seed1" in out and "--suite heldout" in evals[0]
  assert not root.exists()


def test_local_sweep_runs_each_run_once_and_skips_finished_ones(tmp_path):
  root = str(tmp_path / "runs")
  results = sweep.run_sweep(SMOKE, root, seeds=[0, 1], log=lambda *_: None, **FAKE)
  assert [(r["name"], r["seed"], r["state"]) for r in results] == [
      ("L1_d16", 0, "finished"), ("L1_d16", 1, "finished"),
      ("L1_d32", 0, "finished"), ("L1_d32", 1, "finished")]
  assert _calls(root, "L1_d32", 1) == ["train", "eval"]
  with open(os.path.join(root, "L1_d32", "seed1", "config.json")) as f:
    assert json.load(f)["seed"] == 1
  entry = _record(root)["smoke"]
  assert entry["kind"] == "scaling" and entry["eval_suites"] == "heldout"
  assert [r["state"] for r in entry["runs"]] == ["finished"] * 4
  assert entry["runs"][0]["overrides"]["model.d_model"] == 16

  again = sweep.run_sweep(SMOKE, root, seeds=[0, 1], log=lambda *_: None, **FAKE)
  assert [r["state"] for r in again] == ["skipped"] * 4
  assert _calls(root, "L1_d32", 1) == ["train", "eval"]

  # A lost eval result is redone without retraining.
  os.remove(os.path.join(root, "L1_d16", "seed0", "eval", "heldout.json"))
  sweep.run_sweep(SMOKE, root, seeds=[0, 1], log=lambda *_: None, **FAKE)
  assert _calls(root, "L1_d16", 0) == ["train", "eval", "eval"]

  # The figures read what the sweep wrote.
  written = make.make_all(root, str(tmp_path / "results"), num_samples=10, log=lambda *_: None,
                          formats=("png",))
  assert "loss_vs_params.png" in [os.path.basename(f) for f in written["smoke"]]


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
  root = str(tmp_path / "runs")
  monkeypatch.setenv("FAKE_FAIL", "L1_d16:0")
  assert sweep.main(["--sweep", SMOKE, "--root", root] + FAKE_FLAGS) == 1
  out = capsys.readouterr().out
  assert "L1_d16 seed 0: train FAILED (exit 1" in out and "synthetic crash" in out
  assert "1 of 2 ok; failed: L1_d16/seed0" in out
  runs = {r["name"]: r for r in _record(root)["smoke"]["runs"]}
  assert (runs["L1_d16"]["state"], runs["L1_d16"]["returncode"]) == ("failed", 1)
  assert runs["L1_d32"]["state"] == "finished"
  assert _calls(root, "L1_d16", 0) == ["train"]  # no eval of a failed run
  table = make.make_all(root, str(tmp_path / "results"), num_samples=10, log=lambda *_: None,
                        formats=())
  md = open(os.path.join(tmp_path, "results", "smoke", "scaling_table.md")).read()
  assert "| L1_d16 | failed (step 1/4) |" in md and table

  monkeypatch.delenv("FAKE_FAIL")
  assert sweep.main(["--sweep", SMOKE, "--root", root] + FAKE_FLAGS) == 0
  assert _calls(root, "L1_d16", 0) == ["train", "train", "eval"]
  assert _calls(root, "L1_d32", 0) == ["train", "eval"]


def test_bad_overrides_stop_the_sweep_before_anything_runs(tmp_path, capsys):
  root = tmp_path / "runs"
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--override",
                     "train.num_step=5"] + FAKE_FLAGS) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: sweep 'smoke', run 'L1_d16': override train.num_step='5'")
  assert "num_steps" in err  # lists the fields that do exist
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--override",
                     "train.num_steps=many"] + FAKE_FLAGS) == 2
  assert "has type str, but the field holds int" in capsys.readouterr().err
  # Well-typed but unusable: train.py's own validation runs before anything is launched.
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--override",
                     "model.num_heads=3"] + FAKE_FLAGS) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: sweep 'smoke', run 'L1_d16': model.") and "num_heads" in err
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--seeds", "0,x"]) == 2
  assert not root.exists()


def test_tpu_backend_trains_through_tpu_pod_sh_and_evaluates_on_every_worker(tmp_path, capsys):
  args = ["--sweep", "configs/sweeps/ablation_pod.py", "--root", str(tmp_path), "--dry_run",
          "--backend", "tpu", "--tpu", "my-v5p", "--zone", "us-east5-a", "--project", "proj"]
  assert sweep.main(args) == 0
  out = capsys.readouterr().out
  assert out.count("TPU=my-v5p ZONE=us-east5-a PROJECT=proj CONFIG=configs/ablations/") == 4
  assert (f"CONFIG=configs/ablations/ltr_causal.py:pod WORKDIR={tmp_path}/ltr_causal/seed0 "
          "bash launch/tpu_pod.sh -- --config.name=ltr_causal --config.seed=0") in out
  assert out.count("gcloud compute tpus tpu-vm ssh my-v5p --zone us-east5-a --worker=all "
                   "--project proj --command 'cd pancake && .venv/bin/python eval.py") == 4
  assert "--suite heldout,cloze,downstream" in out
  assert not os.path.exists(tmp_path / "sweep.json")
  assert sweep.main(args[:-4]) == 2
  assert "error: --backend=tpu needs --zone" in capsys.readouterr().err


def test_slurm_backend_submits_training_then_dependent_eval_once(tmp_path, monkeypatch):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fake_sbatch = bin_dir / "sbatch"  # records its arguments, prints a job id like --parsable
  fake_sbatch.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/submitted"\n'
                         'wc -l < "$(dirname "$0")/submitted" | tr -d " "\n')
  fake_sbatch.chmod(fake_sbatch.stat().st_mode | stat.S_IEXEC)
  monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  root = str(tmp_path / "runs")
  results = sweep.run_sweep(SMOKE, root, backend="slurm", nodes=2, gpus_per_node=4,
                            partition="gpu", log=lambda *_: None)
  assert [(r["state"], r["job_id"]) for r in results] == [("submitted", "1"),
                                                          ("submitted", "3")]
  calls = (bin_dir / "submitted").read_text().splitlines()
  assert len(calls) == 4
  train, evaluate = calls[0], calls[1]
  for part in ("--parsable", "--nodes=2", "--gpus-per-node=4", "--partition=gpu",
               "launch/slurm.sbatch --config.name=L1_d16 --config.seed=0"):
    assert part in train
  assert "--dependency=afterok:1 " in evaluate and "--nodes=1" in evaluate
  assert ".venv/bin/python eval.py --config configs/sweeps/scaling_base.py:cpu" in evaluate
  assert [r["state"] for r in _record(root)["smoke"]["runs"]] == ["submitted"] * 2
  # Launching again does not queue the same runs twice (unless asked to).
  again = sweep.run_sweep(SMOKE, root, backend="slurm", log=lambda *_: None)
  assert [(r["state"], r["job_id"]) for r in again] == [("submitted", "1"), ("submitted", "3")]
  assert len((bin_dir / "submitted").read_text().splitlines()) == 4
  sweep.run_sweep(SMOKE, root, backend="slurm", resubmit=True, log=lambda *_: None)
  assert len((bin_dir / "submitted").read_text().splitlines()) == 8


def test_seeds_launched_later_join_the_same_sweep_and_roots_are_not_shared(tmp_path):
  root = str(tmp_path / "runs")
  sweep.run_sweep(SMOKE, root, seeds=[0], log=lambda *_: None, **FAKE)
  sweep.run_sweep(SMOKE, root, seeds=[1], log=lambda *_: None, **FAKE)
  runs = _record(root)["smoke"]["runs"]
  assert sorted((r["name"], r["seed"]) for r in runs) == [
      ("L1_d16", 0), ("L1_d16", 1), ("L1_d32", 0), ("L1_d32", 1)]
  with open(os.path.join(root, "sweep.json")) as f:
    record = json.load(f)
  record["sweeps"]["other"] = {"runs": [{"name": "L1_d16", "seed": 2,
                                         "workdir": os.path.join("L1_d16", "seed2")}]}
  with open(os.path.join(root, "sweep.json"), "w") as f:
    json.dump(record, f)
  with pytest.raises(ConfigError, match="already belongs to sweep 'other'"):
    sweep.run_sweep(SMOKE, root, seeds=[2], log=lambda *_: None, **FAKE)


def _chained_sweep(tmp_path, backwards=False):
  """The smoke sweep with its second run started from the first (from_runs): a continued-training
  or cooldown-branch sweep in miniature (the fake entry point does not read the source)."""
  path = tmp_path / "chained.py"
  path.write_text(
      "from configs.sweeps import smoke\n"
      "def get_sweep():\n"
      "  s = smoke.get_sweep()\n"
      f"  user, source = {(0, 1) if backwards else (1, 0)}\n"
      "  s['runs'][user]['from_runs'] = {'init.from_run': s['runs'][source]['name']}\n"
      "  s.update(name='chained', seeds=[0, 1])\n"
      "  return s\n")
  return str(path)


def test_from_runs_points_each_seed_at_the_same_seed_of_an_earlier_run(tmp_path):
  root = str(tmp_path / "runs")
  results = sweep.run_sweep(_chained_sweep(tmp_path), root, log=lambda *_: None, **FAKE)
  assert [r["state"] for r in results] == ["finished"] * 4
  for seed in (0, 1):
    with open(os.path.join(root, "L1_d32", f"seed{seed}", "fake_calls.txt")) as f:
      train = f.readline()
    assert f"init.from_run={root}/L1_d16/seed{seed}" in train.split()
  assert [r["overrides"].get("init.from_run") for r in _record(root)["chained"]["runs"]] == [
      None, None, f"{root}/L1_d16/seed0", f"{root}/L1_d16/seed1"]
  # The table counts a continued run's budget with its source's, and says so.
  sweep_runs = rundir.load_sweeps(root)[0]
  by_key = {(r.name, r.seed): r for r in sweep_runs.runs}
  table, data = tables.ablation_table(sweep_runs)
  assert data["L1_d32"]["tokens"] == [
      by_key[("L1_d32", s)].final("tokens_seen") + by_key[("L1_d16", s)].final("tokens_seen")
      for s in (0, 1)]
  assert data["L1_d16"]["tokens"] == [by_key[("L1_d16", s)].final("tokens_seen") for s in (0, 1)]
  assert "count the run they start from (same seed) in tokens and FLOPs: L1_d32 (from L1_d16)" in \
      " ".join(table.notes)


def test_from_runs_must_name_an_earlier_run(tmp_path):
  with pytest.raises(ConfigError, match=r"run 'L1_d16': from_runs init.from_run='L1_d32' is not "
                                        r"a run listed before it \(earlier runs: none\)"):
    sweep.run_sweep(_chained_sweep(tmp_path, backwards=True), str(tmp_path / "runs"),
                    dry_run=True, log=lambda *_: None)


def test_a_run_whose_source_failed_is_not_started(tmp_path, monkeypatch, capsys):
  root = str(tmp_path / "runs")
  monkeypatch.setenv("FAKE_FAIL", "L1_d16:1")
  assert sweep.main(["--sweep", _chained_sweep(tmp_path), "--root", root] + FAKE_FLAGS) == 1
  out = capsys.readouterr().out
  assert ("L1_d32 seed 1: not started: it starts from L1_d16 seed 1, whose training did not "
          "finish") in out
  assert "2 of 4 ok; failed: L1_d16/seed1, L1_d32/seed1" in out
  assert not os.path.exists(os.path.join(root, "L1_d32", "seed1"))
  assert os.path.exists(os.path.join(root, "L1_d32", "seed0", "status.json"))


def test_slurm_submits_a_from_runs_run_after_its_source_job(tmp_path, monkeypatch):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fake_sbatch = bin_dir / "sbatch"  # prints job ids 1, 2, ... like --parsable
  fake_sbatch.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/submitted"\n'
                         'wc -l < "$(dirname "$0")/submitted" | tr -d " "\n')
  fake_sbatch.chmod(fake_sbatch.stat().st_mode | stat.S_IEXEC)
  monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  results = sweep.run_sweep(_chained_sweep(tmp_path), str(tmp_path / "runs"), seeds=[0],
                            backend="slurm", log=lambda *_: None)
  assert [(r["name"], r["job_id"]) for r in results] == [("L1_d16", "1"), ("L1_d32", "3")]
  source_train, _, train, _ = (bin_dir / "submitted").read_text().splitlines()
  assert "--dependency" not in source_train
  assert "--dependency=afterok:1 " in train and "launch/slurm.sbatch" in train


def _cores_log(root, name, seed):
  """[(mode, start, end, cores)] of the fake entry's calls for one run (FAKE_SECONDS set)."""
  with open(os.path.join(root, name, f"seed{seed}", "fake_cores.txt")) as f:
    rows = [line.split(" ", 3) for line in f]
  return [(mode, float(start), float(end), json.loads(cores)) for mode, start, end, cores in rows]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--parallel 2 needs 2 cores")
def test_parallel_runs_overlap_on_their_own_cores_and_wait_for_their_sources(
    tmp_path, monkeypatch, capsys):
  root = str(tmp_path / "runs")
  monkeypatch.setenv("FAKE_SECONDS", "0.6")
  assert sweep.main(["--sweep", _chained_sweep(tmp_path), "--root", root, "--parallel", "2"]
                    + FAKE_FLAGS) == 0
  assert "4 of 4 ok" in capsys.readouterr().out
  calls = {(name, seed): _cores_log(root, name, seed)
           for name in ("L1_d16", "L1_d32") for seed in (0, 1)}
  for key, rows in calls.items():
    assert [r[0] for r in rows] == ["train", "eval"], key
    assert len(rows[0][3]) == 1 and rows[0][3] == rows[1][3], key  # one core, both stages
  (_, start0, _, cores0), (_, start1, _, cores1) = calls["L1_d16", 0][0], calls["L1_d16", 1][0]
  assert abs(start0 - start1) < 0.6 and cores0 != cores1  # side by side, on different cores
  for seed in (0, 1):  # L1_d32 seed k starts from L1_d16 seed k: only after it ended
    assert calls["L1_d32", seed][0][1] >= calls["L1_d16", seed][1][2]
  runs = _record(root)["chained"]["runs"]
  assert [(r["name"], r["seed"], r["state"]) for r in runs] == [
      ("L1_d16", 0, "finished"), ("L1_d16", 1, "finished"),
      ("L1_d32", 0, "finished"), ("L1_d32", 1, "finished")]


def test_parallel_must_fit_the_cores_and_the_local_backend(tmp_path, capsys):
  root = tmp_path / "runs"
  cores = len(os.sched_getaffinity(0))
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--parallel", str(cores + 1)]
                    + FAKE_FLAGS) == 2
  assert (f"error: --parallel={cores + 1} is more runs than the {cores} cores this process may "
          f"use; use --parallel between 1 and {cores}") in capsys.readouterr().err
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--parallel", "0"]) == 2
  assert "--parallel=0 must be an integer >= 1" in capsys.readouterr().err
  assert sweep.main(["--sweep", SMOKE, "--root", str(root), "--parallel", "2", "--backend",
                     "slurm"]) == 2
  assert "--parallel=2 is for --backend=local" in capsys.readouterr().err
  assert not root.exists()
  assert sweep.core_slots(2, [0, 1, 2, 3, 4]) == [(0, 1), (2, 3)]
  assert sweep.core_slots(1) == [None]
