"""Model config checks and the resolved, hashable spec the modules are built from.

`validate(model_cfg)` looks only at plain config values, so a bad field fails in microseconds with
one `ConfigError` naming it, before any array exists. `resolve(model_cfg)` turns the ConfigDict into
a frozen `ModelSpec` with defaults filled in (d_head=0 -> d_model // num_heads, d_ff=0 -> 4*d_model)
and dtype names turned into dtypes; modules take a ModelSpec so they never re-interpret the config.
"""

import dataclasses
from typing import Any

import jax.numpy as jnp

from configs.errors import ConfigError

FAMILIES = ("encoder", "decoder")
ACTIVATIONS = ("gelu_exact", "gelu_tanh", "relu")
LN_PLACEMENTS = ("post", "pre")
REMAT_POLICIES = ("none", "full", "save_dots", "save_qkv_out")
ATTENTION_IMPLS = ("xla", "flash")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

_POSITIVE_INTS = ("vocab_size", "max_len", "num_layers", "d_model", "num_heads")
_NON_NEGATIVE_INTS = ("d_head", "d_ff", "type_vocab_size", "scan_unroll")
_BOOLS = ("use_bias", "scale_residual_init", "tie_embeddings", "nsp_head", "scan_layers")
_RATES = ("dropout_rate", "attention_dropout_rate")
_CHOICES = (("family", FAMILIES), ("activation", ACTIVATIONS), ("ln_placement", LN_PLACEMENTS),
            ("remat_policy", REMAT_POLICIES), ("attention_impl", ATTENTION_IMPLS),
            ("dtype", tuple(DTYPES)), ("param_dtype", tuple(DTYPES)))
REQUIRED_FIELDS = (_POSITIVE_INTS + _NON_NEGATIVE_INTS + _BOOLS + _RATES
                   + tuple(name for name, _ in _CHOICES) + ("ln_epsilon", "init_range"))


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _choices(values):
  return ", ".join(repr(v) for v in values)


def validate(model_cfg):
  """Raises ConfigError for the first bad `model.*` field; returns None when all are usable."""
  for name in REQUIRED_FIELDS:
    if name not in model_cfg:
      raise ConfigError(f"model.{name} is missing; every model field is defined in configs/base.py")
  for name, valid in _CHOICES:
    value = model_cfg[name]
    if value not in valid:
      raise ConfigError(f"model.{name}={value!r} is not one of {_choices(valid)}")
  for name in _POSITIVE_INTS:
    value = model_cfg[name]
    if not _is_int(value) or value <= 0:
      raise ConfigError(f"model.{name}={value!r} must be a positive integer")
  for name in _NON_NEGATIVE_INTS:
    value = model_cfg[name]
    if not _is_int(value) or value < 0:
      raise ConfigError(f"model.{name}={value!r} must be an integer >= 0 (0 = default)")
  for name in _BOOLS:
    if not isinstance(model_cfg[name], bool):
      raise ConfigError(f"model.{name}={model_cfg[name]!r} must be True or False")
  for name in _RATES:
    value = model_cfg[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
      raise ConfigError(f"model.{name}={value!r} must be a number in [0, 1)")
  for name in ("ln_epsilon", "init_range"):
    value = model_cfg[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
      raise ConfigError(f"model.{name}={value!r} must be a positive number")
  if model_cfg.d_head == 0 and model_cfg.d_model % model_cfg.num_heads:
    raise ConfigError(
        f"model.d_model={model_cfg.d_model} is not divisible by model.num_heads="
        f"{model_cfg.num_heads}; choose num_heads dividing d_model, or set model.d_head")
  if model_cfg.family == "encoder" and model_cfg.type_vocab_size < 1:
    raise ConfigError(f"model.type_vocab_size={model_cfg.type_vocab_size} must be >= 1 for "
                      "family='encoder' (segment embeddings)")
  if model_cfg.attention_impl == "flash" and model_cfg.attention_dropout_rate > 0:
    raise ConfigError(
        f"model.attention_impl='flash' cannot apply model.attention_dropout_rate="
        f"{model_cfg.attention_dropout_rate} (fused kernels have no dropout on probabilities); "
        "set attention_dropout_rate=0 or attention_impl='xla'")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """The validated model config with defaults resolved. Field meanings: configs/base.py."""
  family: str
  vocab_size: int
  max_len: int
  type_vocab_size: int
  num_layers: int
  d_model: int
  num_heads: int
  d_head: int
  d_ff: int
  activation: str
  ln_placement: str
  ln_epsilon: float
  dropout_rate: float
  attention_dropout_rate: float
  use_bias: bool
  init_range: float
  scale_residual_init: bool
  tie_embeddings: bool
  nsp_head: bool
  scan_layers: bool
  scan_unroll: int
  remat_policy: str
  dtype: Any
  param_dtype: Any
  attention_impl: str
  capture_attention: bool = False

  @property
  def d_attn(self):
    """Width of all heads together (q/k/v projection outputs)."""
    return self.num_heads * self.d_head

  @property
  def causal(self):
    return self.family == "decoder"


def resolve(model_cfg, capture_attention=False):
  """Validated ModelSpec from a `model` ConfigDict."""
  validate(model_cfg)
  return ModelSpec(
      family=model_cfg.family,
      vocab_size=model_cfg.vocab_size,
      max_len=model_cfg.max_len,
      type_vocab_size=model_cfg.type_vocab_size,
      num_layers=model_cfg.num_layers,
      d_model=model_cfg.d_model,
      num_heads=model_cfg.num_heads,
      d_head=model_cfg.d_head or model_cfg.d_model // model_cfg.num_heads,
      d_ff=model_cfg.d_ff or 4 * model_cfg.d_model,
      activation=model_cfg.activation,
      ln_placement=model_cfg.ln_placement,
      ln_epsilon=float(model_cfg.ln_epsilon),
      dropout_rate=float(model_cfg.dropout_rate),
      attention_dropout_rate=float(model_cfg.attention_dropout_rate),
      use_bias=model_cfg.use_bias,
      init_range=float(model_cfg.init_range),
      scale_residual_init=model_cfg.scale_residual_init,
      tie_embeddings=model_cfg.tie_embeddings,
      nsp_head=model_cfg.nsp_head,
      scan_layers=model_cfg.scan_layers,
      scan_unroll=model_cfg.scan_unroll,
      remat_policy=model_cfg.remat_policy,
      dtype=DTYPES[model_cfg.dtype],
      param_dtype=DTYPES[model_cfg.param_dtype],
      attention_impl=model_cfg.attention_impl,
      capture_attention=bool(capture_attention),
  )
