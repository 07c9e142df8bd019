r"""Tiny BERT-shaped encoder: 2 layers, d_model 128, 4 heads, vocabulary 8192.

For tests, the quickstart and objective ablations on a laptop: post-LN, exact GELU, LN eps 1e-12,
MLM + NSP on 128-token sequences (20 predictions each), batch 32, 600 AdamW steps (lr 1e-3,
60 warmup steps, linear decay), no dropout, float32, WordPiece vocabulary trained to 8192 entries
on the embedded corpus. `python -m bench.tiny_presets` measures its step time and the minutes its
600 steps take.

Command:
  python -m models.summary --config configs/tiny_encoder.py

Expected:
  params_total 1,503,746; params_non_embedding 430,338; train_flops_per_token 3.780e6.
"""

from configs import presets


def get_config():
  return presets.tiny_encoder()
