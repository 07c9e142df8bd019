"""CPU isoFLOP sweep: decoder sizes at two fixed compute budgets (Chinchilla approach 2, tiny).

For each budget C in (2e12, 6e12) FLOPs, every grid size (depth 1, 2, 4 x width 32, 64, 128)
whose tokens per parameter D/N = C / (flops_per_token * N) lie in [2, 200] trains on exactly
C / flops_per_token tokens (configs/scaling_rules.py). The figure is loss vs N per budget with a
parabola in log N marking each budget's optimum. 4.8e13 FLOPs in all: about 1.5 hours on a
busy 2-core CPU (~9 GFLOP/s effective, measured on scaling_cpu's largest run); not part of the
committed demo.
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:cpu"
DEPTHS, WIDTHS, BUDGETS = (1, 2, 4), (32, 64, 128), (2e12, 6e12)
BATCH, SEQ_LEN, VOCAB = 16, 128, 2048


def get_sweep():
  runs = scaling_rules.isoflop_runs(
      CONFIG, DEPTHS, WIDTHS, BUDGETS, batch=BATCH, seq_len=SEQ_LEN, vocab_size=VOCAB,
      d_head=32, lr_cap=2e-3, warmup_frac=0.05)
  return {"name": "isoflop_cpu", "kind": "scaling", "budget": "compute",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "heldout",
          "runs": runs}
