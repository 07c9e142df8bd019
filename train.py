r"""Train (and evaluate) a model: the one entry point for a laptop CPU and a TPU pod.

    python train.py --config configs/quickstart.py --workdir runs/quickstart [--config.train.num_steps=800]

Resumes automatically from the checkpoints in --workdir; rerunning a finished run changes nothing
(it says so and exits 0), and a larger train.num_steps continues it. Writes config.json, provenance.json,
status.json, metrics.jsonl, tb/ and checkpoints/ there (trainlib/rundir.py; docs/ARCHITECTURE.md,
"Run directory").

Multi-host (one process per host, same command on every host):
    --multihost                       jax.distributed.initialize() with auto-detection (TPU VMs, SLURM)
    --coordinator_address=host:port --num_processes=N --process_id=i   explicit (or the env vars
                                      JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)

Exit codes: 0 done; 2 bad input (one line `error: ...` on stderr, before anything compiles),
including a --workdir another train.py writes (its writer lock names the holder); 1 the run
failed (a non-finite loss; a full disk: one line naming the path, the free space and the last
intact checkpoint); 143 stopped by SIGTERM after saving a checkpoint.
"""

import sys

from absl import flags, logging
from ml_collections import config_flags

import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")

EXIT_FAILED = 1
EXIT_PREEMPTED = 143


def main(argv):
  config, workdir = cli.loaded_config(_CONFIG, _WORKDIR, argv,
                                      "--config, --workdir, --config.a.b=value")
  # late: start-up time (JAX loads after the flags parse: --help and a bad flag cost no JAX)
  from configs.errors import ConfigError
  from trainlib import loop, rundir
  from trainlib import cpu_devices
  from trainlib.checkpoint import NonFiniteError
  try:
    cpu_devices.use_cpu_cores(config, cli.multihost_requested())
  except ConfigError as e:
    cli.fail(e)
  cli.init_distributed()
  try:
    result = loop.train_and_evaluate(config, workdir)
  except (ConfigError, rundir.LockHeld) as e:
    cli.fail(e)
  except (NonFiniteError, rundir.WriteFailed) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(EXIT_FAILED)
  if result.preempted:
    sys.exit(EXIT_PREEMPTED)


if __name__ == "__main__":
  cli.run(main)
