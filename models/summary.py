r"""Print one JSON line describing a model config: parameter counts and training FLOPs per token.

  python -m models.summary --config configs/gpt3_175b.py [--config.model.num_layers=48 ...]

Shapes come from jax.eval_shape, so even the 175B preset allocates nothing. Keys:
params_total, params_non_embedding, params_by_group, train_flops_per_token (models/counting.py
documents the formula, the objective its terms), train_flops_per_step (x global_batch_size x seq_len), param_bytes, and the
resolved architecture (d_head, d_ff filled in). A bad config prints `error: <reason>` on stderr
and exits with code 2 before anything is built.
"""

import json

import numpy as np

import cli
from ml_collections import config_flags

import objectives
from configs.errors import ConfigError
from models import counting
from models.spec import resolve

def summarize(config):
  """The summary dict for a full run config (model, data.seq_len, objective, train batch)."""
  spec = resolve(config.model)
  seq_len = config.data.seq_len
  counts = counting.param_counts(config.model)
  flops = objectives.train_flops_per_token(config.model, seq_len, config.objective.name,
                                           objective_cfg=config.objective)
  param_bytes = counts["params_total"] * np.dtype(spec.param_dtype).itemsize
  return {
      "name": config.name,
      "family": spec.family,
      "num_layers": spec.num_layers,
      "d_model": spec.d_model,
      "num_heads": spec.num_heads,
      "d_head": spec.d_head,
      "d_ff": spec.d_ff,
      "vocab_size": spec.vocab_size,
      "max_len": spec.max_len,
      "seq_len": seq_len,
      "objective": config.objective.name,
      "params_total": counts["params_total"],
      "params_non_embedding": counts["params_non_embedding"],
      "params_by_group": counts["params_by_group"],
      "param_bytes": param_bytes,
      "train_flops_per_token": flops,
      "train_flops_per_step": flops * seq_len * config.train.global_batch_size,
  }


def main(argv):
  if len(argv) > 1:
    cli.fail(f"unexpected arguments {argv[1:]}")
  if _CONFIG.value is None:
    cli.fail("--config is required, e.g. --config configs/gpt2_small.py")
  try:
    summary = summarize(_CONFIG.value)
  except ConfigError as e:
    cli.fail(str(e))
  except OSError as e:  # config_flags defers a config file that failed to load until first use
    cli.fail(" ".join(str(e).split()))
  print(json.dumps(summary))


if __name__ == "__main__":  # the flags exist only for the command, not for importers
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Run or preset config file.",
                                            lock_config=True)
  cli.run(main)
