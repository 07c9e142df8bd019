r"""Evaluate a trained run: held-out metrics, cloze, fine-tuning, generation, attention views.

    python eval.py --config configs/<name>.py --workdir DIR \
        --suite heldout,cloze,finetune,generate,attention [--step N] [--config.eval.x=y]

Pass the config (and --config.* overrides) the run was trained with; eval.* fields may differ.
Restores the parameters of the latest (or --step) checkpoint in DIR onto the current devices
(mesh from config.mesh), runs the suites in order and writes DIR/eval/<suite>.json, TensorBoard
scalars in DIR/tb/eval, and a table on stdout. --suite defaults to eval.suites.

Suites: heldout (loss / perplexity, MLM / NSP loss and accuracy), cloze (blank-filling accuracy,
the same items for every objective), finetune (GLUE from TFDS or the offline doc_order task),
generate (decoders: greedy, sampling, beam search), attention (figures + interactive HTML).
See evals/ and docs/ARCHITECTURE.md.

Multi-host: --multihost (or --coordinator_address, --num_processes, --process_id), as train.py,
on every host; process 0 writes the results.

Exit codes: 0 done; 2 bad input (one line `error: ...` on stderr, before anything compiles):
unknown suite, suite not for this model family, missing workdir or checkpoint, bad config.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
_SUITE = flags.DEFINE_string("suite", None, "Comma-separated suites (default: eval.suites).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
# Multi-host (as train.py): the same command on every host of a pod / every SLURM task.
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (auto-detects TPU pods, SLURM).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                   "host:port of process 0's coordinator (implies --multihost).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")

EXIT_BAD_INPUT = 2


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
  """jax.distributed.initialize from flags/env (as train.py), before anything touches a device."""
  if not (_MULTIHOST.value or _COORDINATOR.value):
    return
  import jax
  if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=_COORDINATOR.value,
      num_processes=(_NUM_PROCESSES.value if _NUM_PROCESSES.value is not None
                     else _env_int("JAX_NUM_PROCESSES")),
      process_id=_PROCESS_ID.value if _PROCESS_ID.value is not None else _env_int("JAX_PROCESS_ID"))


class _QuietLibraries(logging.logging.Filter):
  """INFO lines from pancake only; libraries speak at WARNING and above, except orbax's notes
  that a read-only checkpoint manager will not save (eval never saves)."""

  def filter(self, record):
    if "site-packages" not in record.pathname:
      return True
    return record.levelno >= logging.logging.WARNING and "read_only" not in record.getMessage() \
        and "read only" not in record.getMessage()


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; flags are --config, --workdir, --suite, --step, "
          "--config.a.b=value")
  config = _CONFIG.value
  if config is None:
    _fail("--config is required, e.g. --config configs/quickstart.py")
  try:
    config.to_dict()  # a file that failed to load surfaces here (config_flags defers the error)
  except OSError as e:
    _fail(e)
  if not _WORKDIR.value:
    _fail("--workdir is required")
  import evals
  from configs.errors import ConfigError
  try:  # names and families first: a typo costs no JAX start-up
    evals.parse_suites(_SUITE.value if _SUITE.value is not None else config.eval.suites,
                       config.model.family)
  except ConfigError as e:
    _fail(e)
  from evals import runner
  _init_distributed()
  try:
    runner.run(config, _WORKDIR.value, _SUITE.value, _STEP.value)
  except (ConfigError, runner.RunDirError) as e:
    _fail(e)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
