"""Checkpoints through orbax's CheckpointManager: state + a small JSON of where the data stands.

Layout: `<workdir>/checkpoints/<step>/{state,meta}`. `state` is the TrainState (params, optimizer
state, step, rng); `meta` holds the data position (the step of the next batch: batch(step) is a
pure function of (seed, step), so the step *is* the position), the data fingerprint and the mesh.

- Saves are async (orbax writes in a background thread after the arrays are copied off device);
  only finished saves are committed, so a kill -9 mid-save leaves the previous checkpoint latest.
- Restore takes an abstract state whose leaves carry target shardings: orbax reads each shard
  straight into the new layout, so a run saved on fsdp=8 restores onto data=2 x tensor=4.
- Integrity: `meta` also holds a checksum of every array of the state (trainlib/checksum.py,
  computed on the devices that hold the shards). A restore recomputes them on the restored
  arrays and checks that the parameters are finite. A latest checkpoint that cannot be read, or
  whose arrays do not match their checksums, or whose parameters are not finite, is moved to
  `<workdir>/checkpoints.corrupt/` with a warning naming the step and the arrays, and the
  previous one is tried. (Orbax/tensorstore check only the checkpoint's structure: zarr3 shard
  indices carry a crc32c, the array bytes none.)
- A state with a non-finite parameter is refused (`NonFiniteError`): a NaN is never saved.
"""

import time

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from trainlib import checksum, rundir
from trainlib.step import all_finite


class NonFiniteError(RuntimeError):
  """The loss, a gradient or a parameter is NaN/Inf."""


class CorruptCheckpointError(RuntimeError):
  """A checkpoint's arrays do not match the checksums saved with them, or are not finite."""


def verify(step, arrays, meta, finite, checksummer, directory):
  """Raises CorruptCheckpointError naming the step and arrays unless `arrays` (a state, or
  {"params": ...}) match meta["checksums"] and its parameters are finite."""
  expected = meta.get("checksums")
  if expected is None:
    logging.warning("checkpoint %d in %s has no checksums (saved before pancake recorded them): "
                    "only finiteness is checked", step, directory)
  else:
    bad = checksum.mismatches(expected, checksummer(arrays))
    if bad:
      raise CorruptCheckpointError(
          f"checkpoint {step} in {directory}: {len(bad)} array(s) do not match the checksums "
          f"saved with them: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
  params = arrays["params"] if isinstance(arrays, dict) else arrays.params
  if not bool(jax.device_get(finite(params))):
    raise CorruptCheckpointError(f"checkpoint {step} in {directory}: the restored parameters "
                                 "are not finite")


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
    self._checksums = checksum.Checksummer()

  def compile_checks(self, state):
    """Compiles the finiteness check and the checksums for `state` now (multi-process runs
    compile every collective before the processes line up; loop._Trainer._compile_and_line_up)."""
    self._finite = jax.jit(all_finite).lower(state.params).compile()
    self._checksums.compile(state)

  def latest_step(self):
    return self.manager.latest_step()

  def all_steps(self):
    return sorted(self.manager.all_steps())

  def save(self, step, state, meta, force=True, checksums=True):
    """Saves `state` at `step` with the checksums of its arrays (`checksums=False`: without,
    as checkpoints before them were; for the benchmark) unless a parameter is non-finite (then
    raises NonFiniteError)."""
    if not bool(jax.device_get(self._finite(state.params))):
      raise NonFiniteError(f"refusing to checkpoint step {step}: the parameters are not finite")
    meta = dict(meta, step=int(step))
    if checksums:
      meta["checksums"] = self._checksums(state)
    saved = self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state),
                                      meta=ocp.args.JsonSave(meta)),
        force=force)
    return saved

  def restore(self, abstract_state, step=None, verify_checksums=True):
    """-> (state, meta) of `step` (default: latest readable and intact), or None when there is
    none. With an explicit `step`, an unreadable or corrupt checkpoint raises instead.

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
        state, meta = restored["state"], dict(restored["meta"])
        if verify_checksums:
          verify(s, state, meta, self._finite, self._checksums, self.directory)
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many kinds)
        if step is not None:
          raise
        what = ("does not match its checksums" if isinstance(e, CorruptCheckpointError)
                else "cannot be restored")
        logging.warning("checkpoint %d in %s %s (%s: %s); moving it to %s and falling back to "
                        "the previous checkpoint", s, self.directory, what, type(e).__name__,
                        str(e).splitlines()[0][:500], self._corrupt_dir())
        self._quarantine(s)
        continue
      return state, meta
    return None

  def _corrupt_dir(self):
    return epath.Path(rundir.corrupt_area(self.directory))

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
  """Eval: only the parameters of a checkpoint -> (params, step), verified against the
  checksums saved with them (CorruptCheckpointError).

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
          partial_restore=True),
      meta=ocp.args.JsonRestore()))
  manager.close()
  params = {"params": restored["state"]["params"]}
  verify(step, params, dict(restored["meta"]), jax.jit(all_finite), checksum.Checksummer(),
         directory)  # CorruptCheckpointError names the arrays; eval.py reports it (exit 2)
  return params["params"], step
