"""Adapter from the Flax Decoder (models/decoder.py) to the functions evals/generation.py uses.

  fns = make_decoder_fns(model, cache_len=prompt_len + max_new_tokens - 1)
  cache = fns.init_cache(batch_size)
  out = generation.generate(fns.step_fn, params, cache, prompts, lengths, max_new_tokens)
  beams = generation.beam_search(fns.step_fn, params, fns.init_cache(batch * k), ...,
                                 beam_size=k, cache_batch_axes=fns.cache_batch_axes)

`params` is the `params` collection (plain or logically-boxed arrays, as flax accepts either).
"""
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from configs.errors import ConfigError


class DecoderFns(NamedTuple):
  step_fn: Callable       # (params, cache, token_ids[B], positions[B]) -> (logits[B, V], cache)
  full_fn: Callable       # (params, ids[B, L]) -> logits[B, L, V]
  init_cache: Callable    # (batch_size) -> fresh cache holding cache_len positions
  cache_batch_axes: Any   # pytree like the cache: batch axis of each leaf, None for counters
  cache_len: int


def find_cache_batch_axes(cache_shapes_for: Callable[[int], Any]):
  """Batch axis of every cache leaf, found by comparing the cache's shapes for batch 1 and 2.

  Works for any cache layout (scanned stacks put a layers axis first) without naming leaves.
  """
  one, two = cache_shapes_for(1), cache_shapes_for(2)

  def axis(a, b):
    differing = [i for i, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
    return differing[0] if differing else None

  return jax.tree.map(axis, one, two)


def make_decoder_fns(model, cache_len: int) -> DecoderFns:
  """Decode functions for a `models.Decoder`; the cache holds `cache_len` positions."""
  max_len = model.spec.max_len
  if not 1 <= cache_len <= max_len:
    raise ConfigError(f"prompt length + eval.generate_max_new_tokens - 1 = {cache_len} must be in "
                      f"[1, model.max_len={max_len}] (the position table's size)")

  def init_variables(batch_size):
    ids = jnp.zeros([batch_size, cache_len], jnp.int32)
    return model.init(jax.random.key(0), ids, decode=True)

  def cache_shapes_for(batch_size):
    return jax.eval_shape(functools.partial(init_variables, batch_size))["cache"]

  # Only the cache is returned, so XLA drops the parameter initialisation as dead code.
  init_cache_jit = jax.jit(lambda batch_size: init_variables(batch_size)["cache"],
                           static_argnums=0)

  def step_fn(params, cache, token_ids, positions):
    outputs, mutated = model.apply({"params": params, "cache": cache}, token_ids[:, None],
                                   positions=positions[:, None], decode=True, mutable=["cache"])
    return outputs["logits"][:, 0], mutated["cache"]

  def full_fn(params, ids):
    return model.apply({"params": params}, ids)["logits"]

  return DecoderFns(step_fn, full_fn, lambda batch_size: init_cache_jit(int(batch_size)),
                    find_cache_batch_axes(cache_shapes_for), cache_len)
