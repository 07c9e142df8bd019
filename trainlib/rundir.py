"""The run directory's small JSON files (formats in docs/ARCHITECTURE.md, "Run directory formats").

figures/ and eval.py read these; change a field here and there together.
"""

import datetime
import hashlib
import json
import os
import subprocess
import sys

import jax

from trainlib import fs

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def write_config(workdir, config):
  fs.write_json(os.path.join(workdir, "config.json"), config_dict(config))


def write_provenance(workdir, config, **fields):
  """provenance.json: git state, config hash, jax version, device counts, plus `fields`
  (data_fingerprint, mesh, params_total, params_non_embedding, train_flops_per_token, ...)."""
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
  fs.write_json(os.path.join(workdir, "provenance.json"), record)


def write_status(workdir, state, step, num_steps, error=None):
  """status.json: {"state": running|finished|failed, "step", "num_steps", "error", "updated"}."""
  fs.write_json(os.path.join(workdir, "status.json"), {
      "state": state, "step": int(step), "num_steps": int(num_steps), "error": error,
      "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  })
