r"""Ettin decoder 68M (Weller et al. 2025, arXiv 2507.11412): 19 layers, d_model 512, 8 heads.

The causal decoder of the Ettin pair of this size (its twin: configs/ettin_encoder_68m.py), with
ModernBERT's block: pre-norm LayerNorm without biases, GeGLU with d_ff 768 per branch, RoPE (theta
160,000 global / 10,000 local), 128-token sliding windows with every third layer global, no biases,
tied embeddings, vocabulary 50,368, context 8192. Sizes and sources: configs/presets.py
(ETTIN_TABLE: the paper's model table and the jhu-clsp/ettin-decoder-68m config.json). Architecture
only: the 2T-token recipe is not reproduced (optim.* and train.* are base.py's). Differences from
the released model, all O(d_model) parameters or less: ModernBERT has no token-type row (here 1
row) and no norm before layer 0's attention (here there is one); pancake's encoder always builds a
pooler (d_model^2, unused by MLM); decoders have no embedding norm.

Command:
  python -m models.summary --config configs/ettin_decoder_68m.py

Expected:
  params_total 68,144,640; params_non_embedding 42,356,224; train_flops_per_token 4.355e8
  (seq_len 1024).
"""

from configs import presets


def get_config():
  return presets.ettin("decoder", "68m")
