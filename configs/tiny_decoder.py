r"""Tiny GPT-shaped decoder: 4 layers, d_model 128, 4 heads, vocabulary 8192, context 256.

For tests, the quickstart and generation on a laptop: pre-LN, tanh GELU, tied LM head, causal LM
on 128-token packed sequences, batch 32, AdamW (GPT-3's betas) lr 1e-3, 100 warmup steps, cosine
decay to 10%, no dropout, float32. Trains in minutes on 2 CPU cores on the embedded corpus with a
byte-level BPE vocabulary trained to 8192 entries.

Command:
  python -m models.summary --config configs/tiny_decoder.py

Expected:
  params_total 1,874,688; params_non_embedding 793,344; train_flops_per_token 1.145e7.
"""

from configs import presets


def get_config():
  return presets.tiny_decoder()
