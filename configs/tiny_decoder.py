r"""Tiny GPT-shaped decoder: 4 layers, d_model 128, 4 heads, vocabulary 8192, context 256.

For tests, objective ablations and generation on a laptop: pre-LN, tanh GELU, tied LM head,
causal LM on 128-token packed sequences, batch 16, 500 AdamW steps (GPT-3's betas, lr 2e-3, 50
warmup steps, cosine decay to 10%), no dropout, float32, byte-level BPE vocabulary trained to 8192
entries on the embedded corpus. A training step takes 0.56 s on 2 CPU cores (trainlib's step on 2
CPU devices; the 8192-way head is half the FLOPs; bench/tiny_presets.py, median of 3 rounds,
2026-12-01, load average 2.0 at the start from the bench before it), so the 500 steps take about
4.6 minutes.

Command:
  python -m models.summary --config configs/tiny_decoder.py

Expected:
  params_total 1,874,688; params_non_embedding 793,344; train_flops_per_token 1.145e7.
"""

from configs import presets


def get_config():
  return presets.tiny_decoder()
