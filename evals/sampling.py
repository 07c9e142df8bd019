"""Next-token choice from logits: greedy, temperature, top-k and top-p (nucleus) filtering.

The order follows common practice (HF transformers, T5X): divide by the temperature, keep the k
largest logits, then keep the smallest set of the remaining tokens whose probability reaches p.
"""
import math

import jax
import jax.numpy as jnp

from configs.errors import ConfigError


def static_options(temperature, top_k, top_p, rng) -> dict:
  """Validates the sampling settings (ConfigError naming the eval.* field) -> jit static args."""
  if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
    raise ConfigError(f"eval.temperature={temperature!r} must be a finite number >= 0 "
                      "(0 = greedy)")
  if isinstance(top_k, bool) or int(top_k) != top_k or top_k < 0:
    raise ConfigError(f"eval.top_k={top_k!r} must be an integer >= 0 (0 = off)")
  if not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
    raise ConfigError(f"eval.top_p={top_p!r} must be in (0, 1] (1.0 = off)")
  if temperature == 0:
    # Greedy ignores the filters; normalising them avoids needless recompiles.
    return dict(temperature=0.0, top_k=0, top_p=1.0)
  if rng is None:
    raise ValueError("sampling (temperature > 0) needs an rng key; pass rng=jax.random.key(seed)")
  return dict(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p))


def filter_logits(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
  """logits[..., V] -> tempered logits with -inf outside the top-k / top-p set."""
  logits = logits.astype(jnp.float32) / temperature
  neg_inf = jnp.float32(-jnp.inf)
  if 0 < top_k < logits.shape[-1]:
    kth_largest = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth_largest, neg_inf, logits)
  if top_p < 1.0:
    sorted_logits = -jnp.sort(-logits, axis=-1)                         # descending
    sorted_probs = jax.nn.softmax(sorted_logits, axis=-1)
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    # Keep a token while the mass of the more likely ones is still below p (the top one always).
    keep = mass_before < top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, neg_inf, logits)
  return logits


def sample_next(rng, logits, temperature: float, top_k: int = 0, top_p: float = 1.0):
  """logits[B, V] -> token ids [B]: argmax when temperature == 0, else a filtered sample."""
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  filtered = filter_logits(logits, temperature, top_k, top_p)
  return jax.random.categorical(rng, filtered, axis=-1).astype(jnp.int32)
