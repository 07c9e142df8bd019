"""The run directory: its file names, their writers and tolerant readers, and the writer lock.

Formats: docs/ARCHITECTURE.md, "Run directory". This is the only module that spells a
run-directory file name (tests/test_rundir_names.py); train.py's loop, eval.py, from_run, the
Hugging Face export, figures/ and launch/ call it. Local paths and gs:// alike (trainlib/fs.py).

- Writers: `write_config`, `write_provenance`, `write_status`, `write_init_from_run`,
  `write_eval_result`; each file is written whole and atomically. Metrics rows are appended by
  trainlib.metrics.MetricsWriter to `metrics_path`.
- Readers never raise on a damaged file. A JSON file that is not JSON (a crash or a full disk
  mid-write on a filesystem without atomic rename) reads as None with one warning line naming
  it: train.py rewrites it, figures/ and eval.py carry on without it. `read_metric_lines`
  drops a torn last line of metrics.jsonl with a warning saying how many bytes it had.
- Checkpoints: `checkpoint_steps` (orbax's committed steps: one answer for the loop, eval,
  from_run and the export), `corrupt_area` (where a checkpoint that fails its checksums is set
  aside), `clean_partial_checkpoints` (a save cut short by a kill or a full disk leaves
  `<step>.orbax-checkpoint-tmp*`; the next writer removes it).
- The writer lock (`hold_writer_lock`): at most one process group writes a run directory. The
  lock file names its holder (host, pid, start time, command). Locally it is an flock on the
  lock file (the kernel drops it when the holder dies, so a killed run's lock is taken over with
  a warning); on gs:// it is an object created only if absent (a generation precondition, gcsfs
  `mode="create"`), taken over when its holder ran on this host and is no longer running.
  eval.py and figures/ read without it.
- `WriteFailed`: a write that failed (a full disk above all), with the path and the free space.
"""

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid

from absl import logging

from trainlib import fs

# ---- names (nothing outside this module spells them) ----
CONFIG = "config.json"
PROVENANCE = "provenance.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
INIT_FROM_RUN = "init_from_run.json"
WRITER_LOCK = "writer.lock"
CHECKPOINTS = "checkpoints"
_CORRUPT_SUFFIX = ".corrupt"
CORRUPT_CHECKPOINTS = CHECKPOINTS + _CORRUPT_SUFFIX
PARTIAL_CHECKPOINT = ".orbax-checkpoint-tmp"  # orbax's mark of a save not yet committed
EVAL = "eval"
HARNESS_TASKS = "harness_tasks"  # inside EVAL
TENSORBOARD = "tb"
PROFILE = "profile"
# Not inside a run directory: ROOT/sweep.json, the record of a sweep's runs (launch writes it,
# figures reads it).
SWEEP_RECORD = "sweep.json"
# What tests/test_rundir_names.py looks for outside this module. "eval" and "tb" are left out:
# "eval" is also a metrics split, and both are words of ordinary messages.
FILE_NAMES = (CONFIG, PROVENANCE, STATUS, METRICS, INIT_FROM_RUN, WRITER_LOCK, CHECKPOINTS,
              CORRUPT_CHECKPOINTS, PARTIAL_CHECKPOINT, SWEEP_RECORD)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(workdir):
  return os.path.join(workdir, CONFIG)


def provenance_path(workdir):
  return os.path.join(workdir, PROVENANCE)


def status_path(workdir):
  return os.path.join(workdir, STATUS)


def metrics_path(workdir):
  return os.path.join(workdir, METRICS)


def lock_path(workdir):
  return os.path.join(workdir, WRITER_LOCK)


def checkpoints_dir(workdir):
  return os.path.join(workdir, CHECKPOINTS)


def corrupt_area(checkpoint_dir):
  """Where checkpoints of `checkpoint_dir` that fail verification are moved (a sibling)."""
  return os.fspath(checkpoint_dir).rstrip("/") + _CORRUPT_SUFFIX


def eval_dir(workdir):
  return os.path.join(workdir, EVAL)


def eval_result_path(workdir, suite):
  return os.path.join(eval_dir(workdir), f"{suite}.json")


def harness_tasks_dir(workdir):
  """Where evals/harness.py writes the run's local lm-eval tasks (task files + data)."""
  return os.path.join(eval_dir(workdir), HARNESS_TASKS)


def tensorboard_dir(workdir, *sub):
  return os.path.join(workdir, TENSORBOARD, *sub)


def profile_dir(workdir):
  return os.path.join(workdir, PROFILE)


def sweep_record_path(root):
  return os.path.join(root, SWEEP_RECORD)


def is_run_directory(filenames) -> bool:
  """Whether a folder holding `filenames` is a run directory (figures' discovery)."""
  return CONFIG in filenames or STATUS in filenames


# ---- failed writes ----
class WriteFailed(RuntimeError):
  """A run-directory write failed (full disk, quota, I/O error): one line naming the path and
  the free space there. train.py and eval.py exit 1 with it."""

  def __init__(self, path, cause, then=None):
    self.path, self.cause = path, cause
    message = f"cannot write {path}: {_why(cause)} ({free_space_text(path)})"
    super().__init__(f"{message}; {then}" if then else message)


def _no_space(cause) -> bool:
  text = str(cause)
  return getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
      "No space left on device" in text or "os_error_code='28'" in text)


def _why(cause) -> str:
  if _no_space(cause):
    return "no space left on device"
  text = str(cause)
  return f"{type(cause).__name__}: {' '.join(text.split())[:300]}"


def free_space_text(path) -> str:
  if fs.is_remote(path):
    return "free space unknown: an object store"
  probe = path
  while probe and not os.path.exists(probe):
    parent = os.path.dirname(probe)
    probe = parent if parent != probe else ""
  if not probe:
    return "free space unknown"
  free = shutil.disk_usage(probe).free
  return f"{free / 2**20:.1f} MiB free there"


@contextlib.contextmanager
def writing(path):
  """Turns an error raised while writing `path` into WriteFailed (already one: kept)."""
  try:
    yield
  except WriteFailed:
    raise
  except (OSError, ValueError, RuntimeError) as e:  # orbax/tensorstore: ValueError, RuntimeError
    if isinstance(e, OSError) or _is_write_error_text(str(e)):
      raise WriteFailed(_failed_file(path, e), e) from e
    raise


def _failed_file(path, error):
  """The file under `path` that the error names (tensorstore quotes it), else `path`."""
  named = getattr(error, "filename", None)
  inside = [p for p in re.findall(r'"([^"]+)"', str(error)) + [named or ""]
            if p.startswith(os.fspath(path))]
  return max(inside, key=len) if inside else path


def _is_write_error_text(text) -> bool:
  """tensorstore's messages for a failed write (orbax passes them on as ValueError)."""
  return any(mark in text for mark in ("Error writing", "Failed writing", "No space left on device",
                                       "os_error_code="))


# ---- JSON files ----
def read_record(path):
  """The JSON object in `path`; None if it is missing, or damaged (one warning line naming it)."""
  try:
    text = fs.read_text(path)
  except FileNotFoundError:
    return None
  except OSError as e:
    logging.warning("%s cannot be read (%s: %s); carrying on without it", path,
                    type(e).__name__, e)
    return None
  try:
    record = json.loads(text)
  except ValueError as e:
    logging.warning("%s is not valid JSON (%d bytes, %s); carrying on without it%s", path,
                    len(text.encode()), e, "" if text else " (empty)")
    return None
  if not isinstance(record, dict):
    logging.warning("%s holds a %s, not a JSON object; carrying on without it", path,
                    type(record).__name__)
    return None
  return record


def read_config(workdir):
  return read_record(config_path(workdir))


def read_provenance(workdir):
  return read_record(provenance_path(workdir))


def read_status(workdir):
  return read_record(status_path(workdir))


def read_init_from_run(workdir):
  return read_record(os.path.join(workdir, INIT_FROM_RUN))


def config_dict(config):
  return json.loads(config.to_json())


def canonical_json(config) -> str:
  return json.dumps(config_dict(config), sort_keys=True, separators=(",", ":"))


def config_hash(config) -> str:
  """sha256 of the config's canonical JSON (sorted keys, no spaces), first 16 hex digits."""
  return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def git_info():
  """(commit, dirty) of the code that runs, or (None, None) outside a git checkout."""
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                            capture_output=True, text=True, timeout=10, check=True).stdout
    return commit, bool(status.strip())
  except (OSError, subprocess.SubprocessError):
    return None, None


def _write(path, record):
  with writing(path):
    fs.write_json(path, record)


def write_config(workdir, config):
  _write(config_path(workdir), config_dict(config))


def write_provenance(workdir, config, **fields):
  """provenance.json: git state, config hash, jax version, device counts, plus `fields`
  (data_fingerprint, mesh, params_total, params_non_embedding, train_flops_per_token, ...)."""
  import jax  # late: start-up time (figures/ and launch/ read run directories without JAX)
  commit, dirty = git_info()
  record = {
      "git_commit": commit,
      "git_dirty": dirty,
      "config_hash": config_hash(config),
      "jax_version": jax.__version__,
      "num_devices": jax.device_count(),
      "process_count": jax.process_count(),
      "command": " ".join(sys.argv),
  }
  record.update(fields)
  _write(provenance_path(workdir), record)


def _now():
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_status(workdir, state, step, num_steps, error=None):
  """status.json: {"state": running|finished|failed, "step", "num_steps", "error", "updated"}.

  On a full local disk (where a run's failure must still be recorded) the file is rewritten in
  place, in the blocks it already has, when the atomic write finds no room for a new one: a
  torn result is what the readers tolerate anyway."""
  path = status_path(workdir)
  record = {"state": state, "step": int(step), "num_steps": int(num_steps), "error": error,
            "updated": _now()}
  try:
    _write(path, record)
  except WriteFailed as e:
    if not (_no_space(e.cause) and not fs.is_remote(path) and os.path.exists(path)):
      raise
    with writing(path), open(path, "r+") as f:
      f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
      f.truncate()


def write_init_from_run(workdir, record):
  _write(os.path.join(workdir, INIT_FROM_RUN), record)


def write_eval_result(workdir, suite, record):
  _write(eval_result_path(workdir, suite), record)


def training_status(workdir, num_steps=None):
  """(complete, state_text, step, num_steps) from status.json.

  Complete means state "finished" with step >= num_steps. A run that died without writing
  "failed" stays "running" (with an old `updated` time) and is reported as incomplete.
  """
  status = read_status(workdir)
  if status is None:
    if fs.isdir(workdir):
      return False, f"incomplete (no {STATUS})", None, num_steps
    return False, "not started", None, num_steps
  step = status.get("step")
  total = status.get("num_steps") or num_steps
  progress = f"step {step}/{total}" if total else f"step {step}"
  state = status.get("state")
  if state == "failed":
    return False, f"failed ({progress})", step, total
  if state == "finished" and step is not None and (total is None or step >= total):
    return True, "finished", step, total
  return False, f"incomplete ({progress})", step, total


def finished_step(workdir, num_steps):
  """The step at which the run in `workdir` finished, if it did at or past `num_steps` and its
  checkpoint of that step is there; else None. Reads, never writes."""
  status = read_status(workdir) or {}
  step = status.get("step")
  if status.get("state") != "finished" or not isinstance(step, int) or step < num_steps:
    return None
  steps = checkpoint_steps(workdir)
  return step if steps and steps[-1] == step else None


# ---- metrics.jsonl ----
def read_metric_lines(path):
  """[(line, row)] of a metrics.jsonl in file order; [] if it is missing. A torn last line (a
  kill or a full disk mid-append) is dropped with a warning saying how many bytes it had; a
  damaged line elsewhere is skipped with a warning naming its line number."""
  try:
    text = fs.read_text(path)
  except FileNotFoundError:
    return []
  lines = text.split("\n")
  out = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
      if not isinstance(row, dict) or "step" not in row:
        raise ValueError("not a metrics row")
    except ValueError:
      last = number == len(lines)  # no newline after it: the write stopped inside the row
      if last:
        logging.warning("%s: dropped a torn last line of %d bytes (a write cut short); the rows "
                        "before it are kept", path, len(line.encode()))
      else:
        logging.warning("%s: line %d (%d bytes) is not a metrics row; skipped", path, number,
                        len(line.encode()))
      continue
    out.append((line, row))
  return out


def read_metrics(path):
  """(train_rows, eval_rows) of a metrics.jsonl, each sorted by step, one row per step (a
  resumed run's later row wins), tolerant as `read_metric_lines`."""
  by_split = {"train": {}, "eval": {}}
  for _, row in read_metric_lines(path):
    if row.get("split") in by_split:
      by_split[row["split"]][int(row["step"])] = row
  return tuple([rows[s] for s in sorted(rows)] for rows in (by_split["train"], by_split["eval"]))


# ---- checkpoints ----
def checkpoint_steps(workdir) -> list[int]:
  """Committed checkpoint steps of a run directory, ascending ([] if none)."""
  directory = checkpoints_dir(workdir)
  if not fs.isdir(directory):
    return []
  import orbax.checkpoint as ocp  # late: start-up time (figures/ and launch/ read runs without orbax)
  return sorted(ocp.utils.checkpoint_steps(directory))


def partial_checkpoints(workdir) -> list[str]:
  """Saves that never committed (`<step>.orbax-checkpoint-tmp*`), as paths."""
  directory = checkpoints_dir(workdir)
  return [os.path.join(directory, n) for n in fs.listdir(directory) if PARTIAL_CHECKPOINT in n]


def clean_partial_checkpoints(workdir) -> list[str]:
  """Removes the saves a kill or a full disk cut short (only the lock holder may: another
  writer's save in progress looks the same). -> the paths removed."""
  removed = partial_checkpoints(workdir)
  for path in removed:
    logging.warning("removing %s: a checkpoint save that never completed (the run was stopped "
                    "or its disk was full)", path)
    fs.rmtree(path)
  return removed


def last_checkpoint_text(workdir) -> str:
  steps = checkpoint_steps(workdir)
  if not steps:
    return "no checkpoint was completed"
  return (f"the last intact checkpoint is step {steps[-1]} "
          f"({os.path.join(checkpoints_dir(workdir), str(steps[-1]))})")


# ---- the writer lock ----
class LockHeld(RuntimeError):
  """Another process writes this run directory (train.py: exit code 2)."""


@dataclasses.dataclass
class Holder:
  host: str
  pid: int
  started: str
  command: str
  token: str

  @classmethod
  def of_this_process(cls):
    return cls(host=socket.gethostname(), pid=os.getpid(), started=_now(),
               command=" ".join(sys.argv), token=uuid.uuid4().hex)

  @classmethod
  def parse(cls, text):
    """The holder in a lock file's text, or None (empty or damaged: a writer died mid-write)."""
    try:
      record = json.loads(text)
      return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})
    except (ValueError, KeyError, TypeError):
      return None

  def text(self):
    return json.dumps(dataclasses.asdict(self), sort_keys=True) + "\n"

  def describe(self):
    return (f"pid {self.pid} on host {self.host}, started {self.started}: "
            f"{self.command[:200]}")

  def dead_here(self) -> bool:
    """Ran on this host and is no longer running."""
    if self.host != socket.gethostname():
      return False
    try:
      os.kill(self.pid, 0)
    except ProcessLookupError:
      return True
    except PermissionError:  # alive, another user's
      return False
    return False


def _held_message(path, holder):
  who = holder.describe() if holder else "a process that has not yet written its name"
  return (f"{path} is held by {who}; one process group writes a run directory at a time "
          f"(wait for it, stop it, or use another --workdir; if it is not running, delete "
          f"{path})")


class WriterLock:
  """The lock this process holds on a run directory; `release()` on every way out."""

  def __init__(self, path, holder, fd=None):
    self.path, self.holder, self._fd = path, holder, fd

  def release(self):
    if self.holder is None:
      return
    try:
      if self._fd is not None:  # local: unlink while holding the flock, then drop it
        with contextlib.suppress(FileNotFoundError):
          os.remove(self.path)
        os.close(self._fd)
      else:
        on_file = Holder.parse(fs.read_text(self.path)) if fs.exists(self.path) else None
        if on_file is not None and on_file.token == self.holder.token:
          fs.remove(self.path)
    except OSError as e:  # a full disk or a lost connection must not hide the run's own error
      logging.warning("could not release %s (%s: %s); the next run takes it over", self.path,
                      type(e).__name__, e)
    self.holder, self._fd = None, None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def acquire_writer_lock(workdir) -> WriterLock:
  """Takes `workdir`'s writer lock (the directory must exist) or raises LockHeld naming the
  holder. A lock left by a dead holder is taken over with a warning."""
  path = lock_path(workdir)
  me = Holder.of_this_process()
  if fs.is_remote(path):
    _acquire_object(path, me)
    return WriterLock(path, me)
  return WriterLock(path, me, _acquire_flock(path, me))


def _acquire_flock(path, me):
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = Holder.parse(_read_fd(fd))
      os.close(fd)
      raise LockHeld(_held_message(path, holder)) from None
    try:  # a holder releasing the lock unlinks the file: lock the one at `path` or try again
      current = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      current = False
    if not current:
      os.close(fd)
      continue
    previous = _read_fd(fd)
    if previous.strip():
      holder = Holder.parse(previous)
      logging.warning("taking over %s from %s, which no longer holds it (it was killed or "
                      "crashed)", path, holder.describe() if holder else "an unreadable holder")
    os.ftruncate(fd, 0)
    os.pwrite(fd, me.text().encode(), 0)
    os.fsync(fd)
    return fd


def _read_fd(fd) -> str:
  return os.pread(fd, 1 << 16, 0).decode(errors="replace")


def _acquire_object(path, me):
  """gs://: an object created only if absent (GCS `ifGenerationMatch=0` through gcsfs's
  `mode="create"`), so two hosts cannot both create it."""
  for attempt in range(2):
    try:
      fs.create_exclusive(path, me.text())
      return
    except FileExistsError:
      holder = _object_holder(path)
      if attempt == 0 and holder is not None and holder.dead_here():
        with _host_mutex(path):  # two takers on this host: the second sees the first's lock
          if _object_holder(path) == holder:
            logging.warning("taking over %s from %s, which is no longer running on this host",
                            path, holder.describe())
            fs.remove(path)
        continue  # create again: if another host created it meanwhile, that one wins
      raise LockHeld(_held_message(path, holder)) from None


def _object_holder(path):
  return Holder.parse(fs.read_text(path)) if fs.exists(path) else None


@contextlib.contextmanager
def _host_mutex(path):
  """Serializes the processes of this host that take over one stale object lock (only a
  holder on this host is ever taken over, so this host's takers are the only racers)."""
  name = hashlib.sha256(path.encode()).hexdigest()[:16]
  with open(os.path.join(tempfile.gettempdir(), f"pancake-takeover-{name}"), "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    yield


_LOCK_KEY = "pancake_writer_lock"


def hold_writer_lock(workdir, timeout_ms=10 * 60 * 1000):
  """The writer lock of a run: one process takes it; in a multi-process run process 0 takes
  it and tells the others (the distributed runtime's key-value store, no device collective)
  whether they may go on. -> WriterLock (process 0) or None; LockHeld on every process."""
  import jax  # late: start-up time (figures/ and launch/ read run directories without JAX)
  if jax.process_count() == 1:
    return acquire_writer_lock(workdir)
  # late: start-up time (multi-process runs only); the client orbax's barriers use, since jax
  # has no public key-value API
  from jax._src import distributed
  client = distributed.global_state.client
  if jax.process_index() == 0:
    try:
      lock = acquire_writer_lock(workdir)
    except LockHeld as e:
      client.key_value_set(_LOCK_KEY, f"held:{e}")
      raise
    client.key_value_set(_LOCK_KEY, "ok")
    return lock
  answer = client.blocking_key_value_get(_LOCK_KEY, timeout_ms)
  if answer != "ok":
    raise LockHeld(answer.removeprefix("held:"))
  return None
