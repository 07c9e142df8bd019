"""Approaches 2 and 3 on data drawn from known scaling laws (figures/synthetic_law.py,
figures/varpro.py, figures/seeds.py)."""

import json

import numpy as np
import pytest

from figures import isoflop, seeds, synthetic_law, varpro


@pytest.mark.parametrize("name", sorted(synthetic_law.LAWS))
def test_noise_free_data_give_back_the_exponents_to_1e3(name):
  law = synthetic_law.LAWS[name]
  pts = synthetic_law.points(law)
  assert len(pts) == sum(synthetic_law.SIZES_PER_BUDGET) == 28
  vp = varpro.approach3(pts, num_samples=2)
  huber = isoflop.approach3(pts, num_samples=2, by_seed=True)
  for fit in (vp, huber):
    assert fit["alpha"] == pytest.approx(law.alpha, abs=1e-3)
    assert fit["beta"] == pytest.approx(law.beta, abs=1e-3)
    assert fit["a"] == pytest.approx(law.a, abs=1e-3)
  assert (vp["E"], vp["A"], vp["B"]) == (pytest.approx(law.E, rel=1e-6),
                                         pytest.approx(law.A, rel=1e-6),
                                         pytest.approx(law.B, rel=1e-6))
  # The design puts each budget's optimum inside its sizes: approach 2 finds every minimum.
  two = isoflop.approach2(pts, num_samples=5, by_seed=True)
  assert all(b["minimum_inside"] for b in two["budgets"])
  assert two["a"] == pytest.approx(law.a, abs=0.01)


def test_huber_fit_with_scipys_default_stopping_rule_stops_short():
  """Why single-seed sweeps' committed Huber fits are not the converged ones: measured here."""
  law = synthetic_law.LAWS["chinchilla"]
  legacy = isoflop.approach3(synthetic_law.points(law), num_samples=1)
  assert abs(legacy["beta"] - law.beta) > 0.01


def test_small_coverage_run_reports_bias_and_coverage(tmp_path, capsys):
  out = tmp_path / "synthetic.json"
  assert synthetic_law.main(["--draws", "2", "--bootstrap", "8", "--law", "cpu",
                             "--sigma", "0.01", "--out", str(out)]) == 0
  record = json.loads(out.read_text())
  assert (record["draws"], record["sigma"], record["bootstrap_samples"]) == (2, 0.01, 8)
  assert "date" in record and list(record["laws"]) == ["cpu"]
  approaches = record["laws"]["cpu"]["approaches"]
  assert set(approaches) == {"approach2", "approach2_all_draws", "approach3_huber",
                             "approach3_huber_default_stopping", "approach3_varpro"}
  truth = record["laws"]["cpu"]["truth"]["a"]
  for name, s in approaches.items():
    assert 0.0 <= s["coverage"] <= 1.0, name
    assert s["coverage"] <= 1 - s["draws_without_interval"] / 2, name
    assert s["bias"] == pytest.approx(s["mean_a"] - truth), name
    assert abs(s["bias"]) < 0.1, name   # 2 draws at sigma 0.01: near the truth, either sign
  printed = capsys.readouterr().out
  assert f"cpu approach3_varpro: a = {approaches['approach3_varpro']['mean_a']}" in printed


def test_bad_cli_input_exits_2_naming_it(tmp_path, capsys):
  assert synthetic_law.main(["--draws", "0", "--law", "gpt", "--out",
                             str(tmp_path / "x.json")]) == 2
  err = capsys.readouterr().err
  assert "--draws=0 (need >= 1)" in err and "--law='gpt' (valid: chinchilla, cpu)" in err
  assert not (tmp_path / "x.json").exists()


def test_seeds_are_grouped_by_everything_else_and_resampled_within():
  law = synthetic_law.LAWS["cpu"]
  pts = synthetic_law.points(law, np.random.default_rng(0), 0.01, seeds=3)
  groups = seeds.configurations(pts)
  assert len(groups) == 28 and all(len(g) == 3 for g in groups)
  assert seeds.has_replicates(pts) and not seeds.has_replicates(synthetic_law.points(law))
  for p in pts:  # config.json seed fields are not part of a configuration
    p.run.config = {"seed": p.run.seed, "data": {"seed": p.run.seed, "seq_len": 8}}
  assert len(seeds.configurations(pts)) == 28
  idx = seeds.resample(groups, np.random.default_rng(1))
  assert len(idx) == 84
  # Every drawn index belongs to a configuration drawn whole: runs of one group come in threes.
  owner = {int(i): g for g, members in enumerate(groups) for i in members}
  counts = np.bincount([owner[int(i)] for i in idx], minlength=28)
  assert np.all(counts % 3 == 0) and counts.sum() == 84
  spread = seeds.spread(pts)
  first = [p.loss for p in pts[:3]]
  assert spread[0]["seeds"] == [0, 1, 2]
  assert spread[0]["loss_std"] == pytest.approx(np.std(first, ddof=1))


def test_interval_counting_failures():
  values = np.arange(1, 101, dtype=float)
  kept = seeds.interval_counting_failures(values, 0, 0.95)
  assert kept == pytest.approx([np.quantile(values, 0.025), np.quantile(values, 0.975)])
  wider = seeds.interval_counting_failures(values, 4, 0.95)   # 4 of 104 draws failed
  assert wider[0] < kept[0] and wider[1] > kept[1]
  # More failures than the two tails hold: no 95% interval exists.
  assert seeds.interval_counting_failures(values, 6, 0.95) == [None, None]
