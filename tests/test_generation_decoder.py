"""Generation with the real Decoder and its key/value cache (tiny random weights)."""
import flax.linen as nn
import jax
import numpy as np
import pytest

import models
from configs import base
from configs.errors import ConfigError
from evals import decoder_fns, generation

PROMPTS = np.array([[5, 17, 3, 9], [40, 2, 0, 0], [11, 0, 0, 0]])  # right-padded
LENGTHS = np.array([4, 2, 1])
NEW = 6


def tiny_decoder(scan_layers):
  cfg = base.get_config().model
  cfg.update(vocab_size=61, max_len=16, num_layers=2, d_model=32, num_heads=2,
             scan_layers=scan_layers)
  model = models.build_model(cfg)
  # Random weights straight from the parameter shapes (eval_shape traces, compiles nothing),
  # larger than the 0.02 init, so next-token distributions are peaked and input-dependent and
  # a cache bug changes the argmax instead of hiding in near-ties.
  shapes = jax.eval_shape(model.init, jax.random.key(0), np.zeros([1, 8], np.int32))["params"]
  rng = np.random.default_rng(0)

  def draw(path, s):
    name = path[-1].key
    if name in ("bias", "scale"):  # LayerNorm / dense biases: the identity, as at init
      return np.full(s.shape, 1.0 if name == "scale" else 0.0, s.dtype)
    std = 1.0 if name == "embedding" else 0.3
    return (rng.normal(size=s.shape) * std).astype(s.dtype)

  params = jax.tree_util.tree_map_with_path(draw, nn.meta.unbox(shapes))
  fns = decoder_fns.make_decoder_fns(model, cache_len=PROMPTS.shape[1] + NEW - 1)
  return model, params, fns


@pytest.fixture(scope="module")
def scanned():
  return tiny_decoder(scan_layers=True)


def test_cached_equals_uncached_greedy_and_beam_scanned(scanned):
  _, params, fns = scanned
  # A scanned stack puts the layer axis first and the batch second; counters have no batch axis.
  assert sorted(set(jax.tree.leaves(fns.cache_batch_axes))) == [1]
  assert None in jax.tree.leaves(fns.cache_batch_axes, is_leaf=lambda a: a is None)
  greedy = generation.generate(fns.step_fn, params, fns.init_cache(3), PROMPTS, LENGTHS, NEW)
  greedy_ref = generation.generate_uncached(fns.full_fn, params, PROMPTS, LENGTHS, NEW)
  np.testing.assert_array_equal(greedy.tokens, greedy_ref.tokens)
  np.testing.assert_allclose(greedy.logprobs, greedy_ref.logprobs, rtol=1e-4, atol=1e-4)
  assert len(np.unique(np.asarray(greedy.tokens))) > 3  # not a degenerate constant output

  beams = generation.beam_search(fns.step_fn, params, fns.init_cache(3 * 3), PROMPTS, LENGTHS, NEW,
                                 beam_size=3, cache_batch_axes=fns.cache_batch_axes)
  beams_ref = generation.beam_search_uncached(fns.full_fn, params, PROMPTS, LENGTHS, NEW,
                                              beam_size=3)
  np.testing.assert_array_equal(beams.tokens, beams_ref.tokens)
  np.testing.assert_allclose(beams.scores, beams_ref.scores, rtol=1e-4, atol=1e-4)


def test_cached_equals_uncached_greedy_unrolled():
  _, params, fns = tiny_decoder(scan_layers=False)
  assert sorted(set(jax.tree.leaves(fns.cache_batch_axes))) == [0]
  greedy = generation.generate(fns.step_fn, params, fns.init_cache(3), PROMPTS, LENGTHS, NEW)
  greedy_ref = generation.generate_uncached(fns.full_fn, params, PROMPTS, LENGTHS, NEW)
  np.testing.assert_array_equal(greedy.tokens, greedy_ref.tokens)


def test_cache_longer_than_position_table_is_a_config_error(scanned):
  model, _, _ = scanned
  with pytest.raises(ConfigError, match="model.max_len=16"):
    decoder_fns.make_decoder_fns(model, cache_len=17)
