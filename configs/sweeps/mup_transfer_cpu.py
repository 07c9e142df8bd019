"""muP learning-rate transfer on CPU: final loss against learning rate at widths 32, 64, 128.

`--sweep configs/sweeps/mup_transfer_cpu.py:decoder` or `:encoder`. Every (parametrization,
width, learning rate) in {SP, muP} x WIDTHS x LEARNING_RATES trains STEPS steps of 16 x 128
tokens on the embedded corpus (Yang et al. 2022, Figure 1 at a tiny scale). Under muP the best
learning rate should sit at the same place for every width; under SP it moves as width grows.
At the base width 64 the two are the same model (models/mup.py), so their points coincide.
- decoder: `scaling_base.py:cpu_mup`, the isoFLOP study's recipe (2 layers, 2 heads, byte ids).
  Its muP optimum at the base width is the learning rate of configs/sweeps/isoflop_cpu.py.
- encoder: `ablations/mlm_only.py:cpu` (BERT's post-LN block, MLM at 15%, WordPiece 4,096) with
  2 heads at every width and the same base width.
Expect (one seed): the best learning rate moves 0.73 (decoder) and 1.35 (encoder) octaves over
the three widths under SP, 0.41 and 0.31 under muP; the base-width optimum is 2.08e-3 (decoder).

    python -m launch.sweep --sweep configs/sweeps/mup_transfer_cpu.py:decoder --root runs/mup_transfer_decoder_cpu
    python -m figures.make --root runs/mup_transfer_decoder_cpu --out results/
"""

from configs import scaling_rules
from configs.errors import ConfigError

WIDTHS = (32, 64, 128)
LEARNING_RATES = (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)
STEPS, BATCH = 300, 16
CONFIGS = {"decoder": ("configs/sweeps/scaling_base.py:cpu_mup", {}),
           "encoder": ("configs/ablations/mlm_only.py:cpu",
                       {"model.num_heads": 2, "model.d_head": 0, "model.mup_base_width": 64})}


def get_sweep(family="decoder"):
  if family not in CONFIGS:
    raise ConfigError(f"mup_transfer_cpu family={family!r} is not one of "
                      f"{', '.join(map(repr, CONFIGS))}")
  config, extra = CONFIGS[family]
  runs = scaling_rules.lr_transfer_runs(config, WIDTHS, LEARNING_RATES, STEPS, BATCH,
                                        warmup_frac=0.05, extra=extra)
  return {"name": f"mup_transfer_{family}_cpu", "kind": "lr_transfer", "budget": "tokens",
          "description": f"{family}: " + __doc__.splitlines()[0], "seeds": [0],
          "eval_suites": "", "runs": runs}
