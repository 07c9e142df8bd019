"""The train/eval loop behind train.py.

    result = trainlib.loop.train_and_evaluate(config, workdir)

Order matters: every config check (all layers, mesh, batch divisibility, position table) runs
before the pipeline is built, and the pipeline's tokenizer checks run before anything compiles,
so a bad input costs seconds and raises ConfigError (train.py: exit code 2).

The loop resumes from the latest readable checkpoint in `workdir`: state, step, rng and the data
position (batch(step) is a pure function of (seed, step)), so a killed-and-resumed run computes
exactly the updates of an uninterrupted one.
"""

import concurrent.futures
import dataclasses
import json
import os
import signal
import time
from typing import Any

import jax
from absl import logging
from jax.experimental import multihost_utils

import objectives
from configs.errors import ConfigError
from trainlib import mesh as mesh_lib
from trainlib import metrics as metrics_lib
from trainlib import optim, rundir, sharding
from trainlib import state as state_lib
from trainlib import step as step_lib
from trainlib.checkpoint import Checkpointer, NonFiniteError

_POSITIVE_TRAIN_INTS = ("log_every", "eval_batches", "checkpoint_every", "keep_checkpoints")


def validate(config):
  """All config checks that need neither devices nor data. Raises ConfigError."""
  import models
  import pipeline
  models.validate(config.model)
  objectives.validate(config)
  pipeline.validate(config)
  optim.validate(config)
  sharding.rules(config)
  t = config.train
  for name in _POSITIVE_TRAIN_INTS:
    if not isinstance(t[name], int) or isinstance(t[name], bool) or t[name] < 1:
      raise ConfigError(f"train.{name}={t[name]!r} must be a positive integer")
  for name in ("eval_every", "profile_steps"):
    if not isinstance(t[name], int) or isinstance(t[name], bool) or t[name] < 0:
      raise ConfigError(f"train.{name}={t[name]!r} must be an integer >= 0")
  if config.data.seq_len > config.model.max_len:
    raise ConfigError(
        f"data.seq_len={config.data.seq_len} is longer than the position table "
        f"(model.max_len={config.model.max_len}); set data.seq_len <= {config.model.max_len} "
        "or raise model.max_len")


@dataclasses.dataclass
class RunResult:
  state: Any                  # final TrainState (sharded jax.Arrays)
  setup: state_lib.TrainSetup
  step: int                   # optimizer steps completed
  preempted: bool
  last_eval: dict | None      # summarized held-out metrics of the last evaluation


class _Preemption:
  """SIGTERM -> save and stop at the next step boundary.

  One process: our own handler. Several: JAX's preemption sync service (it owns SIGTERM and makes
  every host agree on the step at which to stop, so their checkpoint writes line up).
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    if jax.process_count() == 1:
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    logging.warning("SIGTERM: saving a checkpoint at the next step boundary, then stopping")
    self.requested = True

  def reached(self, step):
    if jax.process_count() == 1:
      return self.requested
    try:
      return multihost_utils.reached_preemption_sync_point(step)
    except RuntimeError:  # preemption service disabled
      return False

  def close(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class _Window:
  """Host-side sums of the metrics of the steps since the last progress line."""

  def __init__(self):
    self.sums, self.last = {}, {}

  def add(self, host_metrics):
    for name, (s, w) in host_metrics["sums"].items():
      acc = self.sums.setdefault(name, [0.0, 0.0])
      acc[0] += float(s)
      acc[1] += float(w)
    self.last = host_metrics

  def take(self):
    sums, self.sums = self.sums, {}
    return sums


def evaluate(setup, eval_step, params, pipe, num_batches):
  """Held-out metrics over batches 0..num_batches-1 of `pipe` (the same batches every time)."""
  totals = {}
  for i in range(num_batches):
    sums = jax.device_get(eval_step(params, step_lib.global_batch(setup, pipe.batch(i))))
    for name, (s, w) in sums.items():
      acc = totals.setdefault(name, [0.0, 0.0])
      acc[0] += float(s)
      acc[1] += float(w)
  return setup.objective.summarize(totals)


def _warn_config_change(workdir, config):
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  old, new = _flatten(rundir.read_json(path)), _flatten(rundir.config_dict(config))
  changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
  if changed:
    logging.warning("config differs from the one this workdir was started with: %s",
                    ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed))


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def train_and_evaluate(config, workdir, model=None) -> RunResult:
  """Trains `config` in `workdir` (resuming if it holds checkpoints). See module docstring."""
  import models
  import pipeline
  validate(config)
  mesh = mesh_lib.make_mesh(config)
  mesh_lib.validate_batch(config, mesh)
  row_index, row_count = mesh_lib.host_batch_rows(config, mesh)
  train_pipe = pipeline.make_pipeline(config, config.data.train_split,
                                      process_index=row_index, process_count=row_count)
  eval_pipe = pipeline.make_pipeline(config, config.data.eval_split,
                                     process_index=row_index, process_count=row_count)
  objectives.check_tokenizer(config, train_pipe.tokenizer)
  setup = state_lib.build_setup(config, mesh, model)

  primary = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  t = config.train
  tokens_per_step = t.global_batch_size * config.data.seq_len
  flops_per_token = setup.objective.flops_per_token(config.model, config.data, config.objective)
  peak, peak_source = metrics_lib.peak_flops(config)
  counts = models.param_counts(config.model)
  if primary:
    logging.info("config:\n%s", config)
    logging.info("mesh %s; MFU peak %.3g FLOP/s (%s)", mesh_lib.mesh_dict(mesh), peak, peak_source)
    _warn_config_change(workdir, config)
    rundir.write_config(workdir, config)
    rundir.write_provenance(
        workdir, config, data_fingerprint=train_pipe.fingerprint, mesh=mesh_lib.mesh_dict(mesh),
        train_flops_per_token=flops_per_token, peak_flops_per_sec=peak,
        peak_flops_source=peak_source, params_total=counts["params_total"],
        params_non_embedding=counts["params_non_embedding"])

  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=t.keep_checkpoints,
                      async_save=t.async_checkpoint, every=t.checkpoint_every)
  restored = ckpt.restore(setup.abstract_state)
  if restored is None:
    state, start = state_lib.init_state(setup), 0
  else:
    state, meta = restored
    start = int(jax.device_get(state.step))
    data_step = train_pipe.restore(meta["data"])  # warns if the data stream differs
    if data_step != start:
      raise RuntimeError(f"checkpoint holds state step {start} but data position {data_step}")
    logging.info("resumed from checkpoint step %d", start)
  ckpt_meta = lambda at: {"data": train_pipe.state_dict(at), "mesh": mesh_lib.mesh_dict(mesh),
                          "process_count": jax.process_count(), "config_hash": rundir.config_hash(config)}
  writer = metrics_lib.MetricsWriter(workdir)
  writer.drop_after(start if restored is not None else -1)  # rows past the resumed step redo
  status = lambda s, step, err=None: primary and rundir.write_status(workdir, s, step, t.num_steps, err)
  status("running", start)

  train_step = step_lib.make_train_step(setup)
  eval_step = step_lib.make_eval_step(setup)
  preemption = _Preemption()
  prefetch = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="batch")
  window, pending = _Window(), None
  last_saved = ckpt.latest_step()
  last_eval, eval_step_done, preempted = None, None, False
  timer_start, timer_steps = None, 0
  step = start

  def resolve():
    """Fetches the metrics of the newest dispatched step; stops on a non-finite loss."""
    nonlocal pending
    if pending is None:
      return
    done, device_metrics = pending
    pending = None
    host = jax.device_get(device_metrics)
    if not bool(host["finite"]):
      sums = setup.objective.summarize(host["sums"])
      message = (f"non-finite loss at step {done}: loss={sums['loss']} grad_norm="
                 f"{float(host['grad_norm'])}; the update was skipped and not checkpointed "
                 f"(last checkpoint: step {last_saved})")
      if t.stop_on_nonfinite:
        raise NonFiniteError(message + "; lower optim.learning_rate or set optim.clip_norm")
      logging.warning("%s; continuing (train.stop_on_nonfinite=False)", message)
    window.add(host)

  def save(at):
    nonlocal last_saved
    resolve()
    ckpt.save(at, state, ckpt_meta(at))
    last_saved = at

  def run_eval(at):
    nonlocal last_eval, eval_step_done, timer_start
    resolve()
    last_eval = evaluate(setup, eval_step, state.params, eval_pipe, t.eval_batches)
    eval_step_done = at
    writer.write(dict(last_eval, split="eval", step=at))
    if primary:
      logging.info("eval step %d: %s", at, ", ".join(f"{k} {v:.4f}" for k, v in sorted(last_eval.items())))
    timer_start = None  # eval time is not training time

  try:
    if start == 0 and t.eval_every:
      run_eval(0)  # the curve's starting point
    next_batch = prefetch.submit(train_pipe.batch, step) if step < t.num_steps else None
    while step < t.num_steps:
      batch = step_lib.global_batch(setup, next_batch.result())
      if step + 1 < t.num_steps:
        next_batch = prefetch.submit(train_pipe.batch, step + 1)
      state, device_metrics = train_step(state, batch)
      resolve()  # the previous step's metrics, while this one runs
      pending, step = (step + 1, device_metrics), step + 1
      if timer_start is None:  # first step (compile) or after an eval: restart the clock
        resolve()
        timer_start, timer_steps = time.perf_counter(), 0
      else:
        timer_steps += 1
      if t.profile_steps and primary and step == start + 2:
        jax.profiler.start_trace(os.path.join(workdir, "profile"))
      if t.profile_steps and primary and step == start + 2 + t.profile_steps:
        jax.profiler.stop_trace()
      if step % t.log_every == 0 or step == t.num_steps:
        resolve()
        elapsed = time.perf_counter() - timer_start
        steps_per_sec = timer_steps / elapsed if timer_steps and elapsed > 0 else 0.0
        row = setup.objective.summarize(window.take())
        tokens_per_sec = steps_per_sec * tokens_per_step
        row.update(split="train", step=step, learning_rate=float(window.last["learning_rate"]),
                   grad_norm=float(window.last["grad_norm"]), tokens_per_sec=tokens_per_sec,
                   mfu=tokens_per_sec * flops_per_token / peak, tokens_seen=step * tokens_per_step,
                   flops_seen=step * tokens_per_step * flops_per_token, time=time.time())
        writer.write(row)
        metrics_lib.log_progress(row, t.num_steps, steps_per_sec)
        status("running", step)
      if t.eval_every and step % t.eval_every == 0:
        run_eval(step)
      if step % t.checkpoint_every == 0 and step < t.num_steps:
        save(step)
      if step < t.num_steps and preemption.reached(step):
        save(step)
        preempted = True
        break
    resolve()
    if not preempted:
      if eval_step_done != step:
        run_eval(step)
      if last_saved != step:
        save(step)
    ckpt.wait()
    if preempted:
      status("running", step, f"preempted (SIGTERM) at step {step}; checkpoint saved, rerun to resume")
    else:
      status("finished", step)
    return RunResult(state=state, setup=setup, step=step, preempted=preempted, last_eval=last_eval)
  except BaseException as e:
    status("failed", step, f"{type(e).__name__}: {e}")
    raise
  finally:
    prefetch.shutdown(wait=False, cancel_futures=True)
    preemption.close()
    writer.close()
    ckpt.close()
