"""Paper figures of attention (matplotlib, no pyplot state): a head view and heatmap grids.

Both take an `evals.attention_view.AttentionData` and write `<path>.png` (200 dpi) and `<path>.pdf`
(TrueType fonts embedded, so the text stays editable in the paper's sources).
"""
import matplotlib
from matplotlib import colors as mcolors
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
import numpy as np

# Qualitative palette for heads (matplotlib's tab10, then tab20's light shades for heads 10-19).
_HEAD_COLORS = list(matplotlib.colormaps["tab10"].colors) + \
    list(matplotlib.colormaps["tab20"].colors[1::2])
_SEGMENT_COLORS = ("#4c72b0", "#dd8452")  # sentence A, sentence B
_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "font.size": 8}


def head_color(head):
  return _HEAD_COLORS[head % len(_HEAD_COLORS)]


def _label(token, max_chars=18):
  """Token as a plain-text label: '$' would start mathtext, long tokens are shortened."""
  token = token if len(token) <= max_chars else token[:max_chars - 1] + "\u2026"
  return token.replace("$", r"\$")


def _save(fig, path):
  paths = [path + ".png", path + ".pdf"]
  with matplotlib.rc_context(_RC):
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
  return paths


def _segment_spans(segment_ids):
  """[(segment, first, last)] runs of equal segment ids."""
  spans, start = [], 0
  for i in range(1, len(segment_ids) + 1):
    if i == len(segment_ids) or segment_ids[i] != segment_ids[start]:
      spans.append((segment_ids[start], start, i - 1))
      start = i
  return spans


def save_head_view(data, layer, path, heads=None, title=None, min_weight=0.01):
  """Tokens in two columns (queries left, keys right), a line per weight >= min_weight whose
  opacity and width follow the weight, one colour per head. Returns [png, pdf]."""
  heads = list(range(data.num_heads)) if heads is None else list(heads)
  tokens, length = data.tokens, len(data.tokens)
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(4.2, 1.1 + 0.2 * length))
    ax = fig.add_subplot()
    x_left, x_right = 0.36, 0.64
    ys = -np.arange(length, dtype=float)
    segments, rgba, widths = [], [], []
    # Several heads overlap, so each is drawn a little lighter.
    alpha_scale = 0.9 if len(heads) == 1 else 0.7
    for head in heads:
      weights = data.attention[layer, head]                        # [L, L]
      qi, kj = np.nonzero(weights >= min_weight)
      w = weights[qi, kj]
      segments.extend(zip(zip(np.full(len(qi), x_left + 0.02), ys[qi]),
                          zip(np.full(len(kj), x_right - 0.02), ys[kj])))
      base = mcolors.to_rgb(head_color(head))
      rgba.extend((*base, float(a)) for a in np.clip(w * alpha_scale, 0.0, 1.0))
      widths.extend(0.4 + 2.2 * w)
    ax.add_collection(LineCollection(segments, colors=rgba, linewidths=widths, capstyle="round"))
    for i, token in enumerate(tokens):
      ax.text(x_left, ys[i], _label(token), ha="right", va="center")
      ax.text(x_right, ys[i], _label(token), ha="left", va="center")
    if data.segment_ids is not None:
      for segment, first, last in _segment_spans(data.segment_ids):
        for x, ha in ((0.02, "left"), (0.98, "right")):
          ax.plot([x, x], [ys[first] + 0.35, ys[last] - 0.35], color=_SEGMENT_COLORS[segment],
                  lw=3, solid_capstyle="butt")
          ax.text(x + (0.02 if ha == "left" else -0.02), (ys[first] + ys[last]) / 2, "AB"[segment],
                  ha=ha, va="center", color=_SEGMENT_COLORS[segment], fontweight="bold")
    ax.text(x_left, 1.0, "query", ha="right", va="center", style="italic", color="0.4")
    ax.text(x_right, 1.0, "key", ha="left", va="center", style="italic", color="0.4")
    ax.set_xlim(0, 1)
    ax.set_ylim(ys[-1] - 0.8, 1.6)
    ax.axis("off")
    if len(heads) > 1:
      handles = [Patch(color=head_color(h), label=f"head {h}") for h in heads]
      ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                ncol=min(len(heads), 4), frameon=False, handlelength=1.0, columnspacing=1.0)
    if title:
      head_text = f"head {heads[0]}" if len(heads) == 1 else f"{len(heads)} heads"
      ax.set_title(f"{title}, {head_text}")
    return _save(fig, path)


def save_attention_grid(data, path, layers=None, heads=None, max_tick_tokens=24, cmap="viridis"):
  """Heatmaps of attention (rows = queries, columns = keys) on one shared colour scale.

  Several layers: rows = layers, columns = heads. One layer: its heads in rows of four.
  Token labels are drawn when the sentence has at most max_tick_tokens tokens.
  """
  layers = list(range(data.num_layers)) if layers is None else [int(l) for l in layers]
  heads = list(range(data.num_heads)) if heads is None else list(heads)
  panels = [(l, h) for l in layers for h in heads]
  if len(layers) == 1:
    ncols = min(len(heads), 4)
    nrows = -(-len(heads) // ncols)
  else:
    nrows, ncols = len(layers), len(heads)
  length = len(data.tokens)
  show_ticks = length <= max_tick_tokens
  cell = 1.9 if show_ticks else 1.5
  vmax = float(max(data.attention[l, h].max() for l, h in panels))
  boundaries = []
  if data.segment_ids is not None:
    boundaries = [first - 0.5 for _, first, _ in _segment_spans(data.segment_ids)[1:]]
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(ncols * cell + 1.0, nrows * cell + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    image = None
    for index, ax in enumerate(axes.flat):
      if index >= len(panels):
        ax.axis("off")
        continue
      layer, head = panels[index]
      row, col = divmod(index, ncols)
      image = ax.imshow(data.attention[layer, head], cmap=cmap, vmin=0.0, vmax=vmax,
                        interpolation="nearest", aspect="equal")
      for b in boundaries:  # sentence A / B boundary
        ax.axhline(b, color="white", lw=0.6, ls="--")
        ax.axvline(b, color="white", lw=0.6, ls="--")
      ax.set_xticks([])
      ax.set_yticks([])
      if len(layers) == 1:
        ax.set_title(f"layer {layer}, head {head}", fontsize=7)
      else:
        if row == 0:
          ax.set_title(f"head {head}", fontsize=7)
        if col == 0:
          ax.set_ylabel(f"layer {layer}", fontsize=7)
      if show_ticks and col == 0:
        ax.set_yticks(range(length), [_label(t, 12) for t in data.tokens], fontsize=5)
      if show_ticks and (row == nrows - 1 or index + ncols >= len(panels)):
        ax.set_xticks(range(length), [_label(t, 12) for t in data.tokens], fontsize=5,
                      rotation=90)
    fig.colorbar(image, ax=axes, shrink=min(0.8, 2.5 / nrows + 0.3), label="attention weight")
    fig.supxlabel("key (attended to)", fontsize=7)
    fig.supylabel("query (attending)", fontsize=7)
    return _save(fig, path)

