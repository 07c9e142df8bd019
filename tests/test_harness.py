"""lm-evaluation-harness on pancake runs: evals/harness_lm.py (the "pancake" model) and
`python -m evals.harness`.

The tiny runs of the eval tests (tests/eval_testlib.py: a 2-layer causal decoder and MLM+NSP
encoder, 12 steps, window 32 tokens). The decoder's loglikelihoods are checked against
transformers on the run exported with interop/hf.py (torch here only), rolling windows and PLL
against direct computations, generation against evals/generation.py; the command runs lm_eval
end to end on the local tasks and on a generate_until task from --include_path.
"""
import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("lm_eval", reason="pip install -r requirements-harness.txt")

import jax  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402

from evals import decoder_fns, generation, harness, harness_lm, runner  # noqa: E402
from evals.context import bos_id  # noqa: E402
from tests.eval_testlib import trained_run  # noqa: E402
from trainlib import rundir  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4
LONG = ("The module defines the following functions, each of which returns a new list of the "
        "values it was given, sorted and without repeats, so that callers can rely on the order "
        "of the result when they compare two of them.")
PAIRS = [("The value of", " the result"), ("Return the ", "list of items."), ("", "The module"),
         ("In the", " first case, it is a string"), (LONG, " and the end.")]


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("harness_runs"))


def _lm(config, workdir, **kwargs):
  ctx = runner.restore(config, workdir, runner.check_run(config, workdir))
  return harness_lm.PancakeLM(ctx, **kwargs)


@pytest.fixture(scope="module")
def decoder(embedded_data_dir, runs_root):
  config, workdir = trained_run("causal", embedded_data_dir, runs_root)
  return config, workdir, _lm(config, workdir, batch_rows=4)


@pytest.fixture(scope="module")
def encoder(embedded_data_dir, runs_root):
  config, workdir = trained_run("mlm_nsp", embedded_data_dir, runs_root)
  return config, workdir, _lm(config, workdir, batch_rows=4)


def _requests(kind, args):
  return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


@pytest.fixture(scope="module")
def exported(decoder, tmp_path_factory):
  """The decoder run exported by interop/export.py, loaded by transformers (eval mode, float32)."""
  import transformers

  from interop import export
  config, workdir, _ = decoder
  out = str(tmp_path_factory.mktemp("export"))
  export.export_run(config, workdir, out)
  return (transformers.AutoModelForCausalLM.from_pretrained(out).eval(),
          transformers.AutoTokenizer.from_pretrained(out))


def _hf_logprobs(model, ids):
  import torch
  with torch.no_grad():
    logits = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
  return torch.log_softmax(logits.double(), dim=-1).numpy()


def _hf_loglikelihood(model, tok, context, continuation, window, eot):
  """lm_eval's HF model, spelled out: spaces move into the continuation, the pair is encoded
  whole and split at the context's length, the input is cut from the left to the window."""
  if context:
    spaces = len(context) - len(context.rstrip())
    context, continuation = context[:len(context) - spaces], context[len(context) - spaces:] + continuation
    ctx = tok.encode(context, add_special_tokens=False)
    cont = tok.encode(context + continuation, add_special_tokens=False)[len(ctx):]
  else:
    ctx, cont = [eot], tok.encode(continuation, add_special_tokens=False)
  whole = (ctx + cont)[-(window + 1):]
  logp = _hf_logprobs(model, whole[:-1])[-len(cont):]
  picked = logp[np.arange(len(cont)), cont]
  return float(picked.sum()), bool(np.all(np.argmax(logp, axis=-1) == cont)), len(ctx + cont)


def test_decoder_loglikelihoods_equal_transformers_on_the_export(decoder, exported):
  _, _, lm = decoder
  model, tok = exported
  ours = lm.loglikelihood(_requests("loglikelihood", PAIRS))
  lengths, diffs = [], []
  for (context, continuation), (logp, greedy) in zip(PAIRS, ours):
    ref, ref_greedy, length = _hf_loglikelihood(model, tok, context, continuation, lm.window,
                                                bos_id(lm.tok))
    lengths.append(length)
    diffs.append(abs(logp - ref))
    assert abs(logp - ref) < TOL, (context, continuation, logp, ref)
    assert greedy == ref_greedy and logp < 0
  print(f"pancake vs transformers loglikelihoods: {[round(s, 3) for s, _ in ours]}, max |diff| "
        f"{max(diffs):.1e}")
  # the long pair is cut from the left: context + continuation exceed the window + 1
  assert lm.window == 32 and lengths[-1] > lm.window + 1 and max(lengths[:-1]) <= lm.window + 1


def test_a_continuation_longer_than_the_window_is_a_config_error(decoder, encoder):
  from configs.errors import ConfigError
  for _, _, lm in (decoder, encoder):
    with pytest.raises(ConfigError, match="does not fit the"):
      lm.loglikelihood(_requests("loglikelihood", [("The", " " + LONG)]))


def test_loglikelihoods_do_not_depend_on_batching_or_the_mesh(decoder):
  config, workdir, lm = decoder
  reference = lm.loglikelihood(_requests("loglikelihood", PAIRS))
  other = copy.deepcopy(config)
  other.mesh.data, other.mesh.tensor = 2, 4  # trained on data=8: parameters now shard 4 ways
  for candidate in (_lm(config, workdir, batch_rows=1), _lm(other, workdir, batch_rows=16)):
    got = candidate.loglikelihood(_requests("loglikelihood", PAIRS))
    assert [g for _, g in got] == [g for _, g in reference]
    np.testing.assert_allclose([s for s, _ in got], [s for s, _ in reference], atol=1e-5)


def test_rolling_loglikelihood_sums_each_token_once_over_lm_evals_windows(decoder, exported):
  _, _, lm = decoder
  model, _ = exported
  text = " ".join([LONG] * 3)
  tokens = lm.tok.encode(text)
  w, n = lm.window, len(tokens)
  assert n > 2 * w
  # lm_eval's rolling windows (context_len=1): the first W tokens after the start token, then
  # up to W more at a time, each from the W tokens before its last one.
  expected, scored, done = 0.0, [], 0
  while done < n:
    end = min(n, done + w)
    inputs = [bos_id(lm.tok)] + tokens[:end - 1] if done == 0 else tokens[end - w - 1:end - 1]
    logp = _hf_logprobs(model, inputs)[-(end - done):]
    expected += float(logp[np.arange(end - done), tokens[done:end]].sum())
    scored += list(range(done, end))
    done = end
  assert scored == list(range(n))
  short = "The module defines"
  short_ids = [bos_id(lm.tok)] + lm.tok.encode(short)
  short_logp = _hf_logprobs(model, short_ids[:-1])
  short_expected = float(short_logp[np.arange(len(short_ids) - 1), short_ids[1:]].sum())
  got = lm.loglikelihood_rolling(_requests("loglikelihood_rolling", [(text,), (short,)]))
  print(f"rolling: {n} tokens, {got[0]:.4f} vs {expected:.4f}; short {got[1]:.4f} vs "
        f"{short_expected:.4f}")
  assert abs(got[0] - expected) < TOL and abs(got[1] - short_expected) < TOL


def _greedy_reference(lm, context, new):
  """evals.generation.generate on one prompt, unsharded: the decoded greedy continuation."""
  ids = lm.tok.encode(context)
  fns = decoder_fns.make_decoder_fns(lm.ctx.model, cache_len=len(ids) + new - 1)
  params = jax.device_get(lm.ctx.params)
  out = generation.generate(fns.step_fn, params, fns.init_cache(1), np.asarray([ids]),
                            np.asarray([len(ids)]), new, eos_id=bos_id(lm.tok), pad_id=0)
  return lm.tok.decode(np.asarray(out.tokens)[0, :int(out.lengths[0])])


def test_generate_until_is_greedy_decoding_cut_at_the_until_strings(decoder):
  _, _, lm = decoder
  contexts = ["The module", "In the first case, the value of the"]
  free = lm.generate_until(_requests("generate_until", [(c, {"until": [], "max_gen_toks": 10})
                                                        for c in contexts]))
  for context, text in zip(contexts, free):
    assert text == _greedy_reference(lm, context, 10)
  text = free[0]
  assert len(text) >= 6, text
  stop = text[3:5]
  first = text.index(stop)
  cut = lm.generate_until(_requests("generate_until", [
      (contexts[0], {"until": [stop, "never there"], "max_gen_toks": 10}),
      (contexts[0], {"until": stop, "max_gen_toks": 10, "do_sample": False})]))
  assert cut == [text[:first], text[:first]]
  sampling = {"until": [], "max_gen_toks": 10, "do_sample": True, "temperature": 1.0}
  once, again = (lm.generate_until(_requests("generate_until", [(contexts[0], sampling)]))
                 for _ in range(2))
  assert once == again  # keyed by eval.seed
  from configs.errors import ConfigError
  with pytest.raises(ConfigError, match="num_beams"):
    lm.generate_until(_requests("generate_until", [(contexts[0], {"num_beams": 4})]))


def test_the_registered_model_restores_a_run_from_model_args(decoder):
  from lm_eval.api.registry import get_model
  config, workdir, lm = decoder
  other = get_model("pancake").create_from_arg_obj({"config": config, "workdir": workdir,
                                                    "step": 12, "batch_rows": 8})
  assert isinstance(other, harness_lm.PancakeLM) and other.rows == 8
  requests = _requests("loglikelihood", PAIRS[:2])
  ours, theirs = other.loglikelihood(requests), lm.loglikelihood(requests)
  assert [g for _, g in ours] == [g for _, g in theirs]
  np.testing.assert_allclose([s for s, _ in ours], [s for s, _ in theirs], atol=1e-6)


def test_encoder_loglikelihood_is_pseudo_log_likelihood(encoder):
  _, _, lm = encoder
  tok = lm.tok
  pairs = [("the value of", " the list"), ("", "return the module"), (LONG, " and the end")]
  got = lm.loglikelihood(_requests("loglikelihood", pairs))
  params = jax.device_get(lm.ctx.params)
  apply = jax.jit(lambda ids, position: lm.ctx.model.apply(
      {"params": params}, ids, jax.numpy.zeros_like(ids), jax.numpy.ones_like(ids),
      masked_positions=position, deterministic=True)["mlm_logits"])
  for (context, continuation), (logp, _) in zip(pairs, got):
    ctx = tok.encode(context.rstrip())
    cont = tok.encode(context + continuation)[len(ctx):] if context else tok.encode(continuation)
    body = (ctx + cont)[-(lm.window - 2):]
    ids = [tok.cls_id] + body + [tok.sep_id]
    expected = 0.0
    for position in range(len(ids) - 1 - len(cont), len(ids) - 1):  # each continuation token
      masked = np.asarray([ids], np.int32)
      masked[0, position] = tok.mask_id
      logits = apply(masked, np.asarray([[position]], np.int32))
      expected += float(jax.nn.log_softmax(logits[0, 0])[ids[position]])
    assert abs(logp - expected) < TOL, (context, continuation, logp, expected)
  # rolling: a text that fits one window is the PLL of the text after [CLS]; a long one is the
  # sum over its windows, each token scored once
  short = "return the module"
  rolling = lm.loglikelihood_rolling(_requests("loglikelihood_rolling", [(short,), (LONG,)]))
  assert rolling[0] == pytest.approx(got[1][0], abs=1e-5)
  assert len(tok.encode(LONG)) > lm.window and np.isfinite(rolling[1]) and rolling[1] < 0


def test_encoder_refuses_generate_until(encoder):
  from configs.errors import ConfigError
  with pytest.raises(ConfigError, match="encoder"):
    encoder[2].generate_until(_requests("generate_until", [("The", {"until": ["."]})]))


# ------------------------------------------------------------------------ the command

GEN_TASK = """task: test_next_words
output_type: generate_until
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{target}}}}"
generation_kwargs:
  until: ["."]
  max_gen_toks: 6
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def commands(embedded_data_dir, runs_root, tmp_path_factory):
  """`python -m evals.harness` runs, started together: name -> (returncode, stdout, stderr)."""
  _, trained = trained_run("causal", embedded_data_dir, runs_root)
  _, encoder_run = trained_run("mlm_nsp", embedded_data_dir, runs_root)
  root = tmp_path_factory.mktemp("harness_cli")
  decoder_run = str(root / "causal")
  shutil.copytree(trained, decoder_run)
  include = root / "tasks"
  include.mkdir()
  data = include / "next_words.jsonl"
  data.write_text("".join(json.dumps({"context": c, "target": t}) + "\n" for c, t in
                          [("The module", " defines"), ("In the", " first"), ("It is", " a")]))
  (include / "test_next_words.yaml").write_text(GEN_TASK.format(data=data))

  def argv(objective, workdir, tasks, *extra):
    return ["-m", "evals.harness", "--config", f"tests/eval_cli_config.py:{objective}",
            f"--config.data.data_dir={embedded_data_dir}", "--workdir", workdir, "--tasks", tasks,
            *extra]
  cases = {
      "decoder": ["-X", "importtime", *argv("causal", decoder_run,
                                            "pancake_cloze,pancake_lastword,test_next_words",
                                            "--include_path", str(include), "--limit", "8")],
      "encoder": argv("mlm_nsp", encoder_run, "pancake_cloze", "--limit", "4"),
      "unknown_task": argv("causal", decoder_run, "pancake_clozz"),
      "missing_workdir": argv("causal", "/nonexistent/run", "pancake_cloze"),
      "missing_include_path": argv("causal", decoder_run, "pancake_cloze", "--include_path",
                                   "/nonexistent/tasks"),
      "encoder_generates": argv("mlm_nsp", encoder_run, "test_next_words", "--include_path",
                                str(include)),
      "no_tasks": argv("causal", decoder_run, " , "),
  }
  env = dict(os.environ, JAX_PLATFORMS="cpu", HF_DATASETS_OFFLINE="1",
             HF_HOME=str(root / "hf_home"))
  procs = {name: subprocess.Popen([sys.executable, *args], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for name, args in cases.items()}
  return {name: (*_communicate(p), decoder_run, encoder_run) for name, p in procs.items()}


def _communicate(proc):
  out, err = proc.communicate(timeout=600)
  return proc.returncode, out, err


@pytest.mark.slow
def test_command_runs_local_and_included_tasks_through_lm_eval(commands):
  code, out, err, workdir, _ = commands["decoder"]
  assert code == 0, err[-3000:]
  path = rundir.eval_result_path(
      workdir, harness.result_name(["pancake_cloze", "pancake_lastword", "test_next_words"]))
  with open(path) as f:
    record = json.load(f)
  assert record["suite"] == "harness" and record["checkpoint_step"] == 12
  assert record["family"] == "decoder" and record["window"] == 32
  assert record["n-samples"]["pancake_cloze"]["effective"] == 8
  assert record["n-samples"]["test_next_words"]["effective"] == 3
  m = record["metrics"]
  assert 0 <= m["pancake_cloze/acc"] <= 1 and 0 <= m["pancake_lastword/acc"] <= 1
  assert m["pancake_lastword/perplexity"] > 1 and 0 <= m["test_next_words/exact_match"] <= 1
  assert set(record["results"]) >= {"pancake_cloze", "pancake_lastword", "test_next_words"}
  # the local tasks' files, in the run's eval directory, usable by lm_eval --include_path
  tasks_dir = rundir.harness_tasks_dir(workdir)
  assert sorted(os.listdir(tasks_dir)) == ["pancake_cloze.jsonl", "pancake_cloze.yaml",
                                           "pancake_lastword.jsonl", "pancake_lastword.yaml"]
  first = json.loads(open(os.path.join(tasks_dir, "pancake_cloze.jsonl")).readline())
  assert len(first["choices"]) == 4 and first["choices"][first["gold"]]
  table = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()
           if line.startswith("harness ")}
  assert table["pancake_cloze/acc"] == pytest.approx(m["pancake_cloze/acc"], abs=1e-4)
  # no torch in the process (python -X importtime lists every module imported)
  imported = {line.split("|")[-1].strip() for line in err.splitlines() if "import time:" in line}
  assert "jax" in imported and "lm_eval" in imported and "torch" not in imported


@pytest.mark.slow
def test_command_scores_an_encoder_by_pseudo_log_likelihood(commands):
  code, _, err, _, workdir = commands["encoder"]
  assert code == 0, err[-3000:]
  with open(rundir.eval_result_path(workdir, harness.result_name(["pancake_cloze"]))) as f:
    record = json.load(f)
  assert record["family"] == "encoder" and 0 <= record["metrics"]["pancake_cloze/acc"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [
    ("unknown_task", "error: unknown lm_eval task 'pancake_clozz'; valid: the local tasks "
                     "pancake_cloze, pancake_lastword (tag pancake), or any of lm_eval's"),
    ("missing_workdir", "error: --workdir '/nonexistent/run' does not exist"),
    ("missing_include_path", "error: --include_path '/nonexistent/tasks' is not a folder"),
    ("encoder_generates", "error: task 'test_next_words' generates text (generate_until), which "
                          "an encoder cannot"),
    ("no_tasks", "error: --tasks=' , ' names no task"),
])
def test_command_bad_input_is_exit_code_2_with_one_line(commands, name, expected):
  code, _, err, _, _ = commands[name]
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert code == 2, err[-2000:]
  assert len(errors) == 1 and errors[0].startswith(expected), err[-2000:]
