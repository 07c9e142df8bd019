"""Model config checks and the resolved, hashable spec the modules are built from.

Every model field is declared once, in `configs.base.MODEL_FIELDS` (name, default, valid values,
meaning); `ModelSpec`'s fields, `validate` and `resolve` are derived from that table here.
`validate(model_cfg)` looks only at plain config values, so a bad field fails in microseconds with
one `ConfigError` naming it, before any array exists. `resolve(model_cfg)` turns the ConfigDict into
a frozen `ModelSpec` with the defaults that 0 stands for filled in (_RESOLVERS) and dtype names
turned into dtypes; modules take a ModelSpec so they never re-interpret the config.
"""

import dataclasses
from typing import Any

import jax.numpy as jnp

from configs.base import MODEL_FIELDS
from configs.errors import ConfigError

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
REQUIRED_FIELDS = tuple(name for name, _, _, _ in MODEL_FIELDS)
_VALID = {name: valid for name, _, valid, _ in MODEL_FIELDS}


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choices(values):
  return ", ".join(repr(v) for v in values)


# kind -> (accepts(value), what the error says the value must be)
_KINDS = {
    "int>0": (lambda v: _is_int(v) and v > 0, "must be a positive integer"),
    "int>=0": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0 (0 = default)"),
    "bool": (lambda v: isinstance(v, bool), "must be True or False"),
    "rate": (lambda v: _is_number(v) and 0.0 <= v < 1.0, "must be a number in [0, 1)"),
    "fraction": (lambda v: _is_number(v) and 0.0 < v <= 1.0, "must be a number in (0, 1]"),
    "number>0": (lambda v: _is_number(v) and v > 0, "must be a positive number"),
    "number>=0": (lambda v: _is_number(v) and v >= 0, "must be a number >= 0 (0 = default)"),
}

# What a field resolves to when it is not simply its value (the meanings in configs/base.py).
_RESOLVERS = {
    "d_head": lambda m: m.d_head or m.d_model // m.num_heads,
    "d_ff": lambda m: m.d_ff or 4 * m.d_model,
    "num_kv_heads": lambda m: m.num_kv_heads or m.num_heads,
    "rope_local_base": lambda m: float(m.rope_local_base or m.rope_base),
    "dtype": lambda m: DTYPES[m.dtype],
    "param_dtype": lambda m: DTYPES[m.param_dtype],
}
_TYPES = {"int>0": int, "int>=0": int, "bool": bool, "rate": float, "fraction": float,
          "number>0": float, "number>=0": float}


def _check_field(name, value):
  valid = _VALID[name]
  if isinstance(valid, tuple):
    if value not in valid:
      raise ConfigError(f"model.{name}={value!r} is not one of {_choices(valid)}")
    return
  accepts, must = _KINDS[valid]
  if not accepts(value):
    raise ConfigError(f"model.{name}={value!r} {must}")


def validate(model_cfg):
  """Raises ConfigError for the first bad `model.*` field; returns None when all are usable."""
  for name in REQUIRED_FIELDS:
    if name not in model_cfg:
      raise ConfigError(f"model.{name} is missing; every model field is defined in configs/base.py")
  for name in REQUIRED_FIELDS:
    _check_field(name, model_cfg[name])
  m = model_cfg
  if m.d_head == 0 and m.d_model % m.num_heads:
    raise ConfigError(
        f"model.d_model={m.d_model} is not divisible by model.num_heads="
        f"{m.num_heads}; choose num_heads dividing d_model, or set model.d_head")
  if m.num_kv_heads and m.num_heads % m.num_kv_heads:
    raise ConfigError(f"model.num_kv_heads={m.num_kv_heads} must divide model.num_heads="
                      f"{m.num_heads} (each key/value head serves a group of query heads)")
  if m.position_embedding == "rope" and rotary_dims(_RESOLVERS["d_head"](m), m.rope_fraction) == 0:
    raise ConfigError(f"model.rope_fraction={m.rope_fraction} rotates no pair of the "
                      f"{_RESOLVERS['d_head'](m)} dims of a head; raise it")
  if m.family == "encoder" and m.type_vocab_size < 1 and m.nsp_head:
    raise ConfigError(f"model.type_vocab_size={m.type_vocab_size} must be >= 1 with "
                      "model.nsp_head=True (NSP needs segment embeddings)")
  if not m.first_attention_norm and m.ln_placement != "pre":
    raise ConfigError("model.first_attention_norm=False needs model.ln_placement='pre' (got "
                      f"{m.ln_placement!r}): only a pre-LN block normalises its attention input")
  if m.attention_impl == "flash" and m.attention_dropout_rate > 0:
    raise ConfigError(
        f"model.attention_impl='flash' cannot apply model.attention_dropout_rate="
        f"{m.attention_dropout_rate} (fused kernels have no dropout on probabilities); "
        "set attention_dropout_rate=0 or attention_impl='xla'")


def rotary_dims(d_head, fraction):
  """Dims of a head that RoPE rotates: d_head * fraction rounded down to an even count."""
  return 2 * int(d_head * fraction / 2)


def _field_type(name):
  valid = _VALID[name]
  return str if isinstance(valid, tuple) else _TYPES[valid]


class _SpecMethods:
  """Derived quantities of a ModelSpec (the fields themselves come from MODEL_FIELDS)."""

  @property
  def d_attn(self):
    """Width of all query heads together (q projection output, attention output)."""
    return self.num_heads * self.d_head

  @property
  def causal(self):
    return self.family == "decoder"

  @property
  def rope_dims(self):
    return rotary_dims(self.d_head, self.rope_fraction)

  @property
  def width_mult(self):
    """muP's d_model / mup_base_width (1.0 under SP, so every multiplier is a no-op)."""
    if self.parametrization != "mup":
      return 1.0
    return self.d_model / (self.mup_base_width or self.d_model)

  def layer_is_global(self, layer):
    """Whether block `layer` attends globally (no sliding window)."""
    return (self.attention_window == 0
            or (self.global_every > 0 and layer % self.global_every == 0))


ModelSpec = dataclasses.make_dataclass(
    "ModelSpec",
    [(name, Any if name in ("dtype", "param_dtype") else _field_type(name))
     for name in REQUIRED_FIELDS] + [("capture_attention", bool, False)],
    bases=(_SpecMethods,), frozen=True)
ModelSpec.__module__ = __name__
ModelSpec.__doc__ = ("The validated model config with defaults resolved; one field per row of "
                     "configs.base.MODEL_FIELDS (meanings there), plus capture_attention.")


def resolve(model_cfg, capture_attention=False):
  """Validated ModelSpec from a `model` ConfigDict."""
  validate(model_cfg)
  values = {}
  for name in REQUIRED_FIELDS:
    if name in _RESOLVERS:
      values[name] = _RESOLVERS[name](model_cfg)
    else:
      values[name] = _field_type(name)(model_cfg[name])
  return ModelSpec(**values, capture_attention=bool(capture_attention))
