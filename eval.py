r"""Evaluate a trained run: held-out metrics, cloze, fine-tuning, generation, attention views.

    python eval.py --config configs/<name>.py --workdir DIR \
        --suite heldout,cloze,finetune,generate,attention [--step N] [--config.eval.x=y]

Pass the config (and --config.* overrides) the run was trained with; eval.* fields may differ.
Restores the parameters of the latest (or --step) checkpoint in DIR onto the current devices
(mesh from config.mesh), verified against the checksums saved with them, runs the suites in order
and writes DIR/eval/<suite>.json, TensorBoard scalars in DIR/tb/eval, and a table on stdout.
--suite defaults to eval.suites. With init.from_hf set (configs/from_hf.py:HF_DIR) and no
checkpoint in DIR, the Hugging Face weights are evaluated as step 0 (DIR is created).

Suites: heldout (loss / perplexity, MLM / NSP loss and accuracy), cloze (blank-filling accuracy,
the same items for every objective), finetune (GLUE from TFDS or the offline doc_order task),
generate (decoders: greedy, sampling, beam search), attention (figures + interactive HTML).
See evals/ and docs/ARCHITECTURE.md.

Multi-host: --multihost (or --coordinator_address, --num_processes, --process_id), as train.py,
on every host; process 0 writes the results (2 processes x 2 devices give the metrics of one:
tests/test_eval_cli.py).

Exit codes: 0 done; 2 bad input (one line `error: ...` on stderr, before anything compiles):
unknown suite, suite not for this model family, missing workdir or checkpoint (unless
init.from_hf is set), a checkpoint that does not match its checksums, bad config; 1 a write
failed (a full disk: one line naming the path and the free space).

eval.py reads the run directory without its writer lock and writes only eval/ and tb/eval
(each file whole, by rename), which a training never writes: it can run beside one.
"""

import sys

from absl import flags
from ml_collections import config_flags

import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<name>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
_SUITE = flags.DEFINE_string("suite", None, "Comma-separated suites (default: eval.suites).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")


def main(argv):
  config, workdir = cli.loaded_config(_CONFIG, _WORKDIR, argv,
                                      "--config, --workdir, --suite, --step, --config.a.b=value",
                                      writes_workdir=False)
  # late: start-up time (JAX loads after the flags parse and the suite names check)
  import evals
  from configs.errors import ConfigError
  try:  # names and families first: a typo costs no JAX start-up
    evals.parse_suites(_SUITE.value if _SUITE.value is not None else config.eval.suites,
                       config.model.family)
  except ConfigError as e:
    cli.fail(e)
  # late: start-up time (JAX loads only once the suites are known)
  from evals import runner
  from trainlib import rundir
  cli.init_distributed()
  try:
    runner.run(config, workdir, _SUITE.value, _STEP.value)
  except (ConfigError, runner.RunDirError) as e:
    cli.fail(e)
  except rundir.WriteFailed as e:  # a full disk: one line naming the path and the free space
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
