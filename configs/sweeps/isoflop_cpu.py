"""CPU isoFLOP study: muP decoders at 4 compute budgets over 16x, 7 widths each (Chinchilla approach 2).

What it reproduces: Hoffmann et al. 2022 (Chinchilla), Figure 3 and Approach 3, at a scale that
runs on 2 CPU cores. Budgets C = 2.5e11, 6.3e11, 1.6e12 and 4e12 FLOPs. For each budget, the 7
consecutive widths of WIDTHS centred on tokens per parameter ~ 20 train on exactly
C / flops_per_token tokens (configs/scaling_rules.py: isoflop_width_runs). That is 28 runs.
- Model: `scaling_base.py:cpu_mup`: a 2-layer, 2-head pre-LN GPT on byte ids of the embedded
  corpus (about 2.0M training tokens), muP relative to width 64, batch 16 x 128.
- Learning rate: LEARNING_RATE for every width, the muP optimum at the base width from
  configs/sweeps/mup_transfer_cpu.py:decoder (tuned once, transferred by muP). Warmup over 5% of
  the steps, then cosine to 10% over each run's own length.
- FLOPs are counted the way train.py counts them: 6N plus attention plus the output layer
  (models.counting). figures.make records that choice with every fitted number.
- The largest budget's smallest model reads the corpus about 5.6 times. Muennighoff et al. 2023
  find repeated data nearly as good as fresh up to about 4 epochs, so that point may sit a little
  high. The README's scaling section says what that does to the fit.

    python -m launch.sweep --sweep configs/sweeps/isoflop_cpu.py --root runs/isoflop_cpu
    python -m figures.make --root runs/isoflop_cpu --out results/

Runtime and results: see the README's scaling section (measured, with the load average).
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:cpu_mup"
NUM_LAYERS = 2
WIDTHS = (16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192)
BUDGETS = (2.5e11, 6.3e11, 1.6e12, 4e12)
SIZES_PER_BUDGET = 7
BATCH, SEQ_LEN, VOCAB = 16, 128, 264
LEARNING_RATE = 2e-3   # muP optimum at the base width 64 (2.08e-3): results/mup_transfer_decoder_cpu


def get_sweep():
  runs = scaling_rules.isoflop_width_runs(
      CONFIG, WIDTHS, BUDGETS, NUM_LAYERS, batch=BATCH, seq_len=SEQ_LEN, vocab_size=VOCAB,
      learning_rate=LEARNING_RATE, warmup_frac=0.05, sizes_per_budget=SIZES_PER_BUDGET)
  return {"name": "isoflop_cpu", "kind": "scaling", "budget": "compute",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "",
          "runs": runs}
