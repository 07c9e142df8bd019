"""isoFLOP analysis with bootstrap intervals: Chinchilla's Approaches 2 and 3 (Hoffmann et al. 2022).

Input: the usable points of a fixed-compute sweep (figures.analysis.Point: N, D, C, loss, budget).

Approach 2, per budget: a parabola of the final loss in log N gives N_opt and L_opt, one in log D
gives D_opt. Then N_opt = k_N C^a and D_opt = k_D C^b by least squares in log-log over the
budgets. Intervals come from a case bootstrap: every resample redraws each budget's runs with
replacement and repeats both steps. A resample in which some budget has fewer than 3 distinct
sizes, or a parabola with no minimum inside that budget's range of sizes, is dropped and
counted (`dropped`). The dropped share is reported, because dropping draws is how such
intervals come out too narrow (Besiroglu et al. 2024).

Approach 3: L(N, D) = E + A / N^alpha + B / D^beta. It is fitted in log space with a Huber loss
(delta 1e-3) with L-BFGS-B from the best 8 points of a grid of starts, as Hoffmann et al. do
(their Appendix D.2). It implies N_opt ∝ C^(beta / (alpha + beta)) and D_opt ∝ C^(alpha / (alpha +
beta)) when C ∝ N D. Intervals come from a case bootstrap over all runs.

With several seeds per configuration (`by_seed`, figures/seeds.py), both bootstraps resample
configurations and then seeds within each, and approach 2 also reports its intervals with the
dropped draws counted against them. figures/varpro.py fits approach 3 by variable projection.

C here is the budget in the accounting the sweep planned with. The accounting used for the C
axis is recorded with every number (figures.analysis.FLOP_ACCOUNTINGS).
"""

import itertools

import numpy as np
from scipy import optimize

from figures import powerlaw, seeds

HUBER_DELTA = 1e-3
# L-BFGS-B's stopping rule for the Huber fit of runs with several seeds (by_seed). scipy's
# defaults (gtol 1e-5) stop it early: Huber gradients are at most delta per run, so on noise-free
# Chinchilla-law data it stops at beta 0.235 instead of 0.28, and a bootstrap draw started at the
# full-data fit barely moves from it. Single-seed sweeps keep the defaults so the committed
# results regenerate byte for byte.
CONVERGED_LBFGS = {"ftol": 1e-15, "gtol": 1e-14, "maxiter": 20000}


def by_budget(points):
  """{budget: [points]} of the usable points that belong to a budget, each list sorted by N."""
  groups = {}
  for p in points:
    if p.usable and p.budget is not None:
      groups.setdefault(p.budget, []).append(p)
  return {b: sorted(g, key=lambda p: p.params) for b, g in sorted(groups.items())}


def _log_compute(budget, log_n, n, ratio):
  """log C of a budget in the chosen accounting: the planned budget times that accounting's
  share at the optimal size (interpolated in log N between the budget's runs)."""
  order = np.argsort(n)
  return np.log(budget) + np.interp(log_n, np.log(n[order]), np.log(ratio[order]))


def _profile_optima(groups, ranges=None):
  """[(log C, log N_opt, log D_opt, L_opt)] of one draw; None if a budget has no minimum.
  `ranges`: {budget: ((log N min, max), (log D min, max))} that a minimum must lie in."""
  out = []
  for budget, (n, d, loss, ratio) in groups.items():
    n_range, d_range = (ranges or {}).get(budget, (None, None))
    n_opt, l_opt, n_inside = powerlaw.fit_parabola_min(np.log(n), loss, n_range)
    d_opt, _, d_inside = powerlaw.fit_parabola_min(np.log(d), loss, d_range)
    if not (n_inside and d_inside):
      return None
    log_n = np.log(n_opt)
    out.append((_log_compute(budget, log_n, n, ratio), log_n, np.log(d_opt), l_opt))
  return out


def _exponents(optima):
  c = np.array([o[0] for o in optima])
  a, log_kn = np.polyfit(c, [o[1] for o in optima], 1)
  b, log_kd = np.polyfit(c, [o[2] for o in optima], 1)
  return a, log_kn, b, log_kd


def _interval(values, ci):
  tail = 100 * (1 - ci) / 2
  lo, hi = np.percentile(values, [tail, 100 - tail])
  return [float(lo), float(hi)]


def approach2(points, num_samples=1000, seed=0, ci=0.95, by_seed=False):
  """Per-budget optima and the N_opt, D_opt exponents, with bootstrap intervals (see module).

  `by_seed`: resample each budget's configurations, then seeds within each (figures/seeds.py),
  and add "a_interval_all_draws", "b_interval_all_draws" (draws without a minimum inside counted
  against the interval, seeds.interval_counting_failures) beside the intervals of the kept draws.

  Returns {"budgets": [{budget_flops, compute (in the points' accounting), params_opt,
  tokens_opt, loss_opt, minimum_inside,
  num_runs, params_opt_interval, tokens_opt_interval}], "a", "b", "k_params", "k_tokens",
  "a_interval", "b_interval", "bootstrap_samples", "dropped", "ci"}; "a" etc. are None with
  fewer than 2 budgets whose profile has a minimum inside its sizes.
  """
  groups = {b: tuple(np.array([getattr(p, k) for p in g], float)
                    for k in ("params", "tokens", "loss", "flop_ratio"))
            for b, g in by_budget(points).items()}
  budgets = []
  for budget, (n, d, loss, ratio) in groups.items():
    n_opt, l_opt, n_inside = powerlaw.fit_parabola_min(np.log(n), loss)
    d_opt, _, d_inside = powerlaw.fit_parabola_min(np.log(d), loss)
    inside = n_inside and d_inside
    if not inside:  # no minimum inside: the best run, flagged (the grid missed the optimum)
      i = int(np.argmin(loss))
      n_opt, d_opt, l_opt = float(n[i]), float(d[i]), float(loss[i])
    budgets.append({"budget_flops": float(budget),
                    "compute": float(np.exp(_log_compute(budget, np.log(n_opt), n, ratio))),
                    "params_opt": n_opt, "tokens_opt": d_opt,
                    "loss_opt": l_opt, "minimum_inside": inside, "num_runs": len(n)})
  result = {"budgets": budgets, "a": None, "b": None, "k_params": None, "k_tokens": None,
            "a_interval": None, "b_interval": None, "ci": ci, "bootstrap_samples": 0,
            "dropped": 0}
  good = {b: g for b, g in groups.items()
          if any(o["minimum_inside"] and o["budget_flops"] == b for o in budgets)}
  if len(good) < 2:
    return result
  a, log_kn, b, log_kd = _exponents(_profile_optima(good))
  result.update(a=float(a), b=float(b), k_params=float(np.exp(log_kn)),
                k_tokens=float(np.exp(log_kd)))
  ranges = {bud: tuple((float(np.log(x).min()), float(np.log(x).max())) for x in arrays[:2])
            for bud, arrays in good.items()}
  configs = {bud: seeds.configurations(g) for bud, g in by_budget(points).items()}
  rng = np.random.default_rng(seed)
  draws, per_budget, dropped = [], {bud: [] for bud in good}, 0
  for _ in range(num_samples):
    sample = {}
    for bud, arrays in good.items():
      idx = (seeds.resample(configs[bud], rng) if by_seed
             else rng.integers(0, len(arrays[0]), len(arrays[0])))
      sample[bud] = tuple(x[idx] for x in arrays)
    optima = _profile_optima(sample, ranges)
    if optima is None:
      dropped += 1
      continue
    draws.append(_exponents(optima)[::2])
    for bud, (_, log_n, log_d, _) in zip(sample, optima):
      per_budget[bud].append((log_n, log_d))
  if draws:
    draws = np.array(draws)
    result.update(a_interval=_interval(draws[:, 0], ci), b_interval=_interval(draws[:, 1], ci))
    for entry in budgets:
      values = np.array(per_budget.get(entry["budget_flops"], []))
      if len(values):
        entry["params_opt_interval"] = [float(np.exp(v)) for v in _interval(values[:, 0], ci)]
        entry["tokens_opt_interval"] = [float(np.exp(v)) for v in _interval(values[:, 1], ci)]
  result.update(bootstrap_samples=len(draws), dropped=dropped)
  if by_seed:
    result.update(
        resampled="configurations, then seeds within each",
        a_interval_all_draws=seeds.interval_counting_failures(
            draws[:, 0] if len(draws) else [], dropped, ci),
        b_interval_all_draws=seeds.interval_counting_failures(
            draws[:, 1] if len(draws) else [], dropped, ci))
  return result


def _approach3_objective(theta, log_n, log_d, log_l, delta=HUBER_DELTA):
  """Huber loss of log L(N, D) - log L over the runs, and its gradient in theta."""
  e, a, b, alpha, beta = theta
  terms = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])
  top = terms.max(axis=0)
  weights = np.exp(terms - top)
  total = weights.sum(axis=0)
  pred = top + np.log(total)
  weights /= total                      # d pred / d term: a softmax over the three terms
  r = pred - log_l
  loss = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
  g = np.clip(r, -delta, delta)         # Huber's derivative
  grad = np.array([np.sum(g * weights[0]), np.sum(g * weights[1]), np.sum(g * weights[2]),
                   -np.sum(g * weights[1] * log_n), -np.sum(g * weights[2] * log_d)])
  return float(loss.sum()), grad


def _approach3_solve(log_n, log_d, log_l, starts, keep=8, options=None):
  """Best L-BFGS-B solution from the `keep` starting points with the lowest loss."""
  starts = sorted(starts, key=lambda t: _approach3_objective(t, log_n, log_d, log_l)[0])[:keep]
  best = None
  bounds = [(-10, 5), (-20, 40), (-20, 40), (0.0, 3.0), (0.0, 3.0)]
  for start in starts:
    res = optimize.minimize(_approach3_objective, start, args=(log_n, log_d, log_l),
                            jac=True, method="L-BFGS-B", bounds=bounds,
                            options=options)
    if best is None or res.fun < best.fun:
      best = res
  return best.x, best.fun


def _approach3_starts():
  """Hoffmann et al.'s grid, coarser: E in log space, A and B as log coefficients."""
  for e, a, b, alpha, beta in itertools.product((-1.0, 0.5, 1.5), (0.0, 5.0, 10.0),
                                                (0.0, 5.0, 10.0), (0.2, 0.5), (0.2, 0.5)):
    yield np.array([e, a, b, alpha, beta])


def approach3(points, num_samples=200, seed=0, ci=0.95, by_seed=False):
  """The parametric fit L(N, D) = E + A/N^alpha + B/D^beta with bootstrap intervals (module).
  None with fewer than 6 usable points (5 parameters). `by_seed`: resample configurations, then
  seeds (figures/seeds.py), and run L-BFGS-B to convergence (CONVERGED_LBFGS)."""
  pts = [p for p in points if p.usable]
  if len(pts) < 6:
    return None
  log_n = np.log([p.params for p in pts])
  log_d = np.log([p.tokens for p in pts])
  log_l = np.log([p.loss for p in pts])
  options = CONVERGED_LBFGS if by_seed else None
  theta, cost = _approach3_solve(log_n, log_d, log_l, list(_approach3_starts()), options=options)

  def summary(t):
    e, a, b, alpha, beta = t
    total = alpha + beta
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
            "alpha": float(alpha), "beta": float(beta),
            "a": float(beta / total) if total > 0 else None,
            "b": float(alpha / total) if total > 0 else None}
  fit = summary(theta)
  rng = np.random.default_rng(seed)
  configs = seeds.configurations(pts)
  samples = []
  for _ in range(num_samples):
    idx = seeds.resample(configs, rng) if by_seed else rng.integers(0, len(pts), len(pts))
    t, _ = _approach3_solve(log_n[idx], log_d[idx], log_l[idx], [theta], options=options)
    samples.append(summary(t))
  intervals = {k: _interval([s[k] for s in samples if s[k] is not None], ci)
               for k in fit if any(s[k] is not None for s in samples)}
  residual = np.logaddexp(np.logaddexp(theta[0], theta[1] - theta[3] * log_n),
                          theta[2] - theta[4] * log_d) - log_l
  extra = {"resampled": "configurations, then seeds within each",
           "lbfgs_options": CONVERGED_LBFGS} if by_seed else {}
  return {**fit, **extra, "intervals": intervals, "ci": ci, "bootstrap_samples": len(samples),
          "huber_delta": HUBER_DELTA, "huber_loss": float(cost),
          "rmse_log": float(np.sqrt(np.mean(residual ** 2))), "num_points": len(pts)}


def predict(fit, n, d):
  """L(N, D) of an approach3() fit."""
  return fit["E"] + fit["A"] / np.asarray(n, float) ** fit["alpha"] + \
      fit["B"] / np.asarray(d, float) ** fit["beta"]


def parabola(points_of_budget):
  """(log N grid, loss on it) of one budget's parabola, for the figure; None under 3 sizes."""
  n = np.array([p.params for p in points_of_budget], float)
  if len(np.unique(n)) < 3:
    return None
  coeffs = np.polyfit(np.log(n), [p.loss for p in points_of_budget], 2)
  grid = np.geomspace(n.min(), n.max(), 100)
  return grid, np.polyval(coeffs, np.log(grid))

