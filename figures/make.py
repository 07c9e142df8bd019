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
  fixed-compute (isoFLOP) sweeps, figures/isoflop.py:
  OUT/<sweep>/isoflop.{png,pdf}               profiles, N_opt and D_opt against C, loss frontier
  OUT/<sweep>/isoflop_table.{md,tex}          per budget optima with intervals; both approaches
  OUT/<sweep>/fits.json                       fitted values, intervals and their accounting
    with several seeds per configuration (launch.sweep --seeds), fits.json also holds "seeds"
    (each configuration's seed spread of the final loss) and "approach3_varpro" (figures/varpro.py),
    and every bootstrap resamples seeds within configurations; approach 2 reports its intervals
    with the draws that had no minimum inside counted against them, beside those of the kept
    draws. Single-seed sweeps keep the earlier layout, so committed results regenerate unchanged.
  cooldown-branch sweeps (figures/branches.py):
  OUT/<sweep>/branches.{png,pdf}              loss vs tokens: stable run, branches, L(D) fit
  OUT/<sweep>/branches_table.{md,tex}         every run's final loss; branch vs cosine
  OUT/<sweep>/fits.json                       L(D) through the branch ends, with intervals
  learning-rate transfer sweeps (figures/lr_transfer.py):
  OUT/<sweep>/lr_transfer.{png,pdf}           final loss vs learning rate per width, SP | muP
  OUT/<sweep>/lr_transfer_table.{md,tex}      the same numbers, with each width's best lr
  OUT/<sweep>/lr_transfer.json                points, optima and their spread over widths
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
from figures import (analysis, branches, isoflop, lr_transfer, plots, rundir, seeds, tables,
                     varpro)
from trainlib import rundir as run_files


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)
  return path


def _write_table(table, base):
  return [_write(base + ".md", table.to_markdown()), _write(base + ".tex", table.to_latex())]


def _scaling(sweep, out_dir, num_samples, seed, log, formats, flops, params):
  """Tables, fits and figures of a scaling sweep; returns (files, fits dict, printed lines)."""
  points = analysis.scaling_points(sweep, flops, params)
  usable = [p for p in points if p.usable]
  files = _write_table(tables.scaling_table(sweep, points),
                       os.path.join(out_dir, "scaling_table"))
  files += plots.save(plots.learning_curves(sweep, points),
                      os.path.join(out_dir, "learning_curves"), formats)
  fits = {"accounting": analysis.accounting_record(flops, params),
          "excluded_runs": {f"{p.run.name}/seed{p.run.seed}": p.run.state_text
                            for p in points if not p.usable}}
  lines = [f"{sweep.name}: C counts {' + '.join(fits['accounting']['flops_parts'])} per token; "
           f"N = {params} parameters"]
  if sweep.budget == "compute":
    by_seed = seeds.has_replicates(usable)
    approach2 = isoflop.approach2(points, num_samples, seed, by_seed=by_seed)
    approach3 = isoflop.approach3(points, max(1, num_samples // 5), seed, by_seed=by_seed)
    optima = [{**o, "budget_flops": o["compute"]} for o in approach2["budgets"]]
    c = np.array([o["compute"] for o in approach2["budgets"]])
    loss = np.array([o["loss_opt"] for o in approach2["budgets"]])
    fit_c = analysis.fit_with_intervals(c, loss, num_samples, seed) if len(c) else None
    files += plots.save(plots.isoflop_study(sweep, points, approach2, approach3, fit_c),
                        os.path.join(out_dir, "isoflop"), formats)
    files += plots.save(plots.loss_vs_compute(sweep, points, fit_c, optima=optima),
                        os.path.join(out_dir, "loss_vs_compute"), formats)
    files += _write_table(tables.isoflop_table(sweep, approach2, approach3),
                          os.path.join(out_dir, "isoflop_table"))
    by_accounting = {}
    for f_name in analysis.FLOP_ACCOUNTINGS:
      for p_name in analysis.PARAM_COUNTS:
        other = approach2 if (f_name, p_name) == (flops, params) else isoflop.approach2(
            analysis.scaling_points(sweep, f_name, p_name), num_samples, seed, by_seed=by_seed)
        by_accounting[f"C={f_name}, N={p_name}"] = {
            k: other[k] for k in ("a", "a_interval", "b", "b_interval", "dropped")}
    fits.update(approach2=approach2, approach3=approach3,
                loss_vs_compute=analysis.fit_summary(fit_c),
                exponents_by_accounting=by_accounting)
    if by_seed:
      fits.update(seeds=seeds.spread(usable),
                  approach3_varpro=varpro.approach3(points, max(1, num_samples // 5), seed))
      lines += _describe_seeded(sweep.name, fits)
    lines.append(analysis.describe_fit(f"{sweep.name} isoFLOP minima", fit_c, "C"))
    lines += tables.describe_isoflop(sweep.name, approach2, approach3)
    lines += [f"{sweep.name} approach 2 under {k}: a = "
              + (f"{v['a']:.3f} [{v['a_interval'][0]:.3f}, {v['a_interval'][1]:.3f}]"
                 if v["a_interval"] else str(v["a"])) for k, v in by_accounting.items()]
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


def _describe_seeded(name, fits):
  """Printed lines of what only multi-seed isoFLOP sweeps add to fits.json."""
  two, vp = fits["approach2"], fits["approach3_varpro"]

  def span(interval):
    return "none" if not interval or interval[0] is None else \
        f"[{interval[0]:.3f}, {interval[1]:.3f}]"
  stds = [s["loss_std"] for s in fits["seeds"] if s["loss_std"] is not None]
  lines = [f"{name}: seed std of the final loss per configuration: median {np.median(stds):.4f},"
           f" max {np.max(stds):.4f} ({len(stds)} configurations with several seeds)"]
  if two["a"] is not None:
    total = two["bootstrap_samples"] + two["dropped"]
    lines.append(f"{name} approach 2: a = {two['a']:.3f}, kept draws {span(two['a_interval'])}, "
                 f"all draws {span(two['a_interval_all_draws'])} "
                 f"({two['bootstrap_samples']} of {total} draws kept)")
  if vp is not None:
    lines.append(f"{name} approach 3 (variable projection): alpha = {vp['alpha']:.3f} "
                 f"{span(vp['intervals']['alpha'])}, beta = {vp['beta']:.3f} "
                 f"{span(vp['intervals']['beta'])}, implied a = {vp['a']:.3f} "
                 f"{span(vp['intervals']['a'])}")
  return lines


def _ablation(sweep, out_dir, formats):
  table, data = tables.ablation_table(sweep)
  files = _write_table(table, os.path.join(out_dir, "ablation_table"))
  files.append(_write(os.path.join(out_dir, "ablation_table.json"),
                      json.dumps(data, indent=2) + "\n"))
  files += plots.save(plots.learning_curves(sweep), os.path.join(out_dir, "learning_curves"),
                      formats)
  return files, table


def _lr_transfer(sweep, out_dir, log, formats):
  result = lr_transfer.analyse(sweep)
  table = lr_transfer.table(sweep, result)
  files = _write_table(table, os.path.join(out_dir, "lr_transfer_table"))
  files += plots.save(lr_transfer.figure(sweep, result), os.path.join(out_dir, "lr_transfer"),
                      formats)
  files += plots.save(plots.learning_curves(sweep), os.path.join(out_dir, "learning_curves"),
                      formats)
  record = {"optima": {k: {str(w): o for w, o in v.items()} for k, v in result["optima"].items()},
            "log2_spread": result["log2_spread"], "points": result["points"]}
  files.append(_write(os.path.join(out_dir, "lr_transfer.json"),
                      json.dumps(record, indent=2) + "\n"))
  lines = lr_transfer.describe(sweep, result)
  for line in lines:
    log(line)
  return files, table, lines


def _branches(sweep, out_dir, num_samples, seed, log, formats):
  result = branches.analyse(sweep, num_samples, seed)
  table = branches.table(sweep, result)
  files = _write_table(table, os.path.join(out_dir, "branches_table"))
  files += plots.save(branches.figure(sweep, result), os.path.join(out_dir, "branches"), formats)
  record = {"loss_vs_tokens": analysis.fit_summary(result["fit"]),
            "cosine_controls": result["controls"],
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")}
                     for r in result["rows"]]}
  files.append(_write(os.path.join(out_dir, "fits.json"), json.dumps(record, indent=2) + "\n"))
  lines = branches.describe(sweep, result)
  for line in lines:
    log(line)
  return files, table, lines


def make_all(roots, out, num_samples=1000, seed=0, log=print, formats=("png", "pdf"),
             flops=analysis.DEFAULT_FLOPS, params=analysis.DEFAULT_PARAMS):
  """Every table and figure for the sweeps under `roots`; returns {sweep name: file paths}.

  `formats`: figure file types; `log`: where fitted values and tables are printed. OUT/README.md
  quotes the command with `roots` and `out` as given (so regenerating on another machine gives
  the same file); every read and write uses them made absolute (configs/paths.py).
  `flops`, `params`: the accounting of C and N in scaling fits (figures.analysis).
  """
  try:
    analysis.check_accounting(flops, params)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if isinstance(roots, str):
    roots = [roots]
  shown = "python -m figures.make " + " ".join(f"--root {r}" for r in roots) + f" --out {out}"
  if (flops, params) != (analysis.DEFAULT_FLOPS, analysis.DEFAULT_PARAMS):
    shown += f" --flops {flops} --params {params}"
  roots, out = [paths.absolute(r) for r in roots], paths.absolute(out)
  sweeps = []
  for root in roots:
    found = rundir.load_sweeps(root)
    if not found:
      raise ConfigError(f"--root={root!r} holds no {run_files.SWEEP_RECORD} and no run "
                        f"directories (directories with {run_files.CONFIG} or "
                        f"{run_files.STATUS})")
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
      files, _, lines = _scaling(sweep, out_dir, num_samples, seed, log, formats, flops, params)
      with open(os.path.join(out_dir, "scaling_table.md")) as f:
        index += [f.read(), "Fits (printed by the command, also in `fits.json`):", "", "```"]
      index += lines + ["```", ""]
    elif sweep.kind == "branches":
      files, table, lines = _branches(sweep, out_dir, num_samples, seed, log, formats)
      index += [table.to_markdown()]
    elif sweep.kind == "lr_transfer":
      files, table, lines = _lr_transfer(sweep, out_dir, log, formats)
      index += [table.to_markdown(), "```"] + lines + ["```", ""]
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
                      help=f"a runs directory (repeat for several); holds "
                      f"{run_files.SWEEP_RECORD} or runs")
  parser.add_argument("--out", required=True, help="output folder, e.g. results/")
  parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples per fit")
  parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
  parser.add_argument("--flops", default=analysis.DEFAULT_FLOPS,
                      help="C per token in scaling fits: " + " | ".join(analysis.FLOP_ACCOUNTINGS)
                      + " (default: what train.py counts)")
  parser.add_argument("--params", default=analysis.DEFAULT_PARAMS,
                      help="N in scaling fits: " + " | ".join(analysis.PARAM_COUNTS))
  args = parser.parse_args(argv)
  try:
    written = make_all(args.root, args.out, num_samples=args.bootstrap, seed=args.seed,
                       flops=args.flops, params=args.params)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  total = sum(len(v) for v in written.values())
  print(f"wrote {total} files for {len(written)} sweep(s) under {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
