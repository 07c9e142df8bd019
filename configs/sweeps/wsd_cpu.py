"""CPU cooldown branches: one warmup-stable-decay run gives the final loss at 5 token budgets.

What it reproduces: Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations"), Figures 3-4 at a tiny scale. A width-64 muP decoder (the isoFLOP study's
model, batch and learning rate, `scaling_base.py:cpu_mup`) trains 5,000 steps of 8 x 128 tokens
at its peak learning rate after 50 warmup steps, keeping a checkpoint every 500 steps. From
steps 1,000, 1,500, 2,500, 3,500 and 5,000, a branch decays to 0 with the 1-sqrt shape over 20%
of its own length (250 to 1,250 steps; the longest branch reads the corpus 3.2 times). Branches
start at 1,000 steps or later because these models leave their early loss plateau at about that
point (configs/sweeps/isoflop_cpu.py). Cosine runs of the same total lengths (1,875 and 4,375
steps), from scratch, are the controls. figures.make fits L(D) = E + B / D^beta through the
branches' final losses (one data-scaling curve from one run) and draws the controls beside them.

    python -m launch.sweep --sweep configs/sweeps/wsd_cpu.py --root runs/wsd_cpu
    python -m figures.make --root runs/wsd_cpu --out results/

Expect: branch ends 2.070, 1.768, 1.549, 1.464 and 1.369; cosine controls 1.948 (1,875 steps)
and 1.512 (4,375 steps) (results/wsd_cpu/).
"""

from configs import scaling_rules
from configs.sweeps import isoflop_cpu

CONFIG = "configs/sweeps/scaling_base.py:cpu_mup"
BRANCH_STEPS = (1000, 1500, 2500, 3500, 5000)
COOLDOWN_FRAC = 0.2


def get_sweep():
  runs = scaling_rules.cooldown_branch_runs(
      CONFIG, BRANCH_STEPS, COOLDOWN_FRAC, batch=isoflop_cpu.BATCH,
      overrides={"model.d_model": 64, "model.d_ff": 256,
                 "optim.learning_rate": isoflop_cpu.LEARNING_RATE},
      warmup_steps=50, cosine_controls=(1500, 3500))
  return {"name": "wsd_cpu", "kind": "branches", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "",
          "runs": runs}
