"""The train/eval loop behind train.py.

    result = trainlib.loop.train_and_evaluate(config, workdir)

Order matters: every config check (all layers, mesh, batch divisibility, position table) runs
before the pipeline is built, and the pipeline's tokenizer checks run before anything compiles,
so a bad input costs seconds and raises ConfigError (train.py: exit code 2).

The loop resumes from the latest intact checkpoint in `workdir` (readable, matching its
checksums, finite: trainlib/checkpoint.py): state, step, rng and the data position (batch(step)
is a pure function of (seed, step)), so a killed-and-resumed run computes exactly the updates of
an uninterrupted one. A run already finished at train.num_steps is left untouched (nothing is
rewritten); a larger num_steps continues it. metrics.jsonl holds one row per (split, step)
through any sequence of kills, resumes and reruns: rows past the restored step are dropped, and
the restored checkpoint's meta says whether its step was evaluated before it was saved.

The run directory is trainlib/rundir.py's: the loop takes its writer lock before anything
compiles (a second writer: rundir.LockHeld, exit 2), decides again under the lock whether the
run is finished, removes saves a kill or a full disk cut short, and turns a failed write into
one rundir.WriteFailed line naming the path, the free space and the last intact checkpoint
(status.json `failed`; exit 1), after which the same command resumes from that checkpoint.
"""

import dataclasses
import os
import signal
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

import models
import objectives
import pipeline
from configs.errors import ConfigError
from pipeline import prefetch
from trainlib import mesh as mesh_lib
from trainlib import metrics as metrics_lib
from trainlib import fs, optim, rundir, sharding, step0
from trainlib import state as state_lib
from trainlib import step as step_lib
from trainlib.checkpoint import Checkpointer, NonFiniteError

# How long processes wait for each other's compilation before the first step (a pod compiles
# for minutes; the barrier only fails if a process died or hangs).
_LINE_UP_TIMEOUT_MS = 60 * 60 * 1000

_POSITIVE_TRAIN_INTS = ("log_every", "eval_batches", "checkpoint_every", "keep_checkpoints")


def validate(config):
  """All config checks that need neither devices nor data. Raises ConfigError."""
  models.validate(config.model)
  pipeline.validate(config, objectives.validate(config))
  optim.validate(config)
  sharding.rules(config)
  step0.validate(config)
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
  already_finished: bool = False  # the workdir held a finished run: nothing ran (state is None)


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
  old = rundir.read_config(workdir)  # None: missing or damaged (then rewritten)
  if old is None:
    return
  old, new = _flatten(old), _flatten(rundir.config_dict(config))
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


def finished_step(config, workdir):
  """The step at which the run in `workdir` finished, if it did at or past train.num_steps and
  its checkpoint of that step is there; else None. Touches nothing."""
  return rundir.finished_step(workdir, config.train.num_steps)


def _finished_result(config, workdir):
  """RunResult(already_finished=True) after saying so, if `workdir` holds a finished run."""
  done = finished_step(config, workdir)
  if done is None:
    return None
  if jax.process_index() == 0:
    _warn_config_change(workdir, config)
    print(f"{workdir}: this run finished at step {done} (train.num_steps="
          f"{config.train.num_steps}); nothing to do, nothing rewritten. Raise "
          "--config.train.num_steps to continue it.", flush=True)
  return RunResult(state=None, setup=None, step=done, preempted=False, last_eval=None,
                   already_finished=True)


def train_and_evaluate(config, workdir, model=None) -> RunResult:
  """Trains `config` in `workdir` (resuming if it holds checkpoints). See module docstring."""
  validate(config)
  finished = _finished_result(config, workdir)
  if finished is not None:
    return finished
  run_plan = step0.plan(config, workdir)  # ConfigError before anything is built
  mesh = mesh_lib.make_mesh(config)
  mesh_lib.validate_batch(config, mesh)
  row_index, row_count = mesh_lib.host_batch_rows(config, mesh)
  pipes = [objectives.make_pipeline(config, split, process_index=row_index,
                                    process_count=row_count)
           for split in (config.data.train_split, config.data.eval_split)]
  objectives.check_tokenizer(config, pipes[0].tokenizer)
  setup = state_lib.build_setup(config, mesh, model)
  step0.check(config, pipes[0].tokenizer, setup)  # before the workdir is written
  fs.makedirs(workdir)
  lock = rundir.hold_writer_lock(workdir)  # LockHeld: another process writes here (exit 2)
  try:
    # again under the lock: a run that held it may have finished since the first look
    return (_finished_result(config, workdir)
            or _Trainer(setup, workdir, *pipes, run_plan=run_plan).run())
  finally:
    if lock is not None:
      lock.release()


class _Trainer:
  """One run of the loop; the state and the bookkeeping the steps share."""

  def __init__(self, setup, workdir, train_pipe, eval_pipe, run_plan=None):
    self.run_plan = run_plan
    self.setup, self.workdir, self.train_pipe, self.eval_pipe = setup, workdir, train_pipe, eval_pipe
    config = self.config = setup.config
    self.t = config.train
    self.primary = jax.process_index() == 0
    self.tokens_per_step = self.t.global_batch_size * config.data.seq_len
    self.flops_per_token = setup.objective.flops_per_token(config.model, config.data, config.objective)
    self.peak, peak_source = metrics_lib.peak_flops(config)
    mesh = mesh_lib.mesh_dict(setup.mesh)
    if self.primary:
      counts = models.param_counts(config.model)
      logging.info("config:\n%s", config)
      logging.info("mesh %s; MFU peak %.3g FLOP/s (%s)", mesh, self.peak, peak_source)
      _warn_config_change(workdir, config)
      rundir.clean_partial_checkpoints(workdir)  # we hold the lock: no other save is under way
      rundir.write_config(workdir, config)
      rundir.write_provenance(
          workdir, config, data_fingerprint=train_pipe.fingerprint, mesh=mesh,
          train_flops_per_token=self.flops_per_token, peak_flops_per_sec=self.peak,
          peak_flops_source=peak_source, params_total=counts["params_total"],
          params_non_embedding=counts["params_non_embedding"])
    self.ckpt_meta = {"mesh": mesh, "process_count": jax.process_count(),
                      "config_hash": rundir.config_hash(config)}
    self.ckpt = Checkpointer(rundir.checkpoints_dir(workdir), keep=self.t.keep_checkpoints,
                             async_save=self.t.async_checkpoint, every=self.t.checkpoint_every)
    self.writer = metrics_lib.MetricsWriter(workdir)
    self.window, self.pending = _Window(), None
    self.timer_start, self.timer_steps = None, 0
    self.last_eval, self.eval_done_at = None, None
    self.restored_from = None  # step of the checkpoint this run resumed from

  def _restore_or_init(self):
    restored = self.ckpt.restore(self.setup.abstract_state)  # may set an unreadable one aside
    self.last_saved = self.ckpt.latest_step()
    if restored is None:
      self.writer.drop_after(-1)  # a fresh start: rows of an earlier attempt are stale
      return step0.initial_state(self.setup, self.run_plan, self.train_pipe, self.workdir,
                                 self.primary)
    state, meta = restored
    start = int(jax.device_get(state.step))
    data_step = self.train_pipe.restore(meta["data"])  # warns if the data stream differs
    if data_step != start:
      raise RuntimeError(f"checkpoint holds state step {start} but data position {data_step}")
    logging.info("resumed from checkpoint step %d", start)
    self.restored_from = start
    # Every process reads "evaluated" from the checkpoint (not from metrics.jsonl, which only
    # process 0 may see), so all agree on whether the eval at `start` runs again.
    if meta.get("evaluated"):
      self.eval_done_at = start
    # rows past the checkpoint are produced again, and so is its eval row if it was not saved
    self.writer.drop_after(start, keep_eval_at_step=bool(meta.get("evaluated")))
    return state, start

  def _status(self, state, step, error=None):
    if self.primary:
      rundir.write_status(self.workdir, state, step, self.t.num_steps, error)

  def _resolve(self):
    """Fetches the metrics of the newest dispatched step; stops on a non-finite loss."""
    if self.pending is None:
      return
    (done, device_metrics), self.pending = self.pending, None
    host = jax.device_get(device_metrics)
    if not bool(host["finite"]):
      loss = self.setup.objective.summarize(host["sums"])["loss"]
      message = (f"non-finite loss at step {done}: loss={loss} grad_norm="
                 f"{float(host['grad_norm'])}; the update was skipped and not checkpointed "
                 f"(last checkpoint: step {self.last_saved})")
      if self.restored_from is not None and done == self.restored_from + 1:
        message += (f"; this is the first step after restoring checkpoint {self.restored_from}, "
                    "so that checkpoint is the likely cause (it matched its checksums and its "
                    "parameters were finite: look for a changed config or data stream too)")
      if self.t.stop_on_nonfinite:
        raise NonFiniteError(message + "; lower optim.learning_rate or check the data "
                             "(train.stop_on_nonfinite=False skips such steps instead)")
      logging.warning("%s; continuing (train.stop_on_nonfinite=False)", message)
    self.window.add(host)

  def _save(self, state, step):
    self._resolve()  # never save past an unchecked step
    with rundir.writing(os.fspath(self.ckpt.directory)):
      # an async save's write error surfaces here, at the next save (or at wait/close)
      self.ckpt.save(step, state, dict(self.ckpt_meta, data=self.train_pipe.state_dict(step),
                                       evaluated=self.eval_done_at == step))
    self.last_saved = step

  def _eval(self, params, step):
    self._resolve()
    self.last_eval = evaluate(self.setup, self.eval_step, params, self.eval_pipe, self.t.eval_batches)
    self.eval_done_at = step
    self.writer.write(dict(self.last_eval, split="eval", step=step))
    if self.primary:
      logging.info("eval step %d: %s", step,
                   ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.last_eval.items())))
    self.timer_start = None  # evaluation time is not training time

  def _log(self, step):
    self._resolve()
    elapsed = time.perf_counter() - self.timer_start
    steps_per_sec = self.timer_steps / elapsed if self.timer_steps and elapsed > 0 else 0.0
    tokens_per_sec = steps_per_sec * self.tokens_per_step
    row = self.setup.objective.summarize(self.window.take())
    last = self.window.last
    row.update(split="train", step=step, learning_rate=float(last["learning_rate"]),
               grad_norm=float(last["grad_norm"]), tokens_per_sec=tokens_per_sec,
               mfu=tokens_per_sec * self.flops_per_token / self.peak,
               tokens_seen=step * self.tokens_per_step,
               flops_seen=step * self.tokens_per_step * self.flops_per_token, time=time.time())
    self.writer.write(row)
    metrics_lib.log_progress(row, self.t.num_steps, steps_per_sec)
    self._status("running", step)

  def _compile_and_line_up(self, train_step, state):
    """Compiles every step with cross-process collectives, then waits for all processes.

    CPU (gloo) collectives build a communicator the first time a group of devices meets, and
    its rendezvous gives up after a fixed 30 s: if one process is still compiling (a loaded
    machine, a cold compile cache) when another enters the first all-reduce, the early one fails
    and the late one then waits forever. So compile first (times differ per process), meet at a
    barrier of the distributed client (no device collective, long timeout), then start.
    Returns the compiled train step; the eval step and the checkpoint check are swapped in place.
    """
    batch = step_lib.abstract_batch(self.setup)
    compiled = train_step.lower(state, batch).compile()
    self.eval_step = self.eval_step.lower(state.params, batch).compile()
    self.ckpt.compile_checks(state)
    # jax has no public barrier on its distributed client; orbax's public multihost API wraps
    # that client's wait_at_barrier (no device collective, our timeout).
    ocp.multihost.get_barrier_sync_fn()(key="pancake_steps_compiled",
                                        timeout_ms=_LINE_UP_TIMEOUT_MS)
    return compiled

  def run(self) -> RunResult:
    t, step = self.t, 0
    preemption = _Preemption()
    batches = prefetch.BatchPrefetcher(self.train_pipe, self.config.data.num_workers)
    profiling, preempted, last, failing = False, False, t.num_steps - 1, False
    try:
      state, start = self._restore_or_init()
      step = start
      if step < t.num_steps:
        batches.schedule(step, last)  # built while the steps compile
      self._status("running", step)
      train_step = step_lib.make_train_step(self.setup)
      self.eval_step = step_lib.make_eval_step(self.setup)
      if jax.process_count() > 1:
        train_step = self._compile_and_line_up(train_step, state)
      if start == 0 and t.eval_every:
        self._eval(state.params, 0)  # the curve's starting point
      while step < t.num_steps:
        # the next batches are being built (thread or worker processes) while step s runs
        batch = step_lib.global_batch(self.setup, batches.get(step, last))
        state, device_metrics = train_step(state, batch)
        self._resolve()  # the previous step's metrics, while this one runs
        self.pending, step = (step + 1, device_metrics), step + 1
        if self.timer_start is None:  # first step (compile) or after an eval: restart the clock
          self._resolve()
          self.timer_start, self.timer_steps = time.perf_counter(), 0
        else:
          self.timer_steps += 1
        if t.profile_steps and self.primary and step == start + 2:  # after compilation
          jax.profiler.start_trace(rundir.profile_dir(self.workdir))
          profiling = True
        if profiling and step == start + 2 + t.profile_steps:
          jax.profiler.stop_trace()
          profiling = False
        if step % t.log_every == 0 or step == t.num_steps:
          self._log(step)
        if t.eval_every and step % t.eval_every == 0:
          self._eval(state.params, step)
        if step % t.checkpoint_every == 0 and step < t.num_steps:
          self._save(state, step)
        if step < t.num_steps and preemption.reached(step):
          if self.last_saved != step:  # a SIGTERM on a checkpoint step saves once
            self._save(state, step)
          preempted = True
          break
      self._resolve()
      if not preempted:
        if self.eval_done_at != step:
          self._eval(state.params, step)
        if self.last_saved != step:
          self._save(state, step)
      with rundir.writing(os.fspath(self.ckpt.directory)):
        self.ckpt.wait()
      if preempted:
        self._status("running", step,
                     f"preempted (SIGTERM) at step {step}; checkpoint saved, rerun to resume")
      else:
        self._status("finished", step)
      return RunResult(state=state, setup=self.setup, step=step, preempted=preempted,
                       last_eval=self.last_eval)
    except rundir.WriteFailed as e:
      failing = True
      raise self._write_failed(e, step) from None
    except BaseException as e:
      failing = True
      self._status_after_failure(step, f"{type(e).__name__}: {e}")
      raise
    finally:
      if profiling:
        jax.profiler.stop_trace()
      batches.close()
      preemption.close()
      self.writer.close()
      self._close_checkpoints(failing)

  def _write_failed(self, error, step):
    """-> WriteFailed whose one line also names the last intact checkpoint; recorded in
    status.json as far as the disk allows."""
    try:  # a save still in flight may yet commit: name the checkpoint the rerun will find
      self.ckpt.wait()
    except Exception:  # noqa: BLE001  (the failed save's own error, raised again)
      pass
    failed = rundir.WriteFailed(error.path, error.cause, then=(
        f"{rundir.last_checkpoint_text(self.workdir)}: free space and rerun the same command to "
        "continue from it"))
    self._status_after_failure(step, str(failed))
    return failed

  def _status_after_failure(self, step, message):
    try:
      self._status("failed", step, message)
    except rundir.WriteFailed as again:  # the disk that failed may refuse this one too
      logging.warning("%s could not record the failure: %s", rundir.STATUS, again)

  def _close_checkpoints(self, failing):
    """Waits for the last save and closes orbax; after a failure, a save's error (already
    reported) must not replace it."""
    if not failing:
      with rundir.writing(os.fspath(self.ckpt.directory)):
        self.ckpt.close()
      return
    try:
      self.ckpt.close()
    except Exception as e:  # noqa: BLE001  (orbax re-raises the failed async save's error)
      logging.warning("closing the checkpoints after the failure: %s: %s", type(e).__name__,
                      str(e).splitlines()[0][:300] if str(e) else "")
