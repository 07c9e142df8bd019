"""figures/: tables and figures from synthetic run directories, incomplete runs included."""

import json
import os

import numpy as np
import pytest

from figures import make, rundir
from tests import fake_runs


def _is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 10_000


def _is_pdf(path):
  with open(path, "rb") as f:
    return f.read(5) == b"%PDF-"


def _ablation_root(root):
  """Two objectives x 3 seeds. mlm_only seed 2 is still running (with an eval of an earlier
  checkpoint that must not be averaged); bert seed 2's cloze eval is of a stale checkpoint."""
  entries = []
  for name, base in (("bert_mlm_nsp", 2.0), ("mlm_only", 2.5)):
    for seed in (0, 1, 2):
      running = name == "mlm_only" and seed == 2
      evals = {"heldout": {"mlm_loss": base + 0.1 * seed, "mlm_accuracy": 0.40 + 0.01 * seed},
               "cloze": {"accuracy": 0.60 + 0.02 * seed}}
      if name == "bert_mlm_nsp":
        evals["finetune"] = {"accuracy": 0.70 + 0.01 * seed}
      if running:
        evals = {"heldout": {"mlm_loss": 100.0, "mlm_accuracy": 0.0}}
      fake_runs.write_run(os.path.join(root, name, f"seed{seed}"), name=name, seed=seed,
                          final_loss=base, num_steps=1000, step=300 if running else None,
                          state="running" if running else "finished", objective="mlm",
                          family="encoder", log_every=50, eval_every=100, evals=evals)
      if name == "bert_mlm_nsp" and seed == 2:
        with open(os.path.join(root, name, "seed2", "eval", "cloze.json"), "w") as f:
          json.dump({"suite": "cloze", "checkpoint_step": 500, "metrics": {"accuracy": 0.1}}, f)
      entries.append((name, seed, {"label": name.upper(), "paper_row": f"row of {name}"}))
  fake_runs.write_sweep_json(root, "abl", "ablation", entries,
                             eval_suites="heldout,cloze,finetune")


def test_ablation_table_averages_only_complete_runs_and_shows_the_rest(tmp_path):
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  _ablation_root(root)
  written = make.make_all(root, out, num_samples=20, log=lambda *_: None)
  md = open(os.path.join(out, "abl", "ablation_table.md")).read()
  tex = open(os.path.join(out, "abl", "ablation_table.tex")).read()
  rows = {}
  for line in md.splitlines():
    if line.startswith("| "):
      cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
      rows[cells[0]] = cells
  col = {name: i for i, name in enumerate(rows["Objective"])}
  # mlm_only: seeds 0 and 1 only; the running seed 2 (loss 100) is its own row.
  mlm = rows["MLM_ONLY"]
  expected = np.array([2.5, 2.6])
  assert mlm[col["heldout: mlm_loss"]] == f"{expected.mean():.3f} ± {expected.std(ddof=1):.3f}"
  assert mlm[col["Runs"]] == "2 of 3 complete"
  assert mlm[col["heldout: mlm_accuracy (%)"]] == "40.5 ± 0.7"
  assert rows["MLM_ONLY (seed 2)"][col["Runs"]] == "incomplete (step 300/1000)"
  assert "100.0" not in md
  # bert: 3 complete seeds; the stale cloze eval of seed 2 is left out and said so.
  bert = rows["BERT_MLM_NSP"]
  assert bert[col["Runs"]] == "3 seeds"
  assert bert[col["cloze: accuracy (%)"]] == "61.0 ± 1.4 (n=2)"
  assert "eval at step 500, run at step 1000" in md
  assert mlm[col["finetune: accuracy (%)"]] == "missing"  # a suite of the sweep never run
  assert bert[col["Tokens"]] == "2.05M"
  data = json.load(open(os.path.join(out, "abl", "ablation_table.json")))
  assert data["mlm_only"]["complete_seeds"] == [0, 1]
  assert data["mlm_only"]["metrics"]["heldout/mlm_loss"] == pytest.approx([2.5, 2.6])
  assert r"\toprule" in tex and r"$\pm$" in tex and r"BERT\_MLM\_NSP" in tex
  assert "incomplete (step 300/1000)" in tex
  pngs = [f for f in written["abl"] if f.endswith(".png")]
  assert [os.path.basename(f) for f in pngs] == ["learning_curves.png"]
  assert all(_is_png(f) for f in pngs)
  assert all(_is_pdf(f) for f in written["abl"] if f.endswith(".pdf"))
  assert "MLM_ONLY (seed 2)" in open(os.path.join(out, "README.md")).read()


def _scaling_root(root, e=2.0, a=60.0, alpha=0.3):
  entries = []
  for layers in (1, 2, 4):
    for width in (32, 64):
      n = 12 * layers * width**2
      name = f"L{layers}_d{width}"
      fake_runs.write_run(os.path.join(root, name, "seed0"), name=name, num_layers=layers,
                          d_model=width, final_loss=e + a / n**alpha, num_steps=200,
                          eval_every=20)
      entries.append((name, 0, {"num_layers": layers, "d_model": width}))
  # A crashed big run whose last loss would drag the fit: must be shown, not fitted.
  fake_runs.write_run(os.path.join(root, "L8_d64", "seed0"), name="L8_d64", num_layers=8,
                      d_model=64, final_loss=0.5, num_steps=200, step=80, state="failed",
                      eval_every=20)
  entries.append(("L8_d64", 0, {"num_layers": 8, "d_model": 64}))
  fake_runs.write_sweep_json(root, "sc", "scaling", entries, eval_suites="heldout")


def test_scaling_fit_recovers_the_law_and_excludes_a_crashed_run(tmp_path):
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  _scaling_root(root)
  lines = []
  written = make.make_all([root], out, num_samples=30, log=lines.append, formats=("png",))
  fits = json.load(open(os.path.join(out, "sc", "fits.json")))
  by_n = fits["loss_vs_params"]
  assert by_n["fit_offset"] and by_n["num_points"] == 6
  assert (by_n["E"], by_n["A"], by_n["alpha"]) == (
      pytest.approx(2.0, rel=1e-4), pytest.approx(60.0, rel=1e-3), pytest.approx(0.3, rel=1e-4))
  assert fits["excluded_runs"] == {"L8_d64/seed0": "failed (step 80/200)"}
  assert fits["loss_vs_compute"]["num_points"] == 6
  assert any(line.startswith("sc: L(N) = 2.000") for line in lines)
  assert any("not fitted (incomplete): L8_d64/seed0 failed (step 80/200)" in l for l in lines)
  table = open(os.path.join(out, "sc", "scaling_table.md")).read()
  assert "| L8_d64 | failed (step 80/200) |" in table
  names = sorted(os.path.basename(f) for f in written["sc"] if f.endswith(".png"))
  assert names == ["learning_curves.png", "loss_vs_compute.png", "loss_vs_params.png"]
  assert all(_is_png(f) for f in written["sc"] if f.endswith(".png"))


def test_isoflop_sweep_finds_the_optimal_size_exponent(tmp_path):
  # L(N, D) = E + A/N^a + B/D^b with D = C / 6N: the optimum scales as N_opt ~ C^(b/(a+b)).
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  e, a, b, big_a, big_b = 1.7, 0.34, 0.28, 406.4, 410.7
  entries = []
  for c in (1e18, 1e19, 1e20, 1e21):
    for f in (0.1, 0.3, 1.0, 3.0, 10.0):
      n = f * (c / 120) ** 0.5
      d = c / (6 * n)
      name = f"C{np.log10(c):.0f}_f{f}".replace(".", "p")
      fake_runs.write_run(os.path.join(root, name, "seed0"), name=name, params=int(n),
                          final_loss=e + big_a / n**a + big_b / d**b, num_steps=100,
                          flops_per_token=6 * n, tokens_per_step=int(d / 100), log_every=50,
                          eval_every=50)
      entries.append((name, 0, {"budget_flops": c}))
  fake_runs.write_sweep_json(root, "iso", "scaling", entries, budget="compute")
  written = make.make_all(root, out, num_samples=20, log=lambda *_: None, formats=("png",))
  fits = json.load(open(os.path.join(out, "iso", "fits.json")))
  assert len(fits["isoflop_optima"]) == 4
  assert all(o["minimum_inside"] for o in fits["isoflop_optima"])
  assert fits["optimal_params_vs_compute"]["a"] == pytest.approx(b / (a + b), abs=0.03)
  assert fits["loss_vs_compute"]["fit_offset"] is True
  assert "isoflop.png" in [os.path.basename(f) for f in written["iso"]]


def test_run_directories_without_sweep_json_are_found(tmp_path):
  root = tmp_path / "loose"
  fake_runs.write_run(str(root / "a"), name="run_a", evals={"heldout": {"loss": 3.0}})
  fake_runs.write_run(str(root / "b" / "nested"), name="run_b", step=10, state="running",
                      evals={"heldout": {"loss": 9.0}})
  (sweep,) = rundir.load_sweeps(str(root))
  assert [r.name for r in sweep.runs] == ["run_a", "run_b"]
  assert [r.complete for r in sweep.runs] == [True, False]
  make.make_all(str(root), str(tmp_path / "out"), log=lambda *_: None, formats=())
  md = open(tmp_path / "out" / "loose" / "ablation_table.md").read()
  assert "| run_a | — | 1 seed |" in md
  assert "| run_b (seed 0) | — | incomplete (step 10/100) |" in md


def test_metrics_reader_keeps_the_resumed_rows_and_skips_a_torn_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = [{"split": "train", "step": s, "loss": l} for s, l in ((10, 5.0), (20, 4.0), (30, 3.5))]
  rows += [{"split": "train", "step": 20, "loss": 3.9}, {"split": "eval", "step": 20, "loss": 4}]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"split": "train", "st')
  train, evals = rundir.read_metrics(str(path))
  assert [(r["step"], r["loss"]) for r in train] == [(10, 5.0), (20, 3.9), (30, 3.5)]
  assert [r["step"] for r in evals] == [20]


def test_status_kinds(tmp_path):
  assert rundir.training_status(str(tmp_path / "nope"), 10)[:2] == (False, "not started")
  (tmp_path / "empty").mkdir()
  assert rundir.training_status(str(tmp_path / "empty"))[1] == "incomplete (no status.json)"
  fake_runs.write_run(str(tmp_path / "short"), name="s", num_steps=100, step=100)
  status = json.load(open(tmp_path / "short" / "status.json"))
  status["num_steps"] = 200  # "finished" but short of the planned steps: still incomplete
  json.dump(status, open(tmp_path / "short" / "status.json", "w"))
  assert rundir.training_status(str(tmp_path / "short"))[:2] == (False,
                                                                  "incomplete (step 100/200)")


def test_empty_root_is_a_clear_error(tmp_path, capsys):
  assert make.main(["--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
  assert "error: --root=" in capsys.readouterr().err


def test_regenerating_from_the_same_runs_gives_the_same_bytes(tmp_path):
  root = str(tmp_path / "runs")
  _ablation_root(root)
  digests = []
  for out in (tmp_path / "a", tmp_path / "b"):
    written = make.make_all(root, str(out), num_samples=20, log=lambda *_: None)
    files = [p for paths in written.values() for p in paths]
    digests.append({os.path.relpath(p, out): open(p, "rb").read() for p in files})
  assert any(p.endswith(".pdf") for p in digests[0]) and digests[0] == digests[1]
