"""Presets, exact parameter counts (jax.eval_shape only), FLOP accounting, config validation."""

import functools
import importlib
import math
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import objectives
from configs import base
from configs.errors import ConfigError
from models import counting
from models.block import Block
from models.spec import resolve

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRESETS = ("bert_base", "bert_large", "gpt2_small", "gpt2_medium", "gpt2_large", "gpt2_xl",
           "gpt3_small", "gpt3_medium", "gpt3_large", "gpt3_xl", "gpt3_2_7b", "gpt3_6_7b",
           "gpt3_13b", "gpt3_175b", "tiny_encoder", "tiny_decoder")
LOGICAL_PARAM_AXES = {"vocab", "embed", "mlp", "heads", "kv", "layers", "positions",
                      "token_types", "classes"}
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})


def preset(name):
  return importlib.import_module(f"configs.{name}").get_config()


def test_gpt2_small_and_xl_exact_counts():
  small = preset("gpt2_small").model
  assert (small.vocab_size, small.max_len, small.tie_embeddings) == (50257, 1024, True)
  assert models.param_counts(small)["params_total"] == 124_439_808
  assert models.param_counts(preset("gpt2_xl").model)["params_total"] == 1_557_611_200


def test_gpt3_175b_exact_count():
  m = preset("gpt3_175b").model
  assert (m.num_layers, m.d_model, m.num_heads, m.d_head, m.max_len) == (96, 12288, 96, 128, 2048)
  counts = models.param_counts(m)
  assert counts["params_total"] == 174_604_259_328
  # Non-embedding: 96 blocks of 12 d^2 + 13 d, plus the final LayerNorm.
  assert counts["params_non_embedding"] == 96 * (12 * 12288**2 + 13 * 12288) + 2 * 12288


def test_bert_base_encoder_with_pooler_exact_count():
  m = preset("bert_base").model
  assert (m.vocab_size, m.max_len, m.type_vocab_size) == (30522, 512, 2)
  groups = models.param_counts(m)["params_by_group"]
  backbone_and_pooler = groups["embeddings"] + groups["stack"] + groups["pooler"]
  assert backbone_and_pooler == 109_482_240
  # The pre-training heads on top: transform (D^2 + D + LN 2D), output bias V, NSP 2D + 2.
  assert groups["mlm_head"] == 768 * 768 + 3 * 768
  assert groups["mlm_output_bias"] == 30522 and groups["nsp_classifier"] == 2 * 768 + 2


@pytest.mark.parametrize("name", PRESETS)
def test_presets_are_valid_and_documented(name):
  config = preset(name)
  models.validate(config.model)
  spec = resolve(config.model)
  assert spec.d_attn == spec.d_model and spec.d_ff == 4 * spec.d_model
  assert config.data.seq_len <= spec.max_len
  assert {"encoder": "mlm_nsp", "decoder": "causal"}[spec.family] == config.objective.name
  doc = (ROOT / "configs" / f"{name}.py").read_text()
  assert f"python -m models.summary --config configs/{name}.py" in doc and "Expected:" in doc
  # The docstring's expected parameter count is the real one.
  total = models.param_counts(config.model)["params_total"]
  assert f"params_total {total:,}" in doc


def test_presets_follow_the_papers():
  bert = preset("bert_large")
  assert (bert.model.num_layers, bert.model.d_model, bert.model.num_heads) == (24, 1024, 16)
  assert (bert.model.ln_placement, bert.model.activation, bert.model.ln_epsilon) == (
      "post", "gelu_exact", 1e-12)
  assert (bert.optim.learning_rate, bert.optim.b2, bert.optim.eps, bert.optim.schedule) == (
      1e-4, 0.999, 1e-6, "linear")
  assert (bert.data.tokenizer, bert.data.seq_len, bert.train.global_batch_size) == (
      "wordpiece", 128, 256)
  # GPT-3 Table 2.1: (layers, d_model, heads, d_head, batch in 2048-token sequences, lr)
  table = {"gpt3_small": (12, 768, 12, 64, 256, 6e-4),
           "gpt3_large": (24, 1536, 16, 96, 256, 2.5e-4),
           "gpt3_2_7b": (32, 2560, 32, 80, 512, 1.6e-4),
           "gpt3_13b": (40, 5120, 40, 128, 1024, 1e-4),
           "gpt3_175b": (96, 12288, 96, 128, 1536, 6e-5)}
  for name, row in table.items():
    c = preset(name)
    got = (c.model.num_layers, c.model.d_model, c.model.num_heads, c.model.d_head,
           c.train.global_batch_size, c.optim.learning_rate)
    assert got == row, name
    assert (c.optim.b2, c.optim.eps, c.optim.weight_decay, c.optim.schedule, c.optim.end_lr_frac,
            c.data.seq_len, c.model.ln_placement) == (0.95, 1e-8, 0.1, "cosine", 0.1, 2048, "pre")
  gpt2 = preset("gpt2_medium")
  assert (gpt2.model.num_layers, gpt2.model.d_model, gpt2.model.num_heads) == (24, 1024, 16)
  assert gpt2.model.activation == "gelu_tanh" and gpt2.model.dropout_rate == 0.1
  for name in ("tiny_encoder", "tiny_decoder"):
    assert models.param_counts(preset(name).model)["params_total"] < 3_000_000


def _tiny(family, **overrides):
  m = base.get_config().model
  m.family, m.vocab_size, m.max_len, m.num_layers, m.d_model, m.num_heads = (
      family, 64, 16, 3, 32, 4)
  for key, value in overrides.items():
    m[key] = value
  return m


@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_every_parameter_has_logical_axis_names(family):
  params = counting.abstract_params(_tiny(family, tie_embeddings=False))
  leaves = jax.tree_util.tree_flatten_with_path(
      params, is_leaf=lambda x: isinstance(x, nn.Partitioned))[0]
  assert len(leaves) > 20
  for path, leaf in leaves:
    assert isinstance(leaf, nn.Partitioned), path
    assert len(leaf.names) == leaf.value.ndim and set(leaf.names) <= LOGICAL_PARAM_AXES, path
    in_stack = path[0].key == "stack"
    assert (leaf.names[0] == "layers") == in_stack, path  # scanned: leading layers axis
    if in_stack:
      assert leaf.value.shape[0] == 3


def test_initializers_follow_gpt2_and_bert():
  x = jnp.zeros((1, 4, 256))
  segments = jnp.ones((1, 4), jnp.int32)
  for family in ("decoder", "encoder"):
    spec = resolve(_tiny(family, num_layers=8, d_model=256,
                         scale_residual_init=family == "decoder"))
    params = nn.unbox(jit(Block(spec).init)(jax.random.key(0), x, segments))["params"]
    query = params["attention"]["query"]["kernel"]
    out = params["attention"]["out"]["kernel"]
    wo = params["mlp"]["wo"]["kernel"]
    np.testing.assert_allclose(float(jnp.std(query)), 0.02 if family == "decoder" else 0.0176,
                               rtol=0.05)  # a normal truncated at 2 std has std 0.88 * 0.02
    scale = 1 / math.sqrt(16) if family == "decoder" else 1.0  # GPT-2: 1/sqrt(2 * num_layers)
    assert float(jnp.std(out)) == pytest.approx(float(jnp.std(query)) * scale, rel=0.05)
    assert float(jnp.std(wo)) == pytest.approx(float(jnp.std(query)) * scale, rel=0.05)
    if family == "encoder":
      assert float(jnp.abs(query).max()) <= 2 * 0.02 + 1e-7
    np.testing.assert_array_equal(params["ln_mlp"]["scale"], 1.0)
    np.testing.assert_array_equal(params["mlp"]["wi"]["bias"], 0.0)


def test_train_flops_formula():
  m = preset("gpt2_small").model
  n_stack = 12 * (12 * 768**2 + 13 * 768) + 2 * 768
  want = 6 * (n_stack + 768 * 50257) + 6 * 12 * 1024 * 768  # causal: half of 12 L T d
  assert objectives.train_flops_per_token(m, 1024, "causal") == pytest.approx(want, rel=1e-12)
  # Encoder: the vocab head (and its transform) only on the predicted fraction of positions,
  # pooler + NSP once per sequence, full (bidirectional) attention.
  e = preset("bert_base").model
  groups = models.param_counts(e)["params_by_group"]
  head = groups["mlm_head"] + 768 * 30522 + 30522
  nsp = groups["pooler"] + groups["nsp_classifier"]
  want = 6 * (groups["stack"] + 20 / 128 * head + nsp / 128) + 12 * 12 * 128 * 768
  assert objectives.train_flops_per_token(e, 128, "mlm_nsp", 20) == pytest.approx(want, rel=1e-12)
  without_nsp = objectives.train_flops_per_token(e, 128, "mlm", 20)
  assert without_nsp == pytest.approx(want - 6 * nsp / 128, rel=1e-12)
  with pytest.raises(ConfigError, match="model.family"):
    objectives.train_flops_per_token(e, 128, "causal")
  with pytest.raises(ConfigError, match="objective.name"):
    objectives.train_flops_per_token(m, 128, "mlm_everything")


@pytest.mark.parametrize("family,objective", [("encoder", "mlm"), ("decoder", "causal")])
def test_train_flops_agree_with_xla_on_an_unrolled_model(family, objective):
  # XLA counts an unrolled model's dots exactly (a scanned body would be counted once). It
  # computes the full score matrix even for causal attention, which the formula halves.
  m = _tiny(family, num_layers=2, d_model=128, vocab_size=512, max_len=128, scan_layers=False,
            ln_placement="post" if family == "encoder" else "pre")
  batch, length, predictions = 2, 128, 20
  model = models.build_model(m)
  ids = jnp.ones((batch, length), jnp.int32)
  params = nn.unbox(jax.eval_shape(model.init, jax.random.key(0), ids))["params"]

  def loss(p):
    if family == "encoder":
      positions = jnp.zeros((batch, predictions), jnp.int32)
      logits = model.apply({"params": p}, ids, masked_positions=positions)["mlm_logits"]
    else:
      logits = model.apply({"params": p}, ids)["logits"]
    # Like a cross-entropy: nonlinear in the logits (a linear loss lets XLA drop the forward
    # head matmul) with a non-constant cotangent (a constant one turns dots into reductions).
    weights = jnp.cos(jnp.arange(logits.size).reshape(logits.shape))
    return jnp.sum(jax.nn.log_softmax(logits) * weights)

  cost = jit(jax.grad(loss)).lower(params).compile().cost_analysis()
  xla = (cost[0] if isinstance(cost, list) else cost)["flops"] / (batch * length)
  ours = objectives.train_flops_per_token(m, length, objective, predictions)
  if family == "decoder":
    ours += 6 * 2 * length * 128  # the masked half XLA computes anyway
  assert xla == pytest.approx(ours, rel=0.02)


BAD_CONFIGS = [
    (dict(d_model=100, num_heads=3), "model.d_model=100"),
    (dict(num_layers=0), "model.num_layers=0"),
    (dict(d_model=-8), "model.d_model=-8"),
    (dict(vocab_size=0), "model.vocab_size=0"),
    (dict(activation="swish"), "model.activation='swish'"),
    (dict(ln_placement="sandwich"), "model.ln_placement='sandwich'"),
    (dict(remat_policy="some"), "model.remat_policy='some'"),
    (dict(attention_impl="cudnn"), "model.attention_impl='cudnn'"),
    (dict(family="seq2seq"), "model.family='seq2seq'"),
    (dict(dtype="float8"), "model.dtype='float8'"),
    (dict(dropout_rate=1.5), "model.dropout_rate=1.5"),
    (dict(ln_epsilon=0.0), "model.ln_epsilon=0.0"),
    (dict(attention_impl="flash", attention_dropout_rate=0.1), "model.attention_dropout_rate"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS)
def test_invalid_model_configs_fail_before_any_array(overrides, message, monkeypatch):
  m = _tiny("decoder")
  for key, value in overrides.items():
    m[key] = value

  def no_arrays(*args, **kwargs):
    raise AssertionError("an array was built before the config was checked")
  monkeypatch.setattr(counting.jax, "eval_shape", no_arrays)
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")) as e:
    models.build_model(m)
  assert "\n" not in str(e.value)
  with pytest.raises(ConfigError, match=message.split("=")[0].replace(".", r"\.")):
    models.param_counts(m)


def test_valid_choices_are_named_in_the_error():
  with pytest.raises(ConfigError, match="'gelu_exact', 'gelu_tanh', 'relu'"):
    models.validate(_tiny("decoder", activation="swish"))
  with pytest.raises(ConfigError, match="'none', 'full', 'save_dots', 'save_qkv_out'"):
    models.validate(_tiny("decoder", remat_policy="some"))


def test_summary_cli_prints_one_json_line_and_rejects_bad_configs():
  import json
  import os
  import subprocess
  import sys
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = lambda *args: subprocess.Popen(
      [sys.executable, "-m", "models.summary", *args], cwd=ROOT, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  procs = [run("--config", "configs/gpt3_175b.py"),
           run("--config", "configs/gpt2_small.py", "--config.model.num_layers=2"),
           run("--config", "configs/gpt2_small.py", "--config.model.num_heads=7")]
  (out175, _), (out2, _), (bad_out, bad_err) = [p.communicate(timeout=120) for p in procs]
  assert [p.returncode for p in procs] == [0, 0, 2]
  lines = out175.strip().splitlines()
  assert len(lines) == 1
  summary = json.loads(lines[0])
  assert summary["params_total"] == 174_604_259_328
  assert summary["params_non_embedding"] == 173_961_535_488
  assert summary["train_flops_per_token"] == pytest.approx(
      objectives.train_flops_per_token(preset("gpt3_175b").model, 2048, "causal"))
  two_layers = json.loads(out2)
  assert two_layers["num_layers"] == 2
  assert two_layers["params_total"] == 124_439_808 - 10 * (12 * 768**2 + 13 * 768)
  assert bad_out == "" and bad_err.count("\n") == 1
  assert bad_err.startswith("error: model.d_model=768 is not divisible by model.num_heads=7")
