"""How far Approaches 2 and 3 land from a known scaling law on a design like ours.

Losses are drawn from L(N, D) = E + A / N^alpha + B / D^beta plus Gaussian noise of standard
deviation `sigma` (nats, the size of a seed-to-seed spread) on results/isoflop_cpu's design: 4
budgets with 6, 8, 7 and 7 sizes, spread evenly in log N over a factor SIZE_SPAN around the true
optimum, D = C / 6N. Every draw is fitted by approach 2 (figures/isoflop.py), approach 3 with the
Huber loss (isoflop.approach3, converged and with scipy's default stopping rule as committed
single-seed results use) and approach 3 by variable projection (figures/varpro.py), each with
its bootstrap interval. The report gives, per approach, the mean estimate of a = beta / (alpha +
beta), the exponent of N_opt ∝ C^a, against the truth, and how often the 95% interval held it.

    python -m figures.synthetic_law --draws 60 --out results/synthetic_law.json
"""

import argparse
import dataclasses
import datetime
import json
import sys
import types

import numpy as np

from figures import analysis, isoflop, varpro


@dataclasses.dataclass(frozen=True)
class Law:
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  budgets: tuple    # C of each budget, FLOPs (C = 6ND)

  @property
  def a(self):
    return self.beta / (self.alpha + self.beta)

  def loss(self, n, d):
    return self.E + self.A / np.asarray(n) ** self.alpha + self.B / np.asarray(d) ** self.beta

  def params_opt(self, c):
    """N minimising L at C = 6ND: G (C/6)^a with G = (alpha A / (beta B))^(1 / (alpha + beta))."""
    g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
    return g * (c / 6) ** self.a


LAWS = {
    # Hoffmann et al. 2022's fitted constants, budgets 1e8 times ours (optima near 1e8 params).
    "chinchilla": Law(1.69, 406.4, 410.7, 0.34, 0.28, (1.5e19, 3.2e19, 7e19, 1.5e20)),
    # The committed CPU study's own Huber fit, rounded (results/isoflop_cpu/fits.json), on its
    # budgets: optima near 5k to 30k params, as there.
    "cpu": Law(1.15, 35.0, 3.6e6, 0.45, 1.08, (1.5e11, 3.2e11, 7e11, 1.5e12)),
}
SIZES_PER_BUDGET = (6, 8, 7, 7)   # results/isoflop_cpu's runs per budget
SIZE_SPAN = 8.0                   # largest / smallest N in a budget (the study's: 5.8 to 9.5)
DEFAULT_SIGMA = 0.01              # nats: an assumed seed-to-seed spread of a small run's loss


def design(law):
  """[(budget, N, D)] of the study's design under `law`."""
  out = []
  for c, k in zip(law.budgets, SIZES_PER_BUDGET):
    for n in law.params_opt(c) * np.geomspace(SIZE_SPAN ** -0.5, SIZE_SPAN ** 0.5, k):
      out.append((c, float(n), float(c / (6 * n))))
  return out


def points(law, rng=None, sigma=0.0, seeds=1):
  """figures.analysis.Point of every run of the design (and seed), losses from `law` plus
  N(0, sigma) noise (none without `rng`)."""
  out = []
  for i, (c, n, d) in enumerate(design(law)):
    for seed in range(seeds):
      noise = rng.normal(0.0, sigma) if rng is not None else 0.0
      run = types.SimpleNamespace(name=f"run{i}", seed=seed, config={}, complete=True)
      out.append(analysis.Point(run, n, True, d, c, float(law.loss(n, d) + noise), None, c))
  return out


def estimates(pts, num_samples, seed):
  """{approach: (a, 95% interval or None)} of one data set; approach 2 also under
  "approach2_all_draws" (draws without a minimum inside counted against the interval)."""
  two = isoflop.approach2(pts, num_samples, seed, by_seed=True)
  huber = isoflop.approach3(pts, num_samples, seed, by_seed=True)
  legacy = isoflop.approach3(pts, num_samples, seed)
  vp = varpro.approach3(pts, num_samples, seed)
  return {"approach2": (two["a"], two["a_interval"]),
          "approach2_all_draws": (two["a"], two.get("a_interval_all_draws")),
          "approach3_huber": (huber["a"], huber["intervals"].get("a")),
          "approach3_huber_default_stopping": (legacy["a"], legacy["intervals"].get("a")),
          "approach3_varpro": (vp["a"], vp["intervals"].get("a"))}


def _covers(interval, truth):
  return interval is not None and None not in interval and interval[0] <= truth <= interval[1]


def study(law, draws, sigma, num_samples, seed=0):
  """Per approach: mean a over the draws, its bias against law.a, the spread of a, the share of
  draws whose interval held law.a (coverage; a draw without an interval, as approach 2 gives
  when more than 5% of its bootstrap draws fail and count against it, is a miss), the draws
  without an interval and without an estimate."""
  rng = np.random.default_rng(seed)
  found = {}
  for i in range(draws):
    for name, value in estimates(points(law, rng, sigma), num_samples, seed + i).items():
      found.setdefault(name, []).append(value)
  summary = {}
  for name, values in found.items():
    a = np.array([v[0] for v in values if v[0] is not None], float)
    summary[name] = {
        "mean_a": float(a.mean()) if len(a) else None,
        "bias": float(a.mean() - law.a) if len(a) else None,
        "std_a": float(a.std(ddof=1)) if len(a) > 1 else None,
        "coverage": float(np.mean([_covers(v[1], law.a) for v in values])),
        "draws_without_interval": int(sum(v[1] is None or None in v[1] for v in values)),
        "draws_without_estimate": int(draws - len(a))}
  return summary


def run_all(draws, sigma, num_samples, seed=0, laws=tuple(LAWS)):
  """The JSON record of the CLI: settings, design and study() per law."""
  record = {"date": datetime.date.today().isoformat(), "draws": draws, "sigma": sigma,
            "noise": "Gaussian, added to each run's final loss (nats)",
            "bootstrap_samples": num_samples, "ci": 0.95, "seed": seed,
            "design": {"sizes_per_budget": list(SIZES_PER_BUDGET), "size_span": SIZE_SPAN,
                       "compute": "C = 6ND"},
            "laws": {}}
  for name in laws:
    law = LAWS[name]
    record["laws"][name] = {"truth": {**dataclasses.asdict(law), "a": law.a},
                            "approaches": study(law, draws, sigma, num_samples, seed)}
  return record


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--draws", type=int, default=60, help="synthetic data sets per law")
  parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                      help="noise std of each final loss, nats")
  parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples per fit")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--law", action="append", help=" | ".join(LAWS) + " (default: all)")
  parser.add_argument("--out", required=True, help="JSON file to write")
  args = parser.parse_args(argv)
  bad = [f"--draws={args.draws} (need >= 1)"] if args.draws < 1 else []
  bad += [f"--bootstrap={args.bootstrap} (need >= 1)"] if args.bootstrap < 1 else []
  bad += [f"--sigma={args.sigma} (need >= 0)"] if not args.sigma >= 0 else []
  bad += [f"--law={k!r} (valid: {', '.join(LAWS)})" for k in args.law or [] if k not in LAWS]
  if bad:
    print("error: " + "; ".join(bad), file=sys.stderr)
    return 2
  record = run_all(args.draws, args.sigma, args.bootstrap, args.seed, tuple(args.law or LAWS))
  with open(args.out, "w") as f:
    f.write(json.dumps(record, indent=2) + "\n")
  for name, entry in record["laws"].items():
    for approach, s in entry["approaches"].items():
      print(f"{name} {approach}: a = {s['mean_a']} (truth {entry['truth']['a']:.4f}), "
            f"bias {s['bias']}, coverage {s['coverage']:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
