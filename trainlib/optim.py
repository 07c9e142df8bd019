"""The optimizer: AdamW (BERT's decoupled weight decay), warmup + decay schedule, global-norm clip.

Weight decay skips LayerNorm parameters and biases, as BERT's AdamWeightDecayOptimizer did
(`exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]`). The mask is computed from
parameter paths, not ranks: with scanned layers a bias is [layers, D], so "1-D = no decay" fails.
"""

import re

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from configs.errors import ConfigError
from models import mup
from models.spec import resolve

SCHEDULES = ("linear", "cosine", "constant", "wsd")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
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
  _validate_wsd(o, steps)


def _validate_wsd(o, steps):
  if o.decay_shape not in DECAY_SHAPES:
    raise ConfigError(f"optim.decay_shape={o.decay_shape!r} is not one of "
                      f"{', '.join(map(repr, DECAY_SHAPES))}")
  if not 0 <= o.decay_frac <= 1:
    raise ConfigError(f"optim.decay_frac={o.decay_frac!r} must be in [0, 1]")
  for name in ("cooldown_from_step", "cooldown_steps"):
    if not isinstance(o[name], int) or isinstance(o[name], bool) or o[name] < 0:
      raise ConfigError(f"optim.{name}={o[name]!r} must be an integer >= 0")
  if not o.cooldown_from_run:
    if o.cooldown_steps or o.cooldown_from_step:
      raise ConfigError(f"optim.cooldown_steps={o.cooldown_steps} / cooldown_from_step="
                        f"{o.cooldown_from_step} need optim.cooldown_from_run (the stable run)")
    return
  if o.schedule != "wsd":
    raise ConfigError(f"optim.cooldown_from_run is set but optim.schedule={o.schedule!r}; "
                      "cooldown branches need 'wsd'")
  if o.cooldown_from_step < 1 or o.cooldown_steps < 1:
    raise ConfigError(f"optim.cooldown_from_step={o.cooldown_from_step} and cooldown_steps="
                      f"{o.cooldown_steps} must both be >= 1 for a cooldown branch")
  if steps != o.cooldown_from_step + o.cooldown_steps:
    raise ConfigError(f"train.num_steps={steps} must be optim.cooldown_from_step + "
                      f"cooldown_steps = {o.cooldown_from_step + o.cooldown_steps} in a branch")


def wsd_decay_start(config) -> int:
  """First step of the wsd decay: cooldown_from_step in a branch, else num_steps * (1 - decay_frac)."""
  o, steps = config.optim, config.train.num_steps
  if o.cooldown_from_run:
    return o.cooldown_from_step
  return steps - int(round(o.decay_frac * steps))


def _wsd(config, peak, end):
  """Constant at peak until wsd_decay_start, then decay_shape down to end at num_steps."""
  o, steps = config.optim, config.train.num_steps
  start = wsd_decay_start(config)
  length = max(steps - start, 1)

  def schedule(step):
    t = jnp.clip((step - start) / length, 0.0, 1.0)  # 0 until the decay starts, 1 at the end
    if o.decay_shape == "linear":
      frac = 1.0 - t
    elif o.decay_shape == "cosine":
      frac = 0.5 * (1.0 + jnp.cos(jnp.pi * t))
    else:  # "1-sqrt": Hägele et al. 2024, eq. 1
      frac = 1.0 - jnp.sqrt(t)
    return end + (peak - end) * frac
  return schedule


def make_schedule(config) -> optax.Schedule:
  """Learning rate of the update made at step s (0-based): linear warmup from 0, then decay.

  The decay runs from the end of warmup to train.num_steps and ends at end_lr_frac * peak;
  "wsd" stays at the peak until `wsd_decay_start` and decays over the rest (decay_shape).
  """
  o, steps = config.optim, config.train.num_steps
  peak, end = o.learning_rate, o.learning_rate * o.end_lr_frac
  decay_steps = max(steps - o.warmup_steps, 1)
  if o.schedule == "linear":
    decay = optax.linear_schedule(peak, end, decay_steps)
  elif o.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=o.end_lr_frac)
  elif o.schedule == "wsd":  # joined after warmup, so it sees steps counted from warmup's end
    wsd = _wsd(config, peak, end)
    decay = lambda step: wsd(step + o.warmup_steps)
  else:
    decay = optax.constant_schedule(peak)
  if o.warmup_steps == 0:
    return decay
  warmup = optax.linear_schedule(0.0, peak, o.warmup_steps)
  return optax.join_schedules([warmup, decay], [o.warmup_steps])


def scale_by_mup(spec):
  """Multiplies each update by models.mup.learning_rate_multipliers (1/width_mult on hidden
  kernels): after Adam and its learning rate, so it is a per-parameter learning rate."""

  def update(updates, state, params=None):
    del params
    factors = mup.learning_rate_multipliers(spec, updates)
    return jax.tree.map(lambda u, f: u if f == 1.0 else u * jnp.asarray(f, u.dtype),
                        updates, factors), state
  return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(config):
  """-> (optax.GradientTransformation, schedule)."""
  validate(config)
  o = config.optim
  schedule = make_schedule(config)
  parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm > 0 else []
  parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay,
                           mask=decay_mask))
  model = config.get("model")
  if model is not None and model.get("parametrization", "sp") == "mup":
    parts.append(scale_by_mup(resolve(model)))
  return optax.chain(*parts), schedule
