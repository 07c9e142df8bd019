"""CPU objective ablation at 3x the budget: does anything change between 0.8M and 2.5M tokens?

The same four runs and seeds as configs/sweeps/ablation_cpu.py (same backbone, data, warmup and
peak learning rate), with two named changes: 1,200 training steps instead of 400 (2.46M tokens;
the linear decay stretches with them) and 300 fine-tuning steps instead of 100 for the finetune
suite. Read next to ablation_cpu: which differences grow with budget, which stay noise.

    python -m launch.sweep --sweep configs/sweeps/ablation_cpu_long.py --root runs/ablation_cpu_long
    python -m figures.make --root runs/ablation_cpu_long --out results/

Runtime: about an hour on a 2-core CPU (3x the training of ablation_cpu, evals a little longer).
Measured results: results/ablation_cpu_long/ and the README.
"""

from configs.sweeps import ablation_cpu

NUM_STEPS = 1200       # 3 x ablation_cpu's 400: 1,200 x 16 x 128 = 2.46M tokens per run
FINETUNE_STEPS = 300   # 3 x the cpu size's 100


def get_sweep():
  sweep = ablation_cpu.get_sweep()
  for run in sweep["runs"]:
    run["overrides"] = {"train.num_steps": NUM_STEPS, "eval.finetune_steps": FINETUNE_STEPS}
  sweep.update(name="ablation_cpu_long", description=__doc__.splitlines()[0])
  return sweep
