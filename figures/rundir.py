"""Runs and sweeps for tables and figures, read from run directories and ROOT/sweep.json
(formats: docs/ARCHITECTURE.md; the files are read through trainlib/rundir.py, without the
writer lock, so a running training can be plotted).

Everything here tolerates a run that is half-written, crashed or never started: such a run loads
with `complete=False` and a `state_text` saying why, so tables and figures can show it as
incomplete instead of dropping it or averaging it in. A damaged file (a torn last line of
metrics.jsonl, a status.json that is not JSON) is named in one warning line and read around.
"""

import dataclasses
import os

from trainlib import fs
from trainlib.rundir import read_metrics, training_status  # noqa: F401  (figures' API too)
from trainlib import rundir as run_files


@dataclasses.dataclass
class Run:
  """One run directory, loaded."""
  path: str
  name: str                    # run name (sweep entry, else config.json "name", else dir name)
  seed: object                 # int, or None if unknown
  meta: dict                   # the sweep entry's meta (labels, planned sizes, isoFLOP budget)
  config: dict                 # config.json ({} if missing)
  provenance: dict             # provenance.json ({} if missing)
  complete: bool
  state_text: str              # "finished", "incomplete (step 300/1000)", "failed (...)", ...
  step: object                 # last step status.json reports (None if unknown)
  num_steps: object
  train_rows: list
  eval_rows: list
  evals: dict                  # suite -> eval/<suite>.json

  @property
  def label(self):
    return self.meta.get("label", self.name)

  @property
  def continued_from(self):
    """The sweep run whose checkpoint this run started from (from_runs init.from_run), or None."""
    return self.meta.get("from_runs", {}).get("init.from_run")

  def final(self, key, split="train"):
    """`key` from the last row of that split that has it, else None."""
    rows = self.train_rows if split == "train" else self.eval_rows
    for row in reversed(rows):
      if row.get(key) is not None:
        return row[key]
    return None

  def tokens_per_step(self):
    train, data = self.config.get("train", {}), self.config.get("data", {})
    if "global_batch_size" in train and "seq_len" in data:
      return train["global_batch_size"] * data["seq_len"]
    return None

  def suite_metrics(self, suite):
    """(metrics dict, None) for an eval of the final checkpoint, else (None, why not)."""
    result = self.evals.get(suite)
    if result is None:
      return None, "missing"
    at = result.get("checkpoint_step")
    if self.step is not None and at is not None and at != self.step:
      return None, f"eval at step {at}, run at step {self.step}"
    return {k: v for k, v in result.get("metrics", {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}, None


def load_run(workdir, name=None, seed=None, meta=None):
  """Loads one run directory; a missing file leaves its part empty, never raises."""
  config = run_files.read_config(workdir) or {}
  provenance = run_files.read_provenance(workdir) or {}
  complete, state_text, step, num_steps = training_status(
      workdir, config.get("train", {}).get("num_steps"))
  train_rows, eval_rows = read_metrics(run_files.metrics_path(workdir))
  evals = {}
  eval_dir = run_files.eval_dir(workdir)
  for fname in fs.listdir(eval_dir):
    result = (run_files.read_record(os.path.join(eval_dir, fname)) if fname.endswith(".json")
              else None)
    if isinstance(result, dict):
      evals[result.get("suite", fname[:-len(".json")])] = result
  if seed is None:
    seed = config.get("seed")
  name = name or config.get("name") or os.path.basename(os.path.normpath(workdir))
  return Run(workdir, name, seed, dict(meta or {}), config, provenance, complete, state_text,
             step, num_steps, train_rows, eval_rows, evals)


def inherited(run, key, runs):
  """What a continued run's budget `key` ("tokens_seen", "flops_seen") starts from: the final
  value of the same-seed run it was continued from (0 for a run started from scratch; None when
  that run is missing, incomplete or did not log it). `runs`: the sweep's runs."""
  if not run.continued_from:
    return 0
  for other in runs:
    if (other.name, other.seed) == (run.continued_from, run.seed) and other.complete:
      return other.final(key)
  return None


@dataclasses.dataclass
class Sweep:
  name: str
  kind: str                    # "ablation" | "scaling"
  budget: object               # "tokens" | "compute" | None
  description: str
  eval_suites: list
  runs: list                   # of Run, in the sweep's order (seeds of a run adjacent)
  budget_note: str = ""        # the sweep's budget rule, for the table's notes


def _discover(root):
  """Run directories under root (those holding config.json or status.json), sorted."""
  found = []
  for dirpath, dirnames, filenames in fs.walk(root):
    dirnames.sort()
    if run_files.is_run_directory(filenames):
      found.append(dirpath)
      dirnames[:] = []  # a run directory's subfolders (checkpoints, eval) hold no runs
  return found


def load_sweeps(root):
  """Every sweep recorded in ROOT/sweep.json; without one, all run directories as one sweep."""
  record = run_files.read_record(run_files.sweep_record_path(root))
  if not isinstance(record, dict) or not record.get("sweeps"):
    paths = _discover(root)
    if not paths:
      return []
    runs = [load_run(p) for p in paths]
    suites = sorted({s for r in runs for s in r.evals})
    name = os.path.basename(os.path.normpath(root)) or "runs"
    return [Sweep(name, "ablation", None, f"run directories under {root}", suites, runs)]
  sweeps = []
  for name, entry in record["sweeps"].items():
    runs = [load_run(os.path.join(root, r["workdir"]), name=r["name"], seed=r.get("seed"),
                     meta=r.get("meta")) for r in entry.get("runs", [])]
    suites = [s for s in entry.get("eval_suites", "").split(",") if s]
    sweeps.append(Sweep(name, entry.get("kind", "ablation"), entry.get("budget"),
                        entry.get("description", ""), suites, runs,
                        entry.get("budget_note") or ""))
  return sweeps
