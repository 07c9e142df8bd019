"""Pod isoFLOP sweep: the depth x width grid at budgets of 1e20, 1e21 and 1e22 FLOPs.

Chinchilla approach 2 (Hoffmann et al. 2022, Figure 3): for each budget C, every grid size whose
tokens per parameter lie in [2, 200] trains on C / flops_per_token tokens, so each budget traces
a U-shaped loss-vs-N curve whose minimum estimates N_opt(C). The budgets put the Chinchilla
optimum (D = 20 N: N_opt = sqrt(C / 120) = 0.9B, 2.9B, 9.1B) inside the grid. Learning rate and
batch by width from GPT-3 Table 2.1, cosine decay over each run's own length
(configs/scaling_rules.py).
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:pod"
DEPTHS, WIDTHS = (12, 24, 48, 96), (768, 1536, 3072, 6144, 12288)
BUDGETS = (1e20, 1e21, 1e22)
SEQ_LEN, VOCAB = 2048, 50257


def get_sweep():
  runs = scaling_rules.isoflop_runs(
      CONFIG, DEPTHS, WIDTHS, BUDGETS,
      batch=lambda d: scaling_rules.batch_sequences(d, SEQ_LEN), seq_len=SEQ_LEN,
      vocab_size=VOCAB, d_head=128, warmup_frac=0.02)
  return {"name": "isoflop_pod", "kind": "scaling", "budget": "compute",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "heldout",
          "runs": runs}
