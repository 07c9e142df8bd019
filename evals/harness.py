r"""lm-evaluation-harness tasks on a pancake run: `python -m evals.harness`.

    python -m evals.harness --config configs/<name>.py --workdir DIR --tasks T1,T2 \
        [--include_path TASK_DIR] [--num_fewshot K] [--limit N] [--step S] [--batch_rows R] \
        [--max_length W] [--config.a.b=value]

    # offline, on any run: the local tasks made from the run's held-out split
    python -m evals.harness --config configs/quickstart.py --workdir runs/quickstart \
        --tasks pancake_cloze,pancake_lastword

Restores the run's parameters as eval.py does (evals.runner: the same checks, any mesh) and runs
lm_eval.simple_evaluate with the "pancake" model (evals/harness_lm.py: loglikelihood,
loglikelihood_rolling and generate_until in JAX, no torch; encoders score by
pseudo-log-likelihood and refuse generate_until tasks). Tasks: lm_eval's own (their data come
from the Hugging Face hub, so they need network or a filled datasets cache), YAML tasks in
--include_path, and the local tasks pancake_cloze and pancake_lastword (tag `pancake`;
evals/harness_data.py builds them from data.eval_split with eval.seed into
DIR/eval/harness_tasks, where `lm_eval --include_path` finds them too). eval.seed also seeds
lm_eval's few-shot sampling and the adapter's sampling.

Writes DIR/eval/harness_<tasks>.json (the requested names joined by "_"; a hash when long) beside
the eval suites' files: the fields of evals.runner.provenance, suite "harness", tasks,
num_fewshot, limit, lm_eval_version, window (evals/harness_lm.py), devices, metrics
{"<task>/<metric>": float} and lm_eval's results, versions, n-shot, n-samples and
higher_is_better; then a table on stdout. No torch is imported: lm_eval's environment report
(which loads torch when installed) is replaced by jax's, and there are no TensorBoard scalars
(tensorboardX loads torch too).

Exit codes as eval.py: 0 done; 2 bad input, one line `error: ...` before the model is restored
(an unknown task, a missing --include_path, --workdir or checkpoint, a generate_until task on an
encoder, a bad flag or config); 1 a write failed. Multi-host: the flags of eval.py; every
process runs every request, process 0 writes.
"""
import hashlib
import os
import sys
import time
from unittest import mock

from absl import flags
from ml_collections import config_flags

import cli

def define_flags():
  """The command's flags, defined when it runs as a command (not on import: a process that
  imports this module and another command, e.g. a test worker, would define --config twice)."""
  global _CONFIG, _WORKDIR, _TASKS, _INCLUDE, _FEWSHOT, _LIMIT, _STEP, _ROWS, _MAX_LENGTH
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py).",
                                            lock_config=True)
  _WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  _TASKS = flags.DEFINE_string("tasks", None, "Comma-separated lm_eval task, group or tag names.")
  _INCLUDE = flags.DEFINE_string("include_path", None, "Folder of extra lm_eval task YAML files.")
  _FEWSHOT = flags.DEFINE_integer("num_fewshot", None, "Few-shot examples (default: each task's).")
  _LIMIT = flags.DEFINE_integer("limit", None, "At most this many documents per task.")
  _STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  _ROWS = flags.DEFINE_integer("batch_rows", 32, "Rows per model call (rounded up to the mesh's "
                              "batch multiple).")
  _MAX_LENGTH = flags.DEFINE_integer("max_length", None, "Window in tokens (default: data.seq_len, "
                                     "at most model.max_len).")


SUITE = "harness"
# lm_eval's bootstrap for the stderr of perplexity-like metrics; 100000 (its default) costs
# minutes of pure Python per task.
BOOTSTRAP_ITERS = 1000
_MAX_NAME = 80


class TaskError(ValueError):
  """A task request that cannot run on this model (exit code 2)."""


def parse_tasks(text) -> list[str]:
  names = [t.strip() for t in str(text or "").split(",") if t.strip()]
  if not names:
    raise TaskError(f"--tasks={text!r} names no task; give lm_eval task names, e.g. "
                    "--tasks pancake_cloze,pancake_lastword")
  return list(dict.fromkeys(names))


def result_name(tasks) -> str:
  """The results file's suite name: harness_<tasks joined by _>, or a hash of them when long."""
  joined = "_".join(tasks)
  if len(joined) > _MAX_NAME or any(not (c.isalnum() or c in "_-.") for c in joined):
    joined = hashlib.sha256(",".join(tasks).encode()).hexdigest()[:12]
  return f"{SUITE}_{joined}"


def check_flags():
  if _INCLUDE.value is not None and not os.path.isdir(_INCLUDE.value):
    raise TaskError(f"--include_path {_INCLUDE.value!r} is not a folder; give a folder of lm_eval "
                    "task YAML files")
  for flag, least in ((_FEWSHOT, 0), (_LIMIT, 1), (_ROWS, 1)):
    if flag.value is not None and flag.value < least:
      raise TaskError(f"--{flag.name}={flag.value} must be >= {least}")


def local_tasks_dir(workdir) -> str:
  """DIR/eval/harness_tasks for a local run; a temporary folder for gs:// (datasets reads files)."""
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from trainlib import fs, rundir
  if fs.is_remote(workdir):
    # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
    import tempfile
    return tempfile.mkdtemp(prefix="pancake_harness_tasks_")
  return rundir.harness_tasks_dir(workdir)


def task_manager(config, workdir, tasks, include_path, tokenizer, window, echo):
  """lm_eval's TaskManager over its tasks, include_path and (when asked for) the local tasks,
  whose continuations fit the PLL row of an encoder's window (W - 2 tokens) for both families."""
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from lm_eval.tasks import TaskManager

  from evals import harness_data
  from trainlib import rundir
  paths = [include_path] if include_path else []
  if any(t in harness_data.TASKS or t == harness_data.TAG for t in tasks):
    out = local_tasks_dir(workdir)
    with rundir.writing(out):
      counts = harness_data.build(config, tokenizer, window - 2, out)
    echo(f"local tasks in {out}: " + ", ".join(f"{t} ({n} documents)" for t, n in counts.items()))
    paths.insert(0, out)
  return TaskManager(include_path=paths or None)


def check_tasks(manager, tasks, family, include_path):
  """TaskError for a name lm_eval does not know or a generate_until task on an encoder."""
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from lm_eval.tasks import get_task_dict

  from evals import harness_data
  known = set(manager.all_tasks)
  unknown = [t for t in tasks if t not in known]
  if unknown:
    extra = f", the tasks of {include_path}" if include_path else ""
    raise TaskError(f"unknown lm_eval task {', '.join(map(repr, unknown))}; valid: the local "
                    f"tasks {', '.join(harness_data.TASKS)} (tag {harness_data.TAG}){extra}, or "
                    f"any of lm_eval's {len(known)} tasks, groups and tags (python -m lm_eval "
                    "ls tasks)")
  if family != "encoder":
    return
  generating = sorted(name for name, task in _leaf_tasks(get_task_dict(tasks, manager))
                      if task.OUTPUT_TYPE == "generate_until")
  if generating:
    raise TaskError(f"task {', '.join(map(repr, generating))} generates text (generate_until), "
                    "which an encoder cannot; encoders run loglikelihood, multiple_choice and "
                    "loglikelihood_rolling tasks (scored by pseudo-log-likelihood)")


def _leaf_tasks(task_dict):
  """(name, Task) of every task in lm_eval's nested task dict (groups hold dicts)."""
  for key, value in task_dict.items():
    if isinstance(value, dict):
      yield from _leaf_tasks(value)
    else:
      yield getattr(key, "group_name", key), value


def metrics_of(results) -> dict:
  """lm_eval's {"task": {"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": ...}} ->
  {"task/acc": 0.5, "task/acc_stderr": 0.1} (numbers only; the ",none" filter name dropped)."""
  out = {}
  for task, values in results.items():
    for key, value in values.items():
      if isinstance(value, (int, float)) and not isinstance(value, bool):
        metric, _, filt = key.partition(",")
        out[f"{task}/{metric}" + (f",{filt}" if filt not in ("", "none") else "")] = float(value)
  return out


def evaluate(config, workdir, tasks, *, include_path=None, num_fewshot=None, limit=None,
             step=None, batch_rows=32, max_length=None, echo=print) -> dict:
  """Checks, restores, runs lm_eval and writes the record (module docstring) -> the record."""
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  import lm_eval
  import lm_eval.evaluator

  from evals import harness_lm, runner
  plan = runner.check_run(config, workdir, step)
  window = harness_lm.window(config, max_length)  # a bad --max_length: before any restore
  manager = task_manager(config, workdir, tasks, include_path, plan.tokenizer, window, echo)
  check_tasks(manager, tasks, config.model.family, include_path)
  ctx = runner.restore(config, workdir, plan)
  lm = harness_lm.PancakeLM(ctx, batch_rows=batch_rows, max_length=max_length)
  start = time.perf_counter()
  seed = ctx.seed
  # lm_eval bootstraps in a multiprocessing pool (os.fork of a process running JAX threads) unless
  # told not to; one process draws BOOTSTRAP_ITERS resamples in a moment.
  os.environ.setdefault("DISABLE_MULTIPROC", "1")
  # lm_eval's environment report imports torch (collect_env) when it is installed; pancake's names
  # what computed the numbers instead, so no torch is loaded (tests/test_harness.py checks).
  with mock.patch.object(lm_eval.evaluator, "add_env_info", _add_jax_env_info):
    out = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                  task_manager=manager, bootstrap_iters=BOOTSTRAP_ITERS,
                                  log_samples=False, random_seed=seed, numpy_random_seed=seed,
                                  fewshot_random_seed=seed, torch_random_seed=None)
  record = dict(runner.provenance(ctx, plan), suite=SUITE, tasks=tasks, num_fewshot=num_fewshot,
                limit=limit, lm_eval_version=lm_eval.__version__, window=lm.window,
                devices=out.get("devices"),
                metrics=metrics_of(out["results"]), eval_config=config.eval.to_dict(),
                seconds=round(time.perf_counter() - start, 2),
                **{key: out.get(key) for key in ("results", "versions", "n-shot", "n-samples",
                                                 "higher_is_better")})
  if ctx.is_primary:
    _write(workdir, result_name(tasks), record)
    echo(f"lm-eval on {workdir} at step {ctx.step} (config {record['config_hash']}):")
    echo(runner.format_table({SUITE: record}))
  return record


def _add_jax_env_info(storage):
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  import jax
  import lm_eval
  storage.update(lm_eval_version=lm_eval.__version__, jax_version=jax.__version__,
                 devices=f"{jax.device_count()} x {jax.devices()[0].device_kind}")


def _write(workdir, name, record):
  """The record as DIR/eval/<name>.json. (No TensorBoard scalars: tensorboardX imports torch
  when it is installed.)"""
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  import json

  from trainlib import fs, rundir
  with rundir.writing(rundir.eval_dir(workdir)):
    fs.makedirs(rundir.eval_dir(workdir))
  # lm_eval's numbers may be numpy scalars: plain JSON numbers here.
  rundir.write_eval_result(workdir, name, json.loads(json.dumps(record, default=_plain)))


def _plain(value):
  return value.item() if hasattr(value, "item") else str(value)


def main(argv):
  config, workdir = cli.loaded_config(
      _CONFIG, _WORKDIR, argv, "--config, --workdir, --tasks, --include_path, --num_fewshot, "
      "--limit, --step, --batch_rows, --max_length, --config.a.b=value", writes_workdir=False)
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from configs.errors import ConfigError
  try:
    tasks = parse_tasks(_TASKS.value)
    check_flags()
  except TaskError as e:
    cli.fail(e)
  try:
    # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
    import lm_eval  # noqa: F401
  except ImportError:
    cli.fail("lm-eval is not installed; pip install -r requirements-harness.txt")
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from evals import runner
  cli.init_distributed()
  # late: start-up time (flags, the run and task names are checked before JAX, lm_eval and TFDS load)
  from trainlib import rundir
  try:
    evaluate(config, workdir, tasks, include_path=_INCLUDE.value, num_fewshot=_FEWSHOT.value,
             limit=_LIMIT.value, step=_STEP.value, batch_rows=_ROWS.value,
             max_length=_MAX_LENGTH.value)
  except (ConfigError, runner.RunDirError, TaskError) as e:
    cli.fail(e)
  except rundir.WriteFailed as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
