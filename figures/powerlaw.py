"""Power-law fits L(x) = E + A / x^alpha with bootstrap confidence intervals (scipy).

The fit minimises squared residuals of log L (Hoffmann et al. 2022 fit in log space too), so
every point weighs the same whatever its loss, over a grid of starting points (the surface has
flat directions when E and A trade off). x is scaled by its geometric mean while fitting, which
keeps the problem well conditioned for x from 1e4 to 1e23; A is reported in the original units.
"""

import dataclasses
import itertools

import numpy as np
from scipy import optimize


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
  E: float          # irreducible loss (0 when fitted without an offset)
  A: float
  alpha: float
  x_ref: float      # the geometric mean of x used for scaling (A is in unscaled units)
  rmse_log: float   # root-mean-square residual of log L
  num_points: int

  def predict(self, x):
    x = np.asarray(x, dtype=np.float64)
    # A / x^alpha as (A x_ref^-alpha) (x / x_ref)^-alpha: no overflow for x ~ 1e23.
    return self.E + self._a_scaled() * (x / self.x_ref) ** -self.alpha

  def _a_scaled(self):
    return float(np.exp(np.log(self.A) - self.alpha * np.log(self.x_ref)))

  def as_dict(self):
    return dataclasses.asdict(self)


def _check(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
  if np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(x) & np.isfinite(y)):
    raise ValueError("x and y must be finite and positive")
  return x, y


def _solve(logu, logy, start, fit_offset):
  """One least-squares solve from `start` = (log E, log B, alpha); returns (params, cost)."""
  if fit_offset:
    def residual(p):
      return np.logaddexp(p[0], p[1] - p[2] * logu) - logy
    low = [np.min(logy) - 30.0, -50.0, 0.0]
    high = [np.min(logy) - 1e-9, 50.0, 10.0]
    start = np.clip(start, np.array(low) + 1e-9, np.array(high) - 1e-9)
  else:
    def residual(p):
      return p[0] - p[1] * logu - logy
    low, high, start = [-50.0, 0.0], [50.0, 10.0], np.clip(start[1:], [-49, 0], [49, 9.9])
  result = optimize.least_squares(residual, start, bounds=(low, high), method="trf",
                                  x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
  return result.x, 2.0 * result.cost


def _starts(logy):
  """Grid of starting points: E a fraction of the smallest loss, alpha from 0.05 to 1."""
  y_min, y_mean = np.exp(np.min(logy)), np.exp(np.mean(logy))
  for e_frac, alpha in itertools.product((1e-6, 0.5, 0.9), (0.05, 0.3, 1.0)):
    e = e_frac * y_min
    yield np.array([np.log(e), np.log(max(y_mean - e, 1e-6 * y_mean)), alpha])


def fit_power_law(x, y, fit_offset=True, start=None):
  """Least-squares fit of y = E + A / x^alpha (E = 0 if not fit_offset) in log space.

  Needs at least 3 distinct x with an offset (3 parameters), 2 without.
  """
  x, y = _check(x, y)
  needed = 3 if fit_offset else 2
  if len(np.unique(x)) < needed:
    raise ValueError(f"a power law{' with offset' if fit_offset else ''} needs >= {needed} "
                     f"distinct x values, got {len(np.unique(x))}")
  x_ref = float(np.exp(np.mean(np.log(x))))
  logu, logy = np.log(x / x_ref), np.log(y)
  starts = [start] if start is not None else list(_starts(logy))
  best, best_cost = None, np.inf
  for s in starts:
    params, cost = _solve(logu, logy, np.asarray(s, np.float64), fit_offset)
    if cost < best_cost:
      best, best_cost = params, cost
  if fit_offset:
    log_e, log_b, alpha = best
    e = float(np.exp(log_e))
  else:
    (log_b, alpha), e = best, 0.0
  a = float(np.exp(log_b + alpha * np.log(x_ref)))
  return PowerLawFit(E=e, A=a, alpha=float(alpha), x_ref=x_ref,
                     rmse_log=float(np.sqrt(best_cost / len(x))), num_points=len(x))


def _start_of(fit):
  log_b = np.log(fit.A) - fit.alpha * np.log(fit.x_ref)
  return np.array([np.log(max(fit.E, 1e-300)), log_b, fit.alpha])


def bootstrap_power_law(x, y, num_samples=1000, seed=0, ci=0.95, grid=None, fit_offset=True):
  """The fit plus bootstrap intervals: resample the points with replacement and refit.

  Returns {"fit": PowerLawFit, "intervals": {E, A, alpha: (low, high)}, "grid": x values,
  "band": (low, high) of the fitted curve on the grid, "num_samples": fits that succeeded}.
  Resamples with fewer distinct x than parameters are skipped (counted in num_skipped).
  """
  x, y = _check(x, y)
  fit = fit_power_law(x, y, fit_offset=fit_offset)
  if grid is None:
    grid = np.geomspace(np.min(x), np.max(x), 100)
  grid = np.asarray(grid, np.float64)
  rng = np.random.default_rng(seed)
  needed = 3 if fit_offset else 2
  params, curves, skipped = [], [], 0
  for _ in range(num_samples):
    idx = rng.integers(0, len(x), len(x))
    if len(np.unique(x[idx])) < needed:
      skipped += 1
      continue
    # Starting from the full-data fit converges in a few iterations; the grid is the fallback.
    sample = fit_power_law(x[idx], y[idx], fit_offset, start=_start_of(fit))
    if sample.rmse_log > 2 * fit.rmse_log + 0.05:
      sample = fit_power_law(x[idx], y[idx], fit_offset)
    params.append((sample.E, sample.A, sample.alpha))
    curves.append(sample.predict(grid))
  tail = 100 * (1 - ci) / 2
  intervals, band = {}, (fit.predict(grid), fit.predict(grid))
  if params:
    params = np.array(params)
    for i, key in enumerate(("E", "A", "alpha")):
      lo, hi = np.percentile(params[:, i], [tail, 100 - tail])
      intervals[key] = (float(lo), float(hi))
    band = tuple(np.percentile(np.array(curves), [tail, 100 - tail], axis=0))
  return {"fit": fit, "intervals": intervals, "grid": grid, "band": band, "ci": ci,
          "num_samples": len(params), "num_skipped": skipped}


def fit_parabola_min(log_x, y, bounds=None):
  """Vertex of y = a (log x)^2 + b log x + c: (x at the minimum, y there, True if a > 0).

  The isoFLOP profile of one budget (Chinchilla approach 2). Without a minimum inside the
  sampled sizes (a <= 0, or the vertex beyond the smallest or largest size: the grid missed
  the optimum) the best observed point is returned with False. `bounds`: the (low, high) log x
  the vertex must lie in, instead of the sampled range (a bootstrap draw that left out an end
  size is still judged against the budget's full range).
  """
  log_x, y = np.asarray(log_x, np.float64), np.asarray(y, np.float64)
  if len(np.unique(log_x)) >= 3:
    a, b, c = np.polyfit(log_x, y, 2)
    vertex = -b / (2 * a) if a > 0 else np.inf
    low, high = bounds if bounds is not None else (log_x.min(), log_x.max())
    if low <= vertex <= high:
      return float(np.exp(vertex)), float(a * vertex * vertex + b * vertex + c), True
  i = int(np.argmin(y))
  return float(np.exp(log_x[i])), float(y[i]), False
