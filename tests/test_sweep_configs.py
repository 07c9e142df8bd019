"""Ablation and sweep configs: the ablations differ from their base only where documented, the
sweeps follow their documented rules, and every run's overrides name real config fields."""

import glob
import importlib
import os

import pytest

import objectives
from configs import scaling_rules
from configs.ablations import base as ablation_base
from configs.errors import ConfigError
from launch import sweep_plan

OBJECTIVES = {"bert_mlm_nsp": ("mlm_nsp", "encoder"), "mlm_only": ("mlm", "encoder"),
              "roberta_full_sentences": ("mlm_full_sentences", "encoder"),
              "ltr_causal": ("causal", "decoder")}
PAPER_ROWS = {"bert_mlm_nsp": "BERT_BASE", "mlm_only": '"No NSP"',
              "roberta_full_sentences": "FULL-SENTENCES", "ltr_causal": '"LTR & No NSP"'}


def _flatten(d, prefix=""):
  out = {}
  for key, value in d.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def _differences(a, b):
  fa, fb = _flatten(a.to_dict()), _flatten(b.to_dict())
  assert fa.keys() == fb.keys()
  return {k for k in fa if fa[k] != fb[k]}


@pytest.mark.parametrize("size", ablation_base.SIZES)
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_ablation_differs_from_the_base_only_in_documented_fields(name, size):
  module = importlib.import_module(f"configs.ablations.{name}")
  config, base = module.get_config(size), ablation_base.get_config(size)
  diffs = _differences(config, base)
  assert diffs <= set(ablation_base.ALLOWED_DIFFS[name]), diffs
  assert (config.objective.name, config.model.family) == OBJECTIVES[name]
  assert config.name == name
  # The NSP head exists exactly where an NSP loss trains it.
  assert config.model.nsp_head == (config.objective.name == "mlm_nsp")
  table = "BERT Table 5" if name != "roberta_full_sentences" else "RoBERTa Table 2"
  assert table in module.__doc__ and PAPER_ROWS[name] in module.__doc__


def test_every_ablation_file_is_in_the_allowed_diff_table():
  files = {os.path.basename(p)[:-3] for p in glob.glob(
      os.path.join(sweep_plan.REPO_DIR, "configs", "ablations", "*.py"))}
  assert files - {"__init__", "base"} == set(ablation_base.ALLOWED_DIFFS) == set(OBJECTIVES)


@pytest.mark.parametrize("size", ablation_base.SIZES)
def test_ablations_share_one_token_budget_and_the_causal_model_keeps_berts_backbone(size):
  configs = [importlib.import_module(f"configs.ablations.{n}").get_config(size)
             for n in OBJECTIVES]
  budgets = {c.train.num_steps * c.train.global_batch_size * c.data.seq_len for c in configs}
  assert len(budgets) == 1
  ltr = configs[list(OBJECTIVES).index("ltr_causal")]
  assert (ltr.model.ln_placement, ltr.model.activation) == ("post", "gelu_exact")
  assert "Budget matching rule" in ablation_base.__doc__


def test_pod_ablation_is_bert_base_and_cpu_is_tiny():
  pod, cpu = ablation_base.get_config("pod"), ablation_base.get_config("cpu")
  assert (pod.model.num_layers, pod.model.d_model, pod.model.num_heads) == (12, 768, 12)
  assert (pod.train.num_steps, pod.train.global_batch_size, pod.data.seq_len) == (
      1_000_000, 256, 512)
  assert cpu.data.corpus == "embedded" and cpu.model.d_model <= 128
  with pytest.raises(ConfigError, match="ablation size='gpu'"):
    ablation_base.get_config("gpu")


SWEEPS = sorted(glob.glob(os.path.join(sweep_plan.REPO_DIR, "configs", "sweeps", "*.py")))
SWEEPS = [p for p in SWEEPS if os.path.basename(p) not in ("__init__.py", "scaling_base.py")]


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_every_sweep_plans_against_real_config_fields(path, tmp_path):
  sweep = sweep_plan.load_sweep(path)
  planned = sweep_plan.plan(sweep, str(tmp_path))  # raises on any unknown field or bad type
  assert len(planned) == len(sweep["runs"]) * len(sweep["seeds"])
  assert len({r["workdir"] for r in planned}) == len(planned)
  assert sweep["description"]
  if sweep["kind"] == "scaling":
    for run in sweep["runs"]:
      config = sweep_plan.apply_overrides(sweep_plan.load_config(run["config"]),
                                          run["overrides"])
      assert config.model.d_model % config.model.num_heads == 0
      assert config.optim.warmup_steps < config.train.num_steps
      assert config.model.max_len >= config.data.seq_len


def _sizes(sweep):
  return {(r["meta"]["num_layers"], r["meta"]["d_model"]) for r in sweep["runs"]}


def test_scaling_grids_cover_the_documented_ranges():
  pod = importlib.import_module("configs.sweeps.scaling_pod").get_sweep()
  cpu = importlib.import_module("configs.sweeps.scaling_cpu").get_sweep()
  assert (96, 12288) in _sizes(pod) and len({d for _, d in _sizes(pod)}) >= 4
  assert len(_sizes(cpu)) >= 5
  for sweep in (pod, cpu):  # fixed tokens: the same tokens up to rounding to whole steps
    tokens = [r["meta"]["planned_tokens"] for r in sweep["runs"]]
    assert max(tokens) / min(tokens) < 1.001
  big = next(r for r in pod["runs"] if r["name"] == "L96_d12288")["overrides"]
  assert big["model.num_heads"] == 96 and big["train.global_batch_size"] == 1536
  assert big["optim.learning_rate"] == pytest.approx(0.6e-4, rel=0.15)


def test_planned_sizes_and_flops_match_the_model_code():
  from models import counting  # pylint: disable=g-import-not-at-top
  for path, names in (("configs/sweeps/scaling_cpu.py", ("L2_d32", "L4_d128")),
                      ("configs/sweeps/scaling_pod.py", ("L96_d12288",))):
    for run in sweep_plan.load_sweep(path)["runs"]:
      if run["name"] not in names:
        continue
      config = sweep_plan.apply_overrides(sweep_plan.load_config(run["config"]),
                                          run["overrides"])
      meta = run["meta"]
      exact = counting.param_counts(config.model)["params_non_embedding"]
      flops = objectives.train_flops_per_token(config.model, config.data.seq_len, "causal")
      assert meta["planned_params"] == pytest.approx(exact, rel=0.04)
      assert meta["planned_flops"] / meta["planned_tokens"] == pytest.approx(flops, rel=0.03)


def test_learning_rate_rule_tracks_gpt3_table_2_1_and_falls_with_width():
  for _, _, width, _, _, _, lr in scaling_rules.GPT3_TABLE_2_1:
    assert scaling_rules.learning_rate(width, lr_cap=1.0) == pytest.approx(lr, rel=0.26)
  widths = [32, 64, 128, 256, 768, 4096, 12288]
  lrs = [scaling_rules.learning_rate(w) for w in widths]
  assert all(a >= b for a, b in zip(lrs, lrs[1:])) and max(lrs) == 2e-3
  assert scaling_rules.batch_sequences(768, 2048) == 256
  assert scaling_rules.batch_sequences(768, 1024) == 512  # same tokens at half the length


def _spends_its_budget(sweep):
  budgets = {r["meta"]["budget_flops"] for r in sweep["runs"]}
  for run in sweep["runs"]:
    meta, o = run["meta"], run["overrides"]
    step_flops = meta["planned_flops"] / o["train.num_steps"]
    assert abs(meta["planned_flops"] - meta["budget_flops"]) <= step_flops / 2 + 1
  return budgets


def test_isoflop_runs_spend_their_budget_within_the_tokens_per_param_window():
  sweep = importlib.import_module("configs.sweeps.isoflop_pod").get_sweep()
  budgets = _spends_its_budget(sweep)
  assert len(budgets) >= 2
  for run in sweep["runs"]:
    low, high = scaling_rules.TOKENS_PER_PARAM_RANGE
    assert low <= run["meta"]["planned_tokens"] / run["meta"]["planned_params"] <= high
  per_budget = [sum(r["meta"]["budget_flops"] == b for r in sweep["runs"]) for b in budgets]
  assert min(per_budget) >= 3  # a parabola needs three sizes


def test_cpu_isoflop_study_meets_the_issue_design():
  """>= 3 budgets over >= 10x, >= 5 sizes each, every run >= MIN_STEPS steps on <= MAX_TOKENS
  tokens, one muP learning rate."""
  from configs.sweeps import isoflop_cpu  # pylint: disable=g-import-not-at-top
  sweep = isoflop_cpu.get_sweep()
  budgets = sorted(_spends_its_budget(sweep))
  assert len(budgets) >= 3 and budgets[-1] / budgets[0] >= 10
  for budget in budgets:
    runs = [r for r in sweep["runs"] if r["meta"]["budget_flops"] == budget]
    assert len(runs) >= 5
    for r in runs:
      assert r["overrides"]["train.num_steps"] >= isoflop_cpu.MIN_STEPS
      assert r["meta"]["planned_tokens"] <= isoflop_cpu.MAX_TOKENS
  lrs = {r["overrides"]["optim.learning_rate"] for r in sweep["runs"]}
  assert lrs == {isoflop_cpu.LEARNING_RATE}
  config = sweep_plan.load_config(isoflop_cpu.CONFIG)
  assert config.model.parametrization == "mup" and config.data.tokenizer == "byte"


def test_cooldown_branch_sweep_keeps_every_branch_checkpoint_and_branches_after_it():
  from configs.sweeps import wsd_cpu  # pylint: disable=g-import-not-at-top
  sweep = sweep_plan.load_sweep("configs/sweeps/wsd_cpu.py")
  stable = sweep["runs"][0]["overrides"]
  assert sweep["runs"][0]["name"] == "stable" and stable["optim.decay_frac"] == 0.0
  every, keep = stable["train.checkpoint_every"], stable["train.keep_checkpoints"]
  assert all(s % every == 0 for s in wsd_cpu.BRANCH_STEPS)
  assert keep * every >= stable["train.num_steps"] == max(wsd_cpu.BRANCH_STEPS)
  branches = [r for r in sweep["runs"] if r["meta"]["role"] == "branch"]
  assert [r["meta"]["branch_step"] for r in branches] == list(wsd_cpu.BRANCH_STEPS)
  for r in branches:
    o = r["overrides"]
    assert r["from_runs"] == {"optim.cooldown_from_run": "stable"}
    assert o["train.num_steps"] == o["optim.cooldown_from_step"] + o["optim.cooldown_steps"]
    # the decay is COOLDOWN_FRAC of the branch's own length
    assert o["optim.cooldown_steps"] / o["train.num_steps"] == pytest.approx(
        wsd_cpu.COOLDOWN_FRAC, abs=0.01)
  planned = sweep_plan.plan(sweep, "/tmp/runs")  # validates every config, orders the sources
  branch = next(p for p in planned if p["name"] == "cooldown_s1000")
  assert branch["overrides"]["optim.cooldown_from_run"] == "/tmp/runs/stable/seed0"
  cosine = [r for r in sweep["runs"] if r["meta"]["role"] == "cosine"]
  assert {r["meta"]["steps"] for r in cosine} <= {r["meta"]["steps"] for r in branches}


def test_lr_transfer_sweeps_cover_both_families_and_parametrizations():
  for family in ("decoder", "encoder"):
    sweep = sweep_plan.load_sweep(f"configs/sweeps/mup_transfer_cpu.py:{family}")
    grid = {(r["meta"]["parametrization"], r["meta"]["d_model"], r["meta"]["learning_rate"])
            for r in sweep["runs"]}
    assert len(grid) == len(sweep["runs"]) == 2 * 3 * 5
    sweep_plan.plan(sweep, "/tmp/runs")  # every override is a valid config
  with pytest.raises(ConfigError, match="family='vision' is not one of 'decoder', 'encoder'"):
    sweep_plan.load_sweep("configs/sweeps/mup_transfer_cpu.py:vision")
