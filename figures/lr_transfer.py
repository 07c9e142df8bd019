"""Learning-rate transfer (Yang et al. 2022, Figure 1): final loss against learning rate per width.

Input: an "lr_transfer" sweep (configs/sweeps/mup_transfer_cpu.py), whose runs carry meta
{parametrization, d_model, learning_rate}. For every (parametrization, width), the optimum is the
vertex of a parabola in log2(learning rate) through the best grid point and its two neighbours
(the best grid point itself when it lies at the edge of the grid, flagged `at_edge`). The
transfer is summarised by the spread of log2(optimal learning rate) across widths: 0 means the
best learning rate does not move with width, 1 means it moves by a factor of 2.
Runs that did not finish, or whose loss is not finite (diverged), are drawn as crosses and never
enter an optimum.
"""

import math

import numpy as np

from figures import plots, tables
from figures.plots import plt  # pyplot, after figures.plots chose its backend

PARAMETRIZATIONS = (("sp", "SP"), ("mup", "muP"))


def points(sweep):
  """[{parametrization, d_model, learning_rate, loss, usable, state}] in the sweep's order."""
  out = []
  for run in sweep.runs:
    loss = run.final("loss", split="eval")
    finite = loss is not None and math.isfinite(loss)
    out.append({"run": run.name, "parametrization": run.meta.get("parametrization"),
                "d_model": run.meta.get("d_model"), "learning_rate": run.meta.get("learning_rate"),
                "loss": loss if finite else None, "usable": run.complete and finite,
                "state": "diverged" if loss is not None and not finite else run.state_text})
  return out


def optimum(lrs, losses):
  """(optimal learning rate, loss there, at_edge) from a parabola in log2 lr (module doc)."""
  order = np.argsort(lrs)
  lrs, losses = np.asarray(lrs, float)[order], np.asarray(losses, float)[order]
  i = int(np.argmin(losses))
  if i == 0 or i == len(lrs) - 1:
    return float(lrs[i]), float(losses[i]), True
  x = np.log2(lrs[i - 1:i + 2])
  a, b, c = np.polyfit(x, losses[i - 1:i + 2], 2)
  v = -b / (2 * a)
  return float(2.0 ** v), float(a * v * v + b * v + c), False


def analyse(sweep):
  """{"points", "optima": {param: {width: {...}}}, "log2_spread": {param: max - min of log2
  optimal lr over widths}}."""
  pts = points(sweep)
  optima, spread = {}, {}
  for param, _ in PARAMETRIZATIONS:
    by_width = {}
    for p in pts:
      if p["parametrization"] == param and p["usable"]:
        by_width.setdefault(p["d_model"], []).append(p)
    optima[param] = {}
    for width in sorted(by_width):
      group = by_width[width]
      if len(group) >= 2:
        lr, loss, edge = optimum([p["learning_rate"] for p in group], [p["loss"] for p in group])
        optima[param][width] = {"learning_rate": lr, "loss": loss, "at_edge": edge,
                                "num_runs": len(group)}
    logs = [math.log2(o["learning_rate"]) for o in optima[param].values()]
    spread[param] = float(max(logs) - min(logs)) if len(logs) >= 2 else None
  return {"points": pts, "optima": optima, "log2_spread": spread}


def describe(sweep, result):
  lines = []
  for param, label in PARAMETRIZATIONS:
    opt = result["optima"].get(param) or {}
    if not opt:
      continue
    where = ", ".join(f"d{w}: {o['learning_rate']:.3g}{' (grid edge)' if o['at_edge'] else ''}"
                      for w, o in opt.items())
    spread = result["log2_spread"][param]
    text = f"{sweep.name} {label}: optimal learning rate {where}"
    if spread is not None:
      text += f"; spread over widths {spread:.2f} octaves"
    lines.append(text)
  return lines


def table(sweep, result):
  """Final held-out loss: one row per (parametrization, width), one column per learning rate."""
  lrs = sorted({p["learning_rate"] for p in result["points"] if p["learning_rate"]})
  rows = []
  for param, label in PARAMETRIZATIONS:
    for width in sorted({p["d_model"] for p in result["points"] if p["parametrization"] == param}):
      cells = [label, str(width)]
      for lr in lrs:
        match = [p for p in result["points"] if (p["parametrization"], p["d_model"],
                                                  p["learning_rate"]) == (param, width, lr)]
        p = match[0] if match else None
        cells.append(tables.DASH if p is None else f"{p['loss']:.3f}" if p["usable"] else
                     (p["state"] if p["loss"] is None else f"{p['loss']:.3f} ({p['state']})"))
      o = result["optima"].get(param, {}).get(width)
      cells.append(f"{o['learning_rate']:.3g}{' (edge)' if o['at_edge'] else ''}" if o
                   else tables.DASH)
      rows.append(cells)
  header = ["Param.", "d_model"] + [f"lr {lr:g}" for lr in lrs] + ["best lr"]
  caption = (f"Learning-rate transfer ({sweep.name}): final held-out loss per width and "
             f"learning rate; best lr from a parabola in log2 lr through the best grid point.")
  return tables.Table(header, rows, caption, text_columns=1)


def figure(sweep, result):
  """SP beside muP: final loss against learning rate, one line per width, stars at optima."""
  widths = sorted({p["d_model"] for p in result["points"] if p["d_model"]})
  cmap = plots.SIZE_CMAP
  usable = [p["loss"] for p in result["points"] if p["usable"]]
  with plt.rc_context(plots.STYLE):
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0), sharey=True)
    for ax, (param, label) in zip(axes, PARAMETRIZATIONS):
      for i, width in enumerate(widths):
        color = cmap(i / max(1, len(widths) - 1))
        pts = sorted((p for p in result["points"] if p["parametrization"] == param
                      and p["d_model"] == width), key=lambda p: p["learning_rate"])
        good = [p for p in pts if p["usable"]]
        ax.plot([p["learning_rate"] for p in good], [p["loss"] for p in good], marker="o",
                markersize=3, color=color, label=f"d_model {width}")
        bad = [p for p in pts if not p["usable"]]
        if bad and usable:
          ax.scatter([p["learning_rate"] for p in bad], [max(usable)] * len(bad), marker="x",
                     color=color, zorder=3)
        o = result["optima"].get(param, {}).get(width)
        if o:
          ax.scatter([o["learning_rate"]], [o["loss"]], marker="*", s=80, color=color,
                     edgecolors="black", linewidths=0.5, zorder=4)
      ax.set_xscale("log", base=2)
      lrs = sorted({p["learning_rate"] for p in result["points"] if p["learning_rate"]})
      ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
      ax.xaxis.set_minor_locator(plt.NullLocator())
      spread = result["log2_spread"].get(param)
      ax.set_title(f"{label}: best lr moves {spread:.2f} octaves over widths"
                   if spread is not None else label)
      ax.set_xlabel("peak learning rate")
    axes[0].set_ylabel("final held-out loss")
    if usable:
      optima = [o["loss"] for v in result["optima"].values() for o in v.values()]
      lo, hi = min(usable + optima), max(usable)
      axes[0].set_ylim(lo - 0.05 * (hi - lo), hi + 0.08 * (hi - lo))
    axes[1].legend(frameon=False, loc="upper left")
    fig.suptitle(f"{sweep.name}: learning-rate transfer (star: optimum; x: diverged or "
                 "unfinished, drawn at the top)", fontsize=9)
    fig.tight_layout()
    return fig
