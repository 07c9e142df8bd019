"""Scaling analysis of a loaded sweep: one point per run, power-law fits, isoFLOP optima.

Axes: N is the non-embedding parameter count (Kaplan et al. 2020: it gives cleaner trends than
the total) that train.py records in provenance.json; C is the training FLOPs the run reports
(`flops_seen` of its last train row); L is the last held-out loss of metrics.jsonl. Only complete
runs enter a fit; incomplete ones are kept as points marked incomplete.
"""

import collections
import dataclasses

import numpy as np

from figures import powerlaw

MIN_POINTS_FOR_OFFSET_FIT = 4   # E, A, alpha from 3 points would fit them exactly: no spread


@dataclasses.dataclass
class Point:
  run: object             # rundir.Run
  params: object          # N (float) or None
  exact_params: bool      # from provenance.json (True) or the sweep's planned size (False)
  tokens: object          # D
  flops: object           # C
  loss: object            # final held-out loss
  loss_step: object       # the step that loss was measured at
  budget: object          # isoFLOP budget from the sweep meta (None for fixed-token sweeps)

  @property
  def usable(self):
    return self.run.complete and None not in (self.params, self.flops, self.loss)


def scaling_points(sweep):
  points = []
  for run in sweep.runs:
    params = run.provenance.get("params_non_embedding")
    exact = params is not None
    if params is None:
      params = run.meta.get("planned_params")
    tokens = run.final("tokens_seen")
    flops = run.final("flops_seen")
    if flops is None and tokens is not None and run.provenance.get("train_flops_per_token"):
      flops = tokens * run.provenance["train_flops_per_token"]
    evals = [r for r in run.eval_rows if r.get("loss") is not None]
    loss, loss_step = (evals[-1]["loss"], evals[-1]["step"]) if evals else (None, None)
    if loss is None and run.complete:
      metrics, _ = run.suite_metrics("heldout")
      loss, loss_step = (metrics or {}).get("loss"), run.step
    points.append(Point(run, params, exact, tokens, flops, loss, loss_step,
                        run.meta.get("budget_flops")))
  return points


def fit_with_intervals(x, y, num_samples, seed):
  """Bootstrap power-law fit, with an offset E only when there are enough distinct x.

  Returns the bootstrap dict of figures.powerlaw plus "fit_offset"; with fewer than 2 distinct
  x, {"skipped": reason}.
  """
  distinct = len(np.unique(x))
  if distinct < 2:
    return {"skipped": f"{distinct} distinct value(s): too few for a power law"}
  fit_offset = distinct >= MIN_POINTS_FOR_OFFSET_FIT
  if not fit_offset and distinct < 3:
    # Two sizes determine A and alpha exactly: resampling them says nothing, so no interval.
    fit = powerlaw.fit_power_law(x, y, fit_offset=False)
    return {"fit": fit, "intervals": {}, "grid": np.geomspace(np.min(x), np.max(x), 100),
            "band": None, "ci": 0.95, "num_samples": 0, "num_skipped": 0, "fit_offset": False}
  result = powerlaw.bootstrap_power_law(x, y, num_samples=num_samples, seed=seed,
                                        fit_offset=fit_offset)
  result["fit_offset"] = fit_offset
  return result


def isoflop_optima(points):
  """Per budget: (budget, N_opt, L_opt, has_minimum) from a parabola in log N (Chinchilla 2)."""
  by_budget = collections.defaultdict(list)
  for p in points:
    if p.usable and p.budget is not None:
      by_budget[p.budget].append(p)
  optima = []
  for budget in sorted(by_budget):
    group = by_budget[budget]
    n_opt, l_opt, inside = powerlaw.fit_parabola_min(
        np.log([p.params for p in group]), [p.loss for p in group])
    optima.append({"budget_flops": budget, "params_opt": n_opt, "loss_opt": l_opt,
                   "minimum_inside": inside, "num_runs": len(group)})
  return optima


def optimal_size_fit(optima):
  """N_opt = k C^a by least squares in log-log over budgets whose parabola has a minimum
  (Chinchilla approach 2 finds a ~ 0.5); None with fewer than 2 such budgets."""
  good = [o for o in optima if o["minimum_inside"]]
  if len(good) < 2:
    return None
  a, log_k = np.polyfit(np.log([o["budget_flops"] for o in good]),
                        np.log([o["params_opt"] for o in good]), 1)
  return {"k": float(np.exp(log_k)), "a": float(a), "num_budgets": len(good)}


def fit_summary(result):
  """JSON-ready view of a fit_with_intervals result."""
  if result is None or "skipped" in result:
    return result
  fit = result["fit"]
  return {"E": fit.E, "A": fit.A, "alpha": fit.alpha, "fit_offset": result["fit_offset"],
          "rmse_log": fit.rmse_log, "num_points": fit.num_points,
          "ci": result["ci"], "intervals": result["intervals"],
          "bootstrap_samples": result["num_samples"]}


def describe_fit(name, result, x_symbol):
  """One printable line, e.g. `L(N) = 1.69 [1.60, 1.75] + 406 [...] / N^0.340 [...]`."""
  if result is None or "skipped" in result:
    return f"{name}: no fit ({(result or {}).get('skipped', 'no points')})"
  fit, ci = result["fit"], result["intervals"]

  def interval(key, fmt):
    return f" [{fmt.format(ci[key][0])}, {fmt.format(ci[key][1])}]" if key in ci else ""
  offset = f"{fit.E:.3f}{interval('E', '{:.3f}')} + " if result["fit_offset"] else ""
  if ci:
    how = f"{int(100 * result['ci'])}% bootstrap intervals"
  else:
    how = "2 distinct points fix A and alpha exactly: no interval"
  if fit.alpha < 1e-6:
    how += f"; alpha at its bound 0: the loss does not fall with {x_symbol} here"
  if not result["fit_offset"]:
    how += f"; E fixed at 0 with fewer than {MIN_POINTS_FOR_OFFSET_FIT} distinct points"
  return (f"{name}: L({x_symbol}) = {offset}{fit.A:.4g}{interval('A', '{:.3g}')} / "
          f"{x_symbol}^{fit.alpha:.3f}{interval('alpha', '{:.3f}')}  ({fit.num_points} runs; "
          f"{how})")
