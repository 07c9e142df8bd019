"""GPT-2 in and out (interop/hf.py) against transformers' GPT2LMHeadModel, float32 on the CPU.

One random-init GPT-2 of 3 layers x 64 (4 heads, 64 positions, a 512-token byte-level BPE trained
on real text) saved with save_pretrained serves every test; 8 fake CPU devices (conftest.py).
"""
import json
import os
import shutil

import jax
import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from configs import from_hf
from interop import export, hf
from tests import interop_testlib as lib

TOL = 1e-5


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("gpt2"))
  return out, lib.save_gpt2(out)


def _setup(config):
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  return state_lib.build_setup(config, mesh_lib.make_mesh(config))


def _pancake_logits(setup, params, ids, mask):
  out = jax.jit(setup.model.apply)({"params": params}, ids, doc_ids=mask)
  return np.asarray(out["logits"])


def _imported(hf_dir, **model):
  config = from_hf.get_config(hf_dir)
  for key, value in model.items():
    section, field = key.split("__")
    config[section][field] = value
  setup = _setup(config)
  return config, setup, hf.load_params(config, setup.abstract_state.params)


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "unrolled"])
def test_imported_logits_equal_hf_with_padding(gpt2, scan):
  hf_dir, model = gpt2
  config, setup, params = _imported(hf_dir, model__scan_layers=scan)
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=3, length=24)
  ours = _pancake_logits(setup, params, ids, mask)
  theirs = lib.torch_logits(model, ids, mask).logits.numpy()
  real = mask > 0
  diff = np.abs(ours[real] - theirs[real]).max()
  print(f"gpt2 3x64 {'scanned' if scan else 'unrolled'}: max |logit diff| {diff:.2e}")
  assert diff < TOL
  assert np.abs(theirs[real]).max() > 0.1  # the comparison is not between near-zero logits


@pytest.mark.parametrize("fsdp,tensor", [(8, 1), (4, 2)])
def test_import_on_a_sharded_mesh_reads_shards(gpt2, fsdp, tensor):
  """Every parameter arrives already split over the 8 devices, with the same logits."""
  hf_dir, model = gpt2
  config, setup, params = _imported(hf_dir, mesh__fsdp=fsdp, mesh__tensor=tensor, mesh__data=1)
  query = params["stack"]["layers"]["attention"]["query"]["kernel"]  # [N, D, H, Dh]
  shard = query.addressable_shards[0].data.shape
  assert shard == (3, 64 // fsdp, 4 // tensor, 16), shard  # embed over fsdp, heads over tensor
  table = params["embeddings"]["token"]["embedding"]  # [V, D]: vocab over tensor, embed over fsdp
  assert table.addressable_shards[0].data.shape == (lib.VOCAB // tensor, 64 // fsdp)
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=8, length=16)
  ours = _pancake_logits(setup, params, ids, mask)
  theirs = lib.torch_logits(model, ids, mask).logits.numpy()
  assert np.abs(ours[mask > 0] - theirs[mask > 0]).max() < TOL


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "unrolled"])
def test_export_is_bitwise_inverse_and_loads_in_transformers(gpt2, tmp_path, scan):
  hf_dir, model = gpt2
  config, setup, params = _imported(hf_dir, model__scan_layers=scan)
  import objectives
  import pipeline
  tokenizer = objectives.get_tokenizer(config)
  out = str(tmp_path / "export")
  hf.export(config, params, tokenizer, out)
  original, exported = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE)), load_file(
      os.path.join(out, hf.WEIGHTS_FILE))
  assert exported.keys() == original.keys()
  for name in original:  # import then export gives the very same bits
    assert exported[name].dtype == original[name].dtype and np.array_equal(
        exported[name], original[name]), name
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=2, length=20, seed=3)
  ours = _pancake_logits(setup, params, ids, mask)
  theirs = lib.torch_logits(reloaded, ids, mask).logits.numpy()
  assert np.abs(ours[mask > 0] - theirs[mask > 0]).max() < TOL
  auto = transformers.AutoTokenizer.from_pretrained(out)
  for line in lib.text_lines(200)[-20:]:
    assert auto(line, add_special_tokens=False)["input_ids"] == tokenizer.encode(line), line
  exported_cfg = json.load(open(os.path.join(out, "config.json")))
  assert exported_cfg["model_type"] == "gpt2" and exported_cfg["n_layer"] == 3


def test_generate_suite_equals_hf_generate(gpt2, tmp_path):
  """eval.py's generate suite on the imported weights (no checkpoint) = HF greedy generate."""
  hf_dir, model = gpt2
  from evals import runner
  config = from_hf.get_config(hf_dir)
  config.eval.generate_prompts = "To be or not,The king"
  config.eval.generate_max_new_tokens, config.eval.beam_size = 32, 1
  workdir = str(tmp_path / "never_trained")
  records = runner.run(config, workdir, "generate", echo=lambda *_: None)
  record = records["generate"]
  assert record["checkpoint_step"] == 0 and record["params_from"] == f"hf:{hf_dir}"
  import objectives
  import pipeline
  from evals import generate
  tok = objectives.get_tokenizer(config)
  for sample, prompt in zip(record["samples"], generate.prompt_ids(tok, config)):
    theirs = lib.hf_greedy(model, prompt, 32, tok.eot_id)
    assert sample["greedy_tokens"] == theirs
    assert len(theirs) == 32 or theirs[-1] == tok.eot_id


def test_train_starts_from_the_imported_weights(gpt2, tmp_path):
  """train.py's loop with init.from_hf: the step-0 held-out loss is HF's on the same batches,
  then training moves on from there."""
  hf_dir, model = gpt2
  from trainlib import loop
  import objectives
  import pipeline
  text = tmp_path / "corpus.txt"
  lines = lib.text_lines(400)
  text.write_text("\n\n".join(" ".join(lines[i:i + 8]) for i in range(0, 400, 8)))
  config = from_hf.get_config(hf_dir)
  d, t = config.data, config.train
  d.corpus, d.text_files, d.data_dir, d.seq_len = "local_text", str(text), str(tmp_path / "tfds"), 32
  d.validation_fraction = 0.2
  t.global_batch_size, t.num_steps, t.eval_every, t.eval_batches = 8, 2, 2, 1
  t.log_every, t.checkpoint_every = 1, 2
  workdir = str(tmp_path / "run")
  result = loop.train_and_evaluate(config, workdir)
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  step0 = next(r for r in rows if r["split"] == "eval" and r["step"] == 0)
  eval_pipe = objectives.make_pipeline(config, d.eval_split)
  theirs = lib.hf_causal_loss(model, eval_pipe.batch(0))
  print(f"step-0 held-out loss: pancake {step0['lm_loss']:.6f}, HF {theirs:.6f}")
  assert abs(step0["lm_loss"] - theirs) < 1e-4
  assert result.step == 2 and rows[-1]["step"] == 2


def test_trained_run_exports_with_the_same_heldout_loss_and_greedy_text(embedded_data_dir,
                                                                        tmp_path_factory, tmp_path):
  """A run trained by pancake (tests/eval_testlib's 12-step decoder), exported: transformers
  gives its held-out loss on the same batches and its greedy continuations."""
  from evals import runner
  from tests.eval_testlib import trained_run
  import objectives
  import pipeline
  config, trained = trained_run("causal", embedded_data_dir, str(tmp_path_factory.mktemp("runs")))
  workdir = str(tmp_path / "run")
  shutil.copytree(trained, workdir)  # the eval below writes into the run directory
  out = str(tmp_path / "exported")
  assert export.export_run(config, workdir, out) == 12
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  config.eval.generate_max_new_tokens = 16
  records = runner.run(config, workdir, "heldout,generate", echo=lambda *_: None)
  eval_pipe = objectives.make_pipeline(config, config.data.eval_split)
  theirs = lib.hf_causal_loss(reloaded, eval_pipe.batch(0))
  ours = records["heldout"]["metrics"]["lm_loss"]
  print(f"trained run held-out loss: pancake {ours:.6f}, transformers {theirs:.6f}")
  assert abs(ours - theirs) < 1e-4
  from evals import generate
  tok = objectives.get_tokenizer(config)
  for sample, prompt in zip(records["generate"]["samples"], generate.prompt_ids(tok, config)):
    assert sample["greedy_tokens"] == lib.hf_greedy(reloaded, prompt, 16, tok.eot_id)


def test_sharded_checkpoint_index_is_read_file_by_file(gpt2, tmp_path):
  """save_pretrained(max_shard_size=...) writes model.safetensors.index.json + several files."""
  hf_dir, model = gpt2
  out = str(tmp_path / "sharded")
  model.save_pretrained(out, max_shard_size="100KB")
  for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(hf_dir, name), out)
  assert not os.path.exists(os.path.join(out, hf.WEIGHTS_FILE))
  assert len([f for f in os.listdir(out) if f.endswith(".safetensors")]) > 2
  config, setup, params = _imported(out)
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=2, length=12, seed=7)
  ours = _pancake_logits(setup, params, ids, mask)
  theirs = lib.torch_logits(model, ids, mask).logits.numpy()
  assert np.abs(ours[mask > 0] - theirs[mask > 0]).max() < TOL


def test_untied_lm_head_in_and_out(tmp_path):
  """tie_word_embeddings=False: lm_head.weight [V, D] <-> pancake's lm_head kernel [D, V]."""
  hf_dir = str(tmp_path / "untied")
  model = lib.save_gpt2(hf_dir, layers=2, tie=False, seed=1)
  config, setup, params = _imported(hf_dir)
  assert not config.model.tie_embeddings and "lm_head" in params
  ids, mask, _ = lib.padded_batch(lib.VOCAB, batch=2, length=12, seed=2)
  ours = _pancake_logits(setup, params, ids, mask)
  theirs = lib.torch_logits(model, ids, mask).logits.numpy()
  assert np.abs(ours[mask > 0] - theirs[mask > 0]).max() < TOL
  import objectives
  import pipeline
  hf.export(config, params, objectives.get_tokenizer(config), str(tmp_path / "out"))
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(str(tmp_path / "out" / hf.WEIGHTS_FILE))
  assert "lm_head.weight" in exported and exported.keys() == original.keys()
  assert all(np.array_equal(exported[k], original[k]) for k in original)
