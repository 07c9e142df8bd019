r"""Llama 2 7B (Touvron et al. 2023): 32 layers, d_model 4096, 32 heads, SwiGLU d_ff 11008.

The Llama-style decoder: pre-RMSNorm (eps 1e-5), SwiGLU MLP, RoPE (theta 10,000) on every head
dimension, no biases, untied LM head, vocabulary 32,000, context 4096, multi-head attention (the 7B
model has num_kv_heads = num_heads; set model.num_kv_heads for GQA as in the 34B/70B). Recipe from
the paper (sec. 2.2): AdamW b2 0.95, eps 1e-5, weight decay 0.1, 2000 warmup steps, cosine decay to
10% of lr 3e-4, 4M-token batches, 2T tokens. Sizes: configs/presets.py. The published 6.74B is this
model's parameter count exactly (meta-llama/Llama-2-7b-hf: 6,738,415,616).

Command:
  python -m models.summary --config configs/llama2_7b.py

Expected:
  params_total 6,738,415,616; params_non_embedding 6,476,271,616; train_flops_per_token 4.287e10
  (seq_len 4096).
"""

from configs import presets


def get_config():
  return presets.llama2_7b()
