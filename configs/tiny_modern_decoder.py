r"""Tiny ModernBERT/Ettin-shaped decoder: 3 layers, d_model 128, 4 query heads, 2 key/value heads.

The modern block at the tiny presets' sizes, for comparing against configs/tiny_decoder.py on 2 CPU
cores: pre-norm LayerNorm without biases, GeGLU (d_ff 256 per branch), RoPE (theta 160,000 in layer
0, 10,000 in the windowed layers 1 and 2), 32-token sliding windows (16 each side) with every third
layer global, grouped-query attention, no biases, tied embeddings; causal LM on 128-token packed
sequences, batch 16, 500 AdamW steps (GPT-3's betas, lr 2e-3, 50 warmup steps, cosine decay to
10%), byte-level BPE vocabulary of 8192, trained on the embedded corpus, float32.
`python -m bench.tiny_presets` measures its step time and the minutes its 500 steps take. Losses: not yet measured (`train.py --config
configs/tiny_modern_decoder.py`).

Command:
  python -m models.summary --config configs/tiny_modern_decoder.py

Expected:
  params_total 1,491,840; params_non_embedding 443,264; train_flops_per_token 9.098e6
  (seq_len 128).
"""

from configs import presets


def get_config():
  return presets.tiny_modern("decoder")
