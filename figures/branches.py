"""Cooldown branches (Hägele et al. 2024): a data-scaling curve from one warmup-stable run.

Input: a "branches" sweep (configs/scaling_rules.cooldown_branch_runs): one run with meta role
"stable", branches (role "branch", started from the stable run's checkpoint at branch_step)
and optional cosine controls (role "cosine"). A branch's tokens count from step 0: it continues
the stable run's step counter, so its `tokens_seen` already includes the stable phase.
The data-scaling law L(D) = E + B / D^beta is fitted through the branches' final held-out losses
with bootstrap intervals (figures.analysis.fit_with_intervals). Each cosine control is compared
with the branch of the same total length.
"""

import numpy as np

from figures import analysis, plots, tables
from figures.plots import plt  # pyplot, after figures.plots chose its backend


def analyse(sweep, num_samples=1000, seed=0):
  """{"rows": [{run, role, steps, tokens, loss, usable, state}], "fit": fit_with_intervals of
  the usable branches, "controls": [{steps, cosine, branch, difference}]}."""
  rows = []
  for run in sweep.runs:
    loss = run.final("loss", split="eval")
    rows.append({"run": run.name, "role": run.meta.get("role"), "steps": run.num_steps,
                 "tokens": run.final("tokens_seen"), "loss": loss,
                 "usable": run.complete and loss is not None and run.final("tokens_seen"),
                 "state": run.state_text, "_run": run})
  branches = [r for r in rows if r["role"] == "branch" and r["usable"]]
  fit = None
  if branches:
    fit = analysis.fit_with_intervals(np.array([r["tokens"] for r in branches], float),
                                      np.array([r["loss"] for r in branches], float),
                                      num_samples, seed)
  by_steps = {r["steps"]: r for r in branches}
  controls = []
  for r in rows:
    if r["role"] == "cosine" and r["usable"] and r["steps"] in by_steps:
      branch = by_steps[r["steps"]]
      controls.append({"steps": r["steps"], "tokens": r["tokens"], "cosine": r["loss"],
                       "branch": branch["loss"], "difference": branch["loss"] - r["loss"]})
  return {"rows": rows, "fit": fit, "controls": controls}


def describe(sweep, result):
  lines = [analysis.describe_fit(f"{sweep.name} cooldown branches", result["fit"], "D")]
  for c in result["controls"]:
    lines.append(f"{sweep.name}: at {c['steps']} steps the branch ends at {c['branch']:.4f}, the "
                 f"cosine run at {c['cosine']:.4f} (branch - cosine = {c['difference']:+.4f})")
  return lines


def table(sweep, result):
  rows = [[r["run"], r["role"] or tables.DASH, r["state"], str(r["steps"]),
           tables.human_count(r["tokens"]) if r["tokens"] else tables.DASH,
           f"{r['loss']:.4f}" if r["loss"] is not None else tables.DASH]
          for r in result["rows"]]
  caption = (f"Cooldown branches ({sweep.name}): final held-out loss of the stable run, each "
             f"branch and each cosine control; tokens include the stable phase.")
  return tables.Table(["Run", "Role", "State", "Steps", "Tokens D", "Eval loss"], rows, caption,
                      notes=describe(sweep, result), text_columns=3)


def figure(sweep, result):
  """Held-out loss against tokens: the stable run, each branch's decay, cosine controls, and
  the fitted L(D) through the branches' final points."""
  rows = result["rows"]
  branches = [r for r in rows if r["role"] == "branch"]
  cmap = plt.get_cmap("viridis")
  with plt.rc_context(plots.STYLE):
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for r in rows:
      x, y = plots.eval_curve(r["_run"])
      if x is None:
        continue
      if r["role"] == "stable":
        ax.plot(x, y, color="0.55", linewidth=1.0, label="stable phase (no decay)")
      elif r["role"] == "cosine":
        ax.plot(x, y, color="tab:red", linewidth=0.8, linestyle="--", alpha=0.7)
      elif r["role"] == "branch":
        i = branches.index(r)
        ax.plot(x, y, color=cmap(0.85 * i / max(1, len(branches) - 1)), linewidth=1.2)
    done = [r for r in branches if r["usable"]]
    ax.scatter([r["tokens"] for r in done], [r["loss"] for r in done], marker="*", s=70,
               color="black", zorder=4, label="end of a cooldown branch")
    cos = [r for r in rows if r["role"] == "cosine" and r["usable"]]
    if cos:
      ax.scatter([r["tokens"] for r in cos], [r["loss"] for r in cos], marker="D", s=22,
                 color="tab:red", zorder=4, label="cosine run of that length")
    fit = result["fit"]
    if fit and "skipped" not in fit:
      plots.fit_band(ax, fit, "black", plots.fit_label(fit, "D"))
    plots.log_axes(ax)
    finals = [r["loss"] for r in rows if r["usable"]]
    if finals:
      lo, hi = min(finals), max(finals)
      ax.set_ylim(lo * 0.97, hi * 1.15)
    ax.set_xlabel("tokens D")
    ax.set_ylabel("held-out loss")
    ax.set_title(f"{sweep.name}: one stable run, {len(branches)} cooldown branches")
    ax.legend(frameon=False, fontsize=6.5)
    return fig
