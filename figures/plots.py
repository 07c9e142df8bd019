"""Paper-style figures (PNG + PDF) from loaded sweeps and their scaling analysis.

Incomplete runs are drawn, never hidden: dashed learning curves and hollow grey markers labelled
"incomplete (not fitted)".
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from figures import isoflop, rundir  # noqa: E402
from figures.tables import human_count  # noqa: E402

STYLE = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 7.5,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "lines.linewidth": 1.2,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.25, "grid.linewidth": 0.5, "savefig.bbox": "tight", "pdf.fonttype": 42,
}
# Model size colours: viridis without its palest yellow end, which vanishes on white.
SIZE_CMAP = matplotlib.colors.ListedColormap(plt.get_cmap("viridis")(np.linspace(0, 0.9, 256)))
INCOMPLETE = dict(marker="o", facecolors="none", edgecolors="0.45", linewidths=1.0, s=30)


def save(fig, base, formats=("png", "pdf")):
  """Writes base.png (200 dpi) and/or base.pdf (TrueType fonts, as venues ask); returns paths."""
  paths = []
  with plt.rc_context(STYLE):
    for fmt in formats:
      paths.append(f"{base}.{fmt}")
      # no creation date in the PDF: regenerating an unchanged figure leaves the file unchanged
      fig.savefig(paths[-1], dpi=200 if fmt == "png" else None,
                  metadata={"CreationDate": None} if fmt == "pdf" else None)
  plt.close(fig)
  return paths


def _compact(value, kind):
  if kind == "flops":
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
  return human_count(value)


def _log_axes(ax, x_kind="count", loss_axis_log=True):
  """Log x labelled compactly (200k, 5e11) and at 2x and 5x when it spans under 2.5 decades;
  log y (losses, under a decade) labelled 2, 3, 4 rather than 2x10^0. Call after plotting."""
  ax.set_xscale("log")
  lo, hi = ax.get_xlim()
  fmt = ticker.FuncFormatter(lambda v, _: _compact(v, x_kind))
  ax.xaxis.set_major_formatter(fmt)
  if np.log10(hi / lo) < 2.5:
    ax.xaxis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(fmt)
  else:
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  if loss_axis_log:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _fit_ylim(ax, values, margin=0.04):
  """Y range of the data (a wide bootstrap band must not squash the points)."""
  values = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
  if len(values):
    lo, hi = values.min(), values.max()
    ax.set_ylim(lo * (1 - margin), hi * (1 + margin))


def _sci_tex(value):
  """3e12 -> '$3\\times10^{12}$', 1e20 -> '$10^{20}$'."""
  mantissa, exponent = f"{value:.0e}".split("e")
  power = f"10^{{{int(exponent)}}}"
  return f"${power}$" if mantissa == "1" else f"${mantissa}\\times{power}$"


def _size_norm(points):
  """Log colour scale over the runs' N, or None with fewer than two sizes."""
  sizes = [p.params for p in points or () if p.params]
  if not sizes or min(sizes) == max(sizes):
    return None
  return matplotlib.colors.LogNorm(min(sizes), max(sizes))


def _size_colorbar(fig, ax, points):
  norm = _size_norm(points)
  if norm is not None:
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=SIZE_CMAP), ax=ax, pad=0.02,
                 label="non-embedding parameters N", fraction=0.04, aspect=30)


def _curve(run, split, x_key):
  """(x, loss) of one run's rows; eval rows get tokens/FLOPs from the train rows by step."""
  rows = run.train_rows if split == "train" else run.eval_rows
  rows = [r for r in rows if r.get("loss") is not None]
  if not rows:
    return None, None
  steps = np.array([r["step"] for r in rows], np.float64)
  loss = np.array([r["loss"] for r in rows], np.float64)
  known = [(r["step"], r[x_key]) for r in run.train_rows if r.get(x_key) is not None]
  if known:
    ks, kx = np.array(known, np.float64).T
    # Exact at logged train steps, linear between; after the last train row (a final eval),
    # the last row's per-step rate: tokens and FLOPs grow linearly with steps.
    x = np.interp(steps, np.concatenate([[0.0], ks]), np.concatenate([[0.0], kx]),
                  right=np.nan)
    late = np.isnan(x)
    x[late] = steps[late] * kx[-1] / ks[-1]
  elif x_key == "tokens_seen" and run.tokens_per_step():
    x = steps * run.tokens_per_step()
  else:
    return None, None
  keep = x > 0
  return x[keep], loss[keep]


def eval_curve(run, x_key="tokens_seen"):
  """(x, held-out loss) of one run's eval rows (x from its train rows, see _curve)."""
  return _curve(run, "eval", x_key)


def _run_colors(sweep, points=None):
  """One colour per run name: categorical for ablations, by log N for scaling sweeps."""
  names = list(dict.fromkeys(r.name for r in sweep.runs))
  norm = _size_norm(points) if sweep.kind == "scaling" else None
  if norm is not None:
    sizes = {p.run.name: p.params for p in points if p.params}
    return {n: SIZE_CMAP(norm(sizes[n])) if n in sizes else "0.5" for n in names}
  cmap = plt.get_cmap("tab10")
  return {n: cmap(i % 10) for i, n in enumerate(names)}


def learning_curves(sweep, points=None):
  """2 x 2: train and held-out loss against tokens and against training FLOPs."""
  colors = _run_colors(sweep, points)
  scaling = sweep.kind == "scaling"
  with plt.rc_context(STYLE):
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.0), sharex="col")
    handles = {}
    for row, split in enumerate(("train", "eval")):
      for col, x_key in enumerate(("tokens_seen", "flops_seen")):
        ax = axes[row, col]
        for run in sweep.runs:
          x, y = _curve(run, split, x_key)
          start = rundir.inherited(run, x_key, sweep.runs)
          if x is None or start is None:
            continue
          x = x + start  # a continued run's curve starts where its source run ended
          style = dict(color=colors[run.name], alpha=0.9 if run.complete else 0.7,
                       linestyle="-" if run.complete else "--",
                       linewidth=0.9 if split == "train" else 1.3,
                       marker="o" if split == "eval" and len(x) <= 12 else None, markersize=2.5)
          line, = ax.plot(x, y, **style)
          if run.complete and not scaling:
            handles.setdefault(run.label, line)
        ax.set_ylabel(f"{'train' if split == 'train' else 'held-out'} loss")
        if scaling:
          _log_axes(ax, "flops" if x_key == "flops_seen" else "count")
        elif x_key == "tokens_seen":
          ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: human_count(v)))
        if row == 1:
          ax.set_xlabel("tokens seen" if x_key == "tokens_seen" else "training FLOPs")
    if any(not r.complete for r in sweep.runs):
      handles["incomplete run"] = Line2D([], [], color="0.4", linestyle="--")
    kind = "objective" if not scaling else "run"
    fig.suptitle(f"Learning curves: {sweep.name} (loss is each {kind}'s own training loss)",
                 fontsize=9.5)
    fig.tight_layout()
    if scaling:
      _size_colorbar(fig, axes, points)
    if handles:
      fig.legend(list(handles.values()), list(handles), loc="lower center",
                 ncol=min(4, len(handles)), frameon=False, bbox_to_anchor=(0.5, -0.06))
    return fig


def _fit_band(ax, result, color, label):
  fit = result["fit"]
  grid = result["grid"]
  ax.plot(grid, fit.predict(grid), color=color, linewidth=1.4, label=label, zorder=2)
  if result.get("band") is not None and result["intervals"]:
    ax.fill_between(grid, result["band"][0], result["band"][1], color=color, alpha=0.15,
                    linewidth=0, label=f"{int(100 * result['ci'])}% bootstrap band", zorder=1)


def _tex_number(value):
  """4.63 -> '4.63', 6.75e8 -> '6.75\\times10^{8}' (for mathtext)."""
  if 1e-2 <= abs(value) < 1e4:
    return f"{value:.3g}"
  mantissa, exponent = f"{value:.2e}".split("e")
  return f"{float(mantissa):g}\\times10^{{{int(exponent)}}}"


def _fit_label(result, symbol):
  fit = result["fit"]
  offset = f"{fit.E:.2f} + " if result["fit_offset"] else ""
  return f"fit: $L = {offset}{_tex_number(fit.A)}\\,/\\,{symbol}^{{{fit.alpha:.3f}}}$"


def _incomplete_points(ax, points, x_attr):
  pts = [p for p in points if not p.usable and getattr(p, x_attr) and p.loss]
  if pts:
    ax.scatter([getattr(p, x_attr) for p in pts], [p.loss for p in pts], zorder=3,
               label="incomplete (not fitted)", **INCOMPLETE)
    for p in pts:
      ax.annotate(p.run.state_text, (getattr(p, x_attr), p.loss), fontsize=6, color="0.35",
                  xytext=(-5, -9), textcoords="offset points", ha="right")


def loss_vs_params(sweep, points, fit):
  """Final held-out loss against N, coloured by depth, with the fit and its bootstrap band."""
  with plt.rc_context(STYLE):
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    depths = sorted({p.run.config.get("model", {}).get("num_layers") or
                     p.run.meta.get("num_layers") or 0 for p in points if p.usable})
    markers = "osD^v<>p*h"
    for i, depth in enumerate(depths):
      pts = [p for p in points if p.usable and (p.run.config.get("model", {}).get(
          "num_layers") or p.run.meta.get("num_layers") or 0) == depth]
      ax.scatter([p.params for p in pts], [p.loss for p in pts], zorder=3, s=22,
                 marker=markers[i % len(markers)], color=plt.get_cmap("tab10")(i),
                 label=f"{depth} layers" if depth else "runs")
    _incomplete_points(ax, points, "params")
    if fit and "skipped" not in fit:
      _fit_band(ax, fit, "black", _fit_label(fit, "N"))
    elif fit:
      ax.text(0.03, 0.04, f"no fit: {fit['skipped']}", transform=ax.transAxes, fontsize=7)
    _log_axes(ax)
    _fit_ylim(ax, [p.loss for p in points])
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("final held-out loss")
    ax.set_title(f"{sweep.name}: loss vs model size"
                 + (" (fixed tokens)" if sweep.budget == "tokens" else ""))
    ax.legend(loc="upper right", frameon=False)
    return fig


def loss_vs_compute(sweep, points, fit, optima=None):
  """Held-out loss curves against FLOPs (colour = N), final points and the fitted L(C)."""
  colors = _run_colors(sweep, points)
  with plt.rc_context(STYLE):
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    curves = [(p, *_curve(p.run, "eval", "flops_seen")) for p in points]
    for p, x, y in curves:
      if x is not None:
        ax.plot(x, y, color=colors[p.run.name], linewidth=0.8, alpha=0.6,
                linestyle="-" if p.run.complete else "--")
    usable = [p for p in points if p.usable]
    ax.scatter([p.flops for p in usable], [p.loss for p in usable], s=14, zorder=3,
               color=[colors[p.run.name] for p in usable], edgecolors="black", linewidths=0.4,
               label="final loss of a run")
    if optima:
      ax.scatter([o["budget_flops"] for o in optima], [o["loss_opt"] for o in optima], s=60,
                 marker="*", color="crimson", zorder=4, label="isoFLOP minimum")
    _incomplete_points(ax, points, "flops")
    if fit and "skipped" not in fit:
      _fit_band(ax, fit, "black", _fit_label(fit, "C"))
    _log_axes(ax, "flops")
    _fit_ylim(ax, [p.loss for p in points] + [v for _, _, y in curves if y is not None
                                              for v in y])
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel("held-out loss")
    ax.set_title(f"{sweep.name}: loss vs compute")
    if sweep.kind == "scaling":
      _size_colorbar(fig, ax, points)
    ax.legend(loc="best", frameon=False)
    return fig


def isoflop_study(sweep, points, approach2, approach3, fit_c):
  """Chinchilla Figure 3 style, three panels: loss against N per budget with parabolas and the
  N_opt intervals; N_opt and D_opt against C with their power laws; the loss frontier."""
  budgets = approach2["budgets"]
  groups = isoflop.by_budget(points)
  cmap = plt.get_cmap("plasma")
  color = {b: cmap(0.85 * i / max(1, len(groups) - 1)) for i, b in enumerate(groups)}
  with plt.rc_context(STYLE):
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(10.5, 3.2))
    for budget, pts in groups.items():
      ax.scatter([p.params for p in pts], [p.loss for p in pts], color=color[budget], s=18,
                 zorder=3, label=f"$C = {_tex_number(budget)}$")
      curve = isoflop.parabola(pts)
      if curve:
        ax.plot(*curve, color=color[budget], linewidth=1.0)
    for o in budgets:
      interval = o.get("params_opt_interval")
      xerr = None if not interval else [[o["params_opt"] - interval[0]],
                                        [interval[1] - o["params_opt"]]]
      ax.errorbar([o["params_opt"]], [o["loss_opt"]], xerr=xerr, fmt="*", markersize=9,
                  color="black", capsize=2, zorder=4, elinewidth=0.8)
    _incomplete_points(ax, points, "params")
    _log_axes(ax, loss_axis_log=False)
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("final held-out loss")
    ax.set_title("isoFLOP profiles (star: minimum, 95% interval)")
    ax.legend(frameon=False, fontsize=6.5)

    c = np.array([o["compute"] for o in budgets])
    grid = np.geomspace(c.min(), c.max(), 50) if len(c) else None
    for key, k, exp, interval, marker, label in (
        ("params_opt", "k_params", "a", "a_interval", "*", "N"),
        ("tokens_opt", "k_tokens", "b", "b_interval", "s", "D")):
      values = np.array([o[key] for o in budgets])
      lo = np.array([o.get(key + "_interval", [v, v])[0] for o, v in zip(budgets, values)])
      hi = np.array([o.get(key + "_interval", [v, v])[1] for o, v in zip(budgets, values)])
      ax2.errorbar(c, values, yerr=[values - lo, hi - values], fmt=marker, markersize=6,
                   capsize=2, elinewidth=0.8,
                   color="black" if label == "N" else "tab:blue",
                   label=f"${label}_{{\\rm opt}}$ per budget")
      if approach2[exp] is not None and grid is not None:
        ci = approach2[interval]
        text = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        ax2.plot(grid, approach2[k] * grid ** approach2[exp], linewidth=1.0,
                 color="black" if label == "N" else "tab:blue",
                 label=f"${label}_{{\\rm opt}} \\propto C^{{{approach2[exp]:.2f}}}$" + text)
    _log_axes(ax2, "flops", loss_axis_log=False)
    ax2.set_yscale("log")
    ax2.set_xlabel("training FLOPs C")
    ax2.set_ylabel("compute-optimal N, D")
    ax2.set_title("optimal size and tokens vs compute")
    ax2.legend(frameon=False, fontsize=6.5)

    usable = [p for p in points if p.usable]
    ax3.scatter([p.flops for p in usable], [p.loss for p in usable], s=10, color="0.6",
                label="runs")
    ax3.scatter(c, [o["loss_opt"] for o in budgets], marker="*", s=70, color="crimson",
                zorder=4, label="isoFLOP minima")
    if fit_c and "skipped" not in fit_c:
      _fit_band(ax3, fit_c, "crimson", _fit_label(fit_c, "C"))
    if approach3 and usable:
      # Approach 3's frontier: min over N of L(N, C / F(N)), F = C per token of the runs
      # (a quadratic in log N through the runs, so the frontier uses this sweep's accounting).
      log_n = np.log([p.params for p in usable])
      log_f = np.log([p.flops / p.tokens for p in usable])
      f_coeffs = np.polyfit(log_n, log_f, 2)
      n_grid = np.geomspace(min(p.params for p in usable) / 2, max(p.params for p in usable) * 2,
                            400)
      c_grid = np.geomspace(min(p.flops for p in usable), max(p.flops for p in usable), 60)
      per_token = np.exp(np.polyval(f_coeffs, np.log(n_grid)))
      frontier = [np.min(isoflop.predict(approach3, n_grid, cc / per_token)) for cc in c_grid]
      ax3.plot(c_grid, frontier, color="black", linestyle="--", linewidth=1.0,
               label="approach 3 frontier")
    _log_axes(ax3, "flops")
    _fit_ylim(ax3, [p.loss for p in usable])
    ax3.set_xlabel("training FLOPs C")
    ax3.set_ylabel("final held-out loss")
    ax3.set_title("loss frontier")
    ax3.legend(frameon=False, fontsize=6.5)
    fig.tight_layout()
    return fig


# Shared with figures/branches.py, figures/lr_transfer.py.
fit_band, fit_label, log_axes = _fit_band, _fit_label, _log_axes
