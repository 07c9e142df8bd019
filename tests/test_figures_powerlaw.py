"""The power-law fit behind the scaling figures recovers known parameters (figures/powerlaw.py)."""

import numpy as np
import pytest

from figures import analysis, powerlaw

# Hoffmann et al. 2022's fitted L(N) term: E = 1.69, A = 406.4, alpha = 0.34.
E, A, ALPHA = 1.69, 406.4, 0.34
N = np.geomspace(1e6, 1e10, 8)


def test_exact_points_give_back_the_parameters():
  fit = powerlaw.fit_power_law(N, E + A / N**ALPHA)
  assert fit.E == pytest.approx(E, rel=1e-6)
  assert fit.A == pytest.approx(A, rel=1e-5)
  assert fit.alpha == pytest.approx(ALPHA, rel=1e-6)
  assert fit.rmse_log < 1e-8
  np.testing.assert_allclose(fit.predict(N), E + A / N**ALPHA, rtol=1e-8)


def test_compute_scale_x_is_well_conditioned():
  # FLOPs from 1e15 to 1e23: without rescaling x, A / x^alpha underflows the solver's steps.
  c = np.geomspace(1e15, 1e23, 7)
  fit = powerlaw.fit_power_law(c, 1.8 + 2000.0 / c**0.15)
  assert (fit.E, fit.alpha) == (pytest.approx(1.8, rel=1e-5), pytest.approx(0.15, rel=1e-5))
  assert fit.A == pytest.approx(2000.0, rel=1e-4)


def test_noisy_points_bootstrap_intervals_cover_the_truth():
  rng = np.random.default_rng(0)
  y = (E + A / N**ALPHA) * np.exp(rng.normal(0.0, 0.003, N.shape))
  result = powerlaw.bootstrap_power_law(N, y, num_samples=200, seed=1)
  fit, ci = result["fit"], result["intervals"]
  assert fit.alpha == pytest.approx(ALPHA, abs=0.03)
  assert fit.E == pytest.approx(E, abs=0.05)
  for key, truth in (("E", E), ("A", A), ("alpha", ALPHA)):
    lo, hi = ci[key]
    assert lo <= truth <= hi, (key, lo, truth, hi)
  lo_band, hi_band = result["band"]
  assert np.all(lo_band <= fit.predict(result["grid"]) + 1e-9)
  assert np.all(hi_band >= fit.predict(result["grid"]) - 1e-9)
  assert result["num_samples"] + result["num_skipped"] == 200


def test_pure_power_law_without_offset():
  fit = powerlaw.fit_power_law(N, 3000.0 * N**-0.2, fit_offset=False)
  assert (fit.E, fit.A, fit.alpha) == (0.0, pytest.approx(3000.0), pytest.approx(0.2))


def test_too_few_points_is_an_error_not_a_fit():
  with pytest.raises(ValueError, match="distinct x"):
    powerlaw.fit_power_law([1e6, 1e6, 1e7], [3.0, 3.1, 2.9])
  with pytest.raises(ValueError, match="positive"):
    powerlaw.fit_power_law([1e6, 1e7, 1e8], [3.0, -1.0, 2.0])


def test_fit_with_intervals_drops_the_offset_for_few_sizes():
  two = analysis.fit_with_intervals(np.array([1e6, 1e7]), np.array([3.0, 2.5]), 50, 0)
  assert two["fit_offset"] is False and two["intervals"] == {} and two["band"] is None
  assert two["fit"].alpha == pytest.approx(np.log10(3.0 / 2.5))
  assert "no interval" in analysis.describe_fit("x", two, "N")
  assert "skipped" in analysis.fit_with_intervals(np.array([1e6]), np.array([3.0]), 50, 0)


def test_parabola_vertex():
  n = np.geomspace(1e5, 1e7, 5)
  n_opt, l_opt, inside = powerlaw.fit_parabola_min(np.log(n), (np.log(n) - np.log(1e6))**2 + 2.0)
  assert (n_opt, l_opt, inside) == (pytest.approx(1e6, rel=1e-6), pytest.approx(2.0), True)
  # Monotone data has no minimum inside: the best observed point, flagged.
  assert powerlaw.fit_parabola_min(np.log(n), [5, 4, 3, 2.5, 2.4])[2] is False

