"""The paired study's configs (configs/paired/) and sweep (configs/sweeps/paired_cpu.py): each run
differs from the shared base only where documented, the classic blocks get the modern runs'
training FLOPs, and the continued-training runs start from the runs the docstring names."""

import glob
import importlib
import os

import pytest

import models
import objectives
from configs.errors import ConfigError
from configs.paired import base
from configs.sweeps import paired_cpu
from launch import sweep_plan
from tests.test_sweep_configs import _differences

RUNS = sorted(base.ALLOWED_DIFFS)


def _config(name, size="cpu"):
  return importlib.import_module(f"configs.paired.{name}").get_config(size)


def _flops(c):
  per_token = objectives.train_flops_per_token(c.model, c.data.seq_len, c.objective.name,
                                           objective_cfg=c.objective)
  return per_token * c.train.num_steps * c.train.global_batch_size * c.data.seq_len


def test_every_paired_file_is_in_the_allowed_diff_table():
  files = {os.path.basename(p)[:-3] for p in glob.glob(
      os.path.join(sweep_plan.REPO_DIR, "configs", "paired", "*.py"))}
  assert files - {"__init__", "base"} == set(RUNS)


@pytest.mark.parametrize("size", base.SIZES)
@pytest.mark.parametrize("name", RUNS)
def test_paired_run_differs_from_the_base_only_in_documented_fields(name, size):
  config = _config(name, size)
  assert _differences(config, base.get_config(size)) <= set(base.ALLOWED_DIFFS[name])
  assert config.name == name
  models.validate(config.model)
  family = "decoder" if name.endswith("decoder") else "encoder"
  assert (config.model.family, config.objective.name) == (
      (family, "causal") if family == "decoder" else (family, "mlm"))


@pytest.mark.parametrize("size", base.SIZES)
def test_the_pair_shares_one_block_tokenizer_and_budget(size):
  encoder, decoder = _config("modern_encoder", size), _config("modern_decoder", size)
  assert _differences(encoder, decoder) == {"name", "model.family", "objective.name"}
  m = encoder.model
  assert (m.position_embedding, m.mlp, m.use_bias, m.ln_placement) == ("rope", "glu", False, "pre")
  assert m.attention_window > 0 and m.global_every == 3
  assert encoder.objective.mask_prob == 0.3 and not m.nsp_head


@pytest.mark.parametrize("size", base.SIZES)
@pytest.mark.parametrize("classic, modern", [("bert_encoder", "modern_encoder"),
                                             ("gpt2_decoder", "modern_decoder")])
def test_classic_blocks_get_the_modern_runs_training_flops(classic, modern, size):
  old, new = _config(classic, size), _config(modern, size)
  # The written-out step counts are what base.equal_compute_steps computes from models.counting.
  assert old.train.num_steps == base.equal_compute_steps(old, new)
  assert old.train.num_steps < new.train.num_steps  # the 2018 layers cost more per token
  assert abs(_flops(old) / _flops(new) - 1) < 0.005
  m = old.model
  assert (m.position_embedding, m.mlp, m.use_bias, m.attention_window, m.num_kv_heads) == (
      "learned", "dense", True, 0, 0)
  assert m.ln_placement == ("post" if classic == "bert_encoder" else "pre")


def test_bad_size_is_a_config_error():
  with pytest.raises(ConfigError, match=r"paired size='gpu' is not one of 'cpu', 'pod'"):
    base.get_config("gpu")


def test_continued_training_runs_start_from_the_documented_runs(tmp_path):
  sweep = sweep_plan.load_sweep("configs/sweeps/paired_cpu.py")
  planned = {(r["name"], r["seed"]): r for r in sweep_plan.plan(sweep, str(tmp_path))}
  sources = {"encoder_from_decoder": "modern_decoder", "decoder_from_encoder": "modern_encoder",
             "encoder_continued": "modern_encoder", "decoder_continued": "modern_decoder"}
  native_steps = _config("modern_encoder").train.num_steps
  assert sweep["seeds"] == [0, 1]
  for (name, seed), run in planned.items():
    overrides = run["overrides"]
    if name in sources:
      assert overrides["init.from_run"] == str(tmp_path / sources[name] / f"seed{seed}")
      assert overrides["train.num_steps"] == native_steps * base.CONTINUE_FRACTION
      assert run["config"].startswith(
          "configs/paired/modern_" + ("encoder" if name.startswith("encoder") else "decoder"))
      assert run["after"] == [(sources[name], seed)]
    else:
      assert "init.from_run" not in overrides and run["after"] == []
  assert {r for r, _ in planned} == {row[0] for row in paired_cpu.ROWS}
