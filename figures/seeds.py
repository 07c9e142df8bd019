"""Seeds in the bootstrap: runs that differ only in their seed form one configuration.

A configuration is everything about a run except its seed: the budget, N, D and its config.json
with the seed fields (SEED_FIELDS) left out. The bootstrap of figures/isoflop.py and
figures/varpro.py resamples configurations with replacement and then, inside each drawn
configuration, its seeds with replacement, so the seed-to-seed spread is in every interval.
With one seed per configuration this is the usual case bootstrap.
"""

import json

import numpy as np

# config.json fields that differ between seeds of one configuration (trainlib writes the run's
# seed at the top level and copies it into the data and eval sections).
SEED_FIELDS = (("seed",), ("data", "seed"), ("eval", "seed"), ("train", "seed"))


def _config_without_seeds(config):
  config = json.loads(json.dumps(config or {}))
  for path in SEED_FIELDS:
    section = config
    for key in path[:-1]:
      section = section.get(key) if isinstance(section, dict) else None
    if isinstance(section, dict):
      section.pop(path[-1], None)
  return json.dumps(config, sort_keys=True)


def configurations(points):
  """[[index into points]] of the points that share a configuration (module docstring), in
  order of first appearance."""
  groups = {}
  for i, p in enumerate(points):
    key = (p.budget, p.params, p.tokens, _config_without_seeds(p.run.config))
    groups.setdefault(key, []).append(i)
  return [np.array(g) for g in groups.values()]


def has_replicates(points):
  """True when some configuration was run with more than one seed."""
  return any(len(g) > 1 for g in configurations(points))


def resample(groups, rng):
  """Indices of one bootstrap draw: the configurations with replacement, then each drawn
  configuration's seeds with replacement."""
  drawn = rng.integers(0, len(groups), len(groups))
  return np.concatenate([groups[g][rng.integers(0, len(groups[g]), len(groups[g]))]
                         for g in drawn])


def spread(points):
  """Per configuration: its run name, budget, N, seeds, and the mean and sample standard
  deviation of its final losses (None with one seed)."""
  out = []
  for group in configurations(points):
    members = [points[i] for i in group]
    loss = np.array([p.loss for p in members], float)
    out.append({"run": members[0].run.name, "budget_flops": members[0].budget,
                "params": members[0].params, "seeds": [p.run.seed for p in members],
                "loss_mean": float(loss.mean()),
                "loss_std": float(loss.std(ddof=1)) if len(loss) > 1 else None})
  return out


def interval_counting_failures(values, failures, ci):
  """The central `ci` interval of all draws when `failures` further draws gave no value. Each
  failure lies outside any interval (half below, half above), so it counts against the coverage
  instead of being dropped; both ends are None (no such interval) once the failures alone
  exceed the two tails, 1 - ci of the draws."""
  values = np.asarray(values, float)
  tail = (1 - ci) / 2 * (len(values) + failures)
  lo_rank = tail - failures / 2     # rank among the values: the failures below are counted
  if lo_rank < 0 or len(values) == 0:
    return [None, None]
  return [float(np.quantile(values, lo_rank / len(values))),
          float(np.quantile(values, 1 - lo_rank / len(values)))]
