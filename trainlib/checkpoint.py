"""Checkpoints through orbax's CheckpointManager: state + a small JSON of where the data stands.

Layout: `<workdir>/checkpoints/<step>/{state,meta}`. `state` is the TrainState (params, optimizer
state, step, rng); `meta` holds the data position (the step of the next batch: batch(step) is a
pure function of (seed, step), so the step *is* the position), the data fingerprint and the mesh.

- Saves are async (orbax writes in a background thread after the arrays are copied off device);
  only finished saves are committed, so a kill -9 mid-save leaves the previous checkpoint latest.
- Restore takes an abstract state whose leaves carry target shardings: orbax reads each shard
  straight into the new layout, so a run saved on fsdp=8 restores onto data=2 x tensor=4.
- A latest checkpoint that cannot be read is moved to `<workdir>/checkpoints.corrupt/` with a
  warning and the previous one is tried.
- A state with a non-finite parameter is refused (`NonFiniteError`): a NaN is never saved.
"""

import time

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from trainlib.step import all_finite


class NonFiniteError(RuntimeError):
  """The loss, a gradient or a parameter is NaN/Inf."""


class Checkpointer:
  """One run's checkpoints. Every process calls every method (orbax coordinates the writes)."""

  def __init__(self, directory, *, keep=3, async_save=True, every=1):
    self.directory = epath.Path(directory)
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=max(int(every), 1), max_to_keep=keep, create=True,
        enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "meta"))
    self._finite = jax.jit(all_finite)

  def compile_checks(self, params):
    """Compiles the finiteness check for `params` now (multi-process runs compile every
    collective before the processes line up; see loop._Trainer._compile_and_line_up)."""
    self._finite = jax.jit(all_finite).lower(params).compile()

  def latest_step(self):
    return self.manager.latest_step()

  def all_steps(self):
    return sorted(self.manager.all_steps())

  def save(self, step, state, meta, force=True):
    """Saves `state` at `step` unless a parameter is non-finite (then raises NonFiniteError)."""
    if not bool(jax.device_get(self._finite(state.params))):
      raise NonFiniteError(f"refusing to checkpoint step {step}: the parameters are not finite")
    saved = self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state),
                                      meta=ocp.args.JsonSave(dict(meta, step=int(step)))),
        force=force)
    return saved

  def restore(self, abstract_state, step=None):
    """-> (state, meta) of `step` (default: latest readable), or None when there is none.

    `abstract_state` leaves are ShapeDtypeStructs with the *target* shardings.
    """
    steps = [step] if step is not None else sorted(self.manager.all_steps(), reverse=True)
    for s in steps:
      try:
        restored = self.manager.restore(s, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(
                abstract_state,
                restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state)),
            meta=ocp.args.JsonRestore()))
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many kinds)
        if step is not None:
          raise
        logging.warning("checkpoint %d in %s cannot be restored (%s: %s); moving it to %s and "
                        "falling back to the previous checkpoint", s, self.directory,
                        type(e).__name__, str(e).splitlines()[0][:300], self._corrupt_dir())
        self._quarantine(s)
        continue
      return restored["state"], dict(restored["meta"])
    return None

  def _corrupt_dir(self):
    return self.directory.parent / (self.directory.name + ".corrupt")

  def _quarantine(self, step):
    """Moves an unreadable step aside (kept for inspection) so later saves can reuse its number."""
    if jax.process_index() == 0:
      target = self._corrupt_dir()
      target.mkdir(parents=True, exist_ok=True)
      (self.directory / str(step)).rename(target / f"{step}-{int(time.time())}")
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"pancake_quarantine_{step}")
    self.manager.reload()

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def restore_params(directory, abstract_params, step=None):
  """Eval: only the parameters of a checkpoint -> (params, step).

  `directory` is `<workdir>/checkpoints`; `abstract_params` is `setup.abstract_state.params` (or
  any tree of ShapeDtypeStructs with shardings), so eval may use a mesh of its own.
  """
  manager = ocp.CheckpointManager(
      epath.Path(directory), options=ocp.CheckpointManagerOptions(read_only=True),
      item_names=("state", "meta"))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {directory}")
  item = {"params": abstract_params}
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
          item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
          partial_restore=True)))
  manager.close()
  return restored["state"]["params"], step
