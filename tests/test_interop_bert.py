"""BERT in and out (interop/hf.py) against transformers' BertForPreTraining, BertForMaskedLM and
BertModel, float32 on the CPU: random-init 2-layer x 64 models (4 heads, d_ff 128, 64 positions,
a 512-piece uncased WordPiece vocab.txt trained on real text) saved with save_pretrained."""
import logging
import os

import jax
import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from configs import from_hf
from interop import hf
from tests import interop_testlib as lib

TOL = 1e-5


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """{class name: (dir, torch model)} for the three supported BERT classes."""
  out = {}
  for cls in (transformers.BertForPreTraining, transformers.BertForMaskedLM,
              transformers.BertModel):
    path = str(tmp_path_factory.mktemp(cls.__name__))
    out[cls.__name__] = (path, lib.save_bert(path, cls))
  return out


def _imported(hf_dir, **fields):
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  for key, value in fields.items():
    section, field = key.split("__")
    config[section][field] = value
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  params = hf.load_params(config, setup.abstract_state.params,
                          fallback=lambda: state_lib.init_params(setup))
  return config, setup, params


def _apply(setup, params, ids, mask, types):
  out = jax.jit(setup.model.apply)({"params": params}, ids, token_type_ids=types, input_mask=mask)
  return jax.tree.map(np.asarray, out)


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "unrolled"])
@pytest.mark.parametrize("padded", [True, False], ids=["padding+types", "plain"])
def test_pretraining_mlm_and_nsp_logits_equal_hf(saved, scan, padded):
  hf_dir, model = saved["BertForPreTraining"]
  config, setup, params = _imported(hf_dir, model__scan_layers=scan)
  assert config.model.nsp_head and config.objective.name == "mlm_nsp"
  ids, mask, types = lib.padded_batch(lib.VOCAB, batch=3, length=24, pair=padded)
  if not padded:
    mask = np.ones_like(mask)
  ours = _apply(setup, params, ids, mask, types)
  theirs = lib.torch_logits(model, ids, mask, types)
  real = mask > 0
  mlm = np.abs(ours["mlm_logits"][real] - theirs.prediction_logits.numpy()[real]).max()
  nsp = np.abs(ours["nsp_logits"] - theirs.seq_relationship_logits.numpy()).max()
  print(f"bert 2x64 {'scanned' if scan else 'unrolled'} "
        f"{'padding+types' if padded else 'plain'}: max |MLM logit diff| {mlm:.2e}, NSP {nsp:.2e}")
  assert mlm < TOL and nsp < TOL
  assert np.abs(theirs.prediction_logits.numpy()[real]).max() > 0.1


def test_masked_lm_checkpoint_initialises_the_pooler_and_says_so(saved, caplog):
  hf_dir, model = saved["BertForMaskedLM"]
  with caplog.at_level(logging.WARNING):
    config, setup, params = _imported(hf_dir)
  assert not config.model.nsp_head and config.objective.name == "mlm"
  assert any("no pooler (bert.pooler)" in r.getMessage() and "initialised" in r.getMessage()
             for r in caplog.records), [r.getMessage() for r in caplog.records]
  ids, mask, types = lib.padded_batch(lib.VOCAB, batch=2, length=16, pair=True)
  ours = _apply(setup, params, ids, mask, types)
  theirs = lib.torch_logits(model, ids, mask, types).logits.numpy()
  assert np.abs(ours["mlm_logits"][mask > 0] - theirs[mask > 0]).max() < TOL


def test_bare_bert_model_initialises_the_heads_and_its_hidden_states_match(saved, caplog):
  hf_dir, model = saved["BertModel"]
  with caplog.at_level(logging.WARNING):
    _, setup, params = _imported(hf_dir)
  message = next(r.getMessage() for r in caplog.records if "initialised" in r.getMessage())
  assert "MLM head (cls.predictions)" in message and "pooler" not in message
  ids, mask, types = lib.padded_batch(lib.VOCAB, batch=2, length=16, pair=True)
  ours = _apply(setup, params, ids, mask, types)
  theirs = lib.torch_logits(model, ids, mask, types)
  real = mask > 0
  assert np.abs(ours["hidden"][real] - theirs.last_hidden_state.numpy()[real]).max() < TOL
  assert np.abs(ours["pooled"] - theirs.pooler_output.numpy()).max() < TOL


@pytest.mark.parametrize("name,auto", [
    ("BertForPreTraining", transformers.AutoModelForPreTraining),
    ("BertForMaskedLM", transformers.AutoModelForMaskedLM)])
def test_export_is_bitwise_inverse_and_loads_in_transformers(saved, tmp_path, name, auto):
  hf_dir, _ = saved[name]
  config, setup, params = _imported(hf_dir, model__scan_layers=name == "BertForMaskedLM")
  import objectives
  import pipeline
  tokenizer = objectives.get_tokenizer(config)
  out = str(tmp_path / "export")
  hf.export(config, params, tokenizer, out)
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(os.path.join(out, hf.WEIGHTS_FILE))
  assert exported.keys() == original.keys()
  for key in original:
    assert np.array_equal(exported[key], original[key]), key
  reloaded = auto.from_pretrained(out).eval()
  assert type(reloaded).__name__ == name
  ids, mask, types = lib.padded_batch(lib.VOCAB, batch=3, length=20, seed=5, pair=True)
  ours = _apply(setup, params, ids, mask, types)
  theirs = lib.torch_logits(reloaded, ids, mask, types)
  logits = theirs.prediction_logits if name == "BertForPreTraining" else theirs.logits
  assert np.abs(ours["mlm_logits"][mask > 0] - logits.numpy()[mask > 0]).max() < TOL
  if name == "BertForPreTraining":
    assert np.abs(ours["nsp_logits"] - theirs.seq_relationship_logits.numpy()).max() < TOL
  auto_tok = transformers.AutoTokenizer.from_pretrained(out)
  for line in lib.text_lines(100)[-12:]:
    assert auto_tok(line, add_special_tokens=False)["input_ids"] == tokenizer.encode(line), line


def test_old_layer_norm_names_and_no_prefix_are_read(saved, tmp_path):
  """TF-era checkpoints name LayerNorm parameters gamma/beta; BertModel files have no "bert."."""
  import shutil
  from safetensors.numpy import save_file
  hf_dir, _ = saved["BertForPreTraining"]
  old = shutil.copytree(hf_dir, tmp_path / "old")
  tensors = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  renamed = {}
  for name, value in tensors.items():
    name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                      "LayerNorm.beta")
    renamed[name.removeprefix("bert.")] = value
  save_file(renamed, str(old / hf.WEIGHTS_FILE))
  _, _, want = _imported(hf_dir)
  _, _, got = _imported(str(old))
  assert jax.tree.all(jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)),
                                   want, got))
