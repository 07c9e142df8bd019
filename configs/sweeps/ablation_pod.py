"""Pod objective ablation: the four objectives at BERT-base size, RoBERTa Table 2's budget.

configs/ablations/*.py at the "pod" size: 12 layers, d_model 768, 1M steps of 256 x 512 tokens
on Wikipedia, fine-tuned on SST-2 (glue/sst2) for the finetune suite. One seed by default
(`--seeds 0,1,2` for spread). 131B tokens at 5.9e8 (MLM) to 6.8e8 (causal) training FLOPs per
token (models.counting) is ~8e19 FLOPs per run: about 4 hours on a v5p-64 (32 chips) at 40% MFU.
"""

from configs.sweeps import ablation_cpu


def get_sweep():
  sweep = ablation_cpu.get_sweep(size="pod")
  sweep.update(description=__doc__.splitlines()[0], seeds=[0])
  return sweep
