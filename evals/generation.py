"""Decoding for causal LMs: greedy, temperature / top-k / top-p sampling and beam search.

Every loop is written against one of two model functions, so the same code serves the real
Decoder (see evals/decoder_fns.py) and the toy LMs of the tests:

  step_fn(params, cache, token_ids[B], positions[B]) -> (logits[B, V], cache)   one token per row
  full_fn(params, ids[B, L]) -> logits[B, L, V]                                 no cache, causal

The cached and uncached paths share all sampling and beam bookkeeping and differ only in where
the next-token logits come from, so comparing them tests the cache (and, for beam search, the
reordering of cache rows when beams are re-ranked).

Prompts are right-padded `prompts[B, P]` with `prompt_lengths[B]` (>= 1). Step t feeds the token
at position t of every row (all rows share one position, so a cache with a single write index
works) and the logits predict position t + 1: rows still inside their prompt keep the prompt
token, the others write a generated one. The prompt is therefore fed one token per call, which
keeps the step contract minimal; a cache must hold P + max_new_tokens - 1 positions.
"""
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ConfigError
from evals import sampling
from evals.sampling import sample_next

StepFn = Callable[[Any, Any, jax.Array, jax.Array], tuple]
FullFn = Callable[[Any, jax.Array], jax.Array]


class SampleOutput(NamedTuple):
  tokens: jax.Array    # [B, N] generated ids; pad_id after EOS / after the row stopped
  lengths: jax.Array   # [B] generated tokens per row, EOS included
  logprobs: jax.Array  # [B] sum of log p(token) under the unfiltered model (temperature 1)


class BeamOutput(NamedTuple):
  tokens: jax.Array    # [B, K, N] hypotheses, best first; pad_id after EOS
  scores: jax.Array    # [B, K] logprobs / length_penalty(lengths); -inf for empty slots
  logprobs: jax.Array  # [B, K] sum of log p(token)
  lengths: jax.Array   # [B, K] generated tokens, EOS included


def length_penalty(lengths, alpha: float):
  """GNMT / T5X penalty ((5 + len) / 6) ** alpha; alpha = 0 ranks by raw log-likelihood."""
  return ((5.0 + lengths.astype(jnp.float32)) / 6.0) ** alpha


def validate_beam(beam_size: int, alpha: float):
  if int(beam_size) != beam_size or beam_size < 1:
    raise ConfigError(f"eval.beam_size={beam_size!r} must be an integer >= 1")
  if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
    raise ConfigError(f"eval.length_penalty={alpha!r} must be a finite number >= 0 "
                      "(0 = rank by log-likelihood, larger favours longer outputs)")


def _check_prompts(prompts, prompt_lengths, max_new_tokens):
  if prompts.ndim != 2:
    raise ValueError(f"prompts must be [B, P] token ids, got shape {prompts.shape}")
  if prompt_lengths.shape != prompts.shape[:1]:
    raise ValueError(f"prompt_lengths must be [B]={prompts.shape[:1]}, got {prompt_lengths.shape}")
  # Global arrays spread over several processes cannot be read here; their builder checks them.
  lengths = (np.asarray(prompt_lengths) if getattr(prompt_lengths, "is_fully_addressable", True)
             else np.ones([0]))
  if lengths.size and (lengths.min() < 1 or lengths.max() > prompts.shape[1]):
    raise ValueError(f"prompt_lengths must be in [1, {prompts.shape[1]}] (every prompt needs a "
                     f"token to start from), got {lengths.tolist()}")
  if int(max_new_tokens) != max_new_tokens or max_new_tokens < 1:
    raise ConfigError(f"eval.generate_max_new_tokens={max_new_tokens!r} must be an integer >= 1")


def _cached_logits_fn(step_fn, params):
  def logits_fn(cache, ids, t):  # ids [B', T] -> ([B', V], cache)
    token = jax.lax.dynamic_index_in_dim(ids, t, axis=1, keepdims=False)
    return step_fn(params, cache, token, jnp.full(token.shape, t, jnp.int32))
  return logits_fn


def _uncached_logits_fn(full_fn, params):
  def logits_fn(state, ids, t):  # recomputes the whole prefix: causal, so later pads are unseen
    logits = full_fn(params, ids)
    return jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False), state
  return logits_fn


def _gather_generated(buf, prompt_lengths, max_new_tokens):
  """buf[..., T] -> the max_new_tokens positions after each row's prompt, [..., N].

  prompt_lengths has buf's leading shape or broadcasts to it ([B] or [B, 1]).
  """
  idx = prompt_lengths[..., None] + jnp.arange(max_new_tokens)
  idx = jnp.broadcast_to(idx, buf.shape[:-1] + (max_new_tokens,))
  return jnp.take_along_axis(buf, idx, axis=-1)


def _sample_loop(logits_fn, model_state, prompts, prompt_lengths, rng, options, *,
                 max_new_tokens, greedy):
  """options: traced dict(temperature, top_k, top_p, eos (-1 = none), pad)."""
  batch, prompt_len = prompts.shape
  total = prompt_len + max_new_tokens
  pad = options["pad"]
  buf = jnp.full((batch, total), pad, jnp.int32).at[:, :prompt_len].set(prompts)
  end = prompt_lengths + max_new_tokens  # [B] exclusive end of each row

  def cond(carry):
    t, _, _, done, _, _ = carry
    return (t < total - 1) & ~jnp.all(done)

  def body(carry):
    t, buf, model_state, done, logp_sum, count = carry
    logits, model_state = logits_fn(model_state, buf, t)  # [B, V] predicts position t + 1
    logits = logits.astype(jnp.float32)
    nxt = sample_next(jax.random.fold_in(rng, t), logits, options["temperature"],
                      options["top_k"], options["top_p"], greedy=greedy)
    pos = t + 1
    writing = (pos >= prompt_lengths) & ~done  # [B] rows that generate at pos
    prev = jax.lax.dynamic_index_in_dim(buf, pos, axis=1, keepdims=False)
    buf = jax.lax.dynamic_update_index_in_dim(buf, jnp.where(writing, nxt, prev), pos, axis=1)
    token_logp = jnp.take_along_axis(jax.nn.log_softmax(logits), nxt[:, None], axis=1)[:, 0]
    logp_sum = logp_sum + jnp.where(writing, token_logp, 0.0)
    count = count + writing.astype(jnp.int32)
    done = done | (writing & ((nxt == options["eos"]) | (pos == end - 1)))
    return t + 1, buf, model_state, done, logp_sum, count

  init = (jnp.int32(0), buf, model_state, jnp.zeros([batch], bool),
          jnp.zeros([batch], jnp.float32), jnp.zeros([batch], jnp.int32))
  _, buf, _, _, logp_sum, count = jax.lax.while_loop(cond, body, init)
  return SampleOutput(_gather_generated(buf, prompt_lengths, max_new_tokens), count, logp_sum)


# Only these shape the compiled program; sampling settings, EOS and pad are traced, so one
# compiled loop serves them all.
_SAMPLE_STATIC = ("fn", "max_new_tokens", "greedy")


@functools.partial(jax.jit, static_argnames=_SAMPLE_STATIC)
def _sample_cached(fn, params, cache, prompts, prompt_lengths, rng, options, **static):
  return _sample_loop(_cached_logits_fn(fn, params), cache, prompts, prompt_lengths, rng, options,
                      **static)


@functools.partial(jax.jit, static_argnames=_SAMPLE_STATIC)
def _sample_uncached(fn, params, prompts, prompt_lengths, rng, options, **static):
  return _sample_loop(_uncached_logits_fn(fn, params), jnp.zeros([]), prompts, prompt_lengths,
                      rng, options, **static)


def _token_options(eos_id, pad_id):
  return {"eos": jnp.int32(-1 if eos_id is None else eos_id), "pad": jnp.int32(pad_id)}


def _sample_args(prompts, prompt_lengths, max_new_tokens, rng, temperature, top_k, top_p, eos_id,
                 pad_id):
  """Validated arrays + traced options + static flags shared by the cached and uncached paths."""
  prompts, prompt_lengths = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_lengths, jnp.int32)
  _check_prompts(prompts, prompt_lengths, max_new_tokens)
  greedy = sampling.check_options(temperature, top_k, top_p, rng)
  options = dict(temperature=jnp.float32(temperature if not greedy else 1.0),
                 top_k=jnp.int32(top_k), top_p=jnp.float32(top_p), **_token_options(eos_id, pad_id))
  rng = jax.random.key(0) if rng is None else rng
  return (prompts, prompt_lengths, rng, options), dict(max_new_tokens=int(max_new_tokens),
                                                       greedy=greedy)


def generate(step_fn: StepFn, params, cache, prompts, prompt_lengths, max_new_tokens: int, *,
             rng=None, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
             eos_id: int | None = None, pad_id: int = 0) -> SampleOutput:
  """Greedy (temperature=0) or sampled continuations of `prompts[B, P]`, using the cache.

  `cache` is a fresh cache for B rows; `rng` (a jax PRNG key) is required when sampling, and the
  same key gives the same tokens. top_k=0 and top_p=1.0 switch those filters off.
  """
  args, static = _sample_args(prompts, prompt_lengths, max_new_tokens, rng, temperature, top_k,
                              top_p, eos_id, pad_id)
  return _sample_cached(step_fn, params, cache, *args, **static)


def generate_uncached(full_fn: FullFn, params, prompts, prompt_lengths, max_new_tokens: int, *,
                      rng=None, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                      eos_id: int | None = None, pad_id: int = 0) -> SampleOutput:
  """`generate` without a cache: recomputes the full prefix each step (reference / tests)."""
  args, static = _sample_args(prompts, prompt_lengths, max_new_tokens, rng, temperature, top_k,
                              top_p, eos_id, pad_id)
  return _sample_uncached(full_fn, params, *args, **static)


# ------------------------------------------------------------------------------- beam search


def gather_cache_rows(cache, rows, batch_axes):
  """Reorders the batch rows of every cache array: new row i = old row rows[i].

  `batch_axes` is an int (the batch axis of every array leaf that has it) or a pytree like
  `cache` of ints / None (None = leaf has no batch axis, e.g. a shared write index).
  """
  if isinstance(batch_axes, int):
    return jax.tree.map(
        lambda x: jnp.take(x, rows, axis=batch_axes) if x.ndim > batch_axes else x, cache)
  return jax.tree.map(lambda x, a: x if a is None else jnp.take(x, rows, axis=a), cache,
                      batch_axes, is_leaf=lambda a: a is None)


def _beam_loop(logits_fn, model_state, reorder, prompts, prompt_lengths, *, beam_size,
               max_new_tokens, alpha, eos, pad):
  """alpha, eos (-1 = none) and pad are traced; beam_size and max_new_tokens shape the program."""
  batch, prompt_len = prompts.shape
  k, total = beam_size, prompt_len + max_new_tokens
  end = prompt_lengths + max_new_tokens                                 # [B]
  neg_inf = jnp.float32(-jnp.inf)
  buf = jnp.full((batch, total), pad, jnp.int32).at[:, :prompt_len].set(prompts)
  alive_buf = jnp.broadcast_to(buf[:, None], (batch, k, total))        # [B, K, T]
  # Only beam 0 is live at first, so the first expansion draws K distinct tokens from it.
  alive_logp = jnp.where(jnp.arange(k) == 0, 0.0, neg_inf) * jnp.ones([batch, 1])  # [B, K]
  fin = (alive_buf, jnp.full([batch, k], neg_inf), jnp.zeros([batch, k], jnp.float32),
         jnp.zeros([batch, k], jnp.int32))                              # buf, score, logp, len
  # alpha >= 0, so the penalty grows with length and is largest at max_new_tokens.
  max_penalty = length_penalty(jnp.full([], max_new_tokens), alpha)

  def row_finished(t, alive_logp, fin_score):
    # A row is settled when its last position is written, or when its finished pool is full and
    # no live beam can still beat the worst finished one (log-probs only fall as beams grow).
    best_possible = jnp.max(alive_logp, axis=1) / max_penalty
    settled = jnp.all(fin_score > neg_inf, axis=1) & (best_possible <= jnp.min(fin_score, axis=1))
    return (t + 1 >= end) | settled

  def cond(carry):
    t, _, alive_logp, _, fin = carry
    return (t < total - 1) & ~jnp.all(row_finished(t, alive_logp, fin[1]))

  def body(carry):
    t, alive_buf, alive_logp, model_state, fin = carry
    logits, model_state = logits_fn(model_state, alive_buf.reshape(batch * k, total), t)
    vocab = logits.shape[-1]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, vocab)
    pos = t + 1
    cand_logp, cand_idx = jax.lax.top_k((alive_logp[:, :, None] + logp).reshape(batch, k * vocab),
                                        2 * k)                          # [B, 2K]: >= K non-EOS
    parent, token = cand_idx // vocab, cand_idx % vocab
    cand_buf = jnp.take_along_axis(alive_buf, parent[:, :, None], axis=1)
    cand_buf = jax.lax.dynamic_update_index_in_dim(cand_buf, token, pos, axis=2)
    gen_len = jnp.broadcast_to((pos - prompt_lengths + 1)[:, None], token.shape)  # [B, 2K]
    finishes = (token == eos) | (pos == end - 1)[:, None]
    cand_score = jnp.where(finishes, cand_logp / length_penalty(gen_len, alpha), neg_inf)

    # Finished pool: best K of (old finished, newly finished candidates).
    fin_buf, fin_score, fin_logp, fin_len = fin
    pool_score = jnp.concatenate([fin_score, cand_score], axis=1)
    new_fin_score, pick = jax.lax.top_k(pool_score, k)
    def pick_from(old, new):  # [B, K, ...] and [B, 2K, ...] -> the picked [B, K, ...]
      index = pick.reshape(pick.shape + (1,) * (old.ndim - 2))
      return jnp.take_along_axis(jnp.concatenate([old, new], axis=1), index, axis=1)

    new_fin = (pick_from(fin_buf, cand_buf), new_fin_score, pick_from(fin_logp, cand_logp),
               pick_from(fin_len, gen_len))

    # Live beams: best K candidates that did not emit EOS.
    new_alive_logp, keep = jax.lax.top_k(jnp.where(token == eos, neg_inf, cand_logp), k)
    new_alive_buf = jnp.take_along_axis(cand_buf, keep[:, :, None], axis=1)
    new_parent = jnp.take_along_axis(parent, keep, axis=1)

    # Rows still inside their prompt keep their beams (the prompt token is already in the buffer);
    # rows past their end keep everything.
    update = (pos >= prompt_lengths) & ~row_finished(t, alive_logp, fin_score)  # [B]
    sel = lambda new, old: jnp.where(update.reshape((batch,) + (1,) * (old.ndim - 1)), new, old)
    fin = jax.tree.map(sel, new_fin, fin)
    alive_buf = sel(new_alive_buf, alive_buf)
    alive_logp = sel(new_alive_logp, alive_logp)
    parent_rows = sel(new_parent, jnp.broadcast_to(jnp.arange(k), (batch, k)))
    model_state = reorder(model_state, (parent_rows + jnp.arange(batch)[:, None] * k).reshape(-1))
    return t + 1, alive_buf, alive_logp, model_state, fin

  init = (jnp.int32(0), alive_buf, alive_logp, model_state, fin)
  _, _, _, _, (fin_buf, fin_score, fin_logp, fin_len) = jax.lax.while_loop(cond, body, init)
  tokens = _gather_generated(fin_buf, prompt_lengths[:, None], max_new_tokens)
  # Positions past a hypothesis' own length hold whatever its live ancestor had: pad them.
  tokens = jnp.where(jnp.arange(max_new_tokens) < fin_len[:, :, None], tokens, pad)
  return BeamOutput(tokens, fin_score, fin_logp, fin_len)


def _freeze_axes(batch_axes):
  """A pytree of cache batch axes -> a hashable static argument for jit."""
  if isinstance(batch_axes, int):
    return batch_axes
  leaves, treedef = jax.tree.flatten(batch_axes, is_leaf=lambda a: a is None)
  return treedef, tuple(leaves)


def _thaw_axes(frozen):
  return frozen if isinstance(frozen, int) else jax.tree.unflatten(frozen[0], frozen[1])


# Only these shape the compiled program; the length penalty, EOS and pad are traced.
_BEAM_STATIC = ("fn", "batch_axes", "beam_size", "max_new_tokens")


@functools.partial(jax.jit, static_argnames=_BEAM_STATIC)
def _beam_cached(fn, params, cache, prompts, prompt_lengths, *, batch_axes, **options):
  axes = _thaw_axes(batch_axes)
  reorder = lambda c, rows: gather_cache_rows(c, rows, axes)
  return _beam_loop(_cached_logits_fn(fn, params), cache, reorder, prompts, prompt_lengths,
                    **options)


@functools.partial(jax.jit, static_argnames=_BEAM_STATIC)
def _beam_uncached(fn, params, prompts, prompt_lengths, *, batch_axes, **options):
  del batch_axes  # no cache to reorder: the prefix is recomputed from the reordered buffer
  return _beam_loop(_uncached_logits_fn(fn, params), jnp.zeros([]), lambda s, rows: s, prompts,
                    prompt_lengths, **options)


def beam_search(step_fn: StepFn, params, cache, prompts, prompt_lengths, max_new_tokens: int, *,
                beam_size: int, length_penalty_alpha: float = 0.0, eos_id: int | None = None,
                pad_id: int = 0, cache_batch_axes=0) -> BeamOutput:
  """Beam search over continuations of `prompts[B, P]`, using the cache.

  `cache` is a fresh cache for B * beam_size rows (row b * beam_size + j is beam j of prompt b);
  `cache_batch_axes` says where its batch axis is (see gather_cache_rows and
  evals.decoder_fns.find_cache_batch_axes). A hypothesis ends at EOS or after max_new_tokens
  tokens; hypotheses are ranked by logprob / length_penalty(length, length_penalty_alpha).
  """
  prompts, prompt_lengths = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_lengths, jnp.int32)
  _check_prompts(prompts, prompt_lengths, max_new_tokens)
  validate_beam(beam_size, length_penalty_alpha)
  return _beam_cached(step_fn, params, cache, prompts, prompt_lengths,
                      batch_axes=_freeze_axes(cache_batch_axes), beam_size=int(beam_size),
                      max_new_tokens=int(max_new_tokens), alpha=jnp.float32(length_penalty_alpha),
                      **_token_options(eos_id, pad_id))


def beam_search_uncached(full_fn: FullFn, params, prompts, prompt_lengths, max_new_tokens: int, *,
                         beam_size: int, length_penalty_alpha: float = 0.0,
                         eos_id: int | None = None, pad_id: int = 0) -> BeamOutput:
  """`beam_search` without a cache (reference / tests)."""
  prompts, prompt_lengths = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_lengths, jnp.int32)
  _check_prompts(prompts, prompt_lengths, max_new_tokens)
  validate_beam(beam_size, length_penalty_alpha)
  return _beam_uncached(full_fn, params, prompts, prompt_lengths, batch_axes=0,
                        beam_size=int(beam_size), max_new_tokens=int(max_new_tokens),
                        alpha=jnp.float32(length_penalty_alpha), **_token_options(eos_id, pad_id))


@functools.partial(jax.jit, static_argnums=0)
def target_scores(full_fn: FullFn, params, inputs, targets, weights):
  """Scores of chosen next tokens: targets[b, t] is the token after inputs[b, :t + 1].

  -> (sum over t with weights[b, t] > 0 of log p(targets[b, t]) [B] float32,
      whether every such target is the model's argmax [B] bool).
  """
  logp = jax.nn.log_softmax(full_fn(params, jnp.asarray(inputs, jnp.int32)).astype(jnp.float32))
  targets = jnp.asarray(targets, jnp.int32)
  picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # [B, L]
  scored = jnp.asarray(weights) > 0
  greedy = jnp.all(jnp.where(scored, jnp.argmax(logp, axis=-1) == targets, True), axis=1)
  return jnp.sum(jnp.where(scored, picked, 0.0), axis=1), greedy


@functools.partial(jax.jit, static_argnums=0)
def sequence_logprob(full_fn: FullFn, params, ids, start, length):
  """Sum of log p(ids[b, t] | ids[b, :t]) for t in [start[b], start[b] + length[b]), [B]."""
  ids = jnp.asarray(ids, jnp.int32)
  t = jnp.arange(1, ids.shape[1])
  start, length = jnp.asarray(start)[:, None], jnp.asarray(length)[:, None]
  weights = (t >= start) & (t < start + length)
  return target_scores(full_fn, params, ids[:, :-1], ids[:, 1:], weights)[0]
