"""Modern encoder (Ettin/ModernBERT block), MLM with 30% masking: the base itself.

The encoder half of Ettin's pairs (Weller et al. 2025): bidirectional attention, masked-token loss,
no NSP. Run: `python train.py --config configs/paired/modern_encoder.py:cpu --workdir DIR`.
"""

from configs.paired import base


def get_config(size="cpu"):
  c = base.get_config(size)
  c.name = "modern_encoder"
  return c
