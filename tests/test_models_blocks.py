"""The block options of issue 14 (RoPE, RMSNorm, GLU, grouped-query attention, qk_norm, sliding
window / global layers) on tiny configs: NumPy references, equivalences, and every stack path
(scanned, unrolled, remat, cached decoding, flash). Defaults leaving existing presets bitwise
unchanged: tests/test_models_golden.py."""

import dataclasses
import importlib
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import objectives
from configs import base, presets
from configs.errors import ConfigError
from models import counting
from models.rope import apply_rope
from models.spec import ModelSpec, resolve
from tests.test_models_behavior import (B, L, empty_cache, fill_params, init, jit, random_ids,
                                        tiny, unstack_layers)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODERN = dict(position_embedding="rope", rope_fraction=0.5, rope_base=500.0, rope_local_base=50.0,
              norm="rmsnorm", mlp="glu", activation="silu", use_bias=False, num_kv_heads=2,
              qk_norm=True, attention_window=4, global_every=2)


def modern(family="decoder", **overrides):
  return tiny(family, **{**MODERN, **overrides})


def window_mask(length, window, causal, q_index=None, k_index=None):
  """NumPy reference of one layer's position mask (segments aside): [Lq, Lk] bool."""
  q = np.arange(length) if q_index is None else np.asarray(q_index)
  k = np.arange(length) if k_index is None else np.asarray(k_index)
  allowed = np.ones((len(q), len(k)), bool)
  if causal:
    allowed &= k[None, :] <= q[:, None]
  if window:
    allowed &= np.abs(q[:, None] - k[None, :]) <= window // 2
  return allowed


# ------------------------------------------------------------------ the field table


def test_model_fields_are_declared_once_and_documented():
  names = [row[0] for row in base.MODEL_FIELDS]
  assert len(names) == len(set(names))
  assert set(base.get_config().model) == set(names)  # base.py builds the section from the table
  spec_fields = [f.name for f in dataclasses.fields(ModelSpec)]
  assert spec_fields == names + ["capture_attention"]
  for name, default, valid, doc in base.MODEL_FIELDS:
    assert doc and doc == doc.strip(), name
    if isinstance(valid, tuple):
      assert default in valid, name
      if name not in ("dtype", "param_dtype"):  # the meaning names every choice it offers
        assert all(f'"{choice}"' in doc for choice in valid), name
  resolve(base.get_config().model)  # every default is valid


@pytest.mark.parametrize("overrides, message", [
    (dict(num_kv_heads=3), "model.num_kv_heads=3 must divide model.num_heads=4"),
    (dict(norm="batchnorm"), "model.norm='batchnorm' is not one of 'layernorm', 'rmsnorm'"),
    (dict(rope_fraction=0.0), "model.rope_fraction=0.0 must be a number in (0, 1]"),
    (dict(position_embedding="rope", rope_fraction=0.1), "model.rope_fraction=0.1 rotates no pair"),
    (dict(attention_window=-1), "model.attention_window=-1 must be an integer >= 0"),
    (dict(activation="swish"), "'silu'"),
])
def test_new_fields_fail_with_one_line(overrides, message):
  with pytest.raises(ConfigError) as info:
    models.build_model(tiny("decoder", **overrides))
  assert message in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------ RoPE


def _numpy_rope(x, positions, base_, rope_dims):
  """Pairs (i, i + rope_dims/2) rotated by positions * base^(-2i/rope_dims), written out."""
  x = np.asarray(x, np.float64)
  out = x.copy()
  half = rope_dims // 2
  for i in range(half):
    theta = np.asarray(positions, np.float64)[:, :, None] * base_ ** (-2.0 * i / rope_dims)
    a, b = x[..., i], x[..., i + half]
    out[..., i] = a * np.cos(theta) - b * np.sin(theta)
    out[..., i + half] = b * np.cos(theta) + a * np.sin(theta)
  return out


@pytest.mark.parametrize("rope_dims", [8, 4])
def test_rope_matches_numpy(rope_dims):
  x = jax.random.normal(jax.random.key(0), (2, 5, 3, 8))
  positions = jnp.array([[0, 1, 2, 3, 4], [7, 3, 0, 11, 100]])
  got = apply_rope(x, positions, 500.0, rope_dims)
  np.testing.assert_allclose(got, _numpy_rope(x, positions, 500.0, rope_dims), atol=2e-5)
  if rope_dims < 8:  # partial rotary: the other dims pass through untouched
    np.testing.assert_array_equal(got[..., rope_dims:], x[..., rope_dims:])
  # Relative: q.k after rotation depends only on the distance between positions.
  q, k = x[:1, :1], x[:1, 1:2]
  dot = lambda pq, pk: float(jnp.sum(apply_rope(q, jnp.array([[pq]]), 500.0, rope_dims)
                                     * apply_rope(k, jnp.array([[pk]]), 500.0, rope_dims)))
  assert dot(3, 1) == pytest.approx(dot(12, 10), abs=1e-4)


def test_rope_model_has_no_position_table_and_sees_order():
  ids = random_ids(1)
  model, variables = init(tiny("encoder", position_embedding="rope"), ids)
  assert "position" not in variables["params"]["embeddings"]
  hidden = jit(lambda x: model.apply(variables, x)["hidden"])
  swapped = ids[:, ::-1]
  # Without positions an encoder would be permutation-equivariant; with RoPE it is not.
  assert float(jnp.abs(hidden(swapped)[:, ::-1] - hidden(ids)).max()) > 1e-3


# ------------------------------------------------------------------ grouped-query attention


def test_gqa_with_all_heads_is_mha():
  ids = random_ids(2)
  mha, variables = init(tiny("decoder"), ids)
  gqa = models.build_model(tiny("decoder", num_kv_heads=4))
  abstract = jax.eval_shape(gqa.init, jax.random.key(0), ids)
  assert (jax.tree.map(jnp.shape, nn.unbox(abstract)["params"])
          == jax.tree.map(jnp.shape, variables["params"]))
  np.testing.assert_array_equal(jit(gqa.apply)(variables, ids)["logits"],
                                jit(mha.apply)(variables, ids)["logits"])


@pytest.mark.parametrize("impl", ["xla", "flash"])
def test_gqa_equals_mha_with_each_kv_head_repeated_for_its_group(impl):
  ids = random_ids(3)
  gqa, variables = init(tiny("decoder", num_kv_heads=2, attention_impl=impl), ids)
  mha = models.build_model(tiny("decoder", attention_impl=impl))
  layers = dict(variables["params"]["stack"]["layers"])
  attention = dict(layers["attention"])
  for name in ("key", "value"):  # kernel [N, D, Hkv, Dh], bias [N, Hkv, Dh]: head h <- h // 2
    attention[name] = {k: jnp.repeat(a, 2, axis=-2) for k, a in attention[name].items()}
  assert attention["key"]["kernel"].shape[-2] == 4
  mapped = {**variables["params"], "stack": {"layers": {**layers, "attention": attention}}}
  np.testing.assert_allclose(jit(gqa.apply)(variables, ids)["logits"],
                             jit(mha.apply)({"params": mapped}, ids)["logits"],
                             rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ sliding window / global


def _captured_probs(cfg, ids, **kwargs):
  model = models.build_model(cfg, capture_attention=True)
  _, variables = init(cfg, ids)
  if not cfg.scan_layers:
    _, scanned = init(modern(cfg.family), ids)
    variables = {"params": unstack_layers(scanned["params"], cfg.num_layers)}
  _, state = jit(lambda v: model.apply(v, ids, mutable=["intermediates"], **kwargs))(variables)
  return models.collect_attention(state["intermediates"])["attention_probs"]  # [N, B, H, L, L]


@pytest.mark.parametrize("family", ["decoder", "encoder"])
@pytest.mark.parametrize("scan", [True, False])
def test_sliding_window_mask_matches_numpy(family, scan):
  cfg = modern(family, scan_layers=scan, num_layers=3)
  ids = random_ids(4)
  probs = _captured_probs(cfg, ids)
  spec = resolve(cfg)
  assert [spec.layer_is_global(i) for i in range(3)] == [True, False, True]
  for layer in range(3):
    want = window_mask(L, 0 if spec.layer_is_global(layer) else 4, spec.causal)
    np.testing.assert_array_equal(np.asarray(probs[layer] > 0),
                                  np.broadcast_to(want, probs[layer].shape))


def test_sliding_window_mask_when_decoding_from_the_cache():
  cfg = modern("decoder", num_layers=2, global_every=0)  # every layer windowed
  ids = random_ids(5)
  model = models.build_model(cfg, capture_attention=True)
  _, variables = init(cfg, ids)
  cache = empty_cache(model, B, cfg.max_len)

  @jit
  def step(cache, tokens):
    (out, state) = model.apply({"params": variables["params"], "cache": cache}, tokens,
                               decode=True, mutable=["cache", "intermediates"])
    return out["logits"], state["cache"], models.collect_attention(
        state["intermediates"])["attention_probs"]

  _, cache, probs = step(cache, ids[:, :5])  # prompt, then one token at a time
  keys = np.arange(cfg.max_len)  # cache slots; those not yet written hold padding
  want = window_mask(0, 4, True, np.arange(5), keys) & (keys < 5)
  np.testing.assert_array_equal(np.asarray(probs > 0), np.broadcast_to(want, probs.shape))
  for t in range(5, 9):
    _, cache, probs = step(cache, ids[:, t:t + 1])
    want = window_mask(0, 4, True, [t], keys) & (keys <= t)
    np.testing.assert_array_equal(np.asarray(probs > 0), np.broadcast_to(want, probs.shape))


# ------------------------------------------------------------------ every path of the stack


@pytest.mark.parametrize("scan", [True, False])
def test_modern_decoder_decodes_from_the_cache_like_the_full_forward(scan):
  cfg = modern("decoder", scan_layers=scan)
  ids = random_ids(6)
  _, variables = init(modern("decoder"), ids)
  model = models.build_model(cfg)
  if not scan:
    variables = {"params": unstack_layers(variables["params"], 2)}
  full = jit(model.apply)(variables, ids)["logits"]
  cache = empty_cache(model, B, cfg.max_len)
  kv_shapes = [a.shape for path, a in jax.tree_util.tree_flatten_with_path(cache)[0]
               if path[-1].key in ("cached_key", "cached_value")]
  assert len(kv_shapes) == 2 * (1 if scan else 2)
  assert all(shape[-3:] == (cfg.max_len, 2, 8) for shape in kv_shapes)  # the 2 kv heads only

  @jit
  def step(cache, tokens):
    out, state = model.apply({"params": variables["params"], "cache": cache}, tokens,
                             decode=True, mutable=["cache"])
    return out["logits"], state["cache"]

  logits, cache = step(cache, ids[:, :4])
  got = [logits]
  for t in range(4, L):
    logits, cache = step(cache, ids[:, t:t + 1])
    got.append(logits)
  np.testing.assert_allclose(jnp.concatenate(got, axis=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_modern_scan_unrolled_flash_and_remat_agree(family):
  ids = random_ids(7)
  kwargs = dict(doc_ids=jnp.array([[1] * 5 + [2] * 7, [1] * 12]))
  model, variables = init(modern(family), ids)
  key = "logits" if family == "decoder" else "mlm_logits"

  def loss(m, params):
    return jnp.mean(jax.nn.log_softmax(m.apply({"params": params}, ids, **kwargs)[key])[..., 3])

  want, want_grads = jit(jax.value_and_grad(lambda p: loss(model, p)))(variables["params"])
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(want_grads)) > 1e-4
  unrolled = unstack_layers(variables["params"], 2)
  for overrides, params in (({"scan_layers": False}, unrolled),
                            ({"attention_impl": "flash"}, variables["params"]),
                            ({"remat_policy": "save_qkv_out"}, variables["params"])):
    other = models.build_model(modern(family, **overrides))
    got, grads = jit(jax.value_and_grad(lambda p: loss(other, p)))(params)
    assert float(got) == pytest.approx(float(want), rel=1e-5), overrides
    if "scan_layers" in overrides:
      grads = {**grads, "stack": {"layers": jax.tree.map(
          lambda *a: jnp.stack(a), *[grads["stack"][f"layers_{i}"] for i in range(2)])}}
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 grads, want_grads)


def test_modern_parameters_carry_logical_names_and_no_biases():
  cfg = modern("encoder")
  params = counting.abstract_params(cfg)
  leaves = jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: isinstance(
      x, nn.Partitioned))[0]
  rules = {name for name, _ in base.DEFAULT_RULES}
  paths = []
  for path, leaf in leaves:
    assert isinstance(leaf, nn.Partitioned) and set(leaf.names) <= rules, path
    paths.append("/".join(k.key for k in path))
  assert not [p for p in paths if p.endswith("bias") and p != "mlm_output_bias"], paths
  for name in ("attention/query_norm/scale", "attention/key_norm/scale", "mlp/wi_gate/kernel"):
    assert f"stack/layers/{name}" in paths


def test_modern_param_counts_by_hand():
  cfg = modern("decoder", tie_embeddings=False)
  d, f, v, h, kv, dh, n = 32, 128, 61, 4, 2, 8, 2
  per_block = (d * h * dh + 2 * d * kv * dh + h * dh * d  # q, k, v, out
               + 2 * dh                                   # qk_norm scales
               + 3 * d * f                                # wi, wi_gate, wo
               + 2 * d)                                   # two RMSNorm scales
  counts = models.param_counts(cfg)
  assert counts["params_by_group"]["stack"] == n * per_block
  assert counts["params_total"] == n * per_block + d + 2 * v * d  # final norm, token table, head
  assert counts["params_non_embedding"] == n * per_block + d


def test_windowed_attention_flops_count_the_keys_each_query_sees():
  dense = objectives.train_flops_per_token(tiny("encoder"), 16, "mlm")
  windowed_cfg = tiny("encoder", attention_window=4, global_every=2, num_layers=2)
  windowed = objectives.train_flops_per_token(windowed_cfg, 16, "mlm")
  keys = window_mask(16, 4, False).sum() / 16  # mean keys per query in the windowed layer
  spec = resolve(windowed_cfg)
  assert dense - windowed == pytest.approx(12 * spec.d_attn * (16 - keys))
  causal = objectives.train_flops_per_token(tiny("decoder", attention_window=4), 16, "causal")
  causal_keys = window_mask(16, 4, True).sum() / 16
  # Global causal layers keep the existing L / 2 keys per query; windowed ones count theirs.
  assert objectives.train_flops_per_token(tiny("decoder"), 16, "causal") - causal == pytest.approx(
      2 * 12 * spec.d_attn * (16 / 2 - causal_keys))


# ------------------------------------------------------------------ presets

NEW_PRESETS = ([f"ettin_{family}_{size}" for family in ("encoder", "decoder")
                for size in ("17m", "32m", "68m", "150m", "400m", "1b")]
               + ["llama2_7b", "tiny_modern_encoder", "tiny_modern_decoder"])
ETTIN_PUBLISHED = {"17m": 17e6, "32m": 32e6, "68m": 68e6, "150m": 150e6, "400m": 400e6, "1b": 1e9}


def _preset(name):
  return importlib.import_module(f"configs.{name}").get_config()


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_new_presets_are_valid_and_documented(name):
  config = _preset(name)
  spec = resolve(config.model)
  assert config.data.seq_len <= spec.max_len and config.name == name
  assert {"encoder": "mlm", "decoder": "causal"}[spec.family] == config.objective.name
  doc = (ROOT / "configs" / f"{name}.py").read_text()
  assert f"python -m models.summary --config configs/{name}.py" in doc and "Expected:" in doc
  assert f"params_total {models.param_counts(config.model)['params_total']:,}" in doc


@pytest.mark.parametrize("size", sorted(ETTIN_PUBLISHED))
def test_ettin_sizes_match_the_published_ones(size):
  """The paper names each pair by a rounded size that counts the embeddings (the 17M model's
  table alone is 12.9M): 400M is ModernBERT-large's 395M, 1B is 1.03B. So the backbone
  (embeddings + blocks + final norm; no MLM head or pooler) must be within 3% of the name, and
  the decoder is exactly ModernBERT's layout counted by hand."""
  layers, d, heads, d_ff = presets.ETTIN_TABLE[size]
  for family in ("encoder", "decoder"):
    groups = models.param_counts(_preset(f"ettin_{family}_{size}").model)["params_by_group"]
    backbone = groups["embeddings"] + groups["stack"] + groups["final_ln"]
    assert abs(backbone / ETTIN_PUBLISHED[size] - 1) < 0.03, (family, backbone)
  # ModernBERT: token table, embedding norm, per layer q/k/v/out + GLU (3 d x d_ff) + 2 norm
  # scales, minus layer 0's attention norm (it has none), final norm; no biases; tied head.
  modernbert = 50368 * d + d + layers * (4 * d * d + 3 * d * d_ff + 2 * d) - d + d
  groups = models.param_counts(_preset(f"ettin_decoder_{size}").model)["params_by_group"]
  assert sum(groups.values()) == modernbert  # ours: no embedding norm, but layer 0's is there


def test_llama2_7b_has_the_published_count_exactly():
  assert models.param_counts(_preset("llama2_7b").model)["params_total"] == 6_738_415_616


def test_new_presets_follow_their_sources():
  m = _preset("ettin_encoder_150m").model
  assert (m.num_layers, m.d_model, m.num_heads, m.d_ff, m.vocab_size) == (22, 768, 12, 1152, 50368)
  spec = resolve(m)
  assert [spec.layer_is_global(i) for i in range(6)] == [True, False, False] * 2
  assert (spec.rope_base, spec.rope_local_base, spec.attention_window) == (160000.0, 10000.0, 128)
  assert (m.mlp, m.activation, m.use_bias, m.norm, m.ln_placement) == (
      "glu", "gelu_exact", False, "layernorm", "pre")
  llama = _preset("llama2_7b").model
  assert (llama.norm, llama.mlp, llama.activation, llama.position_embedding,
          llama.tie_embeddings) == ("rmsnorm", "glu", "silu", "rope", False)


@pytest.mark.parametrize("overrides, field", [
    # a RoPE decoder exports as Llama (tests/test_interop_llama.py), which has no biases
    (dict(position_embedding="rope"), "use_bias"), (dict(norm="rmsnorm"), "norm"),
    (dict(mlp="glu"), "mlp"), (dict(num_kv_heads=2), "num_kv_heads"),
    (dict(qk_norm=True), "qk_norm"), (dict(attention_window=8), "attention_window")])
def test_gpt2_export_refuses_the_new_block_options(overrides, field):
  from interop import hf_config
  with pytest.raises(ConfigError, match=f"model.{field}=.* cannot be exported"):
    hf_config.check_exportable(tiny("decoder", **overrides), "bpe")
