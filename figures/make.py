"""Regenerates every figure and table from run directories: one command, no other input.

    python -m figures.make --root runs/ablation_cpu --root runs/scaling_cpu --out results/

For each sweep recorded in a root's sweep.json (or, without one, all run directories under it):
  OUT/<sweep>/learning_curves.{png,pdf}       train and held-out loss vs tokens and vs FLOPs
  ablation sweeps:
  OUT/<sweep>/ablation_table.{md,tex,json}    objectives x eval suites, mean ± std over seeds
  scaling sweeps:
  OUT/<sweep>/scaling_table.{md,tex}          every run: size, budget, loss, state
  OUT/<sweep>/loss_vs_params.{png,pdf}        L(N) = E + A / N^alpha with a bootstrap band
  OUT/<sweep>/loss_vs_compute.{png,pdf}       L(C), same form, with the learning curves
  OUT/<sweep>/isoflop.{png,pdf}               (fixed-compute sweeps) isoFLOP profiles, N_opt(C)
  OUT/<sweep>/fits.json                       fitted values and intervals (also printed)
  OUT/README.md                               all tables, fits and figures on one page
Incomplete runs (running, failed, or short of num_steps) appear as such and are never averaged
or fitted.
"""

import argparse
import json
import os
import sys

import numpy as np

from configs import paths
from configs.errors import ConfigError
from figures import analysis, plots, rundir, tables


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)
  return path


def _write_table(table, base):
  return [_write(base + ".md", table.to_markdown()), _write(base + ".tex", table.to_latex())]


def _scaling(sweep, out_dir, num_samples, seed, log, formats):
  """Tables, fits and figures of a scaling sweep; returns (files, fits dict, printed lines)."""
  points = analysis.scaling_points(sweep)
  usable = [p for p in points if p.usable]
  files = _write_table(tables.scaling_table(sweep, points),
                       os.path.join(out_dir, "scaling_table"))
  files += plots.save(plots.learning_curves(sweep, points),
                      os.path.join(out_dir, "learning_curves"), formats)
  fits = {"excluded_runs": {f"{p.run.name}/seed{p.run.seed}": p.run.state_text
                            for p in points if not p.usable}}
  lines = []
  if sweep.budget == "compute":
    optima = analysis.isoflop_optima(points)
    c = np.array([o["budget_flops"] for o in optima])
    loss = np.array([o["loss_opt"] for o in optima])
    fit_c = analysis.fit_with_intervals(c, loss, num_samples, seed) if len(c) else None
    size_fit = analysis.optimal_size_fit(optima)
    files += plots.save(plots.isoflop_profiles(sweep, points, optima, size_fit),
                        os.path.join(out_dir, "isoflop"), formats)
    files += plots.save(plots.loss_vs_compute(sweep, points, fit_c, optima=optima),
                        os.path.join(out_dir, "loss_vs_compute"), formats)
    fits.update(isoflop_optima=optima, loss_vs_compute=analysis.fit_summary(fit_c),
                optimal_params_vs_compute=size_fit)
    lines.append(analysis.describe_fit(f"{sweep.name} isoFLOP minima", fit_c, "C"))
    if size_fit:
      lines.append(f"{sweep.name}: N_opt(C) = {size_fit['k']:.3g} C^{size_fit['a']:.3f} "
                   f"({size_fit['num_budgets']} budgets)")
  else:
    n = np.array([p.params for p in usable], np.float64)
    c = np.array([p.flops for p in usable], np.float64)
    loss = np.array([p.loss for p in usable], np.float64)
    fit_n = analysis.fit_with_intervals(n, loss, num_samples, seed) if len(n) else None
    fit_c = analysis.fit_with_intervals(c, loss, num_samples, seed) if len(c) else None
    files += plots.save(plots.loss_vs_params(sweep, points, fit_n),
                        os.path.join(out_dir, "loss_vs_params"), formats)
    files += plots.save(plots.loss_vs_compute(sweep, points, fit_c),
                        os.path.join(out_dir, "loss_vs_compute"), formats)
    fits.update(loss_vs_params=analysis.fit_summary(fit_n),
                loss_vs_compute=analysis.fit_summary(fit_c))
    lines.append(analysis.describe_fit(f"{sweep.name}", fit_n, "N"))
    lines.append(analysis.describe_fit(f"{sweep.name}", fit_c, "C"))
  if fits["excluded_runs"]:
    lines.append(f"{sweep.name}: not fitted (incomplete): " + ", ".join(
        f"{k} {v}" for k, v in fits["excluded_runs"].items()))
  files.append(_write(os.path.join(out_dir, "fits.json"), json.dumps(fits, indent=2) + "\n"))
  for line in lines:
    log(line)
  return files, fits, lines


def _ablation(sweep, out_dir, formats):
  table, data = tables.ablation_table(sweep)
  files = _write_table(table, os.path.join(out_dir, "ablation_table"))
  files.append(_write(os.path.join(out_dir, "ablation_table.json"),
                      json.dumps(data, indent=2) + "\n"))
  files += plots.save(plots.learning_curves(sweep), os.path.join(out_dir, "learning_curves"),
                      formats)
  return files, table


def make_all(roots, out, num_samples=1000, seed=0, log=print, formats=("png", "pdf")):
  """Every table and figure for the sweeps under `roots`; returns {sweep name: file paths}.

  `formats`: figure file types; `log`: where fitted values and tables are printed. OUT/README.md
  quotes the command with `roots` and `out` as given (so regenerating on another machine gives
  the same file); every read and write uses them made absolute (configs/paths.py).
  """
  if isinstance(roots, str):
    roots = [roots]
  shown = "python -m figures.make " + " ".join(f"--root {r}" for r in roots) + f" --out {out}"
  roots, out = [paths.absolute(r) for r in roots], paths.absolute(out)
  sweeps = []
  for root in roots:
    found = rundir.load_sweeps(root)
    if not found:
      raise ConfigError(f"--root={root!r} holds no sweep.json and no run directories "
                        f"(directories with config.json or status.json)")
    sweeps += found
  os.makedirs(out, exist_ok=True)
  written, index = {}, ["# Results", "", f"Generated by `{shown}`.", ""]
  for sweep in sweeps:
    name = sweep.name
    while name in written:  # two roots with a sweep of the same name
      name += "_"
    out_dir = os.path.join(out, name)
    os.makedirs(out_dir, exist_ok=True)
    index += [f"## {name}", "", sweep.description, ""]
    if sweep.kind == "scaling":
      files, _, lines = _scaling(sweep, out_dir, num_samples, seed, log, formats)
      with open(os.path.join(out_dir, "scaling_table.md")) as f:
        index += [f.read(), "Fits (printed by the command, also in `fits.json`):", "", "```"]
      index += lines + ["```", ""]
    else:
      files, table = _ablation(sweep, out_dir, formats)
      index += [table.to_markdown()]
      log(table.to_markdown())
    index += [f"![{os.path.basename(f)}]({os.path.relpath(f, out)})" for f in files
              if f.endswith(".png")] + [""]
    written[name] = files
  _write(os.path.join(out, "README.md"), "\n".join(index))
  return written


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", action="append", required=True,
                      help="a runs directory (repeat for several); holds sweep.json or runs")
  parser.add_argument("--out", required=True, help="output folder, e.g. results/")
  parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples per fit")
  parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
  args = parser.parse_args(argv)
  try:
    written = make_all(args.root, args.out, num_samples=args.bootstrap, seed=args.seed)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  total = sum(len(v) for v in written.values())
  print(f"wrote {total} files for {len(written)} sweep(s) under {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
