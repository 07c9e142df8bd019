"""The LM/MLM head paths (objectives/head_loss.py): chunked (CPU) and tiled (TPU/GPU) against the
logits path."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.layers import Readout
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


def _readout(width, head_loss_field="auto", bias=False, vocab=10):
  return Readout(hidden=jnp.zeros((2, 3, width)), kernel=jnp.zeros((width, vocab)),
                 bias=jnp.zeros((vocab,)) if bias else None, head_loss=head_loss_field)


def test_the_chunked_path_is_chosen_on_cpu_for_narrow_decoder_heads_only():
  assert head_loss.head_path(_readout(head_loss.MAX_CHUNKED_WIDTH)) == "chunked"
  assert head_loss.head_path(_readout(head_loss.MAX_CHUNKED_WIDTH + 1)) == "logits"
  assert head_loss.head_path(_readout(8, bias=True)) == "logits"  # an MLM head
  assert head_loss.head_path(None) == "logits"  # outputs without a readout


def test_the_tiled_path_is_chosen_on_accelerators_and_when_asked(monkeypatch):
  assert head_loss.head_path(_readout(8, "tiled")) == "tiled"  # on CPU too
  assert head_loss.head_path(_readout(8, "logits")) == "logits"
  monkeypatch.setattr(head_loss, "target_platform", lambda: "tpu")
  for width, bias in ((8, False), (4096, False), (8, True)):
    assert head_loss.head_path(_readout(width, bias=bias)) == "tiled"
  assert head_loss.head_path(_readout(8, "logits")) == "logits"


def _train(config, devices, steps, chunked, monkeypatch):
  config.model.head_loss = "auto" if chunked else "logits"
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


# ------------------------------------------------------------------ the tiled path (memory)


@pytest.mark.parametrize("shape,multiplier,bias,remat", [
    ((4, 96, 16, 50), 1.0, False, False),   # a decoder head, 7 tiles
    ((3, 7, 8, 33), 0.25, False, True),     # muP's multiplier; remat
    ((2, 24, 8, 40), 1.0, True, False),     # an MLM head: transform output, kernel and bias
])
def test_tiled_loss_hits_and_gradients_equal_the_logits_path(shape, multiplier, bias, remat,
                                                             monkeypatch):
  b, l, d, v = shape
  monkeypatch.setattr(head_loss, "TILE_LOGITS_BYTES", b * l * 4 * 8)  # 8 columns per tile
  tile, count = head_loss.vocab_tiles(b * l, v)
  assert count > 1 and (tile * count > v) == (v != 40)  # a padded last tile but for the MLM head
  hidden, kernel, labels, weights = _head_inputs(*shape)
  out_bias = jax.random.normal(jax.random.PRNGKey(9), (v,)) if bias else None

  def reference(h, k, c):
    logits = (h @ k).astype(jnp.float32) * multiplier
    loss, hits, _ = weighted_cross_entropy(logits if c is None else logits + c, labels, weights)
    return loss, hits

  def tiled(h, k, c):
    readout = Readout(hidden=h, kernel=k, bias=c, multiplier=multiplier, head_loss="tiled")
    loss, hits, weight = head_loss.head_cross_entropy(None, readout, labels, weights)
    assert weight.shape == ()
    return loss, hits

  if remat:
    tiled = jax.checkpoint(tiled)
  want, got = reference(hidden, kernel, out_bias), jax.jit(tiled)(hidden, kernel, out_bias)
  np.testing.assert_allclose(got[0], want[0], rtol=2e-6)
  assert float(got[1]) == float(want[1])
  argnums = (0, 1, 2) if bias else (0, 1)
  want_grads = jax.grad(lambda *a: 3.0 * reference(*a)[0], argnums)(hidden, kernel, out_bias)
  got_grads = jax.jit(jax.grad(lambda *a: 3.0 * tiled(*a)[0], argnums))(hidden, kernel, out_bias)
  for w, g in zip(want_grads, got_grads):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6 * float(np.abs(w).max()))


def _fsdp_config(objective, seq_len=32, batch=8, predictions=4, tensor=1):
  config = tiny_config("mlm" if objective == "mlm" else "causal", seq_len=seq_len, batch=batch)
  config.objective.name = objective
  config.objective.max_predictions_per_seq = predictions
  # FSDP: rows and the kernel's width sharded (and with tensor parallelism its columns)
  config.mesh.data, config.mesh.fsdp, config.mesh.tensor = 1, 8 // tensor, tensor
  return config


def _batch(config, objective, seed):
  batch = random_batch(config, objective, seed=seed)
  if "prefix_len" in batch:  # gpt_bert: every other row a masked (MNTP) row
    batch["prefix_len"][::2] = config.data.seq_len
  return batch


def _train_fsdp(config, head_loss_field, monkeypatch):
  """2 train steps and an eval step on 8 devices; -> (summaries, eval summary, params, the row
  count of each tiled call)."""
  config.model.head_loss = head_loss_field
  rows = []
  original = head_loss.tiled_token_losses
  monkeypatch.setattr(head_loss, "tiled_token_losses",
                      lambda r, y: rows.append(r.hidden.shape[0]) or original(r, y))
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, jax.devices()[:8]))
  state = state_lib.init_state(setup)
  train_step, eval_step = step_lib.make_train_step(setup), step_lib.make_eval_step(setup)
  summaries = []
  for i in range(2):
    batch = step_lib.global_batch(setup, _batch(config, setup.objective, seed=i))
    state, metrics = train_step(state, batch)
    summaries.append(setup.objective.summarize(jax.device_get(metrics["sums"])))
  evaluated = setup.objective.summarize(jax.device_get(eval_step(state.params, batch)))
  return summaries, evaluated, jax.device_get(state.params), rows


@pytest.mark.parametrize("objective,microbatches,remat,tensor", [
    ("causal", 2, "full", 1), ("mlm", 1, "full", 2), ("gpt_bert", 2, "none", 1)])
def test_tiled_train_steps_equal_the_logits_path_under_fsdp(objective, microbatches, remat,
                                                            tensor, monkeypatch):
  """Whole train and eval steps on an 8-device FSDP mesh (rows and the head's kernel sharded;
  once with tensor parallelism too), with micro-batches or remat: the same losses, accuracies and
  parameters to float32 rounding."""
  monkeypatch.setattr(head_loss, "TILE_LOGITS_BYTES", 32 * 4 * 32)  # 3 tiles of 32 columns
  config = _fsdp_config(objective, batch=8 * microbatches, tensor=tensor)
  config.train.microbatches, config.model.remat_policy = microbatches, remat
  if objective == "gpt_bert":
    config.model.family = "decoder"
  (got, got_eval, params, rows), (want, want_eval, want_params, reference_rows) = (
      _train_fsdp(config, field, monkeypatch) for field in ("tiled", "logits"))
  assert rows and not reference_rows
  assert rows[0] == config.train.global_batch_size // microbatches  # under jit, not shard_map
  terms = [k for k in want[0] if k.endswith(("_loss", "_accuracy"))]
  assert terms
  for g, w in zip(got + [got_eval], want + [want_eval]):
    for k in terms:
      np.testing.assert_allclose(g[k], w[k], rtol=1e-5, atol=1e-6, err_msg=k)
  for g, w in zip(jax.tree.leaves(params), jax.tree.leaves(want_params)):
    np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-6)


def _logits_sized_arrays(config, head_loss_field):
  """Shapes in the optimized HLO of the compiled train step (per device, after partitioning)
  that have a vocabulary axis and at least one device's share of the [B, L, V] logits."""
  config.model.head_loss = head_loss_field
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, jax.devices()[:8]))
  lowered = step_lib.make_train_step(setup).lower(setup.abstract_state,
                                                  step_lib.abstract_batch(setup))
  text = lowered.compile().as_text()
  v = config.model.vocab_size
  positions = (config.data.seq_len if config.model.family == "decoder"
               else config.objective.max_predictions_per_seq)
  per_device = config.train.global_batch_size // 8 * positions * v
  found = set()
  for dims in re.findall(r"\b(?:f32|bf16|f16|s32|pred)\[([\d,]+)\]", text):
    shape = tuple(int(x) for x in dims.split(","))
    if v in shape and math.prod(shape) >= per_device:
      found.add(shape)
  return found


@pytest.mark.parametrize("objective", ["causal", "mlm"])
def test_no_logits_sized_array_in_the_tiled_train_step(objective, monkeypatch):
  """The claim, checked in the compiled program: with the tiled head no array as large as the
  logits exists (the logits path, compiled the same way, has them: the check can fail)."""
  monkeypatch.setattr(head_loss, "TILE_LOGITS_BYTES", 2 * 64 * 4 * 32)  # 3 tiles of 32 columns
  config = _fsdp_config(objective, seq_len=64, batch=16, predictions=32)
  assert config.model.vocab_size == 96 and 96 not in (config.model.d_model, 4 * 32, 64, 32)
  assert _logits_sized_arrays(config, "logits")
  assert _logits_sized_arrays(config, "tiled") == set()


def test_the_aot_table_shows_what_the_tiled_head_saves():
  from launch import tiled_loss_table

  def report(total, temporaries):
    return dict(fits=True, total_bytes=total * 2**30, temporaries_bytes=temporaries * 2**30,
                topology="v5p-32", num_chips=16, global_batch_size=64, seq_len=8192,
                vocab_size=50368, compile_seconds=200.0)

  table = tiled_loss_table.markdown(
      {"ettin_decoder_1b": {"tiled": report(13.5, 12.7), "logits": report(16.75, 16.0)}})
  rows = table.splitlines()
  assert len(rows) == 4
  assert "| tiled | 13.50 | 12.70 | 3.25 |" in rows[2]
  assert "| logits | 16.75 | 16.00 |  |" in rows[3]
