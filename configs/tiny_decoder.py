r"""Tiny GPT-shaped decoder: 4 layers, d_model 128, 4 heads, vocabulary 8192, context 256.

For tests, objective ablations and generation on a laptop: pre-LN, tanh GELU, tied LM head,
causal LM on 128-token packed sequences, batch 16, 500 AdamW steps (GPT-3's betas, lr 2e-3, 50
warmup steps, cosine decay to 10%), no dropout, float32, byte-level BPE vocabulary trained to 8192
entries on the embedded corpus (the 8192-way head is half the FLOPs). `python -m
bench.tiny_presets` measures its step time and the minutes its 500 steps take.

Command:
  python -m models.summary --config configs/tiny_decoder.py

Expected:
  params_total 1,874,688; params_non_embedding 793,344; train_flops_per_token 1.145e7.
"""

from configs import presets


def get_config():
  return presets.tiny_decoder()
