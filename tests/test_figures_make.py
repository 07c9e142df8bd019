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


def _isoflop_root(root, seeds=(0,), noise=0.0):
  """L(N, D) = E + A/N^a + B/D^b with D = C / 6N at 4 budgets x 5 sizes; each seed's loss is
  shifted by noise * (seed - mean seed)."""
  e, a, b, big_a, big_b = 1.7, 0.34, 0.28, 406.4, 410.7
  entries = []
  for c in (1e18, 1e19, 1e20, 1e21):
    for f in (0.1, 0.3, 1.0, 3.0, 10.0):
      n = f * (c / 120) ** 0.5
      d = c / (6 * n)
      name = f"C{np.log10(c):.0f}_f{f}".replace(".", "p")
      for seed in seeds:
        shift = noise * (seed - np.mean(seeds))
        fake_runs.write_run(os.path.join(root, name, f"seed{seed}"), name=name, seed=seed,
                            params=int(n), final_loss=e + big_a / n**a + big_b / d**b + shift,
                            num_steps=100, flops_per_token=6 * n, tokens_per_step=int(d / 100),
                            log_every=50, eval_every=50)
        entries.append((name, seed, {"budget_flops": c}))
  fake_runs.write_sweep_json(root, "iso", "scaling", entries, budget="compute")
  return e, a, b


# fits.json of an isoFLOP sweep with one seed per configuration, as committed under results/.
SINGLE_SEED_FITS = {"accounting", "excluded_runs", "approach2", "approach3", "loss_vs_compute",
                    "exponents_by_accounting"}


def test_isoflop_sweep_finds_the_optimal_size_exponent(tmp_path):
  # L(N, D) = E + A/N^a + B/D^b with D = C / 6N: the optimum scales as N_opt ~ C^(b/(a+b)).
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  e, a, b = _isoflop_root(root)
  written = make.make_all(root, out, num_samples=20, log=lambda *_: None, formats=("png",))
  fits = json.load(open(os.path.join(out, "iso", "fits.json")))
  two, three = fits["approach2"], fits["approach3"]
  # Single seed: the layout of the committed results, so they regenerate unchanged.
  assert set(fits) == SINGLE_SEED_FITS
  assert set(two) == {"budgets", "a", "b", "k_params", "k_tokens", "a_interval", "b_interval",
                      "ci", "bootstrap_samples", "dropped"}
  assert "resampled" not in three and "lbfgs_options" not in three
  assert len(two["budgets"]) == 4
  assert all(o["minimum_inside"] for o in two["budgets"])
  # N_opt ~ C^(b/(a+b)) and D_opt ~ C^(a/(a+b)), inside their bootstrap intervals.
  assert two["a"] == pytest.approx(b / (a + b), abs=0.03)
  assert two["b"] == pytest.approx(a / (a + b), abs=0.03)
  assert two["a_interval"][0] <= two["a"] <= two["a_interval"][1]
  assert all(o["params_opt_interval"][0] <= o["params_opt"] <= o["params_opt_interval"][1]
             for o in two["budgets"])
  # Approach 3 recovers the law it was generated from (noise-free: exactly).
  assert (three["alpha"], three["beta"], three["E"]) == (
      pytest.approx(a, rel=0.02), pytest.approx(b, rel=0.02), pytest.approx(e, rel=0.02))
  assert three["a"] == pytest.approx(b / (a + b), abs=0.01)
  assert fits["accounting"] == {"flops": "6N+attention+head",
                                "flops_parts": ["6N", "attention", "head", "per_sequence"],
                                "params": "non_embedding"}
  assert set(fits["exponents_by_accounting"]) == {
      f"C={f}, N={p}" for f in ("6N", "6N+attention", "6N+attention+head")
      for p in ("non_embedding", "total")}
  assert fits["loss_vs_compute"]["fit_offset"] is True
  names = [os.path.basename(f) for f in written["iso"]]
  assert "isoflop.png" in names and "isoflop_table.md" in names
  table = open(os.path.join(out, "iso", "isoflop_table.md")).read()
  assert "approach 2: N_opt" in table and "approach 3: L =" in table


def test_isoflop_sweep_with_seeds_reports_their_spread_and_both_approach3_fits(tmp_path):
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  e, a, b = _isoflop_root(root, seeds=(0, 1), noise=0.002)
  lines = []
  make.make_all(root, out, num_samples=20, log=lines.append, formats=())
  fits = json.load(open(os.path.join(out, "iso", "fits.json")))
  assert set(fits) == SINGLE_SEED_FITS | {"seeds", "approach3_varpro"}
  assert len(fits["seeds"]) == 20
  assert all(s["seeds"] == [0, 1] and s["loss_std"] == pytest.approx(0.002 / 2**0.5, rel=1e-6)
             for s in fits["seeds"])
  two, vp = fits["approach2"], fits["approach3_varpro"]
  assert two["resampled"] == "configurations, then seeds within each"
  assert two["bootstrap_samples"] + two["dropped"] == 20
  # Resampled sizes often leave a budget without a minimum inside: more than 5% of the draws
  # fail, so no 95% interval holds once they count against it (seeds.interval_counting_failures).
  assert two["dropped"] > 1 and two["a_interval"] is not None
  assert two["a_interval_all_draws"] == two["b_interval_all_draws"] == [None, None]
  assert vp["num_points"] == 40 and vp["num_configurations"] == 20
  assert (vp["alpha"], vp["beta"]) == (pytest.approx(a, abs=0.01), pytest.approx(b, abs=0.01))
  lo, hi = vp["intervals"]["a"]
  assert lo < hi and (lo, hi) == (pytest.approx(b / (a + b), abs=0.01),) * 2
  assert fits["approach3"]["beta"] == pytest.approx(b, abs=0.01)
  assert any(l.startswith("iso: seed std of the final loss per configuration: median 0.0014")
             for l in lines)
  assert any("iso approach 3 (variable projection): alpha = 0.340" in l for l in lines)
  assert any(l.startswith("iso approach 2: a = ") and "all draws none" in l
             and f"({two['bootstrap_samples']} of 20 draws kept)" in l for l in lines)


def test_bad_flop_accounting_is_a_config_error(tmp_path, capsys):
  root = str(tmp_path / "runs")
  fake_runs.write_run(os.path.join(root, "a", "seed0"), name="a")
  assert make.main(["--root", root, "--out", str(tmp_path / "out"), "--flops", "7N"]) == 2
  err = capsys.readouterr().err
  assert "flops='7N' is not one of '6N', '6N+attention', '6N+attention+head'" in err


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


def test_lr_transfer_figure_finds_each_widths_optimum(tmp_path):
  """Synthetic losses with the optimum at lr 4e-3 for every width under muP and at 8e-3 * 32/w
  under SP: the table, json and figure report exactly that, and a diverged run is shown."""
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  entries = []
  for param in ("sp", "mup"):
    for width in (32, 64, 128):
      best = 4e-3 if param == "mup" else 8e-3 * 32 / width
      for lr in (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2):
        name = f"{param}_d{width}_lr{lr:g}"
        loss = 3.0 - 0.1 * np.log2(width) + 0.05 * np.log2(lr / best) ** 2
        diverged = (param, width, lr) == ("sp", 128, 1.6e-2)
        fake_runs.write_run(os.path.join(root, name, "seed0"), name=name,
                            final_loss=float("nan") if diverged else loss, d_model=width)
        entries.append((name, 0, {"parametrization": param, "d_model": width,
                                  "learning_rate": lr}))
  fake_runs.write_sweep_json(root, "mt", "lr_transfer", entries)
  lines = []
  written = make.make_all(root, out, num_samples=10, log=lines.append, formats=("png",))
  record = json.load(open(os.path.join(out, "mt", "lr_transfer.json")))
  for width in (32, 64, 128):
    assert record["optima"]["mup"][str(width)]["learning_rate"] == pytest.approx(4e-3, rel=1e-6)
  assert record["optima"]["sp"]["32"]["learning_rate"] == pytest.approx(8e-3, rel=1e-6)
  assert record["optima"]["sp"]["128"]["learning_rate"] == pytest.approx(2e-3, rel=1e-6)
  assert record["log2_spread"]["mup"] == pytest.approx(0.0, abs=1e-6)
  assert record["log2_spread"]["sp"] == pytest.approx(2.0, abs=1e-6)
  diverged = [p for p in record["points"] if p["run"] == "sp_d128_lr0.016"][0]
  assert diverged["usable"] is False and diverged["state"] == "diverged"
  table = open(os.path.join(out, "mt", "lr_transfer_table.md")).read()
  assert "| SP | 128 |" in table and "diverged" in table
  assert any("spread over widths 0.00 octaves" in line for line in lines)
  assert _is_png(os.path.join(out, "mt", "lr_transfer.png"))
  assert "lr_transfer.png" in [os.path.basename(f) for f in written["mt"]]


def test_cooldown_branches_give_a_data_scaling_fit_and_compare_with_cosine(tmp_path):
  """A stable run, 5 branches ending on L(D) = 2 + 900 / D^0.5 and a cosine control: the fit
  recovers the law from the branch ends alone, and the control is compared at its length."""
  root, out = str(tmp_path / "runs"), str(tmp_path / "results")
  law = lambda d: 2.0 + 900.0 / d**0.5
  tokens_per_step = 2048
  fake_runs.write_run(os.path.join(root, "stable", "seed0"), name="stable", num_steps=3200,
                      final_loss=law(3200 * tokens_per_step) + 0.3, log_every=160,
                      eval_every=160)
  entries = [("stable", 0, {"role": "stable", "steps": 3200})]
  for s in (160, 320, 640, 1280, 2560):
    total = s + s // 4
    fake_runs.write_run(os.path.join(root, f"cooldown_s{s}", "seed0"), name=f"cooldown_s{s}",
                        num_steps=total, final_loss=law(total * tokens_per_step), log_every=10,
                        eval_every=10)
    entries.append((f"cooldown_s{s}", 0, {"role": "branch", "branch_step": s, "steps": total}))
  fake_runs.write_run(os.path.join(root, "cosine_s1280", "seed0"), name="cosine_s1280",
                      num_steps=1600, final_loss=law(1600 * tokens_per_step) + 0.01,
                      log_every=10, eval_every=10)
  entries.append(("cosine_s1280", 0, {"role": "cosine", "steps": 1600}))
  fake_runs.write_sweep_json(root, "wsd", "branches", entries)
  lines = []
  written = make.make_all(root, out, num_samples=30, log=lines.append, formats=("png",))
  fits = json.load(open(os.path.join(out, "wsd", "fits.json")))
  law_fit = fits["loss_vs_tokens"]
  assert law_fit["num_points"] == 5 and law_fit["fit_offset"]
  assert (law_fit["E"], law_fit["alpha"]) == (pytest.approx(2.0, rel=1e-3),
                                              pytest.approx(0.5, rel=1e-3))
  (control,) = fits["cosine_controls"]
  assert control["steps"] == 1600 and control["difference"] == pytest.approx(-0.01, abs=1e-9)
  assert any("branch - cosine = -0.0100" in line for line in lines)
  assert _is_png(os.path.join(out, "wsd", "branches.png"))
  assert "branches_table.md" in [os.path.basename(f) for f in written["wsd"]]
