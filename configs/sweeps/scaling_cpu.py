"""CPU fixed-token sweep: 6 muP decoders (depth 2, 4 x width 32, 64, 128), each on 3.1M tokens.

What it reproduces: Kaplan et al. 2020, Figure 1 (middle), L(N) at fixed data, at a tiny scale.
Every size trains 3,000 steps of 8 x 128 byte ids (3.07M tokens, 1.5 passes over the embedded
corpus) with the isoFLOP study's recipe and batch: `scaling_base.py:cpu_mup` (2 heads, muP relative to
width 64), one learning rate for every size (the muP optimum at the base width,
configs/sweeps/isoflop_cpu.py), warmup 5% of the steps, cosine to 10%. Non-embedding sizes
25k-786k parameters, so the largest sees 4 tokens per parameter and the smallest 125.

An earlier version trained the 2,048-entry BPE recipe on 819k tokens (1.3 passes) with learning
rates by width from GPT-3's table. There the 4-layer models came out worse than the 2-layer
models of the same width, and E was not identified (its interval spanned 0 to 5);
docs/experiments.md has this version's results.

    python -m launch.sweep --sweep configs/sweeps/scaling_cpu.py --root runs/scaling_cpu
    python -m figures.make --root runs/scaling_cpu --out results/

Expect: final held-out loss 1.862, 1.666, 1.570 (2 layers) and 1.815, 1.653, 1.550 (4 layers) at
widths 32, 64, 128 (results/scaling_cpu/).
"""

from configs import scaling_rules
from configs.sweeps import isoflop_cpu

CONFIG = "configs/sweeps/scaling_base.py:cpu_mup"
DEPTHS, WIDTHS, STEPS = (2, 4), (32, 64, 128), 3000


def get_sweep():
  runs = scaling_rules.fixed_tokens_width_runs(
      CONFIG, DEPTHS, WIDTHS, STEPS, isoflop_cpu.BATCH, isoflop_cpu.SEQ_LEN, isoflop_cpu.VOCAB,
      isoflop_cpu.LEARNING_RATE, warmup_frac=0.05)
  return {"name": "scaling_cpu", "kind": "scaling", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "",
          "runs": runs}
