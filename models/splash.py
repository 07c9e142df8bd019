"""Splash attention: the TPU kernel behind attention_impl="flash" (models/attention.py).

jax's block-sparse Pallas kernel (jax.experimental.pallas.ops.tpu.splash_attention, the one
MaxText and Levanter use) takes a static mask over (query, key) positions, which it turns into a
list of the (query block, key block) tiles to compute, and per-token segment ids. Every mask
pancake needs is one of those, so no [L, L] array exists on the kernel path:

  global layer, encoder     FullMask                 every tile
  global layer, decoder     CausalMask               tiles on or below the diagonal
  windowed layer            LocalMask (h, h) / (h, 0), h = window // 2: only the tiles within h
                            of the diagonal (at L = 8192, window 128, 128-wide tiles: 3 of 64
                            per query block), so a windowed layer costs ~window, not ~L, keys
  prefix rows (prefix LM,   keys laid out twice, [copy A | copy B] (2L keys, see
  GPT-BERT)                 `_PrefixKeysMask`): copy A is seen by every query, copy B causally;
                            per-row segment ids hide copy A's keys at or after the row's
                            prefix_len and copy B's keys before it. Each key is visible through
                            exactly one copy, so softmax over the 2L keys is the prefix mask's,
                            and autodiff adds the two copies' gradients. The kernel computes
                            copy A's tiles whole (segment ids do not skip tiles): 1.5x a full
                            layer's score FLOPs (causal rows included), against the dense
                            fallback's [B, H, L, L] scores and mask.
Segment ids (packed documents, padding = 0) are the kernel's own SegmentIds. Grouped-query and
multi-query heads run the MQA kernel once per key/value head (vmapped), each with its group of
query heads, so keys and values are never copied per query head.

The kernel is compiled for TPU when lowering for one (`models.platform.target_platform`) and runs
in Pallas' interpreter anywhere else, which is how the tests check it on CPU
(tests/test_splash_attention.py, against the einsum reference for every mask kind).
"""

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as mask_lib

from models.platform import target_platform

LANES = 128  # the kernel tiles queries and keys in multiples of 128
HIDDEN = -1  # a key segment id that no query carries (query ids are >= 0): the key is invisible


class _PrefixKeysMask(mask_lib._ComputableMask):  # pylint: disable=protected-access
  """[L, 2L]: keys [0, L) are copy A, seen by every query (within `half_window` when set);
  keys [L, 2L) are copy B, seen causally (and within `half_window`). Computed in the kernel from
  indices (like the library's CausalMask), so nothing of size L x L is stored."""

  def __init__(self, length, half_window=None):
    self.length, self.half_window = length, half_window

    def visible(q, kv):  # numpy (mask processing) or jax (in the kernel) int arrays
      in_a = kv < length
      j = kv - length  # copy B's key index
      seen_a, seen_b = in_a, ~in_a & (j <= q)
      if half_window is not None:
        seen_a = seen_a & (kv >= q - half_window) & (kv <= q + half_window)
        seen_b = seen_b & (j >= q - half_window)
      return seen_a | seen_b

    super().__init__(shape=(length, 2 * length), mask_function=visible)

  def __eq__(self, other):
    return (type(other) is type(self) and (other.length, other.half_window)
            == (self.length, self.half_window))

  def __hash__(self):
    return hash((type(self), self.length, self.half_window))


def block_size(length, half_window=None):
  """Query/key tile for a length (a multiple of LANES): the largest of 512, 256 and 128 that
  divides it, as MaxText's defaults; for a windowed layer, the smallest multiple of 128 that covers
  the window, since wider tiles only add masked keys (a 512 tile around a 64-token half window
  computes 1,024 keys per query block where 128-wide tiles compute 256-384)."""
  if half_window is not None:
    want = LANES * max(1, -(-2 * half_window // LANES))
    for b in (128, 256, 512):
      if b >= want and length % b == 0:
        return b
  return next(b for b in (512, 256, 128) if length % b == 0)


def supports(length, head_dim):
  """Whether the kernel tiles this shape (otherwise attention_impl="flash" runs XLA's)."""
  return length % LANES == 0 and (head_dim <= LANES or head_dim % LANES == 0)


def _kernel(kind, length, heads, half_window, grouped, interpret):
  """The kernel for one static shape and mask. Turning a mask into tile lists is host work that
  the library caches by the mask's hash, so building the kernel in every trace is cheap; the
  lists become constants of the trace that builds it."""
  if kind == "prefix":
    mask = _PrefixKeysMask(length, half_window)
  elif half_window is not None:
    mask = mask_lib.LocalMask((length, length), (half_window, 0 if kind == "triangular" else
                                                 half_window), offset=0)
  elif kind == "triangular":
    mask = mask_lib.CausalMask((length, length))
  else:
    mask = mask_lib.FullMask((length, length))
  block = block_size(length, half_window)  # divides L, and so the prefix layout's 2L keys
  sizes = splash.BlockSizes(
      block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
      block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
  make = splash.make_splash_mqa if grouped else splash.make_splash_mha
  return make(mask_lib.MultiHeadMask([mask] * heads), block_sizes=sizes, head_shards=1,
              q_seq_shards=1, interpret=interpret)


def splash_attention(q, k, v, segments, causal, half_window=None, prefix_len=None, scale=None):
  """q [B, L, H, Dh], k/v [B, L, Hkv, Dh] (Hkv divides H), segments [B, L] int32 (0 = padding),
  causal: bool, half_window: None (global) or a static int (keys within it), prefix_len [B] or
  None (decoders: keys before it are visible to every query of their segment), scale: on q.k
  (None = 1/sqrt(Dh)) -> [B, L, H, Dh]. One device's (or one shard's) rows and heads."""
  _, length, heads, head_dim = q.shape
  kv_heads = k.shape[2]
  grouped = kv_heads != heads
  if prefix_len is not None and not causal:
    raise ValueError("prefix_len is a decoder's (causal) mask")
  kind = "prefix" if prefix_len is not None else ("triangular" if causal else "full")
  kernel = _kernel(kind, length, heads // kv_heads if grouped else heads, half_window, grouped,
                   target_platform() != "tpu")
  q = q * jnp.asarray(head_dim ** -0.5 if scale is None else scale, q.dtype)
  q_ids = kv_ids = segments.astype(jnp.int32)
  if prefix_len is not None:  # keys twice: copy A holds those before the prefix end, B the rest
    before = jnp.arange(length)[None, :] < prefix_len[:, None]
    kv_ids = jnp.concatenate([jnp.where(before, q_ids, HIDDEN), jnp.where(before, HIDDEN, q_ids)],
                             axis=1)
    k, v = jnp.concatenate([k, k], axis=1), jnp.concatenate([v, v], axis=1)

  # The kernel takes heads first: [H, L, Dh] (MHA) or [Hkv, G, L, Dh] vmapped over Hkv (MQA).
  q = jnp.swapaxes(q, 1, 2)  # [B, H, L, Dh]
  k, v = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # [B, Hkv, Lk, Dh]

  def one_row(q, k, v, q_ids, kv_ids):
    ids = splash.SegmentIds(q=q_ids, kv=kv_ids)
    if not grouped:
      return kernel(q, k, v, ids)
    q = q.reshape(kv_heads, heads // kv_heads, length, head_dim)
    out = jax.vmap(kernel, in_axes=(0, 0, 0, None))(q, k, v, ids)
    return out.reshape(heads, length, head_dim)

  out = jax.vmap(one_row)(q, k, v, q_ids, kv_ids)  # [B, H, L, Dh]
  return jnp.swapaxes(out, 1, 2)
