"""Next-token choice from logits: greedy, temperature, top-k and top-p (nucleus) filtering.

The order follows common practice (HF transformers, T5X): divide by the temperature, keep the k
largest logits (ties with the k-th included), then keep the smallest set of the remaining tokens
whose probability reaches p. temperature, top_k and top_p may be traced values, so one compiled
decoding loop serves every sampling setting; only greedy vs sampling changes the program.
"""
import math
import numbers

import jax
import jax.numpy as jnp

from configs.errors import ConfigError


def check_options(temperature, top_k, top_p, rng) -> bool:
  """Validates the sampling settings (ConfigError naming the eval.* field); True = greedy."""
  if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
      or not math.isfinite(temperature) or temperature < 0:
    raise ConfigError(f"eval.temperature={temperature!r} must be a finite number >= 0 "
                      "(0 = greedy)")
  if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
    raise ConfigError(f"eval.top_k={top_k!r} must be an integer >= 0 (0 = off)")
  if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0.0 < top_p <= 1.0:
    raise ConfigError(f"eval.top_p={top_p!r} must be in (0, 1] (1.0 = off)")
  if temperature > 0 and rng is None:
    raise ValueError("sampling (temperature > 0) needs an rng key; pass rng=jax.random.key(seed)")
  return temperature == 0


def filter_logits(logits, temperature=1.0, top_k=0, top_p=1.0):
  """logits[..., V] -> tempered logits with -inf outside the top-k / top-p set.

  top_k = 0 and top_p = 1.0 switch those filters off.
  """
  logits = logits.astype(jnp.float32) / temperature
  vocab = logits.shape[-1]
  neg_inf = jnp.float32(-jnp.inf)
  sorted_logits = -jnp.sort(-logits, axis=-1)                           # descending
  k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)
  kth_largest = jnp.take_along_axis(
      sorted_logits, jnp.broadcast_to(k - 1, logits.shape[:-1] + (1,)).astype(jnp.int32), axis=-1)
  sorted_logits = jnp.where(sorted_logits >= kth_largest, sorted_logits, neg_inf)
  # Nucleus over the top-k survivors: keep a token while the mass of the more likely ones is still
  # below p (so the top token always stays). top_p = 1 keeps all, whatever float rounding does.
  sorted_probs = jax.nn.softmax(sorted_logits, axis=-1)
  mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
  keep = ((mass_before < top_p) | (top_p >= 1.0)) & (sorted_logits > neg_inf)
  threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits >= threshold, logits, neg_inf)


def sample_next(rng, logits, temperature, top_k=0, top_p=1.0, greedy=False):
  """logits[B, V] -> token ids [B]: argmax if greedy, else a sample from the filtered logits."""
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  filtered = filter_logits(logits, temperature, top_k, top_p)
  return jax.random.categorical(rng, filtered, axis=-1).astype(jnp.int32)


static_options = check_options  # earlier name, still used by evals/generate.py's validation
