"""CPU scaling sweep: 6 decoder sizes (depth 2, 4 x width 32, 64, 128) at a fixed 819k tokens.

Fixed tokens: every size trains 400 steps of 16 x 128 tokens, so the figure is L(N) at fixed D
(Kaplan et al. 2020, Figure 1 middle, at a tiny scale): it bends towards a data-limited floor as
N grows. Learning rate by width (configs/scaling_rules.py: GPT-3 Table 2.1 power law, capped at
2e-3), one batch for every size, warmup 5% of the steps, cosine to 10%. Non-embedding sizes
25k-786k parameters. Measured on 2 CPU cores with nothing else running (2026-12-01, one run): the largest
run (L4_d128) trains at 2.45 steps/s, 202 s for the whole train.py run (start-up and its 10
held-out evaluations included); the smaller runs are faster. (The whole sweep took ~30 minutes
on a machine shared with other jobs, load ~8, when the committed results were made.)

    python -m launch.sweep --sweep configs/sweeps/scaling_cpu.py --root runs/scaling_cpu
    python -m figures.make --root runs/scaling_cpu --out results/scaling_cpu
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:cpu"
DEPTHS, WIDTHS = (2, 4), (32, 64, 128)
BATCH, SEQ_LEN, VOCAB, STEPS = 16, 128, 2048, 400


def get_sweep():
  runs = scaling_rules.fixed_tokens_runs(
      CONFIG, DEPTHS, WIDTHS, tokens=STEPS * BATCH * SEQ_LEN, batch=BATCH, seq_len=SEQ_LEN,
      vocab_size=VOCAB, d_head=32, lr_cap=2e-3, warmup_frac=0.05)
  return {"name": "scaling_cpu", "kind": "scaling", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "heldout",
          "runs": runs}
