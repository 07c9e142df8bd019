"""The export command: a run's checkpoint (or init.from_hf's weights) -> a Hugging Face model
directory, through the interop.hf library.

    python -m interop.hf export --config C --workdir W [--step S] --out DIR [--config.a.b=v]

An entry point (docs/ARCHITECTURE.md, the entry layer): it validates the config as train.py does,
restores the parameters from any mesh and hands them to `interop.hf.export`. Bad input is one
line and exit code 2 before anything is written (cli.py).
"""

import os

import cli
import objectives
from configs import paths
from configs.errors import ConfigError
from evals import runner
from interop import hf, hf_config
from trainlib import checkpoint as ckpt_lib
from trainlib import fs, loop, rundir
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib


def export_run(config, workdir, out_dir, step=None):
  """Checks, restores a run's parameters (any mesh it was saved on) and exports them -> step.

  With init.from_hf set and no checkpoint in `workdir` (or no workdir), the imported weights
  are exported as they are (step 0, no training step). Raises ConfigError (bad config, a model
  HF cannot represent) or evals.runner.RunDirError (no such checkpoint) before anything is
  written."""
  loop.validate(config)
  tokenizer = objectives.get_tokenizer(config)
  hf_config.check_exportable(config.model, tokenizer.kind)
  steps = rundir.checkpoint_steps(workdir) if workdir and fs.isdir(workdir) else []
  imported = bool(config.init.from_hf) and not steps
  if imported and step not in (None, 0):
    raise runner.RunDirError(f"--step {step} has no checkpoint in {workdir or '(no --workdir)'}; "
                             f"without checkpoints the weights are init.from_hf="
                             f"{config.init.from_hf!r} (step 0)")
  if not imported:
    runner.check_step(workdir, steps, step)
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise ConfigError(f"--out {out_dir!r} exists and is not a directory")
  mesh = mesh_lib.make_mesh(config)
  setup = state_lib.build_setup(config, mesh)
  if imported:
    hf.check(config, tokenizer, setup.abstract_state.params)
    params = hf.load_params(config, setup.abstract_state.params,
                         fallback=lambda: state_lib.init_params(setup))
    hf.export(config, params, tokenizer, out_dir)
    return 0
  try:
    params, restored = ckpt_lib.restore_params(rundir.checkpoints_dir(workdir),
                                               setup.abstract_state.params, step)
  except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many kinds; as eval does)
    raise runner.RunDirError(f"cannot restore the parameters of step {step or 'latest'} from "
                             f"{workdir}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
  hf.export(config, params, tokenizer, out_dir, steps_trained=int(restored),
         source=f"step {int(restored)} of {workdir}")
  return int(restored)


def main(argv):
  """`python -m interop.hf export ...` after flag parsing."""
  if len(argv) != 2 or argv[1] != "export":
    cli.fail(f"usage: python -m interop.hf export --config C --workdir W [--step S] --out DIR; "
             f"got arguments {argv[1:]}")
  config, workdir = cli.loaded_config(_CONFIG, _WORKDIR, argv[:1],
                                      "--config, --workdir, --step, --out", writes_workdir=False,
                                      workdir_optional=True)
  if not workdir and not config.init.from_hf:
    cli.fail("--workdir is required (the run to export), unless init.from_hf is set "
             "(configs/from_hf.py:DIR): then the imported weights are exported as they are")
  if not _OUT.value:
    cli.fail("--out is required: the directory to write the Hugging Face model to")
  out = paths.absolute(_OUT.value)
  try:
    if paths.is_remote(out):
      raise ConfigError(f"--out={out} must be a local directory (safetensors writes local files)")
    paths.check_writable_dir(out, "--out")
    step = export_run(config, workdir, out, _STEP.value)
  except (ConfigError, runner.RunDirError) as e:
    cli.fail(e)
  source = (f"step {step} of {workdir}" if step or (workdir and rundir.checkpoint_steps(workdir))
            else f"init.from_hf={config.init.from_hf} (no training step)")
  print(f"exported {source} to {out}")


def command():
  """Defines the command's flags and runs it (cli.run: exit code 2 on bad input)."""
  global _CONFIG, _WORKDIR, _STEP, _OUT  # the flags exist only when the command runs
  from absl import flags  # late: start-up time (the flags are defined only when the command runs)
  from ml_collections import config_flags
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file of the run.",
                                            lock_config=True)
  _WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  _STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  _OUT = flags.DEFINE_string("out", None, "Directory to write the Hugging Face model to.")
  cli.run(main)


if __name__ == "__main__":
  command()
