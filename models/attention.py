"""Multi-head self-attention: masks, the einsum reference, fused kernels, and the KV cache.

Masking is described by per-token segment ids and a sliding window rather than an [L, L] array, so
fused kernels never need one: a query at i attends to a key at j iff both carry the same segment id
(and, for decoders, j <= i; and, in a layer with window w > 0, |i - j| <= w // 2). The window is a
per-layer value (0 = global) that may be traced: a scanned stack passes each layer's as data.
Segment ids come from `doc_ids` (packed documents) with padding (`input_mask == 0`) given id 0.
Padding queries therefore attend only to padding keys: their outputs are meaningless but finite,
and no real token ever sees padding or another document.

attention_impl:
  "xla":   einsum + float32 softmax (the reference; materialises [B, H, L, L]).
  "flash": a fused kernel where the target has one (`attention_backend` decides, from the
           lowering platform, dtype and shapes alone):
           - TPU: splash attention (models/splash.py), block-sparse: full, causal, sliding-window
             (a windowed layer computes only the tiles near the diagonal), prefix-LM and
             GPT-BERT rows, packed segments, grouped-query heads through the MQA kernel (no
             copies of keys/values per query head), all without an [L, L] array. Inside a
             multi-device mesh it runs under shard_map with specs derived from the logical axis
             rules in context. Lengths it cannot tile (not a multiple of 128) fall back to XLA.
           - GPU: cuDNN's fused attention, `jax.nn.dot_product_attention(implementation="cudnn")`,
             for bfloat16/float16 with head_dim a multiple of 8 and <= 128 and an even length
             (cuDNN's limits). Causality and causal windows are cuDNN's own masks (it skips the
             masked blocks) with the segments as its mask input; prefix rows and bidirectional
             windows go in as the whole [B, 1, L, L] mask (`_cudnn`). Otherwise XLA.
           - elsewhere (CPU): jax.nn.dot_product_attention's XLA implementation.
           A windowed layer's width may be traced (a scanned stack of windowed and global
           layers): the fused paths choose the local or global kernel under lax.cond, so a scan
           keeps one body.
Decoding with a cache and capture_attention always use the reference path (they need the
probabilities or a query block of one token).

Grouped-query attention (num_kv_heads < num_heads; Ainslie et al. 2023): key/value projections and
the KV cache have num_kv_heads heads; query head h reads key/value head h // (num_heads /
num_kv_heads). With num_kv_heads == num_heads the parameters and values are exactly MHA's.
RoPE (models/rope.py) and qk_norm (RMSNorm over each head, before RoPE) act on q and k after the
projections, before the cache.

Prefix masks (prefix LM, GPT-BERT's bidirectional rows): a decoder may be given `prefix_len[B]`;
in its row, keys before prefix_len are visible to every query of their segment (bidirectional
over the prefix, causal after; prefix_len = L is a fully bidirectional row, 0 a causal one). The
layers receive it with the segment ids as a `PrefixSegments` pair, so the mask stays two small
arrays a kernel can take (splash: models/splash.py; XLA and cuDNN build the [B, 1, L, L] mask).
"""

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name
from jax.sharding import PartitionSpec as P

from configs.errors import ConfigError
from models import mup, splash
from models.layers import BLD, DenseGeneral, constrain, residual_scale
from models.platform import target_platform
from models.rope import apply_rope
from models.spec import ModelSpec

# Logical names of per-head activations [B, L, H, Dh].
BLHD = ("activation_batch", "activation_length", "activation_heads", "activation_kv")
# ... of grouped keys/values [B, L, Hkv, Dh] (num_kv_heads < num_heads).
BLKD = ("activation_batch", "activation_length", "activation_kv_heads", "activation_kv")
_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)  # finite: a masked logit never makes NaN


def segment_ids_from(batch_shape, doc_ids=None, input_mask=None):
  """[B, L] int32 segment ids: doc_ids (or all ones), with padding positions set to 0."""
  segments = jnp.ones(batch_shape, jnp.int32) if doc_ids is None else doc_ids.astype(jnp.int32)
  if input_mask is not None:
    segments = jnp.where(input_mask > 0, segments, 0)
  return segments


class PrefixSegments(NamedTuple):
  """Segment ids [B, L] with a per-row prefix length [B] (see the module docstring)."""
  ids: jax.Array
  prefix_len: jax.Array


def attention_mask(q_segments, k_segments, causal, q_index=None, k_index=None, window=None,
                   prefix_len=None):
  """[B, 1, Lq, Lk] bool: True where query i may attend to key j.

  q_index / k_index are absolute sequence indices (default 0..L-1); they differ when decoding
  new tokens against a cache of earlier ones. window: None, or a (possibly traced) int scalar:
  0 = global, w > 0 = only keys with |i - j| <= w // 2. prefix_len [B] (causal only): keys
  j < prefix_len are visible to every query of their segment.
  """
  mask = q_segments[:, :, None] == k_segments[:, None, :]
  q_index = jnp.arange(q_segments.shape[1]) if q_index is None else q_index
  k_index = jnp.arange(k_segments.shape[1]) if k_index is None else k_index
  if causal:
    visible = k_index[None, None, :] <= q_index[None, :, None]
    if prefix_len is not None:
      visible = visible | (k_index[None, None, :] < prefix_len[:, None, None])
    mask = mask & visible
  if window is not None:
    distance = jnp.abs(q_index[:, None] - k_index[None, :])  # [Lq, Lk]
    mask = mask & ((window <= 0) | (distance <= window // 2))[None]
  return mask[:, None, :, :]


def repeat_kv(x, num_heads):
  """[B, L, Hkv, Dh] -> [B, L, H, Dh]: each key/value head repeated for its group of queries."""
  groups = num_heads // x.shape[2]
  return x if groups == 1 else jnp.repeat(x, groups, axis=2)


def reference_attention(q, k, v, mask, dropout_fn=None, scale=None):
  """Softmax(q k^T * scale) v, masked; scale None = 1/sqrt(Dh) (muP's: models/mup.py).
  q: [B, Lq, H, Dh], k/v: [B, Lk, H, Dh].

  Returns (out [B, Lq, H, Dh], probs [B, H, Lq, Lk] float32).
  """
  q = q * jnp.asarray(q.shape[-1] ** -0.5 if scale is None else scale, q.dtype)
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
  logits = jnp.where(mask, logits, _MASKED)
  probs = jax.nn.softmax(logits, axis=-1)
  weights = probs.astype(v.dtype)
  if dropout_fn is not None:
    weights = dropout_fn(weights)
  return jnp.einsum("bhqk,bkhd->bqhd", weights, v), probs


def _shard_rows_and_heads(fn, q, k, v, segments, *rest):
  """fn(q, k, v, segments, *rest) once per shard of a multi-device mesh: Mosaic kernels cannot be
  partitioned by GSPMD. Batch and heads may be sharded (the logical rules in context say how);
  length and head_dim must be whole on every shard for attention to be exact. `rest`: arrays
  [B] (split like the batch) or scalars (replicated). Grouped key/value heads that the rules
  replicate while query heads are split: each shard takes the key/value heads its query heads
  read, so no head is copied."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return fn(q, k, v, segments, *rest)
  q_axes = tuple(nn.logical_to_mesh_axes(BLHD))
  kv_axes = tuple(nn.logical_to_mesh_axes(BLKD if k.shape[2] != q.shape[2] else BLHD))
  split = lambda axes: axes is not None and any(mesh.shape[a] > 1 for a in jax.tree.leaves(axes))
  for name, axes in (("activation_length", q_axes[1]), ("activation_kv", q_axes[3])):
    if split(axes):
      raise ConfigError(f"logical_axis_rules map {name} to {axes!r}, but "
                        "model.attention_impl='flash' needs whole sequences on every device")
  spec = lambda axes: P(axes[0], None, axes[2], None)  # [B, L, H, Dh]
  rows = P(q_axes[0])
  rest_specs = tuple(rows if jnp.ndim(r) else P() for r in rest)
  per_shard = fn
  if split(q_axes[2]) and not split(kv_axes[2]):
    group = q.shape[2] // k.shape[2]

    def per_shard(q, k, v, *args):  # this shard's query heads [s * h, (s + 1) * h) read ...
      heads = q.shape[2]
      first = jax.lax.axis_index(q_axes[2]) * heads // group  # ... these key/value heads
      take = lambda x: jax.lax.dynamic_slice_in_dim(x, first, max(1, heads // group), axis=2)
      return fn(q, take(k), take(v), *args)

  return jax.shard_map(per_shard, mesh=mesh, out_specs=spec(q_axes), check_vma=False,
                       in_specs=(spec(q_axes), spec(kv_axes), spec(kv_axes), rows) + rest_specs,
                       )(q, k, v, segments, *rest)


def _splash(q, k, v, segments, causal, window, max_window, prefix_len, scale):
  """Splash attention (models/splash.py), per shard; a windowed layer's traced window picks the
  local or the global kernel under lax.cond, so a scanned stack keeps one body."""
  def per_shard(q, k, v, segments, *rest):
    rest = list(rest)
    layer_window = rest.pop(0) if window is not None else None
    prefix = rest.pop(0) if prefix_len is not None else None
    run = lambda half: splash.splash_attention(q, k, v, segments, causal, half, prefix, scale)
    if layer_window is None:
      return run(None)
    return jax.lax.cond(layer_window > 0, lambda: run(max_window // 2), lambda: run(None))

  rest = tuple(x for x in (window, prefix_len) if x is not None)
  return _shard_rows_and_heads(per_shard, q, k, v, segments, *rest)


_CUDNN_DTYPES = ("bfloat16", "float16")


def attention_backend(platform, dtype, length, head_dim) -> str:
  """The kernel attention_impl="flash" runs: "splash" | "cudnn" | "xla" (module docstring)."""
  if platform == "tpu":
    return "splash" if splash.supports(length, head_dim) else "xla"
  if platform in ("gpu", "cuda"):
    fits = (jnp.dtype(dtype).name in _CUDNN_DTYPES and head_dim % 8 == 0 and head_dim <= 128
            and length % 2 == 0)
    return "cudnn" if fits else "xla"
  return "xla"


def fused_attention(q, k, v, segments, causal, window=None, max_window=0, prefix_len=None,
                    scale=None):
  """Attention without returning probabilities; q [B, L, H, Dh], k/v [B, L, Hkv, Dh] (Hkv
  divides H), segments [B, L]; window: this layer's (traced) width or None; max_window: the
  spec's attention_window (static), the width a windowed layer has; prefix_len [B] or None;
  scale: the factor on q.k (None = 1/sqrt(Dh), each kernel's default)."""
  window = window if window is not None and max_window > 0 else None
  backend = attention_backend(target_platform(), q.dtype, q.shape[1], q.shape[-1])
  if backend == "splash":
    return _splash(q, k, v, segments, causal, window, max_window, prefix_len, scale)
  if backend == "cudnn":
    return _cudnn(q, k, v, segments, causal, window, max_window, prefix_len, scale)
  mask = attention_mask(segments, segments, causal, window=window, prefix_len=prefix_len)
  return jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale, implementation="xla")


def _cudnn(q, k, v, segments, causal, window, max_window, prefix_len, scale):
  """cuDNN's fused attention (no [B, H, L, L] scores). Causal and causal-window layers use its
  own masks (is_causal, local_window_size: it skips the masked blocks) with the segments as its
  mask input; prefix rows and bidirectional windows, which its masks cannot express (jax raises
  for a right-hand window without is_causal), go in whole as the [B, 1, L, L] mask input."""
  attend = functools.partial(jax.nn.dot_product_attention, q, k, v, scale=scale,
                             implementation="cudnn")
  if prefix_len is not None or (window is not None and not causal):
    return attend(mask=attention_mask(segments, segments, causal, window=window,
                                      prefix_len=prefix_len))
  mask = attention_mask(segments, segments, causal=False)
  run = lambda local: attend(mask=mask, is_causal=causal,
                             local_window_size=(max_window // 2, 0) if local else None)
  if window is None:
    return run(False)
  return jax.lax.cond(window > 0, lambda: run(True), lambda: run(False))


class SelfAttention(nn.Module):
  """Multi-head self-attention with q/k/v/out projections named for remat policies.

  With decode=True, keys/values of every call are appended to the `cache` collection
  (cached_key/cached_value [B, max_len, Hkv, Dh], rotated when RoPE is on; cached_segments
  [B, max_len], cache_index); the first call (model.init with decode=True on a [B, max_len]
  input) only allocates it.
  """
  spec: ModelSpec
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, segments, positions=None, layer=None):
    # x: [B, L, D], segments/positions: [B, L] int32 (segments may be PrefixSegments) -> [B, L, D]
    # layer: this layer's {"window", "rope_base"} scalars (models/stack.py), or None
    spec = self.spec
    prefix_len = None
    if isinstance(segments, PrefixSegments):
      if self.decode:
        raise ValueError("prefix_len is for training and scoring passes, not cached decoding")
      segments, prefix_len = segments
    grouped = spec.num_kv_heads != spec.num_heads
    kv_axis, kv_names = ("kv_heads", BLKD) if grouped else ("heads", BLHD)
    project = lambda name, heads, axis: DenseGeneral(
        spec, (heads, spec.d_head), ("embed", axis, "kv"), name=name)
    q = constrain(checkpoint_name(project("query", spec.num_heads, "heads")(x), "query_proj"),
                  BLHD)  # [B, L, H, Dh]
    k = constrain(checkpoint_name(project("key", spec.num_kv_heads, kv_axis)(x), "key_proj"),
                  kv_names)  # [B, L, Hkv, Dh]
    v = constrain(checkpoint_name(project("value", spec.num_kv_heads, kv_axis)(x), "value_proj"),
                  kv_names)
    if spec.qk_norm:
      q, k = self._qk_norm(q, "query_norm"), self._qk_norm(k, "key_norm")
    if spec.position_embedding == "rope":
      q = apply_rope(q, positions, layer["rope_base"], spec.rope_dims)
      k = apply_rope(k, positions, layer["rope_base"], spec.rope_dims)
    window = layer["window"] if spec.attention_window > 0 else None

    q_index = k_index = None
    k_segments = segments
    if self.decode:
      k, v, k_segments, q_index, k_index = self._use_cache(k, v, segments)

    if spec.attention_impl == "xla" or spec.capture_attention or self.decode:
      dropout = None
      if spec.attention_dropout_rate > 0 and not self.deterministic:
        dropout = lambda w: nn.Dropout(spec.attention_dropout_rate)(w, deterministic=False)
      mask = attention_mask(segments, k_segments, spec.causal, q_index, k_index, window,
                            prefix_len)
      k_all, v_all = repeat_kv(k, spec.num_heads), repeat_kv(v, spec.num_heads)  # [B, Lk, H, Dh]
      out, probs = reference_attention(q, k_all, v_all, mask, dropout, mup.attention_scale(spec))
      if spec.capture_attention:
        self.sow("intermediates", "attention_probs", probs)               # [B, H, Lq, Lk]
        self.sow("intermediates", "queries", jnp.swapaxes(q, 1, 2))       # [B, H, Lq, Dh]
        self.sow("intermediates", "keys", jnp.swapaxes(k_all, 1, 2))      # [B, H, Lk, Dh]
    else:
      out = fused_attention(q, k, v, segments, spec.causal, window, spec.attention_window,
                            prefix_len, mup.attention_scale(spec))
    out = constrain(out, BLHD)

    out = DenseGeneral(spec, (spec.d_model,), ("heads", "kv", "embed"), num_in=2,
                       scale=residual_scale(spec), name="out")(out)  # [B, L, D]
    return constrain(checkpoint_name(out, "out_proj"), BLD)

  def _qk_norm(self, x, name):
    """RMSNorm over each head's Dh dims [B, L, H, Dh] (OLMo 2, Qwen 3); scale [Dh]."""
    spec = self.spec
    return nn.RMSNorm(epsilon=spec.ln_epsilon, dtype=spec.dtype, param_dtype=spec.param_dtype,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("kv",)),
                      name=name)(x)

  def _use_cache(self, k, v, segments):
    """Append k/v [B, Lq, Hkv, Dh] to the cache; return the full cached keys/values to attend to."""
    allocated = self.has_variable("cache", "cached_key")
    cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    cached_segments = self.variable("cache", "cached_segments", jnp.zeros, segments.shape,
                                    jnp.int32)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
    if not allocated:  # init: the input only sized the cache; attend as in a full forward pass
      return k, v, segments, None, None
    start = cache_index.value
    num_new = k.shape[1]
    cached_key.value = jax.lax.dynamic_update_slice(
        cached_key.value, k.astype(cached_key.value.dtype), (0, start, 0, 0))
    cached_value.value = jax.lax.dynamic_update_slice(
        cached_value.value, v.astype(cached_value.value.dtype), (0, start, 0, 0))
    cached_segments.value = jax.lax.dynamic_update_slice(
        cached_segments.value, segments.astype(jnp.int32), (0, start))
    cache_index.value = start + num_new
    q_index = start + jnp.arange(num_new)
    k_index = jnp.arange(cached_key.value.shape[1])
    return cached_key.value, cached_value.value, cached_segments.value, q_index, k_index
