"""Scaling analysis of a loaded sweep: one point per run, power-law fits, isoFLOP optima.

Axes: N is the non-embedding parameter count (Kaplan et al. 2020: it gives cleaner trends than
the total) that train.py records in provenance.json, or the total (`params="total"`, Chinchilla's
choice); C is the training FLOPs in one of FLOP_ACCOUNTINGS, by default what the run reports
(`flops_seen` of its last train row: 6N + attention + output layer, models.counting); L is the
last held-out loss of metrics.jsonl. Only complete runs enter a fit; incomplete ones are kept as
points marked incomplete. Which N and C a fit used is recorded with it (`accounting`): Porian et
al. 2024 trace most of the Kaplan/Chinchilla disagreement to this choice.
"""

import dataclasses

import numpy as np

from configs.errors import ConfigError
from figures import powerlaw

MIN_POINTS_FOR_OFFSET_FIT = 4   # E, A, alpha from 3 points would fit them exactly: no spread

# C per token, from models.counting.flops_breakdown's parts.
FLOP_ACCOUNTINGS = {
    "6N": ("6N",),                                         # Kaplan et al. 2020
    "6N+attention": ("6N", "attention"),                   # Kaplan's C with the context term
    "6N+attention+head": ("6N", "attention", "head", "per_sequence"),  # train.py's flops_seen
}
DEFAULT_FLOPS = "6N+attention+head"
PARAM_COUNTS = {"non_embedding": "params_non_embedding", "total": "params_total"}
DEFAULT_PARAMS = "non_embedding"


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
  # C per token in this accounting / in train.py's: converts a budget planned in train.py's
  # accounting (figures/isoflop.py). 1.0 under the default accounting.
  flop_ratio: float = 1.0

  @property
  def usable(self):
    return self.run.complete and None not in (self.params, self.flops, self.loss)


def check_accounting(flops, params):
  """Raises ValueError naming the bad choice and the valid ones."""
  if flops not in FLOP_ACCOUNTINGS:
    raise ValueError(f"flops={flops!r} is not one of {', '.join(map(repr, FLOP_ACCOUNTINGS))}")
  if params not in PARAM_COUNTS:
    raise ValueError(f"params={params!r} is not one of {', '.join(map(repr, PARAM_COUNTS))}")


def accounting_record(flops, params):
  """What a fitted number was measured in, stored beside it."""
  return {"flops": flops, "flops_parts": list(FLOP_ACCOUNTINGS[flops]), "params": params}


_BREAKDOWNS = {}


def flops_breakdown(run):
  """models.counting's per-token FLOP parts (through the objective's FlopTerms) for this run's model and objective, or None."""
  model, data = run.config.get("model"), run.config.get("data", {})
  objective = run.config.get("objective", {})
  if not model or "seq_len" not in data or "name" not in objective:
    return None
  key = repr((sorted(model.items()), data["seq_len"], sorted(objective.items())))
  if key not in _BREAKDOWNS:
    # late: start-up time (JAX and the models load only when a run's FLOPs are counted)
    import objectives
    from configs import base
    defaults = base.get_config()  # a config.json from an older pancake may lack newer fields
    defaults.model.update({k: v for k, v in model.items() if k in defaults.model})
    defaults.objective.update({k: v for k, v in objective.items() if k in defaults.objective})
    try:
      _BREAKDOWNS[key] = objectives.flops_breakdown(
          defaults.model, data["seq_len"], objective["name"], defaults.objective)
    except (ConfigError, KeyError, TypeError, ValueError):
      _BREAKDOWNS[key] = None  # not countable: its C is unknown in this accounting
  return _BREAKDOWNS[key]


def scaling_points(sweep, flops=DEFAULT_FLOPS, params=DEFAULT_PARAMS):
  """One Point per run, N and C in the chosen accounting (module docstring)."""
  check_accounting(flops, params)
  points = []
  for run in sweep.runs:
    n = run.provenance.get(PARAM_COUNTS[params])
    exact = n is not None
    if n is None and params == DEFAULT_PARAMS:
      n = run.meta.get("planned_params")
    tokens = run.final("tokens_seen")
    c = run.final("flops_seen")
    if c is None and tokens is not None and run.provenance.get("train_flops_per_token"):
      c = tokens * run.provenance["train_flops_per_token"]
    ratio = 1.0
    if flops != DEFAULT_FLOPS:
      parts = flops_breakdown(run)
      if parts is None or tokens is None:
        c, ratio = None, None
      else:
        chosen = sum(parts[k] for k in FLOP_ACCOUNTINGS[flops])
        ratio = chosen / sum(parts[k] for k in FLOP_ACCOUNTINGS[DEFAULT_FLOPS])
        c = tokens * chosen
    evals = [r for r in run.eval_rows if r.get("loss") is not None]
    loss, loss_step = (evals[-1]["loss"], evals[-1]["step"]) if evals else (None, None)
    if loss is None and run.complete:
      metrics, _ = run.suite_metrics("heldout")
      loss, loss_step = (metrics or {}).get("loss"), run.step
    points.append(Point(run, n, exact, tokens, c, loss, loss_step,
                        run.meta.get("budget_flops"), ratio))
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
