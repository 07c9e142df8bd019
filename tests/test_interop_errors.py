"""Bad input to the HF import/export is one line naming the path and field (exit code 2 from the
entry points), before anything is written; the export CLI works from a checkpoint on any mesh;
a model HF cannot represent is refused, naming the field."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from configs import from_hf
from configs.errors import ConfigError
from interop import export, hf, hf_config
from tests import interop_testlib as lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("gpt2_err"))
  lib.save_gpt2(out, layers=2, vocab_files=True)  # vocab.json + merges.txt, as OpenAI's release
  return out


def _copy(src, dst):
  shutil.copytree(src, dst)
  return str(dst)


def _edit_config(hf_dir, **changes):
  path = os.path.join(hf_dir, "config.json")
  cfg = json.load(open(path))
  cfg.update(changes)
  json.dump(cfg, open(path, "w"))


def _check(hf_dir, **overrides):
  """The checks train.py runs before it writes to the workdir (trainlib/loop.py)."""
  import objectives
  import pipeline
  from trainlib import loop
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  for key, value in overrides.items():
    section, field = key.split("__")
    config[section][field] = value
  loop.validate(config)
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  hf.check(config, objectives.get_tokenizer(config), setup.abstract_state.params)
  return config


def _run(args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)


def test_vocab_files_directory_is_read_and_passes_every_check(gpt2_dir):
  config = _check(gpt2_dir)
  assert config.data.vocab_file.endswith("vocab.json") and not config.data.tokenizer_file


def test_missing_directory_and_config_json(tmp_path):
  with pytest.raises(ConfigError, match="is not a directory"):
    from_hf.get_config(str(tmp_path / "nowhere"))
  with pytest.raises(ConfigError, match=r"config\.json does not exist"):
    from_hf.get_config(str(tmp_path))


def test_unknown_model_type(gpt2_dir, tmp_path):
  d = _copy(gpt2_dir, tmp_path / "t5")
  _edit_config(d, model_type="t5")
  with pytest.raises(ConfigError, match=r"config\.json: model_type='t5' is not one of 'gpt2', 'bert'"):
    from_hf.get_config(d)


def test_unsupported_attention_variant_names_the_field(gpt2_dir, tmp_path):
  d = _copy(gpt2_dir, tmp_path / "scaled")
  _edit_config(d, scale_attn_by_inverse_layer_idx=True)
  with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx=True is not supported"):
    from_hf.get_config(d)


def test_truncated_and_missing_weights(gpt2_dir, tmp_path):
  d = _copy(gpt2_dir, tmp_path / "cut")
  path = os.path.join(d, hf.WEIGHTS_FILE)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(ConfigError, match=f"{path} is not a readable safetensors file"):
    _check(d)
  os.remove(path)
  with pytest.raises(ConfigError, match=f"{path} does not exist"):
    _check(d)


def test_missing_tensor_and_wrong_shape(gpt2_dir, tmp_path):
  d = _copy(gpt2_dir, tmp_path / "holes")
  path = os.path.join(d, hf.WEIGHTS_FILE)
  tensors = load_file(path)
  save_file({k: v for k, v in tensors.items() if k != "transformer.h.1.mlp.c_fc.bias"}, path)
  with pytest.raises(ConfigError, match=r"no tensor transformer\.h\.1\.mlp\.c_fc\.bias .*stack/layers/mlp/wi/bias"):
    _check(d)
  tensors["transformer.wpe.weight"] = tensors["transformer.wpe.weight"][:32]
  save_file(tensors, path)
  with pytest.raises(ConfigError, match=r"tensor transformer\.wpe\.weight has shape \[32, 64\] but "
                     r"pancake's embeddings/position/embedding needs \[64, 64\]"):
    _check(d)


def test_tokenizer_that_is_not_the_models(gpt2_dir, tmp_path):
  d = _copy(gpt2_dir, tmp_path / "vocab")
  _edit_config(d, eos_token_id=7)
  with pytest.raises(ConfigError, match=r"config\.json: eos_token_id=7 but the end-of-text token "
                     r"of .*vocab\.json has id 0"):
    _check(d)
  big = lib.train_bpe(lib.text_lines(), vocab_size=700)
  lib.write_gpt2_vocab_files(*big, d)
  _edit_config(d, eos_token_id=0)
  with pytest.raises(ConfigError, match=r"vocab\.json.* has 700 tokens but .*config\.json gives "
                     r"vocab_size=512"):
    _check(d, model__vocab_size=512)


def test_override_that_contradicts_config_json_is_exit_2_before_the_workdir(gpt2_dir, tmp_path):
  with pytest.raises(ConfigError, match=r"model\.num_layers=5 contradicts .*config\.json \(which "
                     r"gives 2\)"):
    _check(gpt2_dir, model__num_layers=5)
  workdir = tmp_path / "run"
  proc = _run(["train.py", f"--config=configs/from_hf.py:{gpt2_dir}", f"--workdir={workdir}",
               "--config.model.d_model=128"])
  assert proc.returncode == 2, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: model.d_model=128 contradicts") and "config.json" in last
  assert not workdir.exists()


def test_models_hf_cannot_represent_name_the_field():
  from configs import presets
  m = presets.gpt3("xl").model
  m.num_heads = 24  # Table 2.1's literal row: 24 heads of 128 = 3072 != d_model 2048
  with pytest.raises(ConfigError, match=r"model\.d_head=128 x model\.num_heads=24 = 3072 != "
                     r"model\.d_model=2048"):
    hf_config.check_exportable(m, "bpe")
  enc = presets.tiny_encoder().model
  enc.ln_placement = "pre"
  with pytest.raises(ConfigError, match=r"model\.ln_placement='pre' cannot be exported: BERT"):
    hf_config.check_exportable(enc, "wordpiece")
  with pytest.raises(ConfigError, match=r"data\.tokenizer='bpe' cannot be exported with a BERT"):
    hf_config.check_exportable(presets.tiny_encoder().model, "bpe")


def test_export_cli_from_another_mesh_is_bitwise_the_in_process_export(embedded_data_dir,
                                                                       tmp_path_factory, tmp_path):
  """The trained 12-step decoder was saved on data=8; exporting it on fsdp=4 x tensor=2 (orbax
  reshards on restore) writes the same bits as exporting it on its own mesh."""
  import transformers
  from tests.eval_testlib import trained_run
  config, workdir = trained_run("causal", embedded_data_dir, str(tmp_path_factory.mktemp("runs")))
  here = str(tmp_path / "here")
  export.export_run(config, workdir, here)
  out = tmp_path / "cli"
  proc = _run(["-m", "interop.hf", "export", "--config=tests/eval_cli_config.py:causal",
               f"--config.data.data_dir={embedded_data_dir}", "--config.mesh.data=1",
               "--config.mesh.fsdp=4", "--config.mesh.tensor=2", f"--workdir={workdir}",
               f"--out={out}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == f"exported step 12 of {workdir} to {out}"
  a, b = load_file(os.path.join(here, hf.WEIGHTS_FILE)), load_file(str(out / hf.WEIGHTS_FILE))
  assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
  assert sorted(os.listdir(out)) == ["README.md", "config.json", "merges.txt",
                                     "model.safetensors", "tokenizer.json",
                                     "tokenizer_config.json", "vocab.json"]
  transformers.AutoModelForCausalLM.from_pretrained(str(out))
  bad = _run(["-m", "interop.hf", "export", "--config=tests/eval_cli_config.py:causal",
              f"--config.data.data_dir={embedded_data_dir}", f"--workdir={tmp_path / 'empty'}",
              f"--out={tmp_path / 'never'}"])
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith("error: no checkpoint in")
  assert not (tmp_path / "never").exists()
