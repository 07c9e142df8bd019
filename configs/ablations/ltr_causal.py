"""BERT's "LTR & No NSP": a left-to-right language model on BERT's backbone, no NSP.

Mirrors BERT Table 5 (Devlin et al. 2019), row "LTR & No NSP" (MNLI-m 82.1, QNLI 84.3,
MRPC 77.5, SST-2 92.1, SQuAD 77.8 F1): "a left-context-only model trained using a standard
Left-to-Right LM", otherwise the same model, data and budget. So, deliberately, only the attention
mask and the loss change: model.family "decoder" (causal mask, next-token loss on every position)
and objective.name "causal"; the backbone keeps the base's BERT settings (post-LN, exact GELU,
LN eps 1e-12, init), NOT GPT-2's pre-LN. What the decoder family drops with the family switch:
segment (token-type) embeddings, the MLM head's dense+LN transform and the pooler, a few
d_model^2 parameters out of 85M non-embedding at BERT-base size.
Differs from the shared base only in objective.name, model.family and model.nsp_head (off).
"""

from configs.ablations import base


def get_config(size="cpu"):
  c = base.get_config(size)
  c.name = "ltr_causal"
  c.objective.name = "causal"
  c.model.family = "decoder"
  c.model.nsp_head = False
  return c
