"""ModernBERT in and out (interop/hf.py) against transformers' ModernBertForMaskedLM, float32 on
the CPU: a random-init 4-layer x 64 model (4 heads, GeGLU d_ff 128, pre-norm LayerNorm without
biases, layers 0 and 3 global with RoPE theta 1000, layers 1 and 2 with 8-token sliding windows
and theta 100, 64 positions, random norm weights, a 512-piece WordPiece vocab.txt), eager
attention. pancake closes ModernBERT's structural differences with model options:
first_attention_norm=False (block 0 attends to the embedding norm's output, HF's Identity) and
type_vocab_size=0 (no segment table); its unused pooler is initialised and never exported.
"""
import json
import logging
import os

import jax
import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from configs import from_hf
from configs.errors import ConfigError
from interop import hf, hf_config
from tests import interop_testlib as lib

TOL = 1e-5


@pytest.fixture(scope="module")
def modernbert(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("modernbert"))
  return out, lib.save_modernbert(out)


def _imported(hf_dir, random_pooler=False, **model):
  """The pooler ModernBERT lacks: random init as train.py does (compiles the whole init: slow on
  2 cores) when random_pooler, else zeros (MLM logits never read it)."""
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  for key, value in model.items():
    config.model[key] = value
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  abstract = setup.abstract_state.params
  zeros = lambda: jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), abstract)
  params = hf.load_params(config, abstract, fallback=(
      (lambda: state_lib.init_params(setup)) if random_pooler else zeros))
  return config, setup, params


def _max_diff(setup, params, model, seed=0, length=16):
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=3, length=length, seed=seed)
  out = jax.jit(setup.model.apply)({"params": params}, ids, input_mask=mask)
  ours, theirs = np.asarray(out["mlm_logits"]), lib.torch_logits(model, ids, mask).logits.numpy()
  real = mask > 0
  assert np.abs(theirs[real]).max() > 0.1  # not a comparison of near-zero logits
  return np.abs(ours[real] - theirs[real]).max()


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "unrolled"])
def test_imported_mlm_logits_equal_hf_with_padding(modernbert, scan, caplog):
  hf_dir, model = modernbert
  with caplog.at_level(logging.WARNING):
    config, setup, params = _imported(hf_dir, random_pooler=scan, scan_layers=scan)
  m = config.model
  assert (m.attention_window, m.global_every, m.rope_base, m.rope_local_base, m.type_vocab_size,
          m.first_attention_norm, m.use_bias, m.mlp, m.activation) == (
              8, 3, 1000.0, 100.0, 0, False, False, "glu", "gelu_exact")
  assert config.objective.name == "mlm" and "token_type" not in params["embeddings"]
  assert any("no pooler (ModernBertForMaskedLM has none)" in r.getMessage()
             for r in caplog.records)
  diff = _max_diff(setup, params, model)
  print(f"modernbert 4x64 {'scanned' if scan else 'unrolled'}: max |MLM logit diff| {diff:.2e}")
  assert diff < TOL


def test_the_window_and_block_0_identity_matter(modernbert):
  """The parity above would not hold without the sliding windows or with block 0's norm: each
  changed alone moves the logits well past the tolerance."""
  hf_dir, model = modernbert
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  _, _, params = _imported(hf_dir)
  for change in (dict(attention_window=0, global_every=0), dict(first_attention_norm=True)):
    config = from_hf.get_config(hf_dir)
    for key, value in change.items():
      config.model[key] = value
    setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
    assert _max_diff(setup, params, model) > 100 * TOL, change


def test_export_is_bitwise_inverse_and_loads_in_transformers(modernbert, tmp_path):
  hf_dir, _ = modernbert
  config, setup, params = _imported(hf_dir)
  import objectives
  import pipeline
  tokenizer = objectives.get_tokenizer(config)
  out = str(tmp_path / "export")
  hf.export(config, params, tokenizer, out)
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(os.path.join(out, hf.WEIGHTS_FILE))
  assert exported.keys() == original.keys()  # no pooler, no block-0 attn_norm
  for name in original:
    assert exported[name].dtype == original[name].dtype and np.array_equal(
        exported[name], original[name]), name
  reloaded = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
  assert type(reloaded).__name__ == "ModernBertForMaskedLM"
  assert _max_diff(setup, params, reloaded, seed=5, length=20) < TOL
  cfg = json.load(open(os.path.join(out, "config.json")))
  assert cfg["layer_types"] == ["full_attention", "sliding_attention", "sliding_attention",
                                "full_attention"] and cfg["local_attention"] == 8
  auto = transformers.AutoTokenizer.from_pretrained(out)
  for line in lib.text_lines(100)[-12:]:
    assert auto(line, add_special_tokens=False)["input_ids"] == tokenizer.encode(line), line


def test_untied_decoder_in_and_out(tmp_path):
  """tie_word_embeddings=False: decoder.weight [V, D] <-> pancake's mlm_decoder kernel [D, V]."""
  hf_dir = str(tmp_path / "untied")
  model = lib.save_modernbert(hf_dir, layers=3, tie=False, every=2, seed=1)
  config, setup, params = _imported(hf_dir)
  assert not config.model.tie_embeddings and "mlm_decoder" in params
  assert config.model.global_every == 2
  assert _max_diff(setup, params, model, seed=2) < TOL
  import objectives
  import pipeline
  hf.export(config, params, objectives.get_tokenizer(config), str(tmp_path / "out"))
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(str(tmp_path / "out" / hf.WEIGHTS_FILE))
  assert "decoder.weight" in exported and exported.keys() == original.keys()
  assert all(np.array_equal(exported[k], original[k]) for k in original)


def _fields(tmp_path, **changes):
  d = tmp_path / "cfg"
  d.mkdir(exist_ok=True)
  cfg = dict(model_type="modernbert", hidden_size=64, num_attention_heads=4, num_hidden_layers=4,
             intermediate_size=128, vocab_size=512, max_position_embeddings=64, **changes)
  (d / "config.json").write_text(json.dumps(cfg))
  return hf_config.fixed_model_fields(cfg, str(d))


def test_older_config_keys_are_read(tmp_path):
  """Hub configs from before transformers 5: global_attn_every_n_layers, global/local theta."""
  m = _fields(tmp_path, global_attn_every_n_layers=2, global_rope_theta=160000.0,
              local_rope_theta=10000.0, local_attention=128)
  assert (m["global_every"], m["rope_base"], m["rope_local_base"], m["attention_window"]) == (
      2, 160000.0, 10000.0, 128)


@pytest.mark.parametrize("changes, words", [
    (dict(layer_types=["full_attention", "sliding_attention", "full_attention",
                       "sliding_attention"][::-1]), "is not 'layer i global iff i % n == 0'"),
    (dict(mlp_bias=True), "must all be equal"),
    (dict(decoder_bias=False), "decoder_bias=False is not supported"),
    (dict(classifier_activation="silu"), "classifier_activation='silu' must equal")])
def test_modernbert_configs_pancake_cannot_compute_are_refused(tmp_path, changes, words):
  with pytest.raises(ConfigError, match=words):
    _fields(tmp_path, **changes)


def test_modernbert_export_refuses_pancakes_own_differences():
  from configs import presets
  m = presets.tiny_modern("encoder").model  # block 0 normalises; 1 segment row; 2 kv heads
  with pytest.raises(ConfigError, match="model.first_attention_norm=True cannot be exported"):
    hf_config.check_exportable(m, "wordpiece")
  m.first_attention_norm, m.type_vocab_size = False, 0
  with pytest.raises(ConfigError, match="model.num_kv_heads=2 cannot be exported: ModernBERT"):
    hf_config.check_exportable(m, "wordpiece")


def test_the_two_model_options_validate():
  from configs import presets
  from models import spec
  m = presets.tiny_encoder().model
  m.first_attention_norm = False  # tiny_encoder is post-LN
  with pytest.raises(ConfigError, match="first_attention_norm=False needs model.ln_placement"):
    spec.validate(m)
  m.first_attention_norm, m.type_vocab_size, m.nsp_head = True, 0, True
  with pytest.raises(ConfigError, match="type_vocab_size=0 must be >= 1 with model.nsp_head"):
    spec.validate(m)
