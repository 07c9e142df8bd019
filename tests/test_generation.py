"""Decoding algorithms on hand-written toy LMs whose right answers are known.

The toy LM scores the next token from the current and the previous token (a "trigram" table), and
its cache keeps the token history [max_len, B] (batch on axis 1, plus a shared step counter), so a
wrong cache write or a wrong beam reordering of cache rows changes the tokens.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.errors import ConfigError
from evals import generation
from evals.sampling import filter_logits, sample_next

NO_PREV = -1  # history value before position 0


def toy_full_fn(params, ids):  # ids [B, L] -> logits [B, L, V]
  prev = jnp.concatenate([jnp.full(ids[:, :1].shape, NO_PREV), ids[:, :-1]], axis=1)
  return params["cur"][ids] + params["prev"][prev]  # index -1 = the extra "no previous" row


def toy_step_fn(params, cache, token, position):  # token, position [B]
  batch = jnp.arange(token.shape[0])
  history = cache["history"].at[position, batch].set(token)
  prev = jnp.where(position > 0, history[jnp.maximum(position - 1, 0), batch], NO_PREV)
  logits = params["cur"][token] + params["prev"][prev]
  return logits, {"history": history, "steps": cache["steps"] + 1}


TOY_AXES = {"history": 1, "steps": None}


def toy_cache(batch, max_len=32):
  return {"history": jnp.full([max_len, batch], -7, jnp.int32), "steps": jnp.zeros([], jnp.int32)}


def toy_params(vocab, seed, scale):
  """Random tables: logits = cur[token] + prev[previous token] (row -1: no previous token)."""
  rng = np.random.default_rng(seed)
  cur = rng.normal(size=[vocab, vocab]) * scale
  prev = rng.normal(size=[vocab + 1, vocab]) * scale
  return {"cur": jnp.asarray(cur, jnp.float32), "prev": jnp.asarray(prev, jnp.float32)}


def bigram_params(log_table):
  """A toy LM that ignores the previous token: next-token probabilities = the given table."""
  table = jnp.asarray(np.log(np.asarray(log_table, np.float64)), jnp.float32)
  return {"cur": table, "prev": jnp.zeros([table.shape[0] + 1, table.shape[0]])}


def python_greedy(params, prompt, n, eos_id=None):
  """Plain numpy argmax loop over the toy LM's tables."""
  cur, prev = np.asarray(params["cur"]), np.asarray(params["prev"])
  seq, out = list(prompt), []
  for _ in range(n):
    before = seq[-2] if len(seq) > 1 else NO_PREV
    tok = int(np.argmax(cur[seq[-1]] + prev[before]))
    out.append(tok)
    seq.append(tok)
    if tok == eos_id:
      break
  return out


PROMPTS = np.array([[3, 1, 4, 1], [5, 9, 0, 0], [2, 0, 0, 0]])  # right-padded
LENGTHS = np.array([4, 2, 1])
VOCAB, NEW, EOS = 13, 6, 12
# One toy LM for most tests, so they share compiled loops. With EOS=12 its greedy rows end after
# 6 (no EOS), 6 (EOS as the last token) and 3 tokens: stopping is exercised on every path.
PARAMS = toy_params(VOCAB, seed=3, scale=1.0)


def test_greedy_matches_python_loop_per_row():
  for eos_id in (None, EOS):
    out = generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                              eos_id=eos_id)
    for row in range(3):
      expected = python_greedy(PARAMS, PROMPTS[row, :LENGTHS[row]], NEW, eos_id)
      np.testing.assert_array_equal(out.tokens[row, :len(expected)], expected)
      assert int(out.lengths[row]) == len(expected)
      assert np.all(np.asarray(out.tokens[row, len(expected):]) == 0)  # pad after EOS
  np.testing.assert_array_equal(out.lengths, [6, 6, 3])
  # The reported logprob is the sequence's log-likelihood under the model.
  full = np.concatenate([PROMPTS[1, :2], np.asarray(out.tokens[1])])[None]
  ll = generation.sequence_logprob(toy_full_fn, PARAMS, full, np.array([2]), np.array([NEW]))
  np.testing.assert_allclose(out.logprobs[1], ll[0], rtol=1e-5)


def test_cached_equals_uncached_greedy_sampling_and_beam():
  for sampling in [dict(), dict(temperature=1.0, top_k=5, top_p=0.9)]:
    rng = jax.random.key(3)
    cached = generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                                 rng=rng, eos_id=EOS, **sampling)
    uncached = generation.generate_uncached(toy_full_fn, PARAMS, PROMPTS, LENGTHS, NEW, rng=rng,
                                            eos_id=EOS, **sampling)
    np.testing.assert_array_equal(cached.tokens, uncached.tokens)
    np.testing.assert_allclose(cached.logprobs, uncached.logprobs, rtol=1e-5)
  beam_c = generation.beam_search(toy_step_fn, PARAMS, toy_cache(3 * 4), PROMPTS, LENGTHS, NEW,
                                  beam_size=4, cache_batch_axes=TOY_AXES, eos_id=EOS)
  beam_u = generation.beam_search_uncached(toy_full_fn, PARAMS, PROMPTS, LENGTHS, NEW,
                                           beam_size=4, eos_id=EOS)
  np.testing.assert_array_equal(beam_c.tokens, beam_u.tokens)
  np.testing.assert_allclose(beam_c.scores, beam_u.scores, rtol=1e-5)
  assert np.all(np.diff(np.asarray(beam_c.scores), axis=1) <= 0)  # best first

  # Guard: declaring no batch axis for the history (so beams keep the wrong rows) is caught.
  wrong = generation.beam_search(toy_step_fn, PARAMS, toy_cache(3 * 4), PROMPTS, LENGTHS, NEW,
                                 beam_size=4, eos_id=EOS,
                                 cache_batch_axes={"history": None, "steps": None})
  assert not np.array_equal(wrong.tokens, beam_u.tokens)


@pytest.mark.parametrize("eos_id", [None, EOS])
def test_beam_one_equals_greedy(eos_id):
  greedy = generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                               eos_id=eos_id)
  beam = generation.beam_search(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                                beam_size=1, eos_id=eos_id, cache_batch_axes=TOY_AXES)
  np.testing.assert_array_equal(beam.tokens[:, 0], greedy.tokens)
  np.testing.assert_array_equal(beam.lengths[:, 0], greedy.lengths)
  np.testing.assert_allclose(beam.logprobs[:, 0], greedy.logprobs, rtol=1e-5)


def test_eos_stops_a_row_and_pads_after_it():
  # Bigram: 0 -> 1 -> 2(EOS); 3 -> 3 -> 3 ... (never EOS).
  table = np.full([4, 4], 0.02)
  table[0, 1] = table[1, 2] = table[3, 3] = table[2, 2] = 0.94
  params = bigram_params(table)
  out = generation.generate(toy_step_fn, params, toy_cache(2), [[0], [3]], [1, 1], 5, eos_id=2,
                            pad_id=0)
  np.testing.assert_array_equal(out.tokens, [[1, 2, 0, 0, 0], [3, 3, 3, 3, 3]])
  np.testing.assert_array_equal(out.lengths, [2, 5])


def _beam_trap_table():
  # Greedy takes 0 -> 1 (p=.5) into a flat row; 0 -> 2 (p=.4) -> 3 (p=.97) is likelier overall.
  return np.array([[0.05, 0.50, 0.40, 0.05],
                   [0.25, 0.25, 0.25, 0.25],
                   [0.01, 0.01, 0.01, 0.97],
                   [0.25, 0.25, 0.25, 0.25]])


def test_beam_finds_likelier_sequence_than_greedy():
  params = bigram_params(_beam_trap_table())
  greedy = generation.generate(toy_step_fn, params, toy_cache(1), [[0]], [1], 2)
  beam = generation.beam_search(toy_step_fn, params, toy_cache(2), [[0]], [1], 2, beam_size=2,
                                cache_batch_axes=TOY_AXES)
  assert list(np.asarray(greedy.tokens[0])) == [1, 0]  # argmax ties go to the first index
  assert list(np.asarray(beam.tokens[0, 0])) == [2, 3]
  np.testing.assert_allclose(beam.logprobs[0, 0], np.log(0.4 * 0.97), rtol=1e-5)
  assert float(beam.logprobs[0, 0]) > float(greedy.logprobs[0]) + 0.5
  assert float(beam.scores[0, 0]) >= float(beam.scores[0, 1])  # best first


def test_beam_agrees_with_exhaustive_search():
  params = toy_params(vocab=5, seed=7, scale=2.0)
  n = 3
  beam = generation.beam_search_uncached(toy_full_fn, params, [[1, 4]], [2], n, beam_size=5)
  conts = np.array(list(itertools.product(range(5), repeat=n)))             # [125, n]
  seqs = np.concatenate([np.tile([[1, 4]], (len(conts), 1)), conts], axis=1)
  ll = np.asarray(generation.sequence_logprob(toy_full_fn, params, seqs, np.full([len(conts)], 2),
                                              np.full([len(conts)], n)))
  scored = sorted(zip(ll.tolist(), map(tuple, conts.tolist())), reverse=True)
  assert tuple(np.asarray(beam.tokens[0, 0])) == scored[0][1]
  np.testing.assert_allclose(beam.logprobs[0, 0], scored[0][0], rtol=1e-5)


def test_length_penalty_prefers_longer_hypothesis():
  # 0 -> EOS(1) with p=.5 ends at once; 0 -> 2 (p=.46) -> 2 -> ... (each p=.95) runs on.
  table = np.array([[0.02, 0.50, 0.46, 0.02],
                    [0.25, 0.25, 0.25, 0.25],
                    [0.01, 0.02, 0.95, 0.02],
                    [0.25, 0.25, 0.25, 0.25]])
  params = bigram_params(table)
  kw = dict(beam_size=2, eos_id=1, cache_batch_axes=TOY_AXES)
  plain = generation.beam_search(toy_step_fn, params, toy_cache(2), [[0]], [1], 4, **kw)
  long = generation.beam_search(toy_step_fn, params, toy_cache(2), [[0]], [1], 4,
                                length_penalty_alpha=2.0, **kw)
  assert list(np.asarray(plain.tokens[0, 0])) == [1, 0, 0, 0] and int(plain.lengths[0, 0]) == 1
  assert list(np.asarray(long.tokens[0, 0])) == [2, 2, 2, 2] and int(long.lengths[0, 0]) == 4
  expected = np.log(0.46 * 0.95 ** 3) / ((5 + 4) / 6) ** 2.0
  np.testing.assert_allclose(long.scores[0, 0], expected, rtol=1e-5)


def test_top_k_one_and_tiny_top_p_equal_greedy():
  greedy = generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW)
  for opts in [dict(top_k=1), dict(top_p=1e-6)]:
    sampled = generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                                  rng=jax.random.key(9), temperature=1.5, **opts)
    np.testing.assert_array_equal(sampled.tokens, greedy.tokens)


def test_sampling_is_reproducible_and_seed_dependent():
  run = lambda seed: generation.generate(toy_step_fn, PARAMS, toy_cache(3), PROMPTS, LENGTHS, NEW,
                                         rng=jax.random.key(seed), temperature=1.0).tokens
  np.testing.assert_array_equal(run(0), run(0))
  assert not np.array_equal(run(0), run(1))


def test_sample_frequencies_follow_filtered_distribution():
  # 4000 draws from one distribution: frequencies match softmax(logits / T) after filtering.
  probs = np.array([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])
  rows = 4000
  logits = jnp.log(jnp.tile(jnp.asarray(probs, jnp.float32), (rows, 1)))
  cases = [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.7)]
  sample_jit = jax.jit(sample_next)  # settings are traced: one compile serves every case
  for temperature, top_k, top_p in cases:
    tokens = sample_jit(jax.random.key(0), logits, jnp.float32(temperature), jnp.int32(top_k),
                        jnp.float32(top_p))
    freq = np.bincount(np.asarray(tokens), minlength=6) / rows
    expected = probs ** (1 / temperature)
    if top_k:
      expected[top_k:] = 0
    if top_p < 1:
      expected[3:] = 0  # .40 + .25 = .65 < .7, so .15 is needed too; the rest is cut
    expected /= expected.sum()
    np.testing.assert_allclose(freq, expected, atol=0.03, err_msg=str((temperature, top_k, top_p)))


def test_filter_logits_keeps_ties_and_top_token():
  logits = jnp.log(jnp.array([[0.5, 0.2, 0.2, 0.1]]))
  kept = np.isfinite(np.asarray(filter_logits(logits, top_k=2)))
  np.testing.assert_array_equal(kept, [[True, True, True, False]])  # tie at the k-th value stays
  kept = np.isfinite(np.asarray(filter_logits(logits, top_p=0.45)))
  np.testing.assert_array_equal(kept, [[True, False, False, False]])
  kept = np.isfinite(np.asarray(filter_logits(logits, top_p=0.55)))
  np.testing.assert_array_equal(kept, [[True, True, True, False]])


@pytest.mark.parametrize("kwargs, field", [
    (dict(temperature=-1.0, rng=jax.random.key(0)), "eval.temperature"),
    (dict(temperature=1.0, top_k=-2, rng=jax.random.key(0)), "eval.top_k"),
    (dict(temperature=1.0, top_p=0.0, rng=jax.random.key(0)), "eval.top_p"),
    (dict(temperature=1.0, top_p=1.5, rng=jax.random.key(0)), "eval.top_p"),
])
def test_bad_sampling_settings_raise_config_error(kwargs, field):
  params = toy_params(vocab=5, seed=0, scale=1.0)
  with pytest.raises(ConfigError, match=field):
    generation.generate(toy_step_fn, params, toy_cache(1), [[1]], [1], 2, **kwargs)


def test_bad_beam_settings_and_missing_rng():
  params = toy_params(vocab=5, seed=0, scale=1.0)
  with pytest.raises(ConfigError, match="eval.beam_size"):
    generation.beam_search(toy_step_fn, params, toy_cache(1), [[1]], [1], 2, beam_size=0)
  with pytest.raises(ConfigError, match="eval.length_penalty"):
    generation.beam_search(toy_step_fn, params, toy_cache(1), [[1]], [1], 2, beam_size=1,
                           length_penalty_alpha=-1.0)
  with pytest.raises(ConfigError, match="eval.generate_max_new_tokens"):
    generation.generate(toy_step_fn, params, toy_cache(1), [[1]], [1], 0)
  with pytest.raises(ValueError, match="prompt_lengths"):
    generation.generate(toy_step_fn, params, toy_cache(1), [[1, 2]], [0], 2)
  with pytest.raises(ValueError, match="rng"):
    generation.generate(toy_step_fn, params, toy_cache(1), [[1]], [1], 2, temperature=1.0)
