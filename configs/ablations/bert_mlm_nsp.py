"""BERT as published: masked LM + next-sentence prediction (the reference row of the ablation).

Mirrors BERT Table 5 (Devlin et al. 2019), row "BERT_BASE" (MNLI-m 84.4, QNLI 88.4, MRPC 86.7,
SST-2 92.7, SQuAD 88.5 F1), and RoBERTa Table 2 (Liu et al. 2019), row "Our reimplementation
(with NSP loss): SEGMENT-PAIR" (SST-2 92.9, MNLI-m 84.0) at the "pod" size. It differs from the
shared base (configs/ablations/base.py) only in its name: the base *is* BERT's recipe.
"""

from configs.ablations import base


def get_config(size="cpu"):
  c = base.get_config(size)
  c.name = "bert_mlm_nsp"
  return c
