r"""Train (and evaluate) a model: the one entry point for a laptop CPU and a TPU pod.

    python train.py --config configs/quickstart.py --workdir /tmp/qs [--config.train.num_steps=100]

Resumes automatically from the checkpoints in --workdir. Writes config.json, provenance.json,
status.json, metrics.jsonl, tb/ and checkpoints/ there (docs/ARCHITECTURE.md, "Run directory").

Multi-host (one process per host, same command on every host):
    --multihost                       jax.distributed.initialize() with auto-detection (TPU VMs, SLURM)
    --coordinator_address=host:port --num_processes=N --process_id=i   explicit (or the env vars
                                      JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)

Exit codes: 0 done; 2 bad input (one line `error: ...` on stderr, before anything compiles);
1 the run failed (e.g. a non-finite loss); 143 stopped by SIGTERM after saving a checkpoint.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (auto-detects TPU pods, SLURM).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                   "host:port of process 0's coordinator (implies --multihost).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")

EXIT_BAD_INPUT = 2
EXIT_PREEMPTED = 143


def _fail(message):
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(EXIT_BAD_INPUT)


def _parse_flags(argv):
  """absl parsing, but a bad flag or config override is exit code 2 with one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(e)
  except (KeyError, AttributeError) as e:  # config_flags: an override names no existing field
    key = str(e).strip("'\"")
    culprits = [a.split("=")[0] for a in argv if a.startswith("--config.") and key in a]
    _fail(f"unknown config key {key!r} in {', '.join(culprits) or 'a --config.* override'}; "
          "every field is defined (and commented) in configs/base.py")
  except (ValueError, TypeError) as e:
    _fail(f"bad flag value: {e}")


def _env_int(name):
  value = os.environ.get(name)
  return int(value) if value not in (None, "") else None


def _init_distributed():
  """jax.distributed.initialize from flags/env, before anything touches a device."""
  import jax
  num_processes = _NUM_PROCESSES.value if _NUM_PROCESSES.value is not None else _env_int("JAX_NUM_PROCESSES")
  process_id = _PROCESS_ID.value if _PROCESS_ID.value is not None else _env_int("JAX_PROCESS_ID")
  if not (_MULTIHOST.value or _COORDINATOR.value):
    return
  if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # cross-process CPU collectives
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=num_processes, process_id=process_id)
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


class _OnlyOurInfo(logging.logging.Filter):
  """INFO lines from pancake only; libraries (orbax logs every save step) speak at WARNING+."""

  def filter(self, record):
    return record.levelno >= logging.logging.WARNING or "site-packages" not in record.pathname


def main(argv):
  logging.get_absl_handler().addFilter(_OnlyOurInfo())
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; flags are --config, --workdir, --config.a.b=value")
  config = _CONFIG.value
  if config is None:
    _fail("--config is required, e.g. --config configs/quickstart.py")
  try:
    config.to_dict()  # a file that failed to load surfaces here (config_flags defers the error)
  except OSError as e:
    _fail(e)
  if not _WORKDIR.value:
    _fail("--workdir is required")
  from configs.errors import ConfigError
  from trainlib import loop
  from trainlib.checkpoint import NonFiniteError
  _init_distributed()
  try:
    result = loop.train_and_evaluate(config, _WORKDIR.value)
  except ConfigError as e:
    _fail(e)
  except NonFiniteError as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  if result.preempted:
    sys.exit(EXIT_PREEMPTED)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
