"""CPU objective ablation at 3x the budget: does anything change between 0.8M and 2.5M tokens?

The same four runs and seeds as configs/sweeps/ablation_cpu.py (same backbone, data, warmup and
peak learning rate), with two named changes: 1,200 training steps instead of 400 (2.46M tokens;
the linear decay stretches with them) and 300 fine-tuning steps instead of 100 for the finetune
suite. Read next to ablation_cpu: which differences grow with budget, which stay noise.

    python -m launch.sweep --sweep configs/sweeps/ablation_cpu_long.py --root runs/ablation_cpu_long
    python -m figures.make --root runs/ablation_cpu_long --out results/

The 8 runs and their evals took 57 min on this 2-core CPU when the committed results were
made (load not recorded then). Expected (mean of 2 seeds;
results/ablation_cpu_long/): MLM accuracy 17.5-18.9% and MLM loss 5.14-5.23 for the three MLM
variants, NSP accuracy 65%; LTR LM loss 4.11; cloze 26-29% for the MLM variants and 68% for LTR
(chance 20%); doc_order fine-tuning 50-54% (majority 51.8%).

results/ablation_cpu_long/ predates the downstream suite: its fine-tuning column is the finetune
suite on doc_order (300 steps). Rerunning the sweep now evaluates the downstream suite instead
(configs/ablations/base.py; its runs are 300 steps here), which has not been run at this budget.
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
