"""Step 0 of a run: where its first state comes from, in one place.

A workdir that holds a checkpoint resumes from it (trainlib/loop.py). Otherwise step 0 is one
of these sources, chosen by the config (init.from_hf and init.from_run exclude each other:
`validate`):
  init.from_hf             a Hugging Face checkpoint's weights (interop.hf; heads it lacks: a
                           fresh init, named in a warning)
  optim.cooldown_from_run  the stable run's checkpoint at optim.cooldown_from_step: parameters,
                           Adam moments and data position (a cooldown branch starts inside it)
  init.from_run            another run's parameters wherever path and shape match
                           (trainlib/from_run.py), the rest a fresh init
  none of them             a fresh init from config.seed (trainlib/state.py)

The loop calls `validate` with the other config checks, `plan` before it builds anything (a
missing source is a ConfigError in seconds), `check` before the workdir is written, and
`initial_state` once it holds the writer lock and found no checkpoint to resume.
"""

import jax
from absl import logging

from configs.errors import ConfigError
from interop import hf, hf_config
from trainlib import from_run, rundir
from trainlib import state as state_lib
from trainlib.checkpoint import Checkpointer


def validate(config) -> None:
  """The step-0 fields alone; needs neither devices nor data. Raises ConfigError."""
  if config.init.from_hf:  # the model fields must be those of the checkpoint's config.json
    hf_config.check_against_config(config)
  from_run.validate(config)


def plan(config, workdir):
  """init.from_run's plan (from_run.Plan) when this workdir has no checkpoint to resume, else
  None; reads config.json files and shapes only (ConfigError before anything is built)."""
  if config.init.from_run and not rundir.checkpoint_steps(workdir):
    return from_run.plan(config)
  return None


def check(config, tokenizer, setup) -> None:
  """init.from_hf's tensor names and shapes and its tokenizer, before the workdir is written."""
  if config.init.from_hf:
    hf.check(config, tokenizer, setup.abstract_state.params)


def initial_state(setup, run_plan, train_pipe, workdir, primary):
  """-> (state, step) of a run that starts here (no checkpoint of its own to resume).

  `run_plan`: `plan`'s result; `train_pipe` takes a cooldown branch's data position; the primary
  process prints init.from_run's plan and writes it to the run directory."""
  config = setup.config
  if config.init.from_hf:  # step 0 = the Hugging Face checkpoint's weights
    params = hf.load_params(config, setup.abstract_state.params,
                            fallback=lambda: state_lib.init_params(setup))
    return state_lib.state_from_params(setup, params), 0
  if config.optim.cooldown_from_run:  # a cooldown branch starts inside a stable run
    return _branch_state(setup, train_pipe)
  if run_plan is not None:  # step 0 = another run's parameters, where they fit
    if primary:
      print(run_plan.summary(), flush=True)
      rundir.write_init_from_run(workdir, run_plan.record())
    return state_lib.state_from_params(setup, from_run.carried_params(setup, run_plan)), 0
  return state_lib.init_state(setup), 0


def _branch_state(setup, train_pipe):
  """The stable run's checkpoint at optim.cooldown_from_step (parameters, Adam moments, data
  position), verified; this workdir's schedule then decays from there."""
  o = setup.config.optim
  source = Checkpointer(rundir.checkpoints_dir(o.cooldown_from_run), keep=None,
                        async_save=False)
  if o.cooldown_from_step not in source.all_steps():
    raise ConfigError(f"optim.cooldown_from_step={o.cooldown_from_step}: "
                      f"{o.cooldown_from_run} has checkpoints at {source.all_steps()}")
  state, meta = source.restore(setup.abstract_state, step=o.cooldown_from_step)
  start = int(jax.device_get(state.step))
  data_step = train_pipe.restore(meta["data"])
  if data_step != start:
    raise RuntimeError(f"checkpoint holds state step {start} but data position {data_step}")
  logging.info("cooldown branch from %s at step %d", o.cooldown_from_run, start)
  return state, start
