"""CPU cooldown branches: one warmup-stable-decay run gives the final loss at 5 token budgets.

What it reproduces: Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations"), Figures 3-4 at a tiny scale. A width-64 muP decoder (the isoFLOP study's
model and learning rate, `scaling_base.py:cpu_mup`) trains 2,560 steps at its peak learning rate
after 50 warmup steps, keeping a checkpoint every 160 steps. From steps 160, 320, 640, 1,280 and 2,560, a
branch decays to 0 with the 1-sqrt shape over 20% of its own length (40 to 640 steps). Cosine
runs of the same total lengths (400 and 1,600 steps), from scratch, are the controls. figures.make
fits L(D) = E + B / D^beta through the branches' final losses (one data-scaling curve from one
run) and draws the cosine controls beside them.

    python -m launch.sweep --sweep configs/sweeps/wsd_cpu.py --root runs/wsd_cpu
    python -m figures.make --root runs/wsd_cpu --out results/

Runtime: see the README's scaling section (measured, with the load average).
"""

from configs import scaling_rules
from configs.sweeps import isoflop_cpu

CONFIG = "configs/sweeps/scaling_base.py:cpu_mup"
BRANCH_STEPS = (160, 320, 640, 1280, 2560)
COOLDOWN_FRAC = 0.2


def get_sweep():
  runs = scaling_rules.cooldown_branch_runs(
      CONFIG, BRANCH_STEPS, COOLDOWN_FRAC, batch=isoflop_cpu.BATCH,
      overrides={"model.d_model": 64, "model.d_ff": 256,
                 "optim.learning_rate": isoflop_cpu.LEARNING_RATE},
      warmup_steps=50, cosine_controls=(320, 1280))
  return {"name": "wsd_cpu", "kind": "branches", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "",
          "runs": runs}
