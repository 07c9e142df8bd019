"""CPU isoFLOP study: muP decoders at 4 compute budgets over 10x, 6-8 widths each (Chinchilla approach 2).

What it reproduces: Hoffmann et al. 2022 (Chinchilla), Figure 3 and Approach 3, at a scale that
runs on 2 CPU cores. Budgets C = 1.5e11, 3.2e11, 7e11 and 1.5e12 FLOPs. For each budget, every
width of WIDTHS that gets at least MIN_STEPS optimizer steps on at most MAX_TOKENS tokens trains
on exactly C / flops_per_token tokens (configs/scaling_rules.py: isoflop_width_runs).
- Model: `scaling_base.py:cpu_mup`: a 2-layer, 2-head pre-LN GPT on byte ids of the embedded
  corpus (about 2.0M training tokens), muP relative to width 64, batch 8 x 128.
- Learning rate: LEARNING_RATE for every width, the muP optimum at the base width from
  configs/sweeps/mup_transfer_cpu.py:decoder (tuned once, transferred by muP). Warmup over 5% of
  the steps, then cosine to 10% over each run's own length.
- Why at least 1,000 steps: a first design (batch 16, 7 widths centred on 20 tokens per
  parameter) put 100-500 steps on the larger models. Those stayed on the loss plateau near 2.5
  nats per byte that these models leave after about 1,000 steps, so the smallest model won every
  budget. docs/experiments.md has the numbers.
- Why at most 8M tokens (4 passes over the corpus): Muennighoff et al. 2023 find repeated data
  nearly as good as fresh up to about 4 epochs.
- FLOPs are counted the way train.py counts them: 6N plus attention plus the output layer
  (models.counting). figures.make records that choice with every fitted number, and also
  reports the exponents under the other accountings.

    python -m launch.sweep --sweep configs/sweeps/isoflop_cpu.py --root runs/isoflop_cpu
    python -m figures.make --root runs/isoflop_cpu --out results/

Expect: N_opt ∝ C^0.809 with 95% bootstrap interval [0.650, 0.927], D_opt ∝ C^0.386
[0.290, 0.480], loss at the optimum 2.430, 2.151, 1.847 and 1.663 nats per byte
(results/isoflop_cpu/). With --parallel 2 (two runs at a time, one per core) the fits stay the
same to within 0.01.
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:cpu_mup"
NUM_LAYERS = 2
WIDTHS = (8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96)
BUDGETS = (1.5e11, 3.2e11, 7e11, 1.5e12)
MIN_STEPS, MAX_TOKENS = 1000, 8_000_000
BATCH, SEQ_LEN, VOCAB = 8, 128, 264
LEARNING_RATE = 2e-3   # muP optimum at the base width 64 (2.08e-3): results/mup_transfer_decoder_cpu


def get_sweep():
  runs = scaling_rules.isoflop_width_runs(
      CONFIG, WIDTHS, BUDGETS, NUM_LAYERS, batch=BATCH, seq_len=SEQ_LEN, vocab_size=VOCAB,
      learning_rate=LEARNING_RATE, min_steps=MIN_STEPS, max_tokens=MAX_TOKENS, warmup_frac=0.05)
  return {"name": "isoflop_cpu", "kind": "scaling", "budget": "compute",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "",
          "runs": runs}
