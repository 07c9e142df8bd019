"""Tables from loaded sweeps, as markdown and LaTeX (booktabs).

Ablation table: one row per objective (a sweep run name), mean ± sample standard deviation over
its complete seeds for every eval-suite metric, the budget actually used (tokens and training
FLOPs; a continued run's include the run it started from), and one extra row per incomplete
run saying what state it is in. Incomplete runs are never averaged in. Scaling table: one row
per run with its size, budget, final loss and state.
"""

import dataclasses

import numpy as np

from figures import rundir

DASH = "—"


@dataclasses.dataclass
class Table:
  columns: list
  rows: list            # lists of str cells
  caption: str
  notes: list = dataclasses.field(default_factory=list)
  text_columns: int = 1  # leading columns of text (left-aligned); the rest are numbers

  def _aligns(self):
    return ["l" if i < self.text_columns else "r" for i in range(len(self.columns))]

  def to_markdown(self):
    lines = [f"**{self.caption}**", "", "| " + " | ".join(self.columns) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in self._aligns()) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in self.rows]
    lines += [""] + [f"- {note}" for note in self.notes]
    return "\n".join(lines).rstrip() + "\n"

  def to_latex(self):
    align = "".join(self._aligns())
    body = [r"\begin{table}[t]", r"\centering", r"\small",
            rf"\begin{{tabular}}{{{align}}}", r"\toprule",
            " & ".join(_latex(c) for c in self.columns) + r" \\", r"\midrule"]
    body += [" & ".join(_latex(c) for c in row) + r" \\" for row in self.rows]
    body += [r"\bottomrule", r"\end{tabular}"]
    caption = " ".join([self.caption] + self.notes)
    body += [rf"\caption{{{_latex(caption)}}}", r"\end{table}"]
    return "\n".join(body) + "\n"


def _latex(text):
  out = []
  for ch in str(text):
    if ch in "&%$#_{}":
      out.append("\\" + ch)
    elif ch == "\\":
      out.append(r"\textbackslash{}")
    elif ch in "~^":
      out.append(r"\textasciitilde{}" if ch == "~" else r"\textasciicircum{}")
    else:
      out.append({"±": r"$\pm$", DASH: "--", "≥": r"$\geq$", "→": r"$\to$"}.get(ch, ch))
  return "".join(out)


def human_count(value):
  """819200 -> "819k", 1.31e11 -> "131B", 2.5e6 -> "2.5M"."""
  if value is None:
    return DASH
  for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= scale:
      return f"{value / scale:.3g}{suffix}"
  return f"{value:g}"


def sci(value):
  return DASH if value is None else f"{value:.2e}"


def _is_fraction_metric(name, values):
  """Accuracies in [0, 1] print as percentages, as papers do."""
  return "acc" in name.lower() and all(0.0 <= v <= 1.0 for v in values)


def _mean_spread(values, percent):
  scale = 100.0 if percent else 1.0
  digits = 1 if percent else 3
  vals = np.asarray(values, np.float64) * scale
  if len(vals) == 1:
    return f"{vals[0]:.{digits}f}"
  return f"{vals.mean():.{digits}f} ± {vals.std(ddof=1):.{digits}f}"


def _groups(runs):
  """Runs grouped by name, in first-appearance order."""
  groups = {}
  for run in runs:
    groups.setdefault(run.name, []).append(run)
  return groups


def metric_columns(sweep):
  """[(suite, metric)] over every run's eval results, suites in the sweep's order."""
  suites = list(sweep.eval_suites) + sorted(
      {s for r in sweep.runs for s in r.evals} - set(sweep.eval_suites))
  columns = []
  for suite in suites:
    for run in sweep.runs:
      for metric in run.evals.get(suite, {}).get("metrics", {}):
        if (suite, metric) not in columns:
          columns.append((suite, metric))
  return columns


def _metric_cell(done, label, suite, metric, percent, notes):
  """(cell text, values) of one metric over a group's complete runs; stale evals go to notes."""
  vals, problems = [], []
  for r in done:
    metrics, why = r.suite_metrics(suite)
    if metrics is None:
      problems.append(why)
      if why != "missing":
        notes.append(f"{label}, seed {r.seed}, {suite}: {why} (not used).")
    elif metric in metrics:
      vals.append(metrics[metric])
  if vals:
    cell = _mean_spread(vals, percent)
    return cell + (f" (n={len(vals)})" if len(vals) < len(done) else ""), vals
  if problems:
    return ("stale" if all(p.startswith("eval at") for p in problems) else "missing"), vals
  return DASH, vals  # the suite ran but has no such metric for this objective


def ablation_table(sweep):
  """(Table, data): the objectives x eval-suites table and the numbers behind it."""
  columns = metric_columns(sweep)
  percent = {}
  for suite, metric in columns:
    vals = [m[metric] for r in sweep.runs if r.complete
            for m in [r.suite_metrics(suite)[0]] if m and metric in m]
    percent[(suite, metric)] = _is_fraction_metric(metric, vals)
  header = ["Objective", "Paper row", "Runs", "Tokens", "Train FLOPs"] + [
      f"{suite}: {metric}" + (" (%)" if percent[(suite, metric)] else "")
      for suite, metric in columns]
  rows, notes, data = [], [], {}
  continued = []
  for name, runs in _groups(sweep.runs).items():
    done = [r for r in runs if r.complete]
    label, paper = runs[0].label, runs[0].meta.get("paper_row", DASH)
    count = f"{len(done)} seed{'s' if len(done) != 1 else ''}" if len(done) == len(runs) else \
        f"{len(done)} of {len(runs)} complete"
    if runs[0].continued_from:
      continued.append(f"{label} (from {runs[0].continued_from})")
    tokens = [t for r in done for t in [_total(r, "tokens_seen", sweep.runs)] if t is not None]
    flops = [f for r in done for f in [_total(r, "flops_seen", sweep.runs)] if f is not None]
    row = [label, paper, count, human_count(np.mean(tokens)) if tokens else DASH,
           sci(float(np.mean(flops))) if flops else DASH]
    entry = {"label": label, "runs": len(runs), "complete_seeds": [r.seed for r in done],
             "tokens": tokens, "flops": flops, "metrics": {}}
    for suite, metric in columns:
      cell, vals = _metric_cell(done, label, suite, metric, percent[(suite, metric)], notes)
      row.append(cell)
      entry["metrics"][f"{suite}/{metric}"] = vals
    rows.append(row)
    for r in runs:
      if not r.complete:
        rows.append([f"{label} (seed {r.seed})", paper, r.state_text] +
                    [DASH] * (len(header) - 3))
    data[name] = entry
  caption = (f"Objective ablation ({sweep.name}): mean ± sample standard deviation over "
             f"complete seeds; incomplete runs are listed on their own rows and not averaged.")
  notes = sorted(set(notes))
  if any(p for p in percent.values()):
    notes.append("Accuracies in %.")
  notes.append("Tokens and train FLOPs as the runs report them (mean over complete seeds). " + (
      sweep.budget_note or "Ablations match tokens processed; FLOPs then differ by the output "
      "head (MLM predicts ~15% of tokens, the causal LM all of them)."))
  if continued:
    notes.append("Continued-training runs count the run they start from (same seed) in tokens "
                 "and FLOPs: " + "; ".join(continued) + ".")
  return Table(header, rows, caption, notes, text_columns=3), data


def _total(run, key, runs):
  """run.final(key) plus what it inherited from the run it was continued from (None if unknown)."""
  own, start = run.final(key), rundir.inherited(run, key, runs)
  return None if own is None or start is None else own + start


def _loss_cell(point):
  if point.loss is None:
    return DASH
  text = f"{point.loss:.4f}"
  if point.run.step is not None and point.loss_step not in (None, point.run.step):
    text += f" (step {point.loss_step})"  # the last held-out eval came before the last step
  return text


def scaling_table(sweep, points):
  """One row per run: size, budget, final held-out loss and state (points: analysis.Point)."""
  header = ["Run", "State", "Seed", "Layers", "d_model", "Params N (non-emb.)", "Tokens D",
            "FLOPs C", "Eval loss"]
  rows = []
  for p in points:
    model = p.run.config.get("model", {})
    rows.append([
        p.run.name, p.run.state_text, str(p.run.seed),
        str(model.get("num_layers", p.run.meta.get("num_layers"))),
        str(model.get("d_model", p.run.meta.get("d_model"))),
        (human_count(p.params) + ("" if p.exact_params else " (planned)")) if p.params else DASH,
        human_count(p.tokens), sci(p.flops),
        _loss_cell(p)])
  caption = (f"Scaling sweep ({sweep.name}, {sweep.budget or 'fixed'} budget): final held-out "
             f"loss per run; only finished runs enter the fits.")
  return Table(header, rows, caption, text_columns=2)


def _interval_text(value, interval, fmt):
  text = fmt(value)
  return text + (f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else "")


def describe_isoflop(name, approach2, approach3):
  """Printable lines: each approach's exponents with their intervals."""
  lines = []
  if approach2["a"] is None:
    lines.append(f"{name} approach 2: fewer than 2 budgets with a minimum inside their sizes")
  else:
    ci = int(100 * approach2["ci"])
    lines.append(
        f"{name} approach 2: N_opt = {approach2['k_params']:.3g} C^"
        + _interval_text(approach2["a"], approach2["a_interval"], "{:.3f}".format)
        + f", D_opt = {approach2['k_tokens']:.3g} C^"
        + _interval_text(approach2["b"], approach2["b_interval"], "{:.3f}".format)
        + f" ({ci}% bootstrap intervals over {approach2['bootstrap_samples']} resamples; "
        f"{approach2['dropped']} dropped without a minimum inside)")
  if approach3:
    iv = approach3["intervals"]
    f3 = "{:.3f}".format
    lines.append(
        f"{name} approach 3: L = {_interval_text(approach3['E'], iv.get('E'), f3)} + "
        f"{approach3['A']:.3g} / N^{_interval_text(approach3['alpha'], iv.get('alpha'), f3)} + "
        f"{approach3['B']:.3g} / D^{_interval_text(approach3['beta'], iv.get('beta'), f3)}; "
        f"a = {_interval_text(approach3['a'], iv.get('a'), f3)}, "
        f"b = {_interval_text(approach3['b'], iv.get('b'), f3)} (Huber, "
        f"{approach3['bootstrap_samples']} bootstrap fits, {approach3['num_points']} runs)")
  return lines


def isoflop_table(sweep, approach2, approach3):
  """Per budget: N_opt, D_opt, tokens per parameter and L_opt with intervals; then exponents."""
  rows = []
  for o in approach2["budgets"]:
    rows.append([sci(o["budget_flops"]), str(o["num_runs"]),
                 _interval_text(o["params_opt"], o.get("params_opt_interval"), human_count),
                 _interval_text(o["tokens_opt"], o.get("tokens_opt_interval"), human_count),
                 f"{o['tokens_opt'] / o['params_opt']:.1f}", f"{o['loss_opt']:.4f}",
                 "yes" if o["minimum_inside"] else "no (best run shown)"])
  caption = (f"isoFLOP study ({sweep.name}): per-budget optima from parabolas in log N and log D, "
             f"{int(100 * approach2['ci'])}% bootstrap intervals.")
  notes = describe_isoflop(sweep.name, approach2, approach3)
  header = ["Budget C", "Runs", "N_opt", "D_opt", "D/N", "L_opt", "Minimum inside"]
  return Table(header, rows, caption, notes=notes, text_columns=1)
