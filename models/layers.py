"""Building blocks shared by both families: dense layers, norms, embeddings, the MLP.

Every parameter is created through `nn.with_logical_partitioning` with logical axis names
(vocab, embed, mlp, heads, kv_heads, kv, positions, token_types, classes); the mesh mapping lives
in config (configs/base.py DEFAULT_RULES). Activations are pinned with `constrain` (activation_*
names).
Parameters are stored in spec.param_dtype; compute runs in spec.dtype.
"""

import functools
from typing import Any

import flax.linen as nn
from flax import struct
import jax
import jax.numpy as jnp

from models import mup
from models.matmul import contract, dense_dot_general
from models.spec import ModelSpec

# Logical names of the residual stream [B, L, D].
BLD = ("activation_batch", "activation_length", "activation_embed")


def constrain(x, names):
  """Sharding constraint by logical names; a no-op without a mesh and rules in context."""
  return nn.with_logical_constraint(x, names)


def weight_init(spec: ModelSpec, scale=1.0):
  """N(0, (init_range*scale)^2); encoders truncate at 2 std like google-research/bert's
  truncated_normal_initializer, decoders use a plain normal like GPT-2."""
  std = spec.init_range * scale
  if spec.family == "encoder":
    return nn.initializers.truncated_normal(stddev=std)
  return nn.initializers.normal(stddev=std)


def residual_scale(spec: ModelSpec):
  """GPT-2: projections that write into the residual stream start 1/sqrt(2*num_layers) smaller."""
  return (2 * spec.num_layers) ** -0.5 if spec.scale_residual_init else 1.0


def activation_fn(name):
  return {
      "gelu_exact": functools.partial(jax.nn.gelu, approximate=False),
      "gelu_tanh": functools.partial(jax.nn.gelu, approximate=True),
      "relu": jax.nn.relu,
      "silu": jax.nn.silu,
  }[name]


def dense(spec: ModelSpec, features, kernel_axes, name, scale=1.0, use_bias=None):
  """nn.Dense whose kernel [in, out] and bias [out] carry logical names."""
  return nn.Dense(
      features,
      use_bias=spec.use_bias if use_bias is None else use_bias,
      dtype=spec.dtype,
      param_dtype=spec.param_dtype,
      kernel_init=nn.with_logical_partitioning(
          weight_init(spec, scale * mup.init_scale(spec, name)), kernel_axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, kernel_axes[-1:]),
      dot_general=dense_dot_general,
      name=name)


class DenseGeneral(nn.Module):
  """Contracts the last `num_in` axes of x with a kernel [*in, *features]; adds bias [*features].

  Written here rather than nn.DenseGeneral because that one initialises a flattened kernel and
  then unboxes it with the full-rank logical names, which fails under a mesh context.
  """
  spec: ModelSpec
  features: tuple
  kernel_axes: tuple
  num_in: int = 1
  scale: float = 1.0

  @nn.compact
  def __call__(self, x):
    spec = self.spec
    kernel_shape = x.shape[x.ndim - self.num_in:] + tuple(self.features)
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(
            weight_init(spec, self.scale * mup.init_scale(spec, self.name)), self.kernel_axes),
        kernel_shape, spec.param_dtype)
    y = contract(x.astype(spec.dtype), kernel.astype(spec.dtype), self.num_in)
    if spec.use_bias:
      bias = self.param(
          "bias", nn.with_logical_partitioning(nn.initializers.zeros,
                                               self.kernel_axes[self.num_in:]),
          tuple(self.features), spec.param_dtype)
      y = y + bias.astype(spec.dtype)
    return y


def layer_norm(spec: ModelSpec, name, axis_name="embed"):
  """spec.norm over the last axis (LayerNorm, or RMSNorm: no mean, no bias); statistics in
  float32 whatever the compute dtype. Named layer_norm (and its parameters ln_*) for both."""
  scale_init = nn.with_logical_partitioning(nn.initializers.ones, (axis_name,))
  if spec.norm == "rmsnorm":
    return nn.RMSNorm(epsilon=spec.ln_epsilon, dtype=spec.dtype, param_dtype=spec.param_dtype,
                      scale_init=scale_init, name=name)
  return nn.LayerNorm(
      epsilon=spec.ln_epsilon,
      use_bias=spec.use_bias,
      dtype=spec.dtype,
      param_dtype=spec.param_dtype,
      scale_init=scale_init,
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axis_name,)),
      name=name)


def embed_table(spec: ModelSpec, rows, row_axis, name):
  return nn.Embed(
      rows, spec.d_model,
      dtype=spec.dtype,
      param_dtype=spec.param_dtype,
      embedding_init=nn.with_logical_partitioning(weight_init(spec), (row_axis, "embed")),
      name=name)


class Embeddings(nn.Module):
  """Token + learned position (unless RoPE) (+ segment for encoders unless type_vocab_size=0).

  Encoders (BERT) follow the sum with LayerNorm, then dropout; decoders (GPT-2) only dropout.
  `attend` reuses the token table as the output projection (tied LM/MLM head).
  """
  spec: ModelSpec

  def setup(self):
    spec = self.spec
    self.token = embed_table(spec, spec.vocab_size, "vocab", "token")
    if spec.position_embedding == "learned":  # RoPE rotates q and k instead (models/rope.py)
      self.position = embed_table(spec, spec.max_len, "positions", "position")
    if spec.family == "encoder":
      if spec.type_vocab_size:  # ModernBERT has none: 0 rows = no table, ids ignored
        self.token_type = embed_table(spec, spec.type_vocab_size, "token_types", "token_type")
      self.ln = layer_norm(spec, "ln")
    self.dropout = nn.Dropout(spec.dropout_rate)

  def __call__(self, input_ids, positions, token_type_ids=None, deterministic=True):
    # input_ids, positions, token_type_ids: [B, L] int -> [B, L, D]
    x = self.token(input_ids)
    if self.spec.position_embedding == "learned":
      x = x + self.position(positions)
    if self.spec.family == "encoder":
      if self.spec.type_vocab_size:
        if token_type_ids is None:
          token_type_ids = jnp.zeros_like(input_ids)
        x = x + self.token_type(token_type_ids)
      x = self.ln(x)
    x = self.dropout(x, deterministic=deterministic)
    return constrain(x, BLD)

  def attend(self, x):
    """[..., D] -> [..., V] logits against the token table, in float32 for the loss."""
    # As nn.Embed.attend (x @ table^T in the compute dtype), through `contract` for its CPU backward.
    table = self.token.embedding.astype(self.spec.dtype)  # [V, D]
    return readout(self.spec, contract(x.astype(self.spec.dtype), table.T).astype(jnp.float32))


def readout_multiplier(spec: ModelSpec) -> float:
  """What readout logits are multiplied by: muP's output multiplier (models/mup.py), 1 under SP."""
  return mup.output_multiplier(spec) if spec.parametrization == "mup" else 1.0


def readout(spec: ModelSpec, logits):
  """Readout logits times `readout_multiplier`; untouched under SP."""
  if spec.parametrization != "mup":
    return logits
  return logits * readout_multiplier(spec)


@struct.dataclass
class Readout:
  """What a vocabulary head's logits are made of, returned beside them so that a loss can compute
  them a chunk of tokens at a time (objectives/head_loss.py): logits = hidden @ kernel *
  multiplier (+ bias), in float32. A train step that takes this path leaves the model's logits
  unused and XLA drops them."""
  hidden: jax.Array          # [B, L, D] (MLM: [B, P, D], after the head's transform), spec.dtype
  kernel: jax.Array          # [D, V], spec.dtype
  bias: Any = None           # [V] or None
  multiplier: float = struct.field(pytree_node=False, default=1.0)  # readout_multiplier(spec)
  head_loss: str = struct.field(pytree_node=False, default="auto")  # model.head_loss


def make_readout(spec: ModelSpec, hidden, kernel, bias=None):
  return Readout(hidden=hidden.astype(spec.dtype), kernel=kernel.astype(spec.dtype), bias=bias,
                 multiplier=readout_multiplier(spec), head_loss=spec.head_loss)


class Mlp(nn.Module):
  """Position-wise feed-forward: D -> d_ff (activation) -> D; with mlp="glu" the activation of a
  second projection gates the first (Shazeer 2020: GeGLU with gelu, SwiGLU with silu)."""
  spec: ModelSpec

  @nn.compact
  def __call__(self, x):
    spec = self.spec
    hidden = ("activation_batch", "activation_length", "activation_mlp")
    h = constrain(dense(spec, spec.d_ff, ("embed", "mlp"), "wi")(x), hidden)  # [B, L, F]
    if spec.mlp == "glu":
      gate = constrain(dense(spec, spec.d_ff, ("embed", "mlp"), "wi_gate")(x), hidden)
      h = activation_fn(spec.activation)(gate) * h
    else:
      h = activation_fn(spec.activation)(h)
    out = dense(spec, spec.d_model, ("mlp", "embed"), "wo", scale=residual_scale(spec))(h)
    return constrain(out, BLD)
