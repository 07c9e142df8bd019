"""The optimizer: AdamW (BERT's decoupled weight decay), warmup + decay schedule, global-norm clip.

Weight decay skips LayerNorm parameters and biases, as BERT's AdamWeightDecayOptimizer did
(`exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]`). The mask is computed from
parameter paths, not ranks: with scanned layers a bias is [layers, D], so "1-D = no decay" fails.
"""

import re

import jax
import optax
from flax import linen as nn

from configs.errors import ConfigError

SCHEDULES = ("linear", "cosine", "constant")
# A path component naming a normalisation layer (flax's LayerNorm_0, BERT's LayerNorm, GPT's ln_f).
_NORM_MODULE = re.compile(r"(^|_)(layer_?norm|ln|norm|rms_?norm)(_|\d|$)", re.IGNORECASE)


def _key_name(key):
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def decays(path) -> bool:
  """Whether the parameter at this key path gets weight decay."""
  names = [_key_name(k) for k in path]
  # Any bias (BERT matched the substring: "output_bias" too), and LayerNorm's scale.
  if names and ("bias" in names[-1] or names[-1] == "scale"):
    return False
  return not any(_NORM_MODULE.search(n) for n in names[:-1])


def decay_mask(params):
  """Tree of bools shaped like `params` (boxed or not): True = apply weight decay."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: decays(path), params, is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def validate(config):
  o, steps = config.optim, config.train.num_steps
  if o.schedule not in SCHEDULES:
    raise ConfigError(f"optim.schedule={o.schedule!r} is not one of {', '.join(map(repr, SCHEDULES))}")
  if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
    raise ConfigError(f"train.num_steps={steps!r} must be a positive integer")
  if not isinstance(o.warmup_steps, int) or isinstance(o.warmup_steps, bool) or o.warmup_steps < 0:
    # Longer than the run is allowed (a short smoke run of a long recipe): it just never decays.
    raise ConfigError(f"optim.warmup_steps={o.warmup_steps!r} must be an integer >= 0")
  checks = (("learning_rate", o.learning_rate > 0, "> 0"), ("end_lr_frac", 0 <= o.end_lr_frac <= 1, "in [0, 1]"),
            ("b1", 0 <= o.b1 < 1, "in [0, 1)"), ("b2", 0 <= o.b2 < 1, "in [0, 1)"),
            ("eps", o.eps > 0, "> 0"), ("weight_decay", o.weight_decay >= 0, ">= 0"),
            ("clip_norm", o.clip_norm >= 0, ">= 0 (0 = off)"))
  for name, ok, valid in checks:
    if not ok:
      raise ConfigError(f"optim.{name}={o[name]!r} must be {valid}")


def make_schedule(config) -> optax.Schedule:
  """Learning rate of the update made at step s (0-based): linear warmup from 0, then decay.

  The decay runs from the end of warmup to train.num_steps and ends at end_lr_frac * peak.
  """
  o, steps = config.optim, config.train.num_steps
  peak, end = o.learning_rate, o.learning_rate * o.end_lr_frac
  decay_steps = max(steps - o.warmup_steps, 1)
  if o.schedule == "linear":
    decay = optax.linear_schedule(peak, end, decay_steps)
  elif o.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=o.end_lr_frac)
  else:
    decay = optax.constant_schedule(peak)
  if o.warmup_steps == 0:
    return decay
  warmup = optax.linear_schedule(0.0, peak, o.warmup_steps)
  return optax.join_schedules([warmup, decay], [o.warmup_steps])


def make_optimizer(config):
  """-> (optax.GradientTransformation, schedule)."""
  validate(config)
  o = config.optim
  schedule = make_schedule(config)
  parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm > 0 else []
  parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay,
                           mask=decay_mask))
  return optax.chain(*parts), schedule
