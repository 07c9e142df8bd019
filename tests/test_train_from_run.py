"""init.from_run end to end: a tiny decoder, then an encoder started from it, and the reverse.

The carried parameters of the new run's step 0 must equal the source checkpoint's bitwise; the new
heads are initialised, the source's extra parameters dropped, and init_from_run.json says which.
The new runs take one step at learning rate 0 (the first warmup step), so their final
parameters are their step-0 parameters.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs.errors import ConfigError
from tests.train_testlib import loop_config
from trainlib import loop
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib
from trainlib.checkpoint import restore_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir, family, objective, **init):
  c = loop_config(data_dir)  # decoder, BPE of the session, 32 tokens, d_model 32
  c.model.family, c.objective.name = family, objective
  c.model.nsp_head = objective == "mlm_nsp"
  c.model.ln_placement = "post" if family == "encoder" else "pre"
  c.train.num_steps, c.train.checkpoint_every = 3, 3
  for k, v in init.items():
    c.init[k] = v
  return c


def _continued(config):
  config.train.num_steps, config.optim.warmup_steps = 1, 5  # one step at learning rate 0
  return config


def _flat(params):
  return {"/".join(k.key for k in path): np.asarray(v)
          for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def _checkpoint(config, workdir, step=None):
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config, jax.devices()[:1]))
  params, _ = restore_params(os.path.join(workdir, "checkpoints"), setup.abstract_state.params,
                             step)
  return _flat(jax.device_get(params))


@pytest.fixture(scope="module")
def decoder_run(embedded_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("decoder"))
  config = _config(embedded_data_dir, "decoder", "causal")
  loop.train_and_evaluate(config, workdir)
  return config, workdir


def _assert_carried(result, workdir, source, record):
  got = _flat(jax.device_get(result.state.params))
  for path in record["carried"]:
    np.testing.assert_array_equal(got[path], source[path], err_msg=path)
  fresh = _flat(jax.device_get(state_lib.init_params(result.setup)))
  for path in record["new"]:
    np.testing.assert_array_equal(got[path], fresh[path], err_msg=path)
  with open(os.path.join(workdir, "init_from_run.json")) as f:
    assert json.load(f) == record


def test_encoder_from_decoder_and_back(decoder_run, embedded_data_dir, tmp_path, capsys):
  source_config, source_dir = decoder_run
  source = _checkpoint(source_config, source_dir)
  enc_dir = str(tmp_path / "encoder")
  config = _continued(_config(embedded_data_dir, "encoder", "mlm_nsp", from_run=source_dir))
  result = loop.train_and_evaluate(config, enc_dir)
  with open(os.path.join(enc_dir, "init_from_run.json")) as f:
    record = json.load(f)
  assert record["step"] == 3 and record["from_run"] == source_dir
  assert "embeddings/token/embedding" in record["carried"]
  assert "stack/layers/mlp/wi/kernel" in record["carried"]
  assert {"pooler/kernel", "nsp_classifier/kernel", "mlm_head/dense/kernel", "embeddings/ln/scale",
          "embeddings/token_type/embedding", "mlm_output_bias"} <= set(record["new"])
  assert record["dropped"] == ["final_ln/bias", "final_ln/scale"]
  assert "init.from_run=" in capsys.readouterr().out
  _assert_carried(result, enc_dir, source, record)

  # ... and a decoder (prefix LM) from that encoder: its heads are dropped, final_ln is new.
  enc_source = _checkpoint(config, enc_dir)
  back_dir = str(tmp_path / "decoder_again")
  back = _continued(_config(embedded_data_dir, "decoder", "prefix_lm", from_run=enc_dir))
  result = loop.train_and_evaluate(back, back_dir)
  with open(os.path.join(back_dir, "init_from_run.json")) as f:
    record = json.load(f)
  assert record["new"] == ["final_ln/bias", "final_ln/scale"]
  assert "nsp_classifier/kernel" in record["dropped"] and "pooler/bias" in record["dropped"]
  _assert_carried(result, back_dir, enc_source, record)
  # Carried all the way: the decoder's trained weights (not an init) are back in a decoder.
  setup = state_lib.build_setup(source_config, mesh_lib.make_mesh(source_config, jax.devices()[:1]))
  init = _flat(jax.device_get(state_lib.init_params(setup)))
  got = _flat(jax.device_get(result.state.params))
  for path in ("embeddings/token/embedding", "stack/layers/attention/query/kernel"):
    np.testing.assert_array_equal(got[path], source[path])
    assert not np.array_equal(source[path], init[path])


def test_from_step_picks_a_checkpoint_and_a_resumed_run_ignores_the_source(
    decoder_run, embedded_data_dir, tmp_path):
  source_config, source_dir = decoder_run
  config = _continued(_config(embedded_data_dir, "decoder", "gpt_bert", from_run=source_dir,
                              from_step=3))
  workdir = str(tmp_path / "hybrid")
  config.objective.causal_fraction = 0.25
  result = loop.train_and_evaluate(config, workdir)
  source = _checkpoint(source_config, source_dir, 3)
  got = _flat(jax.device_get(result.state.params))
  for path, value in source.items():
    np.testing.assert_array_equal(got[path], value)  # same family and shapes: all carried
  config.train.num_steps = 2  # resuming: the workdir's own checkpoint, a missing source is fine
  config.init.from_run = str(tmp_path / "gone")
  assert loop.train_and_evaluate(config, workdir).step == 2


def test_bad_sources_are_config_errors_before_anything_is_written(decoder_run, embedded_data_dir,
                                                                  tmp_path):
  _, source_dir = decoder_run
  empty = tmp_path / "empty_run"
  empty.mkdir()
  (empty / "config.json").write_text(json.dumps({"model": {}}))
  wider = _config(embedded_data_dir, "encoder", "mlm", from_run=source_dir)
  wider.model.d_model = 64
  cases = [
      (_config(embedded_data_dir, "encoder", "mlm", from_run=str(tmp_path / "missing")),
       r"init.from_run='.*missing' is not a directory"),
      (_config(embedded_data_dir, "encoder", "mlm", from_run=str(empty)),
       r"init.from_run='.*empty_run' holds no checkpoint"),
      (_config(embedded_data_dir, "encoder", "mlm", from_run=source_dir, from_step=2),
       r"init.from_step=2 is not a checkpoint .* has steps 3"),
      (wider, r"init.from_run=.*parameter\(s\) have other shapes in this model: "
              r"embeddings/position/embedding \(32, 32\) -> \(32, 64\)"),
  ]
  for config, pattern in cases:
    workdir = str(tmp_path / "never")
    with pytest.raises(ConfigError, match=pattern):
      loop.train_and_evaluate(config, workdir)
    assert not os.path.exists(workdir)


def test_train_cli_exits_2_with_one_line(embedded_data_dir, tmp_path):
  missing = str(tmp_path / "nowhere")
  proc = subprocess.run(
      [sys.executable, "train.py", "--config", os.path.join("tests", "train_cli_config.py"),
       "--workdir", str(tmp_path / "w"), f"--config.data.data_dir={embedded_data_dir}",
       f"--config.init.from_run={missing}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("error: init.from_run=") and missing in lines[-1]
  assert not os.path.exists(tmp_path / "w")
