"""Behaviour of the networks on tiny configs: masks, stacks, remat, KV cache, attention numerics."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs import base
from models.attention import SelfAttention
from models.spec import resolve

B, L = 2, 12
# These tests are dominated by XLA compile time on 2 cores; unoptimised code compiles twice as fast
# and computes the same values (to float tolerance).
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})


def tiny(family="decoder", **overrides):
  m = base.get_config().model
  m.family = family
  m.ln_placement = "post" if family == "encoder" else "pre"
  m.activation = "gelu_exact" if family == "encoder" else "gelu_tanh"
  m.vocab_size, m.max_len = 61, 16
  m.num_layers, m.d_model, m.num_heads = 2, 32, 4
  for key, value in overrides.items():
    m[key] = value
  return m


def random_ids(seed, shape=(B, L), vocab=61):
  return jax.random.randint(jax.random.key(seed), shape, 1, vocab)


def fill_params(abstract_params, seed=0):
  """Random values for an abstract parameter tree, drawn with NumPy: compiling the model's own
  initializer costs far more CPU time than these tests' forward passes. LayerNorm scales are
  1 + noise; everything else, biases included, is N(0, 0.05^2) so that no term is zero."""
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    noise = rng.normal(0.0, 0.05, leaf.shape).astype(np.float32)
    return jnp.asarray(noise + 1.0 if path[-1].key == "scale" else noise)
  return jax.tree_util.tree_map_with_path(draw, abstract_params)


def init(model_cfg, ids, **kwargs):
  """(model, {"params": ...}) with the tree model.init would build, filled by fill_params."""
  model = models.build_model(model_cfg)
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, **kwargs), ids)
  return model, {"params": fill_params(nn.unbox(abstract)["params"])}


def empty_cache(model, batch, max_len):
  """The decoder's `cache` collection as init(decode=True) allocates it (all zeros)."""
  abstract = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, decode=True)["cache"],
      jax.ShapeDtypeStruct((batch, max_len), jnp.int32))
  return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract)


def unstack_layers(params, num_layers):
  """Scanned params (stack/layers, leading layer axis) -> unrolled (stack/layers_i)."""
  stacked = params["stack"]["layers"]
  stack = {f"layers_{i}": jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(num_layers)}
  return {**params, "stack": stack}


def test_decoder_is_causal_and_encoder_is_not():
  ids = random_ids(0)
  changed = ids.at[:, 7:].set((ids[:, 7:] + 5) % 61)
  for family, key in (("decoder", "logits"), ("encoder", "hidden")):
    model, variables = init(tiny(family), ids)
    apply = jit(lambda v, x: model.apply(v, x)[key])
    before, after = apply(variables, ids), apply(variables, changed)
    if family == "decoder":
      np.testing.assert_allclose(before[:, :7], after[:, :7], atol=1e-6)
    else:  # bidirectional: earlier positions see the later tokens
      assert np.abs(before[:, :7] - after[:, :7]).max(axis=-1).min() > 1e-3
    assert np.abs(before[:, 7:] - after[:, 7:]).max(axis=-1).min() > 1e-3


def test_packed_documents_do_not_attend_to_each_other():
  # Decoder: document 2 of a packed row gives the same logits as document 2 on its own.
  doc = random_ids(1, (1, 5))
  packed = jnp.concatenate([random_ids(2, (1, 7)), doc], axis=1)
  doc_ids = jnp.array([[1] * 7 + [2] * 5])
  positions = jnp.array([list(range(7)) + list(range(5))])
  model, variables = init(tiny("decoder"), packed)
  logits = jit(lambda v, x, p, d: model.apply(v, x, positions=p, doc_ids=d)["logits"])
  logits_packed = logits(variables, packed, positions, doc_ids)
  # Document 2 alone, at the start of a causal row (what follows it cannot matter).
  alone = jnp.concatenate([doc, random_ids(3, (1, 7))], axis=1)
  logits_alone = logits(variables, alone, jnp.arange(12)[None], jnp.ones_like(doc_ids))[:, :5]
  np.testing.assert_allclose(logits_packed[:, 7:], logits_alone, atol=2e-5)
  # Encoder: real tokens do not see padding, whatever the padding holds.
  model, variables = init(tiny("encoder"), packed)
  input_mask = jnp.array([[1] * 9 + [0] * 3])
  hidden = jit(lambda ids: model.apply(variables, ids, input_mask=input_mask)["hidden"])
  other_padding = packed.at[:, 9:].set(3)
  np.testing.assert_allclose(hidden(packed)[:, :9], hidden(other_padding)[:, :9], atol=2e-5)


# scan_unroll: 1 = one layer per loop iteration (a rolled loop); 0 = auto, on CPU the whole stack.
@pytest.mark.parametrize("scan_unroll", [1, 0])
@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_scan_and_unrolled_stacks_agree(family, scan_unroll):
  ids = random_ids(3)
  kwargs = dict(token_type_ids=(jnp.arange(L) >= 6).astype(jnp.int32)[None].repeat(B, 0),
                masked_positions=jnp.array([[1, 4, 9]] * B)) if family == "encoder" else {}
  scanned, variables = init(tiny(family, scan_unroll=scan_unroll), ids)
  unrolled = models.build_model(tiny(family, scan_layers=False))
  unrolled_params = unstack_layers(variables["params"], 2)
  # The unrolled model's own init has exactly this tree structure and shapes.
  reference = jax.eval_shape(unrolled.init, jax.random.key(0), ids)
  assert (jax.tree.map(jnp.shape, nn.unbox(reference)["params"])
          == jax.tree.map(jnp.shape, unrolled_params))
  out_scanned = jit(lambda v: scanned.apply(v, ids, **kwargs))(variables)
  out_unrolled = jit(lambda v: unrolled.apply(v, ids, **kwargs))({"params": unrolled_params})
  for key in out_scanned:  # arrays, and the readout's arrays
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5),
                 out_scanned[key], out_unrolled[key])


@pytest.mark.parametrize("scan_unroll", [1, 0])
def test_remat_policies_give_the_same_gradients(scan_unroll):
  ids = random_ids(4)
  cfg = tiny("decoder", dropout_rate=0.1, attention_dropout_rate=0.1)
  _, variables = init(cfg, ids)

  def grads(policy):
    model = models.build_model(tiny("decoder", dropout_rate=0.1, attention_dropout_rate=0.1,
                                    remat_policy=policy, scan_unroll=scan_unroll))
    params = variables["params"]

    def loss(p):
      logits = model.apply({"params": p}, ids, deterministic=False,
                           rngs={"dropout": jax.random.key(7)})["logits"]
      return jnp.mean(jax.nn.log_softmax(logits)[..., 5])
    return jit(jax.grad(loss))(params)

  reference = grads("none")
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(reference)) > 1e-4
  for policy in ("full", "save_dots", "save_qkv_out"):
    got = grads(policy)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 got, reference)


@pytest.mark.parametrize("scan,scan_unroll", [(True, 1), (True, 0), (False, 0)])
def test_cached_decoding_matches_full_forward(scan, scan_unroll):
  cfg = tiny("decoder", scan_layers=scan, scan_unroll=scan_unroll)
  ids = random_ids(5)
  model, variables = init(cfg, ids)
  full = jit(model.apply)(variables, ids)["logits"]  # [B, L, V]
  cache = empty_cache(model, B, cfg.max_len)

  @jit
  def step(cache, tokens):
    out, state = model.apply({"params": variables["params"], "cache": cache}, tokens,
                             decode=True, mutable=["cache"])
    return out["logits"], state["cache"]

  logits, cache = step(cache, ids[:, :4])  # prefill a 4-token prompt in one call
  got = [logits]
  for t in range(4, L):
    logits, cache = step(cache, ids[:, t:t + 1])
    got.append(logits)
  np.testing.assert_allclose(jnp.concatenate(got, axis=1), full, rtol=1e-5, atol=1e-5)

  # Beam-search reordering: swapping the rows of the cache swaps the next logits.
  swapped = models.reorder_cache(cache, jnp.array([1, 0]), scan_layers=scan)
  nxt = ids[:, :1]
  plain, _ = step(cache, nxt)
  reordered, _ = step(swapped, nxt[::-1])
  np.testing.assert_allclose(reordered, plain[::-1], rtol=1e-5, atol=1e-5)


def test_left_padded_prompt_decodes_like_unpadded():
  cfg = tiny("decoder")
  prompt = random_ids(6, (1, 5))
  padded = jnp.concatenate([jnp.zeros((1, 3), jnp.int32), prompt], axis=1)
  model, variables = init(cfg, padded)

  @jit
  def run(tokens, positions, doc_ids, cache):
    variables_in = {"params": variables["params"], "cache": cache}
    out, _ = model.apply(variables_in, tokens, positions=positions, doc_ids=doc_ids,
                         decode=True, mutable=["cache"])
    return out["logits"]

  cache = empty_cache(model, 1, cfg.max_len)
  got = run(padded, jnp.array([[0, 0, 0, 0, 1, 2, 3, 4]]), jnp.array([[0, 0, 0, 1, 1, 1, 1, 1]]),
            cache)
  unpadded = jnp.concatenate([prompt, prompt[:, :3]], axis=1)  # same shape, prompt first
  want = run(unpadded, jnp.arange(8)[None], jnp.ones((1, 8), jnp.int32), cache)
  np.testing.assert_allclose(got[:, 3:], want[:, :5], rtol=1e-5, atol=1e-5)


def _numpy_attention(p, x, segments, causal, num_heads):
  """Plain NumPy multi-head attention with the same parameters."""
  x = np.asarray(x, np.float64)
  proj = lambda name: np.einsum("bld,dhk->blhk", x, p[name]["kernel"]) + p[name]["bias"]
  q, k, v = proj("query"), proj("key"), proj("value")
  scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
  allowed = segments[:, None, :, None] == segments[:, None, None, :]
  if causal:
    allowed = allowed & np.tril(np.ones((x.shape[1],) * 2, bool))
  scores = np.where(allowed, scores, -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  heads = np.einsum("bhqk,bkhd->bqhd", probs, v)
  return np.einsum("bqhd,hde->bqe", heads, p["out"]["kernel"]) + p["out"]["bias"]


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_attention_matches_numpy(family):
  spec = resolve(tiny(family))
  x = jax.random.normal(jax.random.key(8), (B, 6, spec.d_model))
  segments = jnp.array([[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]])
  layer = SelfAttention(spec)
  params = fill_params(nn.unbox(jax.eval_shape(layer.init, jax.random.key(9), x, segments))[
      "params"])
  got = jit(layer.apply)({"params": params}, x, segments)
  want = _numpy_attention(jax.tree.map(np.asarray, params), x, np.asarray(segments),
                          spec.causal, spec.num_heads)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_flash_impl_matches_xla_on_cpu(family):
  ids = random_ids(10)
  kwargs = dict(doc_ids=jnp.array([[1] * 5 + [2] * 7, [1] * 12]))
  if family == "encoder":
    kwargs["input_mask"] = jnp.array([[1] * 10 + [0] * 2, [1] * 12])
  xla, variables = init(tiny(family), ids)
  flash = models.build_model(tiny(family, attention_impl="flash"))
  with_grads = family == "encoder"  # one family's gradients suffice: the backward is jax's own

  def run(model):
    def loss(params):
      hidden = model.apply({"params": params}, ids, **kwargs)["hidden"]
      return jnp.sum(jnp.sin(hidden)), hidden
    if with_grads:
      (_, hidden), grads = jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
      return hidden, grads
    return jit(loss)(variables["params"])[1], {}

  h_xla, g_xla = run(xla)
  h_flash, g_flash = run(flash)
  np.testing.assert_allclose(h_flash, h_xla, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               g_flash, g_xla)


@pytest.mark.parametrize("scan", [True, False])
def test_captured_attention_is_softmax_of_captured_queries_and_keys(scan):
  cfg = tiny("decoder", scan_layers=scan, attention_impl="flash")  # capture forces the reference
  ids = random_ids(11)
  doc_ids = jnp.array([[1] * 5 + [2] * 7, [1] * 12])
  model = models.build_model(cfg, capture_attention=True)
  _, variables = init(cfg, ids)
  _, state = jit(lambda v: model.apply(v, ids, doc_ids=doc_ids, mutable=["intermediates"]))(
      variables)
  got = models.collect_attention(state["intermediates"])
  probs, q, k = got["attention_probs"], got["queries"], got["keys"]
  assert probs.shape == (2, B, 4, L, L) and q.shape == k.shape == (2, B, 4, L, 8)
  scores = jnp.einsum("nbhqd,nbhkd->nbhqk", q, k) / np.sqrt(8)
  allowed = (doc_ids[:, :, None] == doc_ids[:, None, :]) & jnp.tril(jnp.ones((L, L), bool))
  want = jax.nn.softmax(jnp.where(allowed[None, :, None], scores, -jnp.inf), axis=-1)
  np.testing.assert_allclose(probs, want, atol=1e-5)
  assert float(probs[0, 0, :, 3, 4:].max()) == 0.0  # nothing to the right of the query
  assert float(probs[0, 0, :, 6, :5].max()) == 0.0  # nothing from the previous document


def test_dropout_is_active_only_when_not_deterministic():
  ids = random_ids(12)
  model, variables = init(tiny("encoder", dropout_rate=0.2, attention_dropout_rate=0.2), ids)
  run = jit(lambda seed, det: model.apply(variables, ids, deterministic=det,
                                          rngs={"dropout": jax.random.key(seed)})["hidden"],
            static_argnums=1)
  np.testing.assert_array_equal(run(0, True), run(1, True))
  np.testing.assert_array_equal(run(0, False), run(0, False))
  assert float(jnp.abs(run(0, False) - run(1, False)).max()) > 1e-3
  assert float(jnp.abs(run(0, False) - run(0, True)).max()) > 1e-3


def test_bfloat16_compute_keeps_float32_params_and_logits():
  ids = random_ids(13)
  model, variables = init(tiny("decoder", dtype="bfloat16"), ids)
  assert {a.dtype for a in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
  out = jit(model.apply)(variables, ids)
  assert out["hidden"].dtype == jnp.bfloat16 and out["logits"].dtype == jnp.float32
  full = jit(models.build_model(tiny("decoder")).apply)(variables, ids)["logits"]
  np.testing.assert_allclose(out["logits"], full, atol=0.1)  # same function, lower precision


def test_untied_head_and_heads_of_the_encoder():
  ids = random_ids(14)
  model, variables = init(tiny("decoder", tie_embeddings=False), ids)
  head = variables["params"]["lm_head"]["kernel"]  # [D, V]
  out = jit(model.apply)(variables, ids)
  np.testing.assert_allclose(out["logits"], out["hidden"] @ head, rtol=1e-5, atol=1e-5)
  model, variables = init(tiny("encoder", nsp_head=False), ids)
  positions = jnp.array([[0, 5, 11], [2, 2, 7]])
  apply = jit(lambda v, p: (model.apply(v, ids), model.apply(v, ids, masked_positions=p)))
  out, gathered = apply(variables, positions)
  assert "nsp_logits" not in out and out["mlm_logits"].shape == (B, L, 61)
  assert out["pooled"].shape == (B, 32) and float(jnp.abs(out["pooled"]).max()) <= 1.0
  # MLM logits gathered at masked_positions equal the full-length logits at those positions.
  np.testing.assert_allclose(gathered["mlm_logits"],
                             jnp.take_along_axis(out["mlm_logits"], positions[..., None], axis=1),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("platform, dtype, length, head_dim, want", [
    ("cpu", "bfloat16", 128, 64, "xla"),
    ("tpu", "float32", 256, 64, "splash"),
    ("tpu", "bfloat16", 100, 64, "xla"),          # splash tiles queries and keys by 128
    ("tpu", "bfloat16", 256, 192, "xla"),          # head_dim: up to one 128-lane tile, or whole tiles
    ("tpu", "bfloat16", 256, 256, "splash"),
    ("gpu", "bfloat16", 1024, 64, "cudnn"),
    ("cuda", "float16", 2048, 128, "cudnn"),
    ("gpu", "float32", 1024, 64, "xla"),          # cuDNN's fused attention is half precision only
    ("gpu", "bfloat16", 1024, 60, "xla"),         # head_dim must be a multiple of 8
    ("gpu", "bfloat16", 1024, 256, "xla"),        # and <= 128 (256 only on Hopper)
    ("gpu", "bfloat16", 1023, 64, "xla"),         # odd lengths: not with a mask in training
])
def test_flash_picks_the_kernel_the_target_can_run(platform, dtype, length, head_dim, want):
  from models.attention import attention_backend
  assert attention_backend(platform, jnp.dtype(dtype), length, head_dim) == want


def test_flash_on_this_cpu_lowers_to_xla_not_cudnn():
  from models.attention import fused_attention, segment_ids_from
  q = jnp.ones((2, 8, 2, 8), jnp.bfloat16)
  segments = segment_ids_from((2, 8))
  text = jax.jit(lambda q: fused_attention(q, q, q, segments, True)).lower(q).as_text()
  assert "cudnn" not in text.lower() and "custom_call" not in text


def test_auto_unroll_unrolls_shallow_cpu_stacks_only():
  from models.spec import resolve
  from models.stack import CPU_UNROLL_MAX_LAYERS, auto_unroll
  shallow = resolve(tiny("decoder", num_layers=4))
  deep = resolve(tiny("decoder", num_layers=CPU_UNROLL_MAX_LAYERS + 1))
  assert auto_unroll(shallow, "cpu") == 4
  assert auto_unroll(shallow, "tpu") == auto_unroll(shallow, "gpu") == 1
  assert auto_unroll(deep, "cpu") == 1
  assert auto_unroll(resolve(tiny("decoder", num_layers=4, scan_unroll=2)), "tpu") == 2
  assert auto_unroll(resolve(tiny("decoder", num_layers=4, scan_unroll=9)), "cpu") == 4


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_cpu_matmul_backward_equals_autodiff(family, monkeypatch):
  from models import matmul
  ids = random_ids(8)
  cfg = tiny(family, tie_embeddings=family == "decoder")  # tied and untied heads
  model, variables = init(cfg, ids)
  key = "logits" if family == "decoder" else "mlm_logits"

  def grads():
    def loss(p):
      return jnp.mean(jax.nn.log_softmax(model.apply({"params": p}, ids)[key])[..., 5])
    return jax.jit(jax.grad(loss))(variables["params"])

  cpu = grads()  # models/matmul.py's own VJP (this is a CPU test)
  monkeypatch.setattr(matmul, "target_platform", lambda: "tpu")  # plain tensordot + autodiff
  reference = grads()
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(reference)) > 1e-4
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), cpu, reference)
