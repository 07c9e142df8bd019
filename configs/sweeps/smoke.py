"""Two-run smoke sweep: two tiny decoders for a few steps, to test launch -> runs -> figures.

Used by the end-to-end sweep test; seconds per run on a CPU. Too few sizes for a power-law fit
(figures/ says so instead of fitting).
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:cpu"


def get_sweep():
  runs = scaling_rules.fixed_tokens_runs(
      CONFIG, depths=(1,), widths=(16, 32), tokens=4 * 4 * 32, batch=4, seq_len=32,
      vocab_size=2048, d_head=16, warmup_frac=0.25)
  for run in runs:
    run["overrides"].update({"data.seq_len": 32, "model.max_len": 32, "train.log_every": 1,
                             "train.eval_batches": 1, "train.checkpoint_every": 4,
                             "eval.num_batches": 1})
  return {"name": "smoke", "kind": "scaling", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "heldout",
          "runs": runs}
