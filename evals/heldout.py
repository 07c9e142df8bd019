"""Suite `heldout`: the objective's own metrics on data.eval_split.

Causal models: token-weighted lm_loss, lm_accuracy and perplexity = exp(lm_loss). Encoders:
mlm_loss / mlm_accuracy over predicted tokens and, with NSP, nsp_loss / nsp_accuracy over
sequences; `loss` is the objective's total. The batches are 0..eval.num_batches-1 of the eval
pipeline (the same for every checkpoint of a run), evaluated by trainlib's eval step; every metric
is a (sum, weight) pair summed over all batches and divided once, here, on the host.
"""
import jax

import objectives
from configs.errors import ConfigError
from trainlib import mesh as mesh_lib
from trainlib import metrics as metrics_lib
from trainlib import step as step_lib


def validate(config, tokenizer):
  del tokenizer
  n = config.eval.num_batches
  if not isinstance(n, int) or isinstance(n, bool) or n < 1:
    raise ConfigError(f"eval.num_batches={n!r} must be a positive integer")


def run(ctx):
  config, setup = ctx.config, ctx.setup
  row_index, row_count = mesh_lib.host_batch_rows(config, ctx.mesh)
  split = config.data.eval_split
  pipe = objectives.make_pipeline(config, split, process_index=row_index, process_count=row_count)
  eval_step = step_lib.make_eval_step(setup)
  totals = {}
  progress = metrics_lib.LoopProgress(f"heldout {split} batch", config.eval.num_batches)
  for i in range(config.eval.num_batches):
    sums = jax.device_get(eval_step(ctx.params, step_lib.global_batch(setup, pipe.batch(i))))
    if progress.due(i + 1):
      progress.update(i + 1)
    for name, (s, w) in sums.items():
      acc = totals.setdefault(name, [0.0, 0.0])
      acc[0] += float(s)
      acc[1] += float(w)
  metrics = setup.objective.summarize(totals)
  return {
      "metrics": metrics,
      "split": split,
      "num_batches": config.eval.num_batches,
      "num_sequences": config.eval.num_batches * config.train.global_batch_size,
      # What each mean is over: predicted tokens (lm/mlm) or sequences (nsp).
      "weights": {name: w for name, (_, w) in totals.items()},
      "data_fingerprint": pipe.fingerprint,
  }
