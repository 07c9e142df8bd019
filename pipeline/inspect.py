"""Print examples as the model sees them, or one JSON line of statistics.

  python -m pipeline.inspect --config configs/<name>.py --num 4
  python -m pipeline.inspect --config configs/<name>.py --stats 2000 [--split validation]

Each objective chooses its view and statistics (its `format_row` and `stats`, pipeline/views.py
and pipeline/stats.py): encoder rows show segment A / B, and each predicted position as
{seen|original} (seen is [MASK], a random token, or the original); decoder rows show each packed
document segment with its position range, and the first (input -> target) pairs.
"""
import json
import math

import cli
from configs import paths
from absl import flags
from ml_collections import config_flags

from configs.errors import ConfigError

def main(argv):
  del argv
  import objectives  # late: start-up time (JAX loads after flag parsing: a fast --help)
  try:
    config = _CONFIG.value
    if config is None:
      raise ConfigError("--config is required (a configs/<name>.py file)")
    split = _SPLIT.value or config.data.train_split
  except OSError as e:  # the config file is missing or failed to load
    raise ConfigError(" ".join(str(e).split())) from None
  paths.absolutize_config(config)
  pipe = objectives.make_pipeline(config, split)
  name = config.objective.name
  want = _STATS.value if _STATS.value > 0 else _NUM.value
  steps = math.ceil(want / pipe.host_batch_size)
  batches = [pipe.batch(_STEP.value + s) for s in range(steps)]
  if _STATS.value > 0:
    batches = [{k: v[:want - i * pipe.host_batch_size] for k, v in b.items()}
               for i, b in enumerate(batches)]
    result = pipe.objective.stats(batches, pipe.tokenizer)
    result.update(objective=name, split=split, fingerprint=pipe.fingerprint)
    print(json.dumps(result, sort_keys=True))
    return
  fmt = pipe.objective.format_row
  for i in range(want):
    b, row = batches[i // pipe.host_batch_size], i % pipe.host_batch_size
    print(f"--- example {i} (step {_STEP.value + i // pipe.host_batch_size}, row {row})")
    print(fmt(b, row, pipe.tokenizer))


def _main(argv):
  try:
    main(argv)
  except ConfigError as e:
    cli.fail(e)


if __name__ == "__main__":  # the flags exist only for the command, not for importers
  _CONFIG = config_flags.DEFINE_config_file("config", None, "config file (configs/<name>.py)")
  _NUM = flags.DEFINE_integer("num", 4, "examples to print")
  _STATS = flags.DEFINE_integer("stats", 0, "if > 0: print one JSON line of statistics over this "
                                "many examples instead of examples")
  _SPLIT = flags.DEFINE_string("split", "", "split to read; '' = data.train_split")
  _STEP = flags.DEFINE_integer("step", 0, "first step to read")
  cli.run(_main)
