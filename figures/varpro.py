"""Approach 3 by variable projection (Czech et al. 2026, arXiv 2603.22339).

L(N, D) = E + A / N^alpha + B / D^beta is linear in (E, A, B) once (alpha, beta) are fixed, so
the fit is a least-squares problem in the two exponents only: at each (alpha, beta) the
coefficients are solved exactly by non-negative linear least squares (scipy.optimize.nnls), and
the squared residual of the loss that remains is minimised over (alpha, beta), first on a grid,
then by a local optimiser from the best grid point. Residuals are in the loss itself (not its
logarithm, as in figures/isoflop.py's Huber fit), because only there is the model linear in E,
A and B. N and D are scaled by their geometric means while fitting (conditioning); A and B are
reported in unscaled units.

Intervals: a bootstrap that resamples configurations and, within each, seeds
(figures/seeds.py).
"""

import numpy as np
from scipy import optimize

from figures import seeds

EXPONENT_BOUNDS = (1e-3, 3.0)     # as the Huber fit's bounds on alpha and beta
GRID = np.linspace(0.05, 2.5, 25)  # starts for each exponent on the full data
BOOTSTRAP_GRID = GRID[::4]         # coarser in a bootstrap draw, which also starts at the fit


def _coefficients(exponents, log_n, log_d, loss):
  """(E, A', B') >= 0 minimising the squared residual at these exponents, and the residuals;
  A', B' are in units of the scaled N and D."""
  alpha, beta = exponents
  x = np.stack([np.ones_like(log_n), np.exp(-alpha * log_n), np.exp(-beta * log_d)], axis=1)
  coef, _ = optimize.nnls(x, loss)
  return coef, x @ coef - loss


def _residual(exponents, log_n, log_d, loss):
  return _coefficients(exponents, log_n, log_d, loss)[1]


def _solve(log_n, log_d, loss, grid, extra_starts=()):
  """(alpha, beta) minimising the projected residual: best start on grid x grid (and
  extra_starts), then least squares from there."""
  starts = [(a, b) for a in grid for b in grid] + list(extra_starts)
  costs = [np.sum(_residual(s, log_n, log_d, loss) ** 2) for s in starts]
  start = np.array(starts[int(np.argmin(costs))])
  result = optimize.least_squares(_residual, start, args=(log_n, log_d, loss),
                                  bounds=EXPONENT_BOUNDS, method="trf",
                                  xtol=1e-14, ftol=1e-14, gtol=1e-14)
  return result.x


def fit(n, d, loss, grid=GRID, extra_starts=()):
  """{E, A, B, alpha, beta, a, b, rmse} of the variable-projection fit to runs (N, D, loss)."""
  n, d, loss = (np.asarray(v, float) for v in (n, d, loss))
  n_ref, d_ref = np.exp(np.mean(np.log(n))), np.exp(np.mean(np.log(d)))
  log_n, log_d = np.log(n / n_ref), np.log(d / d_ref)
  alpha, beta = _solve(log_n, log_d, loss, grid, extra_starts)
  (e, a_scaled, b_scaled), residual = _coefficients((alpha, beta), log_n, log_d, loss)
  total = alpha + beta
  return {"E": float(e), "A": float(a_scaled * n_ref ** alpha),
          "B": float(b_scaled * d_ref ** beta), "alpha": float(alpha), "beta": float(beta),
          "a": float(beta / total), "b": float(alpha / total),
          "rmse": float(np.sqrt(np.mean(residual ** 2)))}


def _interval(values, ci):
  tail = 100 * (1 - ci) / 2
  return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def approach3(points, num_samples=200, seed=0, ci=0.95):
  """The variable-projection fit of the usable points with bootstrap intervals (module
  docstring); None with fewer than 6 usable points."""
  pts = [p for p in points if p.usable]
  if len(pts) < 6:
    return None
  n, d, loss = (np.array([getattr(p, k) for p in pts], float)
                for k in ("params", "tokens", "loss"))
  best = fit(n, d, loss)
  groups = seeds.configurations(pts)
  rng = np.random.default_rng(seed)
  samples = []
  for _ in range(num_samples):
    idx = seeds.resample(groups, rng)
    samples.append(fit(n[idx], d[idx], loss[idx], BOOTSTRAP_GRID,
                       [(best["alpha"], best["beta"])]))
  keys = ("E", "A", "B", "alpha", "beta", "a", "b")
  intervals = {k: _interval([s[k] for s in samples], ci) for k in keys} if samples else {}
  return {**best, "intervals": intervals, "ci": ci, "bootstrap_samples": len(samples),
          "resampled": "configurations, then seeds within each", "num_points": len(pts),
          "num_configurations": len(groups), "residual": "loss (not log loss)"}
