"""The chunked LM head + cross-entropy (objectives/head_loss.py) against the logits path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from objectives import head_loss
from objectives.base import weighted_cross_entropy
from tests.train_testlib import random_batch, tiny_config
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib
from trainlib import step as step_lib


def _head_inputs(b, l, d, v, seed=0):
  ks = jax.random.split(jax.random.PRNGKey(seed), 4)
  hidden = jax.random.normal(ks[0], (b, l, d))
  kernel = jax.random.normal(ks[1], (d, v)) * 0.3
  labels = jax.random.randint(ks[2], (b, l), 0, v)
  weights = (jax.random.uniform(ks[3], (b, l)) > 0.25).astype(jnp.float32)  # padding included
  return hidden, kernel, labels, weights


@pytest.mark.parametrize("shape,multiplier", [((4, 96, 16, 50), 1.0),   # several chunks
                                              ((3, 7, 8, 33), 0.25),    # a prime length: one chunk
                                              ((2, 64, 48, 700), 1.0)])
def test_loss_hits_and_gradients_equal_the_logits_path(shape, multiplier, monkeypatch):
  monkeypatch.setattr(head_loss, "MIN_CHUNK_TOKENS", 16)  # several chunks at these sizes
  hidden, kernel, labels, weights = _head_inputs(*shape)
  b, l, d, _ = shape
  assert (l // head_loss.chunk_length(b, l, d) > 1) == (shape[1] != 7)

  def reference(h, k):
    loss, hits, _ = weighted_cross_entropy((h @ k).astype(jnp.float32) * multiplier, labels,
                                           weights)
    return loss, hits

  def chunked(h, k):
    return head_loss.chunked_head_cross_entropy(h, k, labels, weights, multiplier)

  want, got = reference(hidden, kernel), jax.jit(chunked)(hidden, kernel)
  np.testing.assert_allclose(got[0], want[0], rtol=2e-6)
  assert float(got[1]) == float(want[1])
  # The incoming cotangent (3.0) scales what the forward pass saved.
  want_grads = jax.grad(lambda h, k: 3.0 * reference(h, k)[0], (0, 1))(hidden, kernel)
  got_grads = jax.jit(jax.grad(lambda h, k: 3.0 * chunked(h, k)[0], (0, 1)))(hidden, kernel)
  for w, g in zip(want_grads, got_grads):
    # float32 sums in another order: errors scale with the gradient's largest entries, so the
    # absolute tolerance does too (an AVX2 CPU missed a fixed 2e-6 by 3.6e-6 on an entry of 0.004).
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6 * float(np.abs(w).max()))


def test_argmax_hits_count_ties_as_the_logits_path_does():
  hidden = jnp.zeros((2, 4, 8))  # every logit ties: only label 0 is the argmax
  kernel = jnp.ones((8, 5))
  labels = jnp.array([[0, 1, 0, 4], [2, 0, 0, 3]])
  weights = jnp.ones((2, 4))
  _, hits = head_loss.chunked_head_cross_entropy(hidden, kernel, labels, weights)
  assert float(hits) == 4.0


def test_the_chunked_path_is_chosen_on_cpu_for_narrow_heads_only():
  narrow = jnp.zeros((head_loss.MAX_CHUNKED_WIDTH, 10))
  assert head_loss.chunked_head_axes({"readout_kernel": narrow}) == ()
  wide = jnp.zeros((head_loss.MAX_CHUNKED_WIDTH + 1, 10))
  assert head_loss.chunked_head_axes({"readout_kernel": wide}) is None
  assert head_loss.chunked_head_axes({"logits": None}) is None  # an encoder's outputs


def _train(config, devices, steps, chunked, monkeypatch):
  monkeypatch.setattr(head_loss, "ENABLED", chunked)
  monkeypatch.setattr(head_loss, "MIN_CHUNK_TOKENS", 16)  # 8 chunks of the 256 tokens
  traced = []
  original = head_loss.chunked_head_cross_entropy
  monkeypatch.setattr(head_loss, "chunked_head_cross_entropy",
                      lambda *a, **k: traced.append(a[0].shape) or original(*a, **k))
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, devices))
  state = state_lib.init_state(setup)
  train_step, eval_step = step_lib.make_train_step(setup), step_lib.make_eval_step(setup)
  losses = []
  for i in range(steps):
    batch = step_lib.global_batch(setup, random_batch(config, setup.objective, seed=i))
    state, metrics = train_step(state, batch)
    losses.append(setup.objective.summarize(jax.device_get(metrics["sums"])))
  evaluated = setup.objective.summarize(jax.device_get(eval_step(state.params, batch)))
  rows = config.train.global_batch_size // config.train.microbatches // len(devices)
  assert bool(traced) == chunked and (not chunked or traced[0][0] == rows)  # the train step's
  # rows of one device: shard_map split the batch
  return losses, evaluated, jax.device_get(state.params)


@pytest.mark.parametrize("devices,microbatches,mup", [(8, 1, False), (4, 2, True)])
def test_train_steps_equal_the_logits_path(devices, microbatches, mup, monkeypatch):
  """Whole train and eval steps, data parallel (shard_map), with micro-batches and muP's readout
  multiplier: the same losses, accuracies and parameters to float32 rounding. (One device, no
  mesh: the function-level test above.)"""
  config = tiny_config("causal", seq_len=32)
  config.train.microbatches = microbatches
  if mup:
    config.model.parametrization, config.model.mup_base_width = "mup", 16
  assert config.model.d_model <= head_loss.MAX_CHUNKED_WIDTH
  runs = [_train(config, jax.devices()[:devices], 2, chunked, monkeypatch)
          for chunked in (True, False)]
  (losses, evaluated, params), (want_losses, want_evaluated, want_params) = runs
  for got, want in zip(losses + [evaluated], want_losses + [want_evaluated]):
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    np.testing.assert_allclose(got["lm_accuracy"], want["lm_accuracy"], atol=1e-6)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(want_params)):
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
