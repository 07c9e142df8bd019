"""eval.py as a command: a run on a tiny checkpoint, and every bad input as exit code 2 + one line.

The commands start together (module fixture) and are checked one per test: most stop before JAX
starts, so together they cost little more than the slowest one.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.eval_testlib import trained_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALID = "heldout, cloze, finetune, downstream, generate, attention"


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("eval_runs"))


def _cases(data_dir, decoder_run, encoder_run, empty_dir):
  """name -> (argv after eval.py, expected exit code, expected stderr text or None)."""
  def argv(objective, workdir, suite, *extra):
    return ["--config", f"tests/eval_cli_config.py:{objective}",
            f"--config.data.data_dir={data_dir}", "--workdir", workdir, "--suite", suite, *extra]
  return {
      "ok_heldout_at_step_6": (argv("causal", decoder_run, "heldout", "--step", "6"), 0, None),
      "unknown_suite": (argv("causal", decoder_run, "heldout,bleu"), 2,
                        f"error: unknown eval suite 'bleu'; valid suites: {VALID}"),
      "generate_on_encoder": (argv("mlm_nsp", encoder_run, "generate"), 2,
                              "error: suite 'generate' does not apply to model.family='encoder' "
                              "(it needs decoder); suites for encoders: heldout, cloze, "
                              "finetune, downstream, attention"),
      "missing_workdir": (argv("causal", "/nonexistent/run", "heldout"), 2,
                          "error: --workdir '/nonexistent/run' does not exist"),
      "no_checkpoint": (argv("causal", empty_dir, "heldout"), 2,
                        f"error: no checkpoint in {empty_dir}/checkpoints"),
      "step_not_saved": (argv("causal", decoder_run, "heldout", "--step", "5"), 2,
                         "error: --step 5 has no checkpoint in"),
      "bad_eval_value": (argv("causal", decoder_run, "cloze", "--config.eval.cloze_candidates=1"),
                         2, "error: eval.cloze_candidates=1 must be an integer >= 2"),
      "other_model": (argv("causal", decoder_run, "heldout", "--config.model.d_model=64"), 2,
                      "error: the config does not match the run in"),
      "unknown_key": (argv("causal", decoder_run, "heldout", "--config.eval.no_such_field=1"), 2,
                      "error: unknown config key"),
  }


@pytest.fixture(scope="module")
def outcomes(embedded_data_dir, runs_root, tmp_path_factory):
  _, trained = trained_run("causal", embedded_data_dir, runs_root)
  _, encoder_run = trained_run("mlm_nsp", embedded_data_dir, runs_root)
  decoder_run = str(tmp_path_factory.mktemp("cli") / "causal")
  shutil.copytree(trained, decoder_run)  # eval/ files of this copy are this module's alone
  if os.path.exists(os.path.join(decoder_run, "eval")):
    shutil.rmtree(os.path.join(decoder_run, "eval"))
  empty_dir = str(tmp_path_factory.mktemp("empty_run"))
  cases = _cases(embedded_data_dir, decoder_run, encoder_run, empty_dir)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  procs = {name: subprocess.Popen([sys.executable, "eval.py", *args], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for name, (args, _, _) in cases.items()}
  results = {}
  for name, proc in procs.items():
    out, err = proc.communicate(timeout=300)
    results[name] = (proc.returncode, out, err)
  return cases, results, decoder_run


def test_cli_evaluates_a_given_step_and_prints_a_table(outcomes):
  _, results, workdir = outcomes
  code, out, err = results["ok_heldout_at_step_6"]
  assert code == 0, err[-2000:]
  with open(os.path.join(workdir, "eval", "heldout.json")) as f:
    record = json.load(f)
  assert record["checkpoint_step"] == 6 and record["suite"] == "heldout"
  assert f"eval of {workdir} at step 6" in out
  table = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()
           if line.startswith("heldout ")}
  assert table["perplexity"] == pytest.approx(record["metrics"]["perplexity"], rel=1e-3)


@pytest.mark.parametrize("name", ["unknown_suite", "generate_on_encoder", "missing_workdir",
                                  "no_checkpoint", "step_not_saved", "bad_eval_value",
                                  "other_model", "unknown_key"])
def test_cli_bad_input_is_exit_code_2_with_one_line(outcomes, name):
  cases, results, workdir = outcomes
  code, _, err = results[name]
  expected = cases[name][2]
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert code == 2, err[-2000:]
  assert len(errors) == 1 and errors[0].startswith(expected), err[-2000:]
  if name == "step_not_saved":
    assert errors[0].endswith("available steps: 3, 6, 9, 12")
  if name == "other_model":
    assert "model.d_model=64 (trained with 32)" in errors[0]
  # Nothing was evaluated: the only eval file is the one the successful run wrote.
  assert os.listdir(os.path.join(workdir, "eval")) == ["heldout.json"]


@pytest.mark.slow
def test_two_processes_evaluate_like_one(embedded_data_dir, runs_root, tmp_path):
  """eval.py --multihost (2 processes x 2 devices, gloo) writes what one process computes."""
  from evals import runner
  from launch import local
  config, trained = trained_run("causal", embedded_data_dir, runs_root)
  single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
  for copy in (single, multi):
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("eval"))
  suites = "heldout,cloze,finetune,generate"
  expected = runner.run(config, single, suites, echo=lambda *_: None)
  argv = ["eval.py", "--config", "tests/eval_cli_config.py:causal",
          f"--config.data.data_dir={embedded_data_dir}", "--workdir", multi, "--suite", suites]
  results = local.run_local(argv, num_processes=2, devices_per_process=2, cwd=REPO, timeout=600,
                            env=dict(os.environ, JAX_PLATFORMS="cpu"), echo=False)
  assert [r.returncode for r in results] == [0, 0], results[0].output[-3000:]
  assert sorted(os.listdir(os.path.join(multi, "eval"))) == [f"{s}.json" for s in sorted(
      suites.split(","))]  # process 0 alone wrote them
  for suite, record in expected.items():
    with open(os.path.join(multi, "eval", f"{suite}.json")) as f:
      got = json.load(f)
    assert got["checkpoint_step"] == record["checkpoint_step"] == 12
    assert got["metrics"].keys() == record["metrics"].keys()
    for name, value in record["metrics"].items():
      assert got["metrics"][name] == pytest.approx(value, rel=1e-3, abs=1e-4), (suite, name)
