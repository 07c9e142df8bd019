"""The LM head and its cross-entropy in one pass over token chunks, with the gradient made on the
way (CPU); the plain logits path elsewhere.

Why: a decoder's loss reads and writes the logits [B, L, V] about fifteen times (the head matmul,
max, exp, sum, the argmax test, the softmax gradient, both gradient matmuls). On XLA:CPU each pass
over an array larger than the cache runs at memory speed: at the smallest CPU sweep model's
shape (2,048 tokens, width 32, vocabulary 2,048, 16 MB of logits) the head's forward and backward
took 32 ms, most of its 50 ms step. Here the tokens go through in chunks whose logits stay in
cache. Each chunk computes its logits, loss, argmax hits and the loss's gradient with respect to
the logits, and from it d hidden and its share of d kernel. The backward pass then only scales
what the forward pass saved by the incoming cotangent, so no matmul is recomputed.

The head alone at that shape took 12.5 ms instead of 32 ms (medians of 20 calls, one device, one
run, load ~1). In whole train steps, chunked and logits path timed in turn in one process
(2 devices), the step took 1.06x to 1.36x less time in four runs; bench/train_step.py has the
figures against torch. Wider heads keep the logits path (MAX_CHUNKED_WIDTH below).

Numerics: the same float32 operations per token, and the sums over chunks are added in another
order, so losses and gradients equal the logits path's to float32 rounding
(tests/test_head_loss.py). Runs on one path stay bitwise reproducible.

Used by the decoder objectives whose loss is one weighted cross-entropy over the logits (causal,
prefix_lm) when the model returns its `readout_kernel` (models/decoder.py). On TPU and GPU,
and for outputs without one, it is `weighted_cross_entropy` on the logits as before.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

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
ENABLED = True  # False: the logits path everywhere (the reference the tests compare against)


def lm_cross_entropy(outputs, labels, weights):
  """outputs of a decoder, labels [B, L] int, weights [B, L] -> (loss_sum, correct_sum,
  weight_sum), as `weighted_cross_entropy(outputs["logits"], labels, weights)`."""
  axes = chunked_head_axes(outputs)
  if axes is None:
    return weighted_cross_entropy(outputs["logits"], labels, weights)
  hidden, kernel, multiplier = (outputs[k] for k in ("hidden", "readout_kernel",
                                                     "readout_multiplier"))
  hidden = hidden.astype(kernel.dtype)
  weights = weights.astype(jnp.float32)
  if not axes:
    loss, correct = chunked_head_cross_entropy(hidden, kernel, labels, weights, multiplier)
    return loss, correct, jnp.sum(weights)

  # Several devices: each runs the chunks of its own rows and the sums meet once. Under plain jit
  # the partitioner all-reduced every chunk's share of d kernel (16 all-reduces per step, about a
  # quarter of the smallest sweep model's 2-device step in a profiler trace). The kernel enters
  # as varying over the row axes, so its gradient is each device's own sum and the cast's
  # transpose adds them up once.
  def local(h, k, y, w):
    k = jax.lax.pcast(k, axes, to="varying")
    sums = chunked_head_cross_entropy(h, k, y, w, multiplier, varying_axes=axes)
    return tuple(jax.lax.psum(x, axes) for x in sums)

  loss, correct = jax.shard_map(
      local, mesh=jax.sharding.get_abstract_mesh(), in_specs=(P(axes), P(), P(axes), P(axes)),
      out_specs=(P(), P()))(hidden, kernel, labels, weights)
  return loss, correct, jnp.sum(weights)


def chunked_head_axes(outputs):
  """None: the logits path. Else the chunked path, split over these mesh axes (() for none):
  on CPU, for a decoder's outputs with a readout_kernel of width <= MAX_CHUNKED_WIDTH, under no
  mesh or one that only shards the batch."""
  if (not ENABLED or "readout_kernel" not in outputs or target_platform() != "cpu"
      or outputs["readout_kernel"].shape[0] > MAX_CHUNKED_WIDTH):
    return None
  return _batch_mesh_axes()


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
