"""Attention views of one sentence (or sentence pair): data, paper figures and an interactive page.

  data = attention_view.from_intermediates(intermediates, tokens, segment_ids=...)  # model output
  paths = attention_view.render_all(data, out_dir, layer=0)
  # -> head_view.{png,pdf}, attention_grid.{png,pdf}, layer<l>_heads.{png,pdf}, attention.html

The page (evals/attention_view.html, a template) is one self-contained file: the data is embedded
as JSON and the script is inline, so it opens from disk with no network. It draws a head view
(tokens in two columns, lines weighted by attention, one colour per head; choose layer and head or
"all heads") and, for a clicked query token, Vig's neuron view: the query vector q, every key
vector k, their element-wise product, the scaled dot products q.k/sqrt(d) and their softmax.
"""
import dataclasses
import html
import json
import math
import os

import numpy as np

import models
from evals import attention_figures

_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention_view.html")


@dataclasses.dataclass
class AttentionData:
  """Attention of one example; N layers, H heads, L tokens, Dh per-head width."""
  tokens: list                      # L display strings
  attention: np.ndarray             # [N, H, L, L] probabilities, rows = queries
  queries: np.ndarray | None = None  # [N, H, L, Dh] (before the 1/sqrt(Dh) scaling)
  keys: np.ndarray | None = None     # [N, H, L, Dh]
  segment_ids: list | None = None    # L ints, 0 = sentence A, 1 = sentence B (pairs only)
  scale: float | None = None         # score = scale * q.k; None = Dh ** -0.5

  def __post_init__(self):
    self.tokens = [str(t) for t in self.tokens]
    self.attention = np.asarray(self.attention, np.float32)
    length = len(self.tokens)
    if self.attention.ndim != 4 or self.attention.shape[2:] != (length, length):
      raise ValueError(f"attention must be [layers, heads, {length}, {length}] for {length} "
                       f"tokens, got {self.attention.shape}")
    if (self.queries is None) != (self.keys is None):
      raise ValueError("give both queries and keys (for the neuron view) or neither")
    if self.queries is not None:
      self.queries = np.asarray(self.queries, np.float32)
      self.keys = np.asarray(self.keys, np.float32)
      expected = self.attention.shape[:3]
      for name, arr in (("queries", self.queries), ("keys", self.keys)):
        if arr.ndim != 4 or arr.shape[:3] != expected:
          raise ValueError(f"{name} must be [{expected[0]}, {expected[1]}, {length}, Dh], "
                           f"got {arr.shape}")
      if self.queries.shape != self.keys.shape:
        raise ValueError(f"queries {self.queries.shape} and keys {self.keys.shape} differ")
      if self.scale is None:
        self.scale = self.queries.shape[-1] ** -0.5
    if self.segment_ids is not None:
      self.segment_ids = [int(s) for s in self.segment_ids]
      if len(self.segment_ids) != length or not set(self.segment_ids) <= {0, 1}:
        raise ValueError(f"segment_ids must be {length} values in {{0, 1}}, got "
                         f"{self.segment_ids}")

  @property
  def num_layers(self):
    return self.attention.shape[0]

  @property
  def num_heads(self):
    return self.attention.shape[1]

  def key_mask(self):
    """[L, L] bool: keys each query could attend to (nonzero weight in any layer and head)."""
    return np.any(self.attention > 0, axis=(0, 1))


def from_intermediates(intermediates, tokens, example: int = 0, segment_ids=None):
  """AttentionData for row `example` of a batch run with capture_attention=True.

  `intermediates` is the `intermediates` collection from
  `model.apply(..., mutable=["intermediates"])` (or the dict `models.collect_attention` returns).
  Only the first len(tokens) positions are kept, so right padding drops out.
  """
  if "attention_probs" not in intermediates:
    intermediates = models.collect_attention(intermediates)
  length = len(tokens)
  take = lambda name: np.asarray(intermediates[name][:, example, :, :length])
  probs = take("attention_probs")[..., :length]                 # [N, H, L, L]
  return AttentionData(tokens=list(tokens), attention=probs, queries=take("queries"),
                       keys=take("keys"), segment_ids=segment_ids)


def _round_significant(x, digits):
  """Rounds an array to about `digits` significant digits of its largest value (smaller JSON)."""
  largest = float(np.max(np.abs(x))) if x.size else 0.0
  decimals = digits - 1 - (math.floor(math.log10(largest)) if largest > 0 else 0)
  return np.round(x.astype(np.float64), max(decimals, 0))


def page_payload(data: AttentionData, title: str) -> dict:
  """The JSON the page reads: tokens, segments, attention, q/k vectors and the key mask."""
  payload = {
      "title": title,
      "tokens": data.tokens,
      "segments": data.segment_ids,
      "numLayers": data.num_layers,
      "numHeads": data.num_heads,
      "attention": np.round(data.attention.astype(np.float64), 5).tolist(),
      "mask": data.key_mask().astype(int).tolist(),
      "queries": None, "keys": None, "scale": data.scale, "headDim": None,
  }
  if data.queries is not None:
    payload.update(queries=_round_significant(data.queries, 5).tolist(),
                   keys=_round_significant(data.keys, 5).tolist(),
                   headDim=int(data.queries.shape[-1]))
  return payload


def write_html(data: AttentionData, path: str, title: str = "Attention") -> str:
  """Writes the self-contained interactive page to `path`; returns the path."""
  with open(_TEMPLATE, encoding="utf-8") as f:
    template = f.read()
  # "<" is escaped so no token (e.g. "</script>") can end the data block early.
  data_json = json.dumps(page_payload(data, title), separators=(",", ":"), allow_nan=False)
  data_json = data_json.replace("<", "\\u003c")
  page = template.replace("__TITLE__", html.escape(title)).replace("__DATA_JSON__", data_json)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return path


def render_all(data: AttentionData, out_dir: str, layer: int = 0, title: str = "Attention",
               max_grid_layers: int = 12) -> dict:
  """All views into out_dir. Returns {"head_view": [png, pdf], "grid": [...], "layer_heads":
  [...], "html": path}. The layers x heads grid shows at most max_grid_layers evenly spaced
  layers so it stays readable on deep models."""
  if not 0 <= layer < data.num_layers:
    raise ValueError(f"layer={layer} is outside [0, {data.num_layers})")
  os.makedirs(out_dir, exist_ok=True)
  grid_layers = np.unique(np.linspace(0, data.num_layers - 1,
                                      min(max_grid_layers, data.num_layers)).round().astype(int))
  return {
      "head_view": attention_figures.save_head_view(
          data, layer, os.path.join(out_dir, "head_view"), title=f"{title}: layer {layer}"),
      "grid": attention_figures.save_attention_grid(
          data, os.path.join(out_dir, "attention_grid"), layers=grid_layers.tolist()),
      "layer_heads": attention_figures.save_attention_grid(
          data, os.path.join(out_dir, f"layer{layer}_heads"), layers=[layer]),
      "html": write_html(data, os.path.join(out_dir, "attention.html"), title),
  }
