"""Splash attention (models/splash.py) in Pallas' interpreter on this CPU equals the einsum reference
for every mask kind: full, causal, sliding window (both), prefix-LM and GPT-BERT rows (with and
without a window), packed segments with padding, multi-head and grouped-query heads; forward and
gradients; inside a scanned stack of windowed and global layers; and sharded over a mesh."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from configs import base, presets
from models import attention, build_model, splash
from models.attention import attention_mask, reference_attention, repeat_kv

B, L, D = 2, 256, 32
# Two packed documents and trailing padding (segment 0) in row 0; one document in row 1.
SEGMENTS = jnp.asarray(np.stack([
    np.r_[np.full(100, 1), np.full(120, 2), np.zeros(36)],
    np.r_[np.full(256, 1)]]).astype(np.int32))
REAL = (SEGMENTS > 0)[:, :, None, None]
PREFIX = jnp.asarray([70, 0], jnp.int32)  # row 0: a prefix LM row; row 1: causal (GPT-BERT's)


def qkv(heads, kv_heads, seed=0):
  q, k, v = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(q, (B, L, heads, D)), jax.random.normal(k, (B, L, kv_heads, D)),
          jax.random.normal(v, (B, L, kv_heads, D)))


def reference(q, k, v, causal, window, prefix_len, scale=None):
  mask = attention_mask(SEGMENTS, SEGMENTS, causal, window=window, prefix_len=prefix_len)
  heads = q.shape[2]
  return reference_attention(q, repeat_kv(k, heads), repeat_kv(v, heads), mask, scale=scale)[0]


def real_tokens_loss(fn):
  """A scalar of the real (non-padding) query positions' outputs: padding queries' outputs are
  meaningless by design (models/attention.py), so they are left out of the comparison."""
  weights = jnp.sin(jnp.arange(D, dtype=jnp.float32))
  return lambda *a: jnp.sum(jnp.where(REAL, fn(*a), 0.0) * weights)


CASES = [  # (causal, window, prefix_len)
    (False, None, None),  # encoder, global
    (True, None, None),   # decoder, global
    (False, 64, None),    # encoder, window 64 (32 keys each side)
    (True, 64, None),     # decoder, window 64 (32 keys behind)
    (True, None, PREFIX),  # prefix LM / GPT-BERT rows
    (True, 64, PREFIX),   # ... in a windowed layer
]


# Every mask kind with grouped-query heads (4 query heads on 2 key/value heads); multi-head and
# multi-query attention on the windowed prefix rows, the kind with the most parts.
@pytest.mark.parametrize("causal, window, prefix_len, heads, kv_heads",
                         [case + (4, 2) for case in CASES] + [CASES[-1] + (4, 4),
                                                              CASES[-1] + (4, 1)])
def test_splash_equals_the_reference_forward_and_gradients(causal, window, prefix_len, heads,
                                                           kv_heads):
  q, k, v = qkv(heads, kv_heads)
  half = None if window is None else window // 2
  fused = lambda q, k, v: splash.splash_attention(q, k, v, SEGMENTS, causal, half, prefix_len,
                                                   scale=0.3)
  ref = lambda q, k, v: reference(q, k, v, causal, window, prefix_len, scale=0.3)
  out, want = jax.jit(fused)(q, k, v), ref(q, k, v)
  np.testing.assert_allclose(np.where(REAL, out, 0), np.where(REAL, want, 0), atol=2e-6)
  grads = jax.jit(jax.grad(real_tokens_loss(fused), argnums=(0, 1, 2)))(q, k, v)
  want_grads = jax.grad(real_tokens_loss(ref), argnums=(0, 1, 2))(q, k, v)
  for name, got, expected in zip("qkv", grads, want_grads):
    np.testing.assert_allclose(got, expected, atol=2e-5, err_msg=f"d{name}")


def test_the_prefix_layout_hides_each_key_in_exactly_one_copy():
  mask = splash._PrefixKeysMask(8, half_window=None)  # pylint: disable=protected-access
  visible = mask[0:8, 0:16]
  i, j = np.arange(8)[:, None], np.arange(8)[None, :]
  assert visible[:, :8].all()                       # copy A: every key, to every query ...
  np.testing.assert_array_equal(visible[:, 8:], j <= i)  # copy B: causal
  # ... and the segment ids split the keys between the copies at prefix_len (splash_attention)
  windowed = splash._PrefixKeysMask(8, half_window=2)[0:8, 0:16]  # pylint: disable=protected-access
  np.testing.assert_array_equal(windowed[:, :8], np.abs(i - j) <= 2)
  np.testing.assert_array_equal(windowed[:, 8:], (j <= i) & (i - j <= 2))


@pytest.mark.parametrize("length, half_window, want", [
    (8192, None, 512), (384, None, 128), (8192, 64, 128), (8192, 200, 512), (768, 200, 256)])
def test_block_sizes_follow_the_shape(length, half_window, want):
  assert splash.block_size(length, half_window) == want


def modern(family, **fields):
  config = presets.tiny_modern(family)
  config.model.update({"attention_impl": "flash", **fields})  # layers: global, window 32, window 32
  return config


@pytest.mark.parametrize("family, scan", [("encoder", True), ("decoder", True),
                                          ("decoder", False)])
def test_a_windowed_and_global_stack_through_splash_equals_xla(monkeypatch, family, scan):
  """A tiny ModernBERT-shaped model (GQA, RoPE, window 32 in layers 1-2, layer 0 global), its
  parameters' gradients included, scanned (the window traced per layer) and unrolled."""
  length = 128  # the tiny model's context: one 128-wide tile
  segments = SEGMENTS[:, :length]
  model = build_model(modern(family, scan_layers=scan).model)
  ids = jax.random.randint(jax.random.key(1), (B, length), 1, 500)
  kwargs = dict(doc_ids=segments) if family == "decoder" else dict(input_mask=segments > 0)
  params = model.init(jax.random.key(0), ids, **kwargs)
  xla = build_model(modern(family, scan_layers=scan, attention_impl="xla").model)
  key = "logits" if family == "decoder" else "mlm_logits"
  real = (segments > 0)[..., None]

  def loss(model):
    return lambda p: jnp.sum(jnp.where(real, model.apply(p, ids, **kwargs)[key], 0.0) ** 2)

  want, want_grads = jax.jit(jax.value_and_grad(loss(xla)))(params)
  monkeypatch.setattr(attention, "attention_backend", lambda *args: "splash")
  got, grads = jax.jit(jax.value_and_grad(loss(model)))(params)
  np.testing.assert_allclose(got, want, rtol=2e-5)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    expected = dict(jax.tree_util.tree_leaves_with_path(want_grads))[path]
    np.testing.assert_allclose(g, expected, atol=1e-5 * max(1.0, float(jnp.abs(expected).max())),
                               err_msg=jax.tree_util.keystr(path))


def test_splash_sharded_over_rows_and_heads_equals_the_reference(monkeypatch):
  """On a (data 2, fsdp 2, tensor 2) mesh of this CPU's 8 devices: batch over data x fsdp, query
  and key/value heads over tensor, one kernel per shard (shard_map), prefix rows included."""
  mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"), axis_types=(AxisType.Auto,) * 3)
  monkeypatch.setattr(attention, "attention_backend", lambda *args: "splash")
  segments = jnp.concatenate([SEGMENTS, SEGMENTS])  # 4 rows: one per data x fsdp shard
  prefix = jnp.concatenate([PREFIX, PREFIX[::-1]])
  q, k, v = (jnp.concatenate([t, t[::-1]]) for t in qkv(4, 2))
  rows = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
  with jax.set_mesh(mesh), nn.logical_axis_rules(base.DEFAULT_RULES):
    fused = jax.jit(lambda q, k, v, s, p: attention.fused_attention(q, k, v, s, True,
                                                                     prefix_len=p))
    out = fused(*(jax.device_put(t, rows) for t in (q, k, v, segments, prefix)))
  mask = attention_mask(segments, segments, True, prefix_len=prefix)
  want = reference_attention(q, repeat_kv(k, 4), repeat_kv(v, 4), mask)[0]
  real = (segments > 0)[:, :, None, None]
  np.testing.assert_allclose(np.where(real, out, 0), np.where(real, want, 0), atol=2e-6)
