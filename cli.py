"""What every command-line entry point shares: config loading, exit code 2, multi-host start-up.

Entry points (train.py, eval.py, every `python -m` tool) call `run(main)` instead of
`absl.app.run(main)` (or `parse_flags`) so that a bad flag, an unknown `--config.x` override or a
config file that cannot give a config is one line `error: ...` on stderr and exit code 2, before
JAX starts. Config files are loaded here (`load_config_file`, swapped in for ml_collections'
loader of every config-file flag): a missing file, a syntax error (with its line), an exception
while loading it or inside get_config() (with the config file's line), or a file without
get_config each name the file. It belongs to the entry layer (docs/ARCHITECTURE.md): it sets
XLA's flags and starts the process; JAX is imported only to start the multi-host runtime.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections.config_flags import config_flags  # the module: its parser class is not re-exported

from configs import paths
from configs.errors import ConfigError
from configs.loading import ConfigFileError, load_config_file  # noqa: F401  (re-exported)
from trainlib import xla_options

EXIT_BAD_INPUT = 2

# Multi-host: the same command on every host of a pod / every SLURM task.
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (auto-detects TPU pods, SLURM).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                   "host:port of process 0's coordinator (implies --multihost).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None,
                                      "Number of processes (or env JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (or env JAX_PROCESS_ID).")


def fail(message):
  """One line on stderr, exit code 2: the contract for bad input."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(EXIT_BAD_INPUT)


class _ConfigFileParser(config_flags.ConfigFileFlagParser):
  """ml_collections' config-file flag parser, loading through `load_config_file`."""

  def parse(self, path):
    config = load_config_file(path, f"{self.name}_config")
    if self._lock_config and callable(getattr(config, "lock", None)):
      config.lock()
    return config


def _load_config_files_here():
  """Every config-file flag defined so far loads through `load_config_file`."""
  for name in list(flags.FLAGS):
    flag = flags.FLAGS[name]
    if type(flag.parser) is config_flags.ConfigFileFlagParser:  # pylint: disable=unidiomatic-typecheck
      flag.parser = _ConfigFileParser(name=flag.parser.name,
                                      lock_config=flag.parser._lock_config)  # pylint: disable=protected-access


def parse_flags(argv):
  """absl parsing, but a bad flag, config override or config file is exit code 2 with one
  line."""
  _load_config_files_here()
  try:
    return flags.FLAGS(argv)
  except ConfigFileError as e:
    fail(e)
  except flags.Error as e:
    fail(e)
  except (KeyError, AttributeError) as e:  # config_flags: an override names no existing field
    key = str(e).strip("'\"")
    culprits = [a.split("=")[0] for a in argv if a.startswith("--config.") and key in a]
    fail(f"unknown config key {key!r} in {', '.join(culprits) or 'a --config.* override'}; "
         "every field is defined (and commented) in configs/base.py")
  except (ValueError, TypeError, OSError) as e:  # OSError: a config file that cannot be read
    fail(f"bad flag value: {e}")


def loaded_config(config_flag, workdir_flag, argv, usage, *, writes_workdir=True,
                  workdir_optional=False):
  """-> (config, workdir): the parsed config and --workdir, every local path in them made
  absolute (configs/paths.py), after checking the flags every entry point needs. With
  `writes_workdir`, a --workdir that is a file or not writable is exit code 2 here; with
  `workdir_optional`, no --workdir gives workdir "" (the caller decides what that means)."""
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; flags are {usage}")
  config = config_flag.value
  if config is None:
    fail("--config is required, e.g. --config configs/quickstart.py")
  if not workdir_flag.value and not workdir_optional:
    fail("--workdir is required")
  workdir = paths.absolute(workdir_flag.value) if workdir_flag.value else ""
  paths.absolutize_config(config)
  if writes_workdir:
    try:
      paths.check_writable_dir(workdir)
    except ConfigError as e:
      fail(e)
  return config, workdir


def _env_int(name):
  value = os.environ.get(name)
  return int(value) if value not in (None, "") else None


def multihost_requested():
  """Whether the flags ask for jax.distributed (init_distributed will start it)."""
  return bool(_MULTIHOST.value or _COORDINATOR.value)


def init_distributed():
  """jax.distributed.initialize from flags/env, before anything touches a device."""
  if not multihost_requested():
    return
  import jax  # late: start-up time (JAX starts only for a multi-host run, after the flags)
  if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # cross-process CPU collectives
  num_processes = _NUM_PROCESSES.value if _NUM_PROCESSES.value is not None else _env_int("JAX_NUM_PROCESSES")
  process_id = _PROCESS_ID.value if _PROCESS_ID.value is not None else _env_int("JAX_PROCESS_ID")
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=num_processes, process_id=process_id)
  # Orbax's barriers (every checkpoint save and restore) through the distributed client, which
  # waits up to orbax's timeout, instead of a device collective: gloo gives a CPU collective
  # only 30 s to assemble, and a process still writing metrics or compiling can miss that.
  import orbax.checkpoint  # noqa: F401  # late: start-up time (orbax defines the flag set below)
  flags.FLAGS.experimental_orbax_use_distributed_barrier = True
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


class QuietLibraries(logging.logging.Filter):
  """INFO lines from pancake only; libraries (orbax logs every save) speak at WARNING and above,
  except orbax's notes that a read-only checkpoint manager will not save (eval never saves).
  A library's logged traceback becomes one line (the exception's type and first line): orbax
  and asyncio log the same failed background write many times over, and pancake reports the
  failure itself (rundir.WriteFailed: the path, the free space, the last intact checkpoint)."""

  def filter(self, record):
    if "site-packages" not in record.pathname and record.name != "asyncio":
      return True
    message = record.getMessage()
    if record.levelno < logging.logging.WARNING or "read_only" in message or "read only" in message:
      return False
    if record.exc_info and record.exc_info[1] is not None:
      error = record.exc_info[1]
      first = str(error).splitlines()[0][:300] if str(error) else ""
      record.msg, record.args = f"{message.splitlines()[0][:300]} ({type(error).__name__}: {first})", None
      record.exc_info, record.exc_text = None, None
    return True


def _unraisable_in_one_line(unraisable):
  """An exception Python can only ignore (a library's callback after its event loop closed,
  at shutdown): one line, not a traceback."""
  error = unraisable.exc_value
  print(f"warning: ignored {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        f" ({unraisable.err_msg or 'exception ignored'})", file=sys.stderr)


def run(main):
  """absl.app.run with the exit-code-2 flag parser and quiet library logging, and pancake's XLA
  CPU flags in XLA_FLAGS before JAX starts (trainlib/xla_options.py)."""
  xla_options.use_cpu_flags()

  def wrapped(argv):
    logging.get_absl_handler().addFilter(QuietLibraries())
    sys.unraisablehook = _unraisable_in_one_line
    return main(argv)

  app.run(wrapped, flags_parser=parse_flags)
