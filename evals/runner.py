"""eval.py's engine: check the request, restore the parameters, run the suites, write the results.

    results = evals.runner.run(config, workdir, "heldout,cloze", step=None)

Every check runs before anything compiles (and most before JAX touches a device): suite names
and their model family, the run directory and its checkpoints, all config sections (the same
checks as training), the config against the one the run was trained with, the tokenizer, and each
suite's eval.* fields. A failure raises ConfigError or RunDirError (eval.py: exit code 2).

Then the mesh is built from config.mesh over the current devices, and only the parameters of the
checkpoint are restored into it (trainlib.checkpoint.restore_params): the optimizer state is
never read, and a run trained on a pod restores onto one CPU and back. Results go to
DIR/eval/<suite>.json (fields below, plus each suite's own) and TensorBoard scalars to DIR/tb/eval
(tag "<suite>/<metric>", at the checkpoint step):

  suite, checkpoint_step, config_hash (this eval's config), train_config_hash (provenance.json),
  seed (eval.seed), family, objective, metrics {name: float}, eval_config (eval.*), seconds,
  params_from ("checkpoint", or "hf:DIR" when init.from_hf is set and DIR holds no checkpoint:
  the imported weights are evaluated as step 0, and --workdir need not exist yet)
"""
import dataclasses
import os
import time

import jax
from absl import logging

import evals
import objectives
from configs import base
from configs.errors import ConfigError
from evals.context import EvalContext
from interop import hf
from trainlib import fs, loop, rundir
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib
from trainlib.checkpoint import restore_params

# model.* fields that may differ from the training config: they change how, not what, is computed.
_MODEL_FREE = ("dtype", "attention_impl", "remat_policy", "dropout_rate", "attention_dropout_rate")
_DATA_TOKENIZER = ("tokenizer", "vocab_file", "merges_file", "tokenizer_file", "train_vocab_size",
                   "lowercase")


class RunDirError(ValueError):
  """The run directory or its checkpoints cannot serve this eval (eval.py: exit code 2)."""


@dataclasses.dataclass
class Plan:
  suites: list
  step: int | None           # requested step, None = latest
  tokenizer: object
  from_hf: bool = False      # no checkpoint: the weights of init.from_hf, as step 0


# Heavy modules (JAX, orbax, TFDS) are imported inside the functions: eval.py reports a bad
# suite or a missing workdir before any of them starts.


def check_step(workdir, steps, step):
  """RunDirError unless `steps` (the workdir's checkpoints) holds `step` (None = the latest)."""
  if not steps:
    raise RunDirError(f"no checkpoint in {rundir.checkpoints_dir(workdir)}; train first "
                      "(train.py --workdir ...) or point --workdir at a trained run")
  if step is not None and step not in steps:
    raise RunDirError(f"--step {step} has no checkpoint in {workdir}; available steps: "
                      f"{', '.join(map(str, steps))}")


def _compare_with_run(config, workdir):
  """RunDirError if the config describes another model or tokenizer than the checkpoint's."""
  trained = rundir.read_config(workdir)  # None: missing or damaged (one warning line)
  if trained is None:
    logging.warning("%s has no readable %s: cannot check that --config matches the run",
                    workdir, rundir.CONFIG)
    return
  pairs = [(f"model.{k}", v, config.model.get(k)) for k, v in trained.get("model", {}).items()
           if k not in _MODEL_FREE]
  defaults = base.get_config().data  # a field newer than the run: the run had its default
  pairs += [(f"data.{k}", trained.get("data", {}).get(k, defaults[k]), config.data.get(k))
            for k in _DATA_TOKENIZER]
  pairs.append(("objective.name", trained.get("objective", {}).get("name"), config.objective.name))
  diffs = [f"{name}={now!r} (trained with {then!r})" for name, then, now in pairs if then != now]
  if diffs:
    raise RunDirError(f"the config does not match the run in {workdir}: {'; '.join(diffs)}; "
                      "pass the run's config file and its --config.* overrides")
  for field in ("corpus", "tfds_name", "text_files"):
    if trained.get("data", {}).get(field) != config.data.get(field):
      logging.warning("data.%s=%r differs from the run's %r: evaluating on other text", field,
                      config.data.get(field), trained.get("data", {}).get(field))


def check(config, workdir, suites, step=None) -> Plan:
  """All checks that need no compiled code (see module docstring). -> Plan."""
  names = evals.parse_suites(suites if suites is not None else config.eval.suites,
                             config.model.family)
  plan = check_run(config, workdir, step)
  for name in names:
    evals.get(name).validate(config, plan.tokenizer)
  plan.suites = names
  return plan


def check_run(config, workdir, step=None) -> Plan:
  """The checks of `check` that concern the run, not a suite: the run directory and its
  checkpoints, the config sections, the config against the run's, the tokenizer and eval.seed.
  -> Plan without suites (evals/harness.py evaluates lm-eval tasks instead)."""
  from_hf = config.init.from_hf  # no checkpoint: evaluate the imported weights as step 0
  if not workdir or not (fs.isdir(workdir) or from_hf):
    raise RunDirError(f"--workdir {workdir!r} does not exist; give the directory train.py wrote")
  steps = rundir.checkpoint_steps(workdir)
  if from_hf and not steps:
    if step not in (None, 0):
      raise RunDirError(f"--step {step} has no checkpoint in {workdir}; without checkpoints "
                        f"the weights are init.from_hf={from_hf!r} (step 0)")
  else:
    check_step(workdir, steps, step)
  loop.validate(config)
  if steps:  # a run to compare with (an import evaluated as step 0 is a run of its own)
    _compare_with_run(config, workdir)
  tokenizer = objectives.get_tokenizer(config)
  objectives.check_tokenizer(config, tokenizer)
  if from_hf:
    hf.check_tokenizer(config, tokenizer)
  seed = config.eval.seed
  if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
    raise ConfigError(f"eval.seed={seed!r} must be an integer >= 0")
  return Plan([], step, tokenizer, from_hf=bool(from_hf and not steps))


def _train_config_hash(workdir):
  return (rundir.read_provenance(workdir) or {}).get("config_hash")


def format_table(records) -> str:
  rows = [(suite, name, value) for suite, r in records.items()
          for name, value in r["metrics"].items()]
  width = max([len("suite")] + [len(s) for s, _, _ in rows])
  mwidth = max([len("metric")] + [len(m) for _, m, _ in rows])
  lines = [f"{'suite':<{width}}  {'metric':<{mwidth}}  value"]
  lines += [f"{s:<{width}}  {m:<{mwidth}}  {v:.4f}" for s, m, v in rows]
  return "\n".join(lines)


def restore(config, workdir, plan):
  """The mesh of config.mesh over the current devices and the plan's parameters restored onto it
  -> EvalContext. RunDirError if the checkpoint cannot be read."""
  mesh = mesh_lib.make_mesh(config)
  mesh_lib.validate_batch(config, mesh)
  setup = state_lib.build_setup(config, mesh)
  try:
    if plan.from_hf:
      params = hf.load_params(config, setup.abstract_state.params,
                              fallback=lambda: state_lib.init_params(setup))
      restored_step = 0
    else:
      params, restored_step = restore_params(rundir.checkpoints_dir(workdir),
                                             setup.abstract_state.params, plan.step)
  except ConfigError:
    raise
  except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many kinds)
    raise RunDirError(f"cannot restore the parameters of step {plan.step or 'latest'} from "
                      f"{workdir}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
  return EvalContext(config=config, workdir=workdir, setup=setup, params=params,
                     step=int(restored_step), tokenizer=plan.tokenizer)


def provenance(ctx, plan) -> dict:
  """The fields every result file carries (module docstring): which weights, config and seed."""
  config = ctx.config
  return {"checkpoint_step": ctx.step, "config_hash": rundir.config_hash(config),
          "train_config_hash": _train_config_hash(ctx.workdir), "seed": ctx.seed,
          "family": config.model.family, "objective": config.objective.name,
          "params_from": f"hf:{config.init.from_hf}" if plan.from_hf else "checkpoint"}


def run(config, workdir, suites=None, step=None, echo=print) -> dict:
  """Checks, restores and runs the suites; -> {suite: record as written to DIR/eval/<suite>.json}."""
  plan = check(config, workdir, suites, step)
  ctx = restore(config, workdir, plan)
  primary = jax.process_index() == 0
  header = provenance(ctx, plan)
  writer = None
  if primary:
    with rundir.writing(ctx.out_dir):
      fs.makedirs(ctx.out_dir)
    from tensorboardX import SummaryWriter  # late: start-up time (only process 0 writes it)
    writer = SummaryWriter(rundir.tensorboard_dir(workdir, "eval"))
  records = {}
  try:
    for name in plan.suites:
      ctx.log("eval suite %s at step %d", name, ctx.step)
      start = time.perf_counter()
      result = evals.get(name).run(ctx)
      report = result.pop("report", None)
      metrics = {k: float(v) for k, v in result.pop("metrics").items()}
      record = dict(result, suite=name, metrics=metrics, eval_config=config.eval.to_dict(),
                    seconds=round(time.perf_counter() - start, 2), **header)
      records[name] = record
      if primary:
        rundir.write_eval_result(workdir, name, record)  # atomic; WriteFailed names the path
        for metric, value in metrics.items():
          writer.add_scalar(f"{name}/{metric}", value, ctx.step)
        writer.flush()
        if report:
          echo(report)
  finally:
    if writer is not None:
      writer.close()
  if primary:
    echo(f"eval of {workdir} at step {ctx.step} (config {header['config_hash']}):")
    echo(format_table(records))
  return records
