"""Decoder prefix masks (prefix_len): bidirectional over the prefix, causal after, per row; the
fused path equals the reference; prefix_len = 0 is the causal model."""
import jax
import jax.numpy as jnp
import numpy as np

import models
from models.attention import attention_mask
from tests.train_testlib import tiny_config


def _model(**fields):
  m = tiny_config("causal").model
  for k, v in fields.items():
    setattr(m, k, v)
  model = models.build_model(m)
  ids = jnp.asarray(np.random.RandomState(0).randint(0, 96, (3, 16)), jnp.int32)
  params = model.init(jax.random.key(0), ids)
  return model, params, ids


def test_mask_is_prefix_block_plus_causal():
  segments = jnp.asarray([[1] * 6 + [2] * 2], jnp.int32)  # a packed second document at 6
  mask = np.asarray(attention_mask(segments, segments, True, prefix_len=jnp.asarray([4])))[0, 0]
  for q in range(8):
    for k in range(8):
      same_doc = (q < 6) == (k < 6)
      assert mask[q, k] == (same_doc and (k <= q or k < 4)), (q, k)


def test_prefix_positions_see_the_whole_prefix_and_nothing_after():
  model, params, ids = _model()
  prefix = jnp.asarray([5, 0, 16], jnp.int32)
  run = lambda x: np.asarray(model.apply(params, x, prefix_len=prefix)["logits"])
  base = run(ids)
  changed = ids.at[:, 4].set((ids[:, 4] + 1) % 96)  # inside row 0's prefix
  out = run(changed)
  # row 0 (prefix 5): every prefix position sees token 4; nothing after 4 is hidden from it
  assert not np.allclose(out[0, :4], base[0, :4])
  # row 1 (prefix 0): causal, positions before 4 cannot see it
  np.testing.assert_array_equal(out[1, :4], base[1, :4])
  # row 2 (prefix 16): fully bidirectional
  assert not np.allclose(out[2, :4], base[2, :4])
  later = ids.at[:, 10].set((ids[:, 10] + 1) % 96)  # in row 0's suffix: causal there
  np.testing.assert_array_equal(run(later)[0, :10], base[0, :10])


def test_prefix_zero_is_the_causal_model_and_flash_matches_xla():
  model, params, ids = _model()
  causal = model.apply(params, ids)["logits"]
  zero = model.apply(params, ids, prefix_len=jnp.zeros((3,), jnp.int32))["logits"]
  np.testing.assert_allclose(zero, causal, rtol=1e-6, atol=1e-6)
  prefix = jnp.asarray([5, 0, 16], jnp.int32)
  flash, _, _ = _model(attention_impl="flash")
  ref = model.apply(params, ids, prefix_len=prefix)["logits"]
  fused = flash.apply(params, ids, prefix_len=prefix)["logits"]
  np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-5)


def test_prefix_masks_on_modern_blocks_fused_equals_reference():
  # RoPE, grouped-query attention, sliding-window layers with a global one, QK-norm.
  fields = dict(position_embedding="rope", num_kv_heads=2, qk_norm=True, attention_window=6,
                global_every=2)
  model, params, ids = _model(**fields)
  flash, _, _ = _model(attention_impl="flash", **fields)
  prefix = jnp.asarray([5, 0, 16], jnp.int32)
  ref = model.apply(params, ids, prefix_len=prefix)["logits"]
  np.testing.assert_allclose(flash.apply(params, ids, prefix_len=prefix)["logits"], ref,
                             rtol=1e-5, atol=1e-5)
  causal = model.apply(params, ids)["logits"]
  np.testing.assert_allclose(ref[1], causal[1], rtol=1e-6, atol=1e-6)  # prefix 0: causal
