"""Export keeps what it imported (interop/hf.py head_status and plan_export, interop/export.py export_run).

The round trip of a checkpoint in the layout save_pretrained and sentence-transformers write: a
random-init BertModel WITH its pooler (2 layers x 64) saved by transformers, with a tokenizer.json
alone that pads and truncates to 128, imported through configs/from_hf.py:DIR and exported by
`python -m interop.hf export` without --workdir (no training step), then reloaded by
transformers: hidden states and pooled output within 1e-5, the same tensors, the same token ids.
"""
import json
import logging
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file

from configs import from_hf
from interop import export, hf
from tests import interop_testlib as lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5
PAD_TO = 128


@pytest.fixture(scope="module")
def bert_model_dir(tmp_path_factory):
  """(dir, torch BertModel with pooler): config.json, model.safetensors, padded tokenizer.json."""
  path = str(tmp_path_factory.mktemp("BertModel"))
  model = lib.save_bert(path, transformers.BertModel, padded_tokenizer_json=PAD_TO)
  assert sorted(os.listdir(path)) == ["config.json", "model.safetensors", "tokenizer.json"]
  assert json.load(open(os.path.join(path, "tokenizer.json")))["padding"] is not None
  return path, model


def _export_cli(hf_dir, out, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "interop.hf", "export",
                         f"--config=configs/from_hf.py:{hf_dir}", f"--out={out}", *extra],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_bert_model_with_pooler_and_padded_tokenizer_round_trips_without_training(
    bert_model_dir, tmp_path):
  hf_dir, model = bert_model_dir
  out = tmp_path / "export"
  proc = _export_cli(hf_dir, out)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == (f"exported init.from_hf={hf_dir} (no training step) to {out}")
  assert "tokenizer.json: ignoring its padding (Fixed 128) and truncation" in proc.stderr
  # the same tensors, names included (BertModel's have no "bert." prefix), the pooler among them
  original = load_file(os.path.join(hf_dir, hf.WEIGHTS_FILE))
  exported = load_file(str(out / hf.WEIGHTS_FILE))
  assert "pooler.dense.weight" in exported and exported.keys() == original.keys()
  assert all(np.array_equal(exported[k], original[k]) for k in original)
  # transformers reloads it as a BertModel: hidden states and pooled output as the original's
  reloaded = transformers.AutoModel.from_pretrained(str(out)).eval()
  assert type(reloaded).__name__ == "BertModel"
  ids, mask, types = lib.padded_batch(lib.VOCAB, batch=3, length=24, seed=3, pair=True)
  before, after = (lib.torch_logits(m, ids, mask, types) for m in (model, reloaded))
  real = mask > 0
  hidden = np.abs(before.last_hidden_state.numpy()[real] - after.last_hidden_state.numpy()[real])
  pooled = np.abs(before.pooler_output.numpy() - after.pooler_output.numpy())
  print(f"BertModel round trip: max |hidden diff| {hidden.max():.1e}, pooled {pooled.max():.1e}")
  assert hidden.max() < TOL and pooled.max() < TOL
  assert np.abs(before.pooler_output.numpy()).max() > 0.1  # a real pooler, not zeros
  # the MLM head was never trained (BertModel has none): left out, and said so
  cfg = json.load(open(out / "config.json"))
  assert cfg["architectures"] == ["BertModel"]
  assert cfg["pancake_untrained_heads"] == ["MLM head (cls.predictions)"]
  card = (out / "README.md").read_text()
  assert ("| MLM head (cls.predictions) | left out: random init (init.from_hf has none), never "
          "trained |") in card
  assert f"| pooler (bert.pooler) | imported from init.from_hf ({hf_dir}) |" in card
  # the tokenizer: no fixed padding, the ids of the original directory's AutoTokenizer
  spec = json.load(open(out / "tokenizer.json"))
  assert spec["padding"] is None and spec["truncation"] is None
  lines = lib.text_lines(3000)
  lines += [" ".join(lines[i:i + 40]) for i in range(0, 400, 40)]  # longer than 128 tokens
  theirs = transformers.AutoTokenizer.from_pretrained(hf_dir)(lines, add_special_tokens=False)
  ours = transformers.AutoTokenizer.from_pretrained(str(out))(lines, add_special_tokens=False)
  assert ours["input_ids"] == theirs["input_ids"]
  assert max(map(len, ours["input_ids"])) > PAD_TO
  # every file the export wrote has one mode (safetensors alone would write 0600)
  modes = {name: stat.S_IMODE(os.stat(out / name).st_mode) for name in os.listdir(out)}
  assert len(set(modes.values())) == 1, modes
  assert sorted(modes) == ["README.md", "config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "vocab.txt"]


def _status(hf_dir, steps_trained, **overrides):
  """head_status of an import of `hf_dir` after `steps_trained` steps (abstract params only)."""
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  for key, value in overrides.items():
    section, field = key.split("__")
    config[section][field] = value
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  status = hf.head_status(config, setup.abstract_state.params, steps_trained)
  return config, status, hf.plan_export(config, status)


def test_heads_by_import_and_training(bert_model_dir, tmp_path):
  hf_dir, _ = bert_model_dir
  # BertModel as imported: pooler kept, MLM head left out
  _, status, plan = _status(hf_dir, 0)
  assert status == {"pooler": "imported", "mlm_head": "untrained"}
  assert plan.architecture == "BertModel" and plan.written == {"pooler"}
  # after MLM training: the head trained, the imported pooler still goes out
  _, status, plan = _status(hf_dir, 10)
  assert status == {"pooler": "imported", "mlm_head": "trained"}
  assert plan.architecture == "BertForMaskedLM" and plan.written == {"pooler", "mlm_head"}
  assert plan.untrained == []
  # a BertForMaskedLM checkpoint has no pooler: never trained under MLM, so left out, named
  masked = str(tmp_path / "masked")
  lib.save_bert(masked, transformers.BertForMaskedLM)
  _, status, plan = _status(masked, 10)
  assert status == {"pooler": "untrained", "mlm_head": "trained"}
  assert plan.architecture == "BertForMaskedLM" and plan.written == {"mlm_head"}
  assert plan.untrained == ["pooler (bert.pooler)"]
  # ... unless NSP training (which reads the pooler) ran: then everything is trained
  _, status, plan = _status(masked, 10, model__nsp_head=True, objective__name="mlm_nsp")
  assert set(status.values()) == {"trained"} and plan.architecture == "BertForPreTraining"


def test_bert_model_export_after_mlm_training_keeps_the_pooler_for_auto_model(bert_model_dir,
                                                                               tmp_path):
  """A BertModel import trained with MLM goes out as BertForMaskedLM plus bert.pooler.*:
  AutoModel (BertModel) reads the imported pooler back."""
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  hf_dir, model = bert_model_dir
  config = from_hf.get_config(hf_dir)
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  params = hf.load_params(config, setup.abstract_state.params,
                          fallback=lambda: state_lib.init_params(setup))
  import objectives
  import pipeline
  out = str(tmp_path / "out")
  hf.export(config, params, objectives.get_tokenizer(config), out, steps_trained=5)
  assert json.load(open(os.path.join(out, "config.json")))["architectures"] == ["BertForMaskedLM"]
  tensors = load_file(os.path.join(out, hf.WEIGHTS_FILE))
  assert "bert.pooler.dense.weight" in tensors and "cls.predictions.bias" in tensors
  bare = transformers.AutoModel.from_pretrained(out).eval()
  with torch.no_grad():
    assert torch.equal(bare.pooler.dense.weight, model.pooler.dense.weight)
  transformers.AutoModelForMaskedLM.from_pretrained(out)  # loads (the pooler left aside)


def test_export_without_workdir_needs_init_from_hf(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", "interop.hf", "export",
                         "--config=configs/tiny_encoder.py", f"--out={tmp_path / 'out'}"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --workdir is required (the run to export), unless init.from_hf is set")
  assert not (tmp_path / "out").exists()


def test_step_other_than_0_without_checkpoints_is_a_run_dir_error(bert_model_dir, tmp_path):
  from evals import runner
  hf_dir, _ = bert_model_dir
  with pytest.raises(runner.RunDirError, match="--step 5 has no checkpoint"):
    export.export_run(from_hf.get_config(hf_dir), str(tmp_path / "empty"), str(tmp_path / "o"), 5)
  assert not (tmp_path / "o").exists()


def test_eval_of_an_import_into_a_new_workdir_is_a_run_of_its_own(bert_model_dir, tmp_path,
                                                                   caplog):
  """No "has no config.json" warning: there is no earlier run to compare the config with."""
  from evals import runner
  hf_dir, _ = bert_model_dir
  config = from_hf.get_config(hf_dir)
  assert config.name == os.path.basename(hf_dir)  # no Hub name: the directory's
  with caplog.at_level(logging.WARNING):
    plan = runner.check(config, str(tmp_path / "new_workdir"), "heldout")
  assert plan.from_hf
  assert not [r for r in caplog.records if "config.json" in r.getMessage()], caplog.text


def test_heads_of_a_run_whose_import_weights_moved_count_as_imported(tmp_path, caplog):
  moved = str(tmp_path / "moved")
  lib.save_bert(moved, transformers.BertForMaskedLM)
  os.remove(os.path.join(moved, hf.WEIGHTS_FILE))
  with caplog.at_level(logging.WARNING):
    _, status, plan = _status(moved, 10)
  assert status == {"pooler": "imported", "mlm_head": "trained"}
  assert plan.architecture == "BertForMaskedLM"
  assert any("cannot tell which heads init.from_hf lacked" in r.getMessage()
             for r in caplog.records)
