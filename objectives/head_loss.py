"""The LM/MLM head and its cross-entropy without the [B, L, V] logits: tiled on TPU and GPU (memory),
chunked with the gradient made on the way on CPU (speed); the plain logits path otherwise.

Models return, beside their logits, what the logits are made of (`models.layers.Readout`:
hidden, kernel, optional bias, multiplier, and `model.head_loss`). `head_path` picks one of three
paths per call:

- "tiled" (model.head_loss="auto" on TPU/GPU, or "tiled" on any platform; decoders' LM head and
  encoders' MLM head): `tiled_token_losses` scans over tiles of the vocabulary (columns of the
  kernel). Each tile computes the float32 logits of every token for its columns [B, L, t] (per
  device [b, L, t]) and updates an online log-sum-exp, the label's logit and the first argmax;
  the forward keeps only the per-token log-sum-exp [B, L]. The backward scans the tiles again,
  recomputes a tile's logits, turns softmax - one_hot into the tile's columns of d kernel (and d
  bias) and adds its share of d hidden, accumulated in float32 [B, L, D] (custom_vjp). So no
  [B, L, V] array exists in either pass: the head's memory is one tile's logits and a few
  temporaries of that size, with tiles sized so that a tile's float32 logits per device stay
  under TILE_LOGITS_BYTES (the vocabulary padded to whole tiles, the padding's logits -inf),
  plus d hidden's accumulator. The cost is the head matmul once more in the backward (2 D V
  FLOPs per token, a third more than the head's 6 D V, which models/counting.py does not
  charge). Under a mesh it runs under plain jit and the partitioner: rows stay sharded on batch,
  the kernel's tiles are gathered over the FSDP axis one at a time (as FSDP gathers a layer's
  weights), and each tile's d kernel columns are summed over devices once, so the gathers and
  reduce-scatters add up to one of the whole kernel per pass, as on the logits path. The logits
  are the logits path's (a matmul in the compute dtype, then float32); losses, hit counts and
  gradients equal the logits path's to float32 rounding (tests/test_head_loss.py, float32, with
  an FSDP mesh, micro-batches, remat, and a scan of the compiled step's HLO for any array of the
  logits' size). Per-chip TPU memory (`launch.tiled_loss_table`, results/tiled_loss_aot.md):
  3.55 GiB saved for ettin_decoder_1b at 64 x 8,192 on v5p-32, 0.10 GiB for its encoder, and
  1.57 GiB more for llama2_7b at 512 x 4,096 on v5p-128, where the logits were not at the step's
  peak and XLA's fusion of the layers' forward loop kept two MLP activations live together at
  it instead (the md has the breakdown); model.head_loss="logits" is the way back.

- "chunked" (model.head_loss="auto" on CPU, decoders of width <= MAX_CHUNKED_WIDTH): a CPU speed
  optimisation. A decoder's loss reads and writes the logits [B, L, V] about fifteen times (the
  head matmul, max, exp, sum, the argmax test, the softmax gradient, both gradient matmuls). On
  XLA:CPU each pass over an array larger than the cache runs at memory speed: at the smallest
  CPU sweep model's shape (2,048 tokens, width 32, vocabulary 2,048, 16 MB of logits) the head's
  forward and backward took 32 ms, most of its 50 ms step. Here the tokens go through in chunks
  whose logits stay in cache. Each chunk computes its logits, loss, argmax hits and the loss's
  gradient with respect to the logits, and from it d hidden and its share of d kernel. The
  backward pass then only scales what the forward pass saved by the incoming cotangent, so no
  matmul is recomputed (which is why it is not the memory path: the forward keeps d hidden).
  The head alone at that shape took 12.5 ms instead of 32 ms (medians of 20 calls, one device,
  one run, load ~1). In whole train steps, chunked and logits path timed in turn in one process
  (2 devices), the step took 1.06x to 1.36x less time in four runs; bench/train_step.py has the
  figures against torch. Wider heads keep the logits path (MAX_CHUNKED_WIDTH below). Numerics:
  the same float32 operations per token, and the sums over chunks are added in another order, so
  losses and gradients equal the logits path's to float32 rounding. Runs on one path stay
  bitwise reproducible.

- "logits" (model.head_loss="logits"; on CPU, encoders and wider decoders; outputs without a
  readout): `weighted_cross_entropy` on the model's logits.

Used by the decoder objectives (causal and prefix_lm through `lm_cross_entropy`, gpt_bert through
`weighted_cross_entropies`) and the MLM objectives (`head_cross_entropy` on the gathered slots).
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from models.layers import constrain
from models.platform import target_platform
from objectives.base import is_argmax, weighted_cross_entropy

# Tokens per chunk: at least this many (a smaller matmul runs below the kernels' best rate), and
# at least d_model, so that adding the chunk's [D, V] share of d kernel costs no more memory
# traffic than the chunk's [tokens, V] logits.
MIN_CHUNK_TOKENS = 256
# Widths up to which the chunked path is used. Above it the head is a compute-bound matmul and
# the chunks' smaller matmuls and [D, V] updates cost more than the logits' memory traffic saves:
# in whole train steps (2 devices, chunked against logits in one process, one run, load ~1) width
# 32 with a 2,048 vocabulary ran 1.06-1.36x faster, width 128 ran 1.05x (vocabulary 2,048) and
# 0.79x (4,096).
MAX_CHUNKED_WIDTH = 64
# The tiled path's bound on one vocabulary tile's float32 logits per device. A tile's temporaries
# (logits, their exponentials, d logits in float32 and the compute dtype) are a few times this;
# 256 MiB keeps them near 1 GiB of a TPU's 16-95 GiB while a tile stays a large matmul (32,768
# tokens per device: tiles of 2,048 columns).
TILE_LOGITS_BYTES = 256 * 2**20

_LOGITS = ("activation_batch", "activation_length", "activation_vocab")
_HIDDEN = ("activation_batch", "activation_length", "activation_embed")


def head_path(readout):
  """-> "tiled", "chunked" or "logits": how the head behind `readout` (a models.layers.Readout,
  or None for outputs without one) computes its loss here (see the module docstring)."""
  if readout is None or readout.head_loss == "logits":
    return "logits"
  if readout.head_loss == "tiled" or target_platform() != "cpu":
    return "tiled"
  if (readout.bias is None and readout.kernel.shape[0] <= MAX_CHUNKED_WIDTH
      and _batch_mesh_axes() is not None):
    return "chunked"
  return "logits"


def head_cross_entropy(logits, readout, labels, weights):
  """logits [..., V] (unused off the logits path: XLA drops them), readout (or None), labels
  [...] int, weights [...] -> (loss_sum, correct_sum, weight_sum), as
  `weighted_cross_entropy(logits, labels, weights)`."""
  path = head_path(readout)
  if path == "logits":
    return weighted_cross_entropy(logits, labels, weights)
  weights = weights.astype(jnp.float32)
  if path == "tiled":
    nll, hits = tiled_token_losses(readout, labels)
    return jnp.sum(nll * weights), jnp.sum(hits * weights), jnp.sum(weights)
  loss, correct = _chunked_sums(readout, labels, weights)
  return loss, correct, jnp.sum(weights)


def lm_cross_entropy(outputs, labels, weights):
  """outputs of a decoder, labels [B, L] int, weights [B, L] -> (loss_sum, correct_sum,
  weight_sum), as `weighted_cross_entropy(outputs["logits"], labels, weights)`."""
  return head_cross_entropy(outputs["logits"], outputs.get("readout"), labels, weights)


def weighted_cross_entropies(logits, readout, labels, weight_sets):
  """Several weightings of one head's loss (gpt_bert's two row groups) -> [(loss_sum,
  correct_sum, weight_sum)] per weights array; the tiled path computes the tokens' losses once."""
  if head_path(readout) != "tiled":
    return [weighted_cross_entropy(logits, labels, w) for w in weight_sets]
  nll, hits = tiled_token_losses(readout, labels)
  sums = []
  for w in weight_sets:
    w = w.astype(jnp.float32)
    sums.append((jnp.sum(nll * w), jnp.sum(hits * w), jnp.sum(w)))
  return sums


# ------------------------------------------------------------------ the tiled path (memory)


def tiled_token_losses(readout, labels):
  """readout (hidden [B, L, D]), labels [B, L] int -> (nll [B, L], hits [B, L]) float32: each
  token's cross-entropy and whether its label is the argmax (ties to the first index), without
  the [B, L, V] logits. Differentiable in hidden, kernel and bias through nll (hits are counts)."""
  hidden, kernel, bias = readout.hidden, readout.kernel, readout.bias
  b, l, _ = hidden.shape
  tile, count = vocab_tiles(b // _batch_shards(b) * l, kernel.shape[1])
  return _tiled(hidden, kernel, bias, labels.astype(jnp.int32), readout.multiplier, tile, count)


def vocab_tiles(tokens, vocab):
  """-> (tile, tiles): the fewest vocabulary tiles whose float32 logits [tokens, tile] (one
  device's tokens) stay under TILE_LOGITS_BYTES, evened out over `vocab` and, above 128
  columns, rounded up to a multiple of 128 (a TPU vector's lanes)."""
  most = max(1, TILE_LOGITS_BYTES // (tokens * 4))
  count = -(-vocab // most)
  tile = -(-vocab // count)
  if tile > 128:
    tile = -(-tile // 128) * 128
  return tile, -(-vocab // tile)


def _batch_shards(rows):
  """The number of devices the rows are split over under the context mesh (1 without one, or
  when they do not divide `rows`)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return 1
  rule = nn.logical_to_mesh_axes(("activation_batch",))[0]  # under the rules in context
  axes = (rule,) if isinstance(rule, str) else tuple(rule or ())
  shards = math.prod(mesh.shape[a] for a in axes)
  return shards if rows % shards == 0 else 1


def _kernel_tiles(kernel, bias, tile, count):
  """kernel [D, V] -> [tiles, D, tile], bias [V] -> [tiles, tile] (zero-padded: the padded
  columns are masked out of the logits), and each tile's first column."""
  pad = tile * count - kernel.shape[1]
  tiles = jnp.pad(kernel, ((0, 0), (0, pad))).reshape(kernel.shape[0], count, tile)
  # Sharded as the kernel is: gathered over FSDP one tile at a time inside the scan, as FSDP
  # gathers a layer's weights; each tile's columns split over the tensor axis.
  tiles = constrain(tiles.swapaxes(0, 1), (None, "embed", "vocab"))
  if bias is not None:
    bias = jnp.pad(bias.astype(jnp.float32), (0, pad)).reshape(count, tile)
  return tiles, bias, jnp.arange(count) * tile


def _tile_logits(hidden, kernel_tile, bias_tile, first, vocab, multiplier):
  """hidden [B, L, D] -> float32 logits [B, L, tile] of columns first.. of the vocabulary, as the
  model's readout computes them (a matmul in the compute dtype, then float32), so both paths see
  the same logits in any dtype; columns past the vocabulary are -inf."""
  logits = jnp.einsum("bld,dv->blv", hidden, kernel_tile).astype(jnp.float32)
  if multiplier != 1.0:
    logits = logits * multiplier
  if bias_tile is not None:
    logits = logits + bias_tile
  columns = first + jnp.arange(kernel_tile.shape[1])
  return constrain(jnp.where(columns < vocab, logits, -jnp.inf), _LOGITS), columns


def _tiled_forward(hidden, kernel, bias, labels, multiplier, tile, count):
  """-> (nll, hits), log-sum-exp: each [B, L] float32, by an online log-sum-exp over the tiles."""
  vocab = kernel.shape[1]
  tiles, bias_tiles, firsts = _kernel_tiles(kernel, bias, tile, count)

  def body(carry, xs):
    top, total, label_logit, best = carry
    kernel_tile, bias_tile, first = xs
    logits, columns = _tile_logits(hidden, kernel_tile, bias_tile, first, vocab, multiplier)
    tile_top = jnp.max(logits, axis=-1)
    new_top = jnp.maximum(top, tile_top)
    total = total * jnp.exp(top - new_top) + jnp.sum(jnp.exp(logits - new_top[..., None]), -1)
    here = labels - first
    in_tile = (here >= 0) & (here < tile)
    label_logit = jnp.where(in_tile, jnp.take_along_axis(
        logits, jnp.clip(here, 0, tile - 1)[..., None], axis=-1)[..., 0], label_logit)
    # The first column holding the maximum: strictly greater, so earlier tiles keep ties.
    tile_best = first + jnp.argmax(logits, axis=-1).astype(jnp.int32)
    best = jnp.where(tile_top > top, tile_best, best)
    return (new_top, total, label_logit, best), None

  rows = labels.shape
  start = (jnp.full(rows, -jnp.inf), jnp.zeros(rows), jnp.zeros(rows),
           jnp.zeros(rows, jnp.int32))
  (top, total, label_logit, best), _ = jax.lax.scan(body, start, (tiles, bias_tiles, firsts))
  log_total = jnp.log(total)
  nll = log_total - (label_logit - top)
  return (nll, (best == labels).astype(jnp.float32)), log_total + top


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _tiled(hidden, kernel, bias, labels, multiplier, tile, count):
  return _tiled_forward(hidden, kernel, bias, labels, multiplier, tile, count)[0]


def _tiled_fwd(hidden, kernel, bias, labels, multiplier, tile, count):
  sums, lse = _tiled_forward(hidden, kernel, bias, labels, multiplier, tile, count)
  return sums, (hidden, kernel, bias, labels, lse)


def _tiled_bwd(multiplier, tile, count, saved, cotangents):
  """Tile by tile: softmax - one_hot from the saved log-sum-exp, times each token's cotangent;
  d hidden accumulates over the tiles ([B, L, D] float32), each tile's d kernel columns and d
  bias are its own (summed over the devices' rows once per tile: one reduce-scatter in all)."""
  hidden, kernel, bias, labels, lse = saved
  d_nll = cotangents[0].astype(jnp.float32)  # the hit counts have no gradient
  vocab = kernel.shape[1]
  tiles, bias_tiles, firsts = _kernel_tiles(kernel, bias, tile, count)

  def body(d_hidden, xs):
    kernel_tile, bias_tile, first = xs
    logits, columns = _tile_logits(hidden, kernel_tile, bias_tile, first, vocab, multiplier)
    d_logits = (jnp.exp(logits - lse[..., None])
                - (labels[..., None] == columns).astype(jnp.float32)) * d_nll[..., None]
    d_scaled = (d_logits * multiplier if multiplier != 1.0 else d_logits).astype(hidden.dtype)
    d_hidden = d_hidden + jnp.einsum("blv,dv->bld", d_scaled, kernel_tile,
                                     preferred_element_type=jnp.float32)
    d_kernel = constrain(jnp.einsum("bld,blv->dv", hidden, d_scaled,
                                    preferred_element_type=jnp.float32), ("embed", "vocab"))
    d_bias = None if bias_tile is None else jnp.sum(d_logits, axis=(0, 1))
    return constrain(d_hidden, _HIDDEN), (d_kernel, d_bias)

  d_hidden, (d_kernel, d_bias) = jax.lax.scan(
      body, constrain(jnp.zeros(hidden.shape, jnp.float32), _HIDDEN),
      (tiles, bias_tiles, firsts))
  d_kernel = d_kernel.swapaxes(0, 1).reshape(kernel.shape[0], -1)[:, :vocab]
  if bias is not None:
    d_bias = d_bias.reshape(-1)[:vocab].astype(bias.dtype)
  return (d_hidden.astype(hidden.dtype), d_kernel.astype(kernel.dtype), d_bias, None)


_tiled.defvjp(_tiled_fwd, _tiled_bwd)


# ------------------------------------------------------------------ the chunked path (CPU speed)


def _chunked_sums(readout, labels, weights):
  """The chunked path's (loss_sum, correct_sum), over the batch-sharding mesh axes."""
  axes = _batch_mesh_axes()
  hidden, kernel, multiplier = readout.hidden, readout.kernel, readout.multiplier
  hidden = hidden.astype(kernel.dtype)
  if not axes:
    return chunked_head_cross_entropy(hidden, kernel, labels, weights, multiplier)

  # Several devices: each runs the chunks of its own rows and the sums meet once. Under plain jit
  # the partitioner all-reduced every chunk's share of d kernel (16 all-reduces per step, about a
  # quarter of the smallest sweep model's 2-device step in a profiler trace). The kernel enters
  # as varying over the row axes, so its gradient is each device's own sum and the cast's
  # transpose adds them up once.
  def local(h, k, y, w):
    k = jax.lax.pcast(k, axes, to="varying")
    sums = chunked_head_cross_entropy(h, k, y, w, multiplier, varying_axes=axes)
    return tuple(jax.lax.psum(x, axes) for x in sums)

  return jax.shard_map(
      local, mesh=jax.sharding.get_abstract_mesh(), in_specs=(P(axes), P(), P(axes), P(axes)),
      out_specs=(P(), P()))(hidden, kernel, labels, weights)


def _batch_mesh_axes():
  """The context mesh's axes of size > 1 that shard the batch (() without a mesh), or None when
  any other axis has size > 1 (model parallel: XLA partitions the logits path)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return ()
  rule = nn.logical_to_mesh_axes(("activation_batch",))[0]  # under the rules in context
  axes = (rule,) if isinstance(rule, str) else tuple(rule or ())
  if any(size > 1 and name not in axes for name, size in mesh.shape.items()):
    return None
  return tuple(a for a in axes if mesh.shape[a] > 1)


def chunk_length(batch, length, d_model):
  """Positions per chunk: the smallest divisor c of `length` with batch * c >= the token target
  (the whole length when none is)."""
  target = max(MIN_CHUNK_TOKENS, d_model)
  for c in range(1, length + 1):
    if length % c == 0 and batch * c >= target:
      return c
  return length


def chunked_head_cross_entropy(hidden, kernel, labels, weights, multiplier=1.0, varying_axes=()):
  """hidden [B, L, D], kernel [D, V], labels [B, L], weights [B, L] float32 ->
  (sum of weighted NLL, sum of weighted argmax hits); logits = hidden @ kernel * multiplier,
  in float32. Differentiable in hidden and kernel (the loss; the hit count is a constant).
  `varying_axes`: the shard_map axes the rows are split over, when called inside one."""
  b, l, d = hidden.shape
  c = chunk_length(b, l, d)

  def chunks(x):  # [B, L, ...] -> [L / c, B, c, ...]: the scan runs over the unsharded length
    return x.reshape((b, l // c, c) + x.shape[2:]).swapaxes(0, 1)

  def unchunk(x):
    return x.swapaxes(0, 1).reshape((b, l) + x.shape[3:])

  # The softmax cross-entropy and its gradient are written out here rather than autodiff of
  # `weighted_cross_entropy` per chunk (jax.vjp in the scan body): that version took 19-23 ms
  # against 12.5-15 ms for the head alone, and 52-56 against 40-46 ms for the smallest sweep
  # model's 2-device step (three runs, each timing both in turn, load under 1).
  def chunk_terms(h, k, y, w):
    logits = jnp.einsum("bcd,dv->bcv", h, k).astype(jnp.float32) * multiplier  # [B, c, V]
    top = jnp.max(logits, axis=-1, keepdims=True)
    exp = jnp.exp(logits - top)
    total = jnp.sum(exp, axis=-1, keepdims=True)
    label_logit = jnp.take_along_axis(logits, y[..., None], axis=-1)
    nll = (jnp.log(total) + top - label_logit)[..., 0]
    hits = is_argmax(logits, y).astype(jnp.float32)
    return exp / total, jnp.sum(nll * w), jnp.sum(hits * w)

  def sums_only(h, k, y, w):
    def body(_, xs):
      _, loss, hits = chunk_terms(xs[0], k, xs[1], xs[2])
      return None, (loss, hits)
    _, (loss, hits) = jax.lax.scan(body, None, (chunks(h), chunks(y), chunks(w)))
    return jnp.sum(loss), jnp.sum(hits)

  def with_gradients(h, k, y, w):
    zero_kernel = jnp.zeros(k.shape, jnp.float32)
    if varying_axes:  # each device sums its own rows' share
      zero_kernel = jax.lax.pcast(zero_kernel, varying_axes, to="varying")
    def body(d_kernel, xs):
      hc, yc, wc = xs
      probs, loss, hits = chunk_terms(hc, k, yc, wc)
      # d loss / d logits = (softmax - one_hot(label)) * weight, times the readout multiplier.
      d_logits = (probs - jax.nn.one_hot(yc, k.shape[1], dtype=probs.dtype)) * (
          wc[..., None] * multiplier)
      d_logits = d_logits.astype(k.dtype)
      d_hidden = jnp.einsum("bcv,dv->bcd", d_logits, k)  # [B, c, D]
      d_kernel = d_kernel + jnp.einsum("bcd,bcv->dv", hc, d_logits,
                                       preferred_element_type=jnp.float32)
      return d_kernel, (loss, hits, d_hidden)
    d_kernel, (loss, hits, d_hidden) = jax.lax.scan(
        body, zero_kernel, (chunks(h), chunks(y), chunks(w)))
    return (jnp.sum(loss), jnp.sum(hits)), (unchunk(d_hidden), d_kernel.astype(k.dtype))

  @jax.custom_vjp
  def head(h, k, y, w):
    return sums_only(h, k, y, w)

  def head_bwd(saved, cotangents):
    d_hidden, d_kernel = saved
    g = cotangents[0]  # of the loss sum; the hit count has no gradient
    return d_hidden * g.astype(d_hidden.dtype), d_kernel * g.astype(d_kernel.dtype), None, None

  head.defvjp(with_gradients, head_bwd)
  return head(hidden, kernel, labels, weights)
