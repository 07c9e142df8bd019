"""Llama in and out (interop/hf.py) against transformers' LlamaForCausalLM, float32 on the CPU.

One random-init Llama of 2 layers x 64 (4 query heads, 2 key/value heads, SwiGLU d_ff 192,
RMSNorm with random weights, RoPE theta 500, untied head, 64 positions, a 512-token byte-level
BPE trained on real text) saved with save_pretrained; a tied variant for the head.
"""
import json
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
def llama(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("llama"))
  return out, lib.save_llama(out)


def _imported(hf_dir, **model):
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  for key, value in model.items():
    config.model[key] = value
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  return config, setup, hf.load_params(config, setup.abstract_state.params)


def _logits(setup, params, ids, mask):
  return np.asarray(jax.jit(setup.model.apply)({"params": params}, ids, doc_ids=mask)["logits"])


def _max_diff(setup, params, model, seed=0, length=24):
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=3, length=length, seed=seed)
  ours, theirs = _logits(setup, params, ids, mask), lib.torch_logits(model, ids, mask).logits
  real = mask > 0
  assert np.abs(theirs.numpy()[real]).max() > 0.1  # not a comparison of near-zero logits
  return np.abs(ours[real] - theirs.numpy()[real]).max()


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "unrolled"])
def test_imported_logits_equal_hf_with_padding(llama, scan):
  hf_dir, model = llama
  config, setup, params = _imported(hf_dir, scan_layers=scan)
  m = config.model
  assert (m.norm, m.mlp, m.activation, m.position_embedding, m.num_kv_heads, m.use_bias,
          m.tie_embeddings, m.rope_base) == ("rmsnorm", "glu", "silu", "rope", 2, False, False,
                                             500.0)
  diff = _max_diff(setup, params, model)
  print(f"llama 2x64 GQA {'scanned' if scan else 'unrolled'}: max |logit diff| {diff:.2e}")
  assert diff < TOL


def test_export_is_bitwise_inverse_and_loads_in_transformers(llama, tmp_path):
  hf_dir, _ = llama
  config, setup, params = _imported(hf_dir)
  import objectives
  import pipeline
  tokenizer = objectives.get_tokenizer(config)
  out = str(tmp_path / "export")
  hf.export(config, params, tokenizer, out)
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(os.path.join(out, hf.WEIGHTS_FILE))
  assert exported.keys() == original.keys()
  for name in original:  # import then export gives the very same bits
    assert exported[name].dtype == original[name].dtype and np.array_equal(
        exported[name], original[name]), name
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  assert type(reloaded).__name__ == "LlamaForCausalLM"
  assert _max_diff(setup, params, reloaded, seed=3, length=20) < TOL
  cfg = json.load(open(os.path.join(out, "config.json")))
  assert (cfg["num_key_value_heads"], cfg["rope_parameters"]["rope_theta"]) == (2, 500.0)
  auto = transformers.AutoTokenizer.from_pretrained(out)
  for line in lib.text_lines(100)[-12:]:
    assert auto(line, add_special_tokens=False)["input_ids"] == tokenizer.encode(line), line


def test_tied_head_in_and_out(tmp_path):
  """tie_word_embeddings=True: no lm_head.weight in the file, none written back."""
  hf_dir = str(tmp_path / "tied")
  model = lib.save_llama(hf_dir, tie=True, kv_heads=1, seed=1)  # and multi-query attention
  config, setup, params = _imported(hf_dir)
  assert config.model.tie_embeddings and "lm_head" not in params
  assert _max_diff(setup, params, model, seed=2) < TOL
  import objectives
  import pipeline
  hf.export(config, params, objectives.get_tokenizer(config), str(tmp_path / "out"))
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(str(tmp_path / "out" / hf.WEIGHTS_FILE))
  assert "lm_head.weight" not in exported and exported.keys() == original.keys()
  assert all(np.array_equal(exported[k], original[k]) for k in original)


def test_cached_greedy_decoding_equals_hf_generate(llama):
  """The decoder's KV cache (RoPE keys stored rotated, 2 key/value heads cached): a prompt, then
  one token per call, greedy = HF greedy generate."""
  hf_dir, model = llama
  config, setup, params = _imported(hf_dir)
  prompt, new = [11, 200, 37, 401, 5], 12
  shapes = jax.eval_shape(lambda: setup.model.init(  # an empty cache is all zeros; eval_shape
      jax.random.PRNGKey(0), np.zeros((1, config.model.max_len), np.int32), decode=True))
  cache = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes["cache"])  # skips an eager init
  step = jax.jit(lambda cache, ids: setup.model.apply({"params": params, "cache": cache}, ids,
                                                      decode=True, mutable=["cache"]))
  out, ids = [], np.asarray([prompt], np.int32)
  for _ in range(new):
    result, variables = step(cache, ids)
    cache = variables["cache"]
    ids = np.argmax(np.asarray(result["logits"])[:, -1:], axis=-1).astype(np.int32)  # [1, 1]
    out.append(int(ids[0, 0]))
  assert out == lib.hf_greedy(model, prompt, new, eos_id=None)


def _write_config(tmp_path, **changes):
  d = tmp_path / "cfg"
  d.mkdir(exist_ok=True)
  cfg = dict(model_type="llama", hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
             intermediate_size=128, vocab_size=512, max_position_embeddings=64, **changes)
  (d / "config.json").write_text(json.dumps(cfg))
  return str(d)


@pytest.mark.parametrize("changes, words", [
    (dict(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5}), "rope_type='llama3'"),
    (dict(rope_scaling={"rope_type": "linear", "factor": 2.0}), "rope_type='linear'"),
    (dict(attention_bias=True), "attention_bias=True"),
    (dict(num_key_value_heads=3), "num_key_value_heads=3"),
    (dict(hidden_act="gelu_fast"), "hidden_act='gelu_fast'")])
def test_llama_configs_pancake_cannot_compute_are_refused(tmp_path, changes, words):
  d = _write_config(tmp_path, **changes)
  with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("[", r"\[")):
    hf_config.fixed_model_fields(json.load(open(os.path.join(d, "config.json"))), d)


def test_llama_export_refuses_what_llama_cannot_hold():
  from configs import presets
  m = presets.tiny_modern("decoder").model  # LayerNorm, GeGLU, windows: ModernBERT's block
  with pytest.raises(ConfigError, match="model.norm='layernorm' cannot be exported: Llama"):
    hf_config.check_exportable(m, "bpe")
  m.norm = "rmsnorm"
  with pytest.raises(ConfigError, match="model.attention_window=32 cannot be exported: Llama"):
    hf_config.check_exportable(m, "bpe")


def test_import_checks_pass_and_catch_a_foreign_tokenizer(llama):
  """hf.check (train.py / eval.py, before the workdir): the saved model passes; an EOS id that
  is not the tokenizer's end-of-text token is refused."""
  import objectives
  import pipeline
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  hf_dir, _ = llama
  config = from_hf.get_config(hf_dir)
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  tokenizer = objectives.get_tokenizer(config)
  hf.check(config, tokenizer, setup.abstract_state.params)
  cfg = json.load(open(os.path.join(hf_dir, "config.json")))
  try:
    json.dump(dict(cfg, eos_token_id=7), open(os.path.join(hf_dir, "config.json"), "w"))
    with pytest.raises(ConfigError, match="eos_token_id=7 but the end-of-text token"):
      hf.check_tokenizer(config, tokenizer)
  finally:
    json.dump(cfg, open(os.path.join(hf_dir, "config.json"), "w"))
