r"""Tiny BERT-shaped encoder: 2 layers, d_model 128, 4 heads, vocabulary 8192.

For tests, the quickstart and objective ablations on a laptop: post-LN, exact GELU, LN eps 1e-12,
MLM + NSP on 128-token sequences (20 predictions each), batch 32, AdamW lr 1e-3 with 100 warmup
steps and linear decay, no dropout, float32. Trains in minutes on 2 CPU cores on the embedded
corpus with a WordPiece vocabulary trained to 8192 entries.

Command:
  python -m models.summary --config configs/tiny_encoder.py

Expected:
  params_total 1,503,746; params_non_embedding 430,338; train_flops_per_token 3.780e6.
"""

from configs import presets


def get_config():
  return presets.tiny_encoder()
