"""Modern decoder (Ettin/ModernBERT block), causal LM: the base with a causal mask and loss.

The decoder half of Ettin's pairs (Weller et al. 2025): the same block, data, tokenizer, schedule
and tokens as modern_encoder; only model.family (the mask) and objective.name (the loss) change.
"""

from configs.paired import base


def get_config(size="cpu"):
  c = base.to_decoder(base.get_config(size))
  c.name = "modern_decoder"
  return c
