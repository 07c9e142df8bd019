"""configs/from_hf.py on the config.json of each released GPT-2 size and of bert-base-uncased
(fields as published on the Hugging Face hub; no weights needed): the models it builds have the
parameter counts of the presets (README, "Model presets"), and exporting a preset writes a
config.json that imports back to the same model fields."""
import json

import pytest

import models
from configs import from_hf, presets
from interop import hf_config
from pipeline import tokenization

GPT2_HUB = dict(activation_function="gelu_new", architectures=["GPT2LMHeadModel"], attn_pdrop=0.1,
                bos_token_id=50256, embd_pdrop=0.1, eos_token_id=50256, initializer_range=0.02,
                layer_norm_epsilon=1e-05, model_type="gpt2", n_ctx=1024, n_positions=1024,
                resid_pdrop=0.1, summary_activation=None, summary_first_dropout=0.1,
                summary_proj_to_labels=True, summary_type="cls_index", summary_use_proj=True,
                vocab_size=50257)
BERT_BASE_UNCASED = dict(architectures=["BertForMaskedLM"], attention_probs_dropout_prob=0.1,
                         hidden_act="gelu", hidden_dropout_prob=0.1, hidden_size=768,
                         initializer_range=0.02, intermediate_size=3072, layer_norm_eps=1e-12,
                         max_position_embeddings=512, model_type="bert", num_attention_heads=12,
                         num_hidden_layers=12, pad_token_id=0, type_vocab_size=2,
                         vocab_size=30522)


def _hf_dir(path, cfg):
  path.mkdir()
  (path / "config.json").write_text(json.dumps(cfg))
  tok = tokenization.byte_tokenizer()  # only the file's presence matters here
  (path / "tokenizer.json").write_text(tok.hf.to_str())
  return str(path)


@pytest.mark.parametrize("size,params", [("small", 124_439_808), ("medium", 354_823_168),
                                         ("large", 774_030_080), ("xl", 1_557_611_200)])
def test_each_gpt2_size_builds_the_preset_model(tmp_path, size, params):
  layers, width, heads, _ = presets.GPT2_TABLE[size]
  d = _hf_dir(tmp_path / size, dict(GPT2_HUB, n_layer=layers, n_embd=width, n_head=heads))
  config = from_hf.get_config(d)
  assert models.param_counts(config.model)["params_total"] == params
  assert config.init.from_hf == d and config.data.tokenizer_file.endswith("tokenizer.json")
  preset = presets.gpt2(size).model
  for key, value in hf_config.fixed_model_fields(json.load(open(f"{d}/config.json")), d).items():
    assert preset[key] == value, key


def test_bert_base_uncased_masked_lm(tmp_path):
  d = _hf_dir(tmp_path / "bert", BERT_BASE_UNCASED)
  config = from_hf.get_config(d)
  m = config.model
  assert (m.family, m.ln_placement, m.activation, m.ln_epsilon) == ("encoder", "post",
                                                                     "gelu_exact", 1e-12)
  assert not m.nsp_head and config.objective.name == "mlm"  # BertForMaskedLM has no NSP head
  m.nsp_head = True  # with the NSP head it is the bert_base preset, 110,106,428 parameters
  assert models.param_counts(m)["params_total"] == 110_106_428


def test_every_gpt3_preset_exports_as_gpt2_and_round_trips_its_fields():
  tok = tokenization.byte_tokenizer()
  for size in presets.GPT3_TABLE:
    m = presets.gpt3(size).model
    hf_config.check_exportable(m, "bpe")
    cfg = hf_config.hf_config(m, tok)
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    fixed = hf_config.fixed_model_fields(cfg, "exported")  # what an import would rebuild
    for key, value in fixed.items():
      if key != "d_head":  # GPT-2 derives it: d_model // n_head
        assert m[key] == value, (size, key)
    assert m.d_head == fixed["d_model"] // fixed["num_heads"], size


def test_the_run_is_named_after_the_model(tmp_path):
  """The Hub cache's models--ORG--NAME, else config.json's _name_or_path, else DIR's name."""
  snapshot = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots"
  snapshot.mkdir(parents=True)
  d = _hf_dir(snapshot / "8b3219a92973c328a8e22fadcfa821b5dc75636a", BERT_BASE_UNCASED)
  assert from_hf.get_config(d).name == "sentence-transformers/all-MiniLM-L6-v2"
  named = _hf_dir(tmp_path / "model", dict(BERT_BASE_UNCASED, _name_or_path="bert-base-uncased"))
  assert from_hf.get_config(named).name == "bert-base-uncased"
  local = _hf_dir(tmp_path / "my_bert", dict(BERT_BASE_UNCASED, _name_or_path="/tmp/out/ckpt"))
  assert from_hf.get_config(local).name == "my_bert"  # a local path names no model
