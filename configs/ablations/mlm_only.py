"""BERT's "No NSP": masked LM alone, same inputs and budget, no next-sentence head or loss.

Mirrors BERT Table 5 (Devlin et al. 2019), row "No NSP" (MNLI-m 83.9, QNLI 84.9, MRPC 86.5,
SST-2 92.6, SQuAD 87.9 F1): BERT found removing NSP hurts QNLI, MNLI and SQuAD. Differs from the
shared base only in objective.name ("mlm") and model.nsp_head (off: no pooler/classifier
parameters that would receive no gradient).
"""

from configs.ablations import base


def get_config(size="cpu"):
  c = base.get_config(size)
  c.name = "mlm_only"
  c.objective.name = "mlm"
  c.model.nsp_head = False
  return c
