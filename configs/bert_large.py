r"""BERT-large (Devlin et al. 2019): 24 layers, d_model 1024, 16 heads, 340M parameters.

Same recipe as configs/bert_base.py (phase 1: 128-token sequences, batch 256, lr 1e-4, linear
decay, AdamW b2 0.999, eps 1e-6, weight decay 0.01, dropout 0.1, post-LN, exact GELU, LN eps 1e-12,
WordPiece 30,522). Sizes: configs/presets.py (BERT paper, sec. 3).
The encoder with pooler has 335,141,888 parameters (the paper rounds to 340M).

Command:
  python -m models.summary --config configs/bert_large.py

Expected:
  params_total 336,226,108; params_non_embedding 304,414,722; train_flops_per_token 1.882e9.
"""

from configs import presets


def get_config():
  return presets.bert("large")
