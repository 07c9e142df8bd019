"""Attention views: the data adapter on real models, the paper figures and the page's payload.

The page itself is exercised in a real browser in test_attention_view_browser.py.
"""
import json
import re

import flax.linen as nn
import jax
import matplotlib.colors as mcolors
import matplotlib.image as mpimg
import numpy as np
import pytest

import models
from configs import base
from evals import attention_figures, attention_view
from tests.attention_synthetic import PAIR_SEGMENTS, PAIR_TOKENS, synthetic_attention


def _random_params(model, *inputs):
  """Random weights from the parameter shapes (no init compile): big enough for peaked attention."""
  shapes = nn.meta.unbox(jax.eval_shape(model.init, jax.random.key(0), *inputs)["params"])
  rng = np.random.default_rng(0)
  draw = lambda path, s: (np.ones(s.shape) if path[-1].key == "scale"
                          else rng.normal(size=s.shape) * 0.3).astype(s.dtype)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _tiny_model(family):
  cfg = base.get_config().model
  cfg.update(family=family, vocab_size=50, max_len=16, num_layers=2, d_model=16, num_heads=2)
  return models.build_model(cfg, capture_attention=True)


def _softmax_from_qk(data, mask):
  scores = np.einsum("nhqd,nhkd->nhqk", data.queries, data.keys) * data.scale
  scores = np.where(mask, scores, -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  return probs / probs.sum(-1, keepdims=True)


def test_from_intermediates_on_encoder_pair_matches_softmax_of_qk():
  model = _tiny_model("encoder")
  ids = np.array([[1, 5, 6, 7, 2, 8, 9, 2, 0, 0]], np.int32)     # [CLS] a a a [SEP] b b [SEP] pad
  types = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 0, 0]], np.int32)
  mask = (ids > 0).astype(np.int32)
  params = _random_params(model, ids, types, mask)
  _, state = jax.jit(lambda p: model.apply({"params": p}, ids, types, mask,
                                           mutable=["intermediates"]))(params)
  tokens = ["[CLS]", "a1", "a2", "a3", "[SEP]", "b1", "b2", "[SEP]"]
  data = attention_view.from_intermediates(state["intermediates"], tokens,
                                           segment_ids=types[0, :8].tolist())
  assert data.attention.shape == (2, 2, 8, 8) and data.queries.shape == (2, 2, 8, 8)
  # Padding was trimmed, so every kept query spreads all its weight over the kept keys.
  np.testing.assert_allclose(data.attention.sum(-1), 1.0, atol=1e-5)
  assert data.key_mask().all()
  # What the neuron view computes (softmax of scaled q.k) is what the model attended with.
  np.testing.assert_allclose(_softmax_from_qk(data, True), data.attention, atol=1e-5)
  assert np.abs(data.attention - 1 / 8).max() > 0.1  # far from uniform: the check has teeth


def test_from_intermediates_on_unrolled_decoder_has_causal_mask():
  cfg_model = _tiny_model("decoder")
  cfg = base.get_config().model
  cfg.update(family="decoder", vocab_size=50, max_len=16, num_layers=2, d_model=16, num_heads=2,
             scan_layers=False)
  model = models.build_model(cfg, capture_attention=True)
  assert cfg_model.spec.scan_layers and not model.spec.scan_layers
  ids = np.array([[3, 4, 5, 6, 7, 8]], np.int32)
  params = _random_params(model, ids)
  _, state = jax.jit(lambda p: model.apply({"params": p}, ids, mutable=["intermediates"]))(params)
  data = attention_view.from_intermediates(state["intermediates"], list("abcdef"))
  causal = np.tril(np.ones([6, 6], bool))
  np.testing.assert_array_equal(data.key_mask(), causal)
  np.testing.assert_allclose(_softmax_from_qk(data, causal), data.attention, atol=1e-5)


def test_bad_shapes_are_rejected():
  good = synthetic_attention()
  with pytest.raises(ValueError, match="attention must be"):
    attention_view.AttentionData(PAIR_TOKENS[:-1], good.attention)
  with pytest.raises(ValueError, match="queries must be"):
    attention_view.AttentionData(PAIR_TOKENS, good.attention, good.queries[:, :1], good.keys)
  with pytest.raises(ValueError, match="both queries and keys"):
    attention_view.AttentionData(PAIR_TOKENS, good.attention, good.queries, None)
  with pytest.raises(ValueError, match="segment_ids"):
    attention_view.AttentionData(PAIR_TOKENS, good.attention, segment_ids=[2] * len(PAIR_TOKENS))
  with pytest.raises(ValueError, match="layer=5"):
    attention_view.render_all(good, "/nonexistent", layer=5)


def _colour_fraction(png, colour, tol=0.08):
  """Fraction of pixels within `tol` (per RGB channel) of a colour."""
  image = mpimg.imread(png)[..., :3]
  return float(np.mean(np.all(np.abs(image - np.array(mcolors.to_rgb(colour))) < tol, axis=-1)))


def _hue_fraction(png, colour, tol=0.03):
  """Fraction of saturated pixels in the middle band (where the lines run, between the two token
  columns) whose hue is the colour's: a line's colour over white keeps its hue at any opacity."""
  image = mpimg.imread(png)[..., :3]
  width = image.shape[1]
  hsv = mcolors.rgb_to_hsv(image[:, int(0.42 * width):int(0.58 * width)])
  target = mcolors.rgb_to_hsv(np.array(mcolors.to_rgb(colour)))[0]
  distance = np.abs(hsv[..., 0] - target)
  distance = np.minimum(distance, 1 - distance)  # hue is circular
  return float(np.mean((hsv[..., 1] > 0.15) & (distance < tol)))


def test_head_view_draws_the_chosen_heads_in_their_colours(tmp_path):
  data = synthetic_attention()
  png0, pdf0 = attention_figures.save_head_view(data, 1, str(tmp_path / "h0"), heads=[0])
  png3, _ = attention_figures.save_head_view(data, 1, str(tmp_path / "h3"), heads=[3])
  blue, red = attention_figures.head_color(0), attention_figures.head_color(3)
  assert _hue_fraction(png0, blue) > 0.02 and _hue_fraction(png0, red) < 1e-4
  assert _hue_fraction(png3, red) > 0.02 and _hue_fraction(png3, blue) < 1e-4
  with open(pdf0, "rb") as f:
    pdf = f.read()
  assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # TrueType fonts embedded (editable)


def test_head_view_lines_go_where_the_weight_is(tmp_path):
  # One head, all weight from every token to token 0: only lines into the first key row.
  data = synthetic_attention(layers=1, heads=1)
  data.attention[:] = 0.0
  data.attention[0, 0, :, 0] = 1.0
  png, _ = attention_figures.save_head_view(data, 0, str(tmp_path / "one"))
  image = mpimg.imread(png)[..., :3]
  colour = np.array(mcolors.to_rgb(attention_figures.head_color(0)))
  rows = np.nonzero(np.all(np.abs(image - colour) < 0.15, axis=-1).any(axis=1))[0]
  assert len(rows) > 0
  # Lines fan out from every query row on the left into one point at the top right: the coloured
  # pixels on the right side of the lines' span sit in the top part of the figure only.
  cols = np.nonzero(np.all(np.abs(image - colour) < 0.15, axis=-1).any(axis=0))[0]
  right_edge = image[:, cols.max() - 2]
  right_rows = np.nonzero(np.all(np.abs(right_edge - colour) < 0.3, axis=-1))[0]
  assert right_rows.max() < image.shape[0] * 0.3


def test_grid_has_a_panel_per_layer_and_head(tmp_path):
  data = synthetic_attention(layers=2, heads=3)
  png_all, _ = attention_figures.save_attention_grid(data, str(tmp_path / "grid"))
  png_one, _ = attention_figures.save_attention_grid(data, str(tmp_path / "one"), layers=[1])
  tall, short = mpimg.imread(png_all), mpimg.imread(png_one)
  assert tall.shape[0] > 1.5 * short.shape[0]          # 2 rows of panels vs 1 row of 3 heads
  assert abs(tall.shape[1] - short.shape[1]) < 0.1 * short.shape[1]  # 3 columns in both
  # viridis' yellow end appears where some weight is near the colour scale's maximum.
  assert _colour_fraction(png_all, "#fde725", tol=0.12) > 1e-4


def test_render_all_writes_every_view(tmp_path):
  data = synthetic_attention(layers=3, heads=2)
  paths = attention_view.render_all(data, str(tmp_path), layer=2, title="A <b>pair</b>",
                                    max_grid_layers=2)
  for key in ("head_view", "grid", "layer_heads"):
    assert [p.rsplit(".", 1)[1] for p in paths[key]] == ["png", "pdf"]
  assert paths["layer_heads"][0].endswith("layer2_heads.png")
  page = open(paths["html"], encoding="utf-8").read()
  assert "<title>A &lt;b&gt;pair&lt;/b&gt;</title>" in page
  assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet|https?://(?!www\.w3\.org)", page)
  payload = json.loads(re.search(r'id="attention-data">(.*?)</script>', page, re.S).group(1))
  assert payload["tokens"] == PAIR_TOKENS and payload["segments"] == PAIR_SEGMENTS
  np.testing.assert_allclose(payload["attention"], data.attention, atol=1e-5)
  np.testing.assert_allclose(payload["queries"], data.queries, rtol=1e-3, atol=1e-4)
  assert payload["scale"] == pytest.approx(16 ** -0.5)


def test_tokens_cannot_break_out_of_the_data_block(tmp_path):
  tokens = ["</script><script>alert(1)</script>", "b"]
  data = attention_view.AttentionData(tokens, np.full([1, 1, 2, 2], 0.5))
  page = open(attention_view.write_html(data, str(tmp_path / "p.html")), encoding="utf-8").read()
  assert "alert(1)</script>" not in page
  payload = json.loads(re.search(r'id="attention-data">(.*?)</script>', page, re.S).group(1))
  assert payload["tokens"] == tokens and payload["queries"] is None
