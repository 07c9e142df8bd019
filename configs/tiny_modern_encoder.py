r"""Tiny ModernBERT/Ettin-shaped encoder: 3 layers, d_model 128, 4 query heads, 2 key/value heads.

The modern block at the tiny presets' sizes, for comparing against configs/tiny_encoder.py on 2 CPU
cores: pre-norm LayerNorm without biases, GeGLU (d_ff 256 per branch), RoPE (theta 160,000 in layer
0, 10,000 in the windowed layers 1 and 2), 32-token sliding windows (16 each side) with every third
layer global, grouped-query attention, no biases, tied embeddings; MLM (30% masking, 40 predictions
per sequence, no NSP) on 128-token sequences, batch 32, 600 AdamW steps (lr 1e-3, 60 warmup steps,
linear decay), WordPiece vocabulary of 8192, trained on the embedded corpus, float32.
`python -m bench.tiny_presets` measures its step time and the minutes its 600 steps take. Losses: not yet measured (`train.py --config
configs/tiny_modern_encoder.py`).

Command:
  python -m models.summary --config configs/tiny_modern_encoder.py

Expected:
  params_total 1,533,184; params_non_embedding 476,288; train_flops_per_token 4.963e6
  (seq_len 128, 40 predictions per sequence).
"""

from configs import presets


def get_config():
  return presets.tiny_modern("encoder")
