r"""GPT-3 6.7B (Brown et al. 2020, Table 2.1): 32 layers, d_model 4096, 32 heads of 128.

Causal pre-LN decoder, context 2048, vocabulary 50,257, LM head tied to the token embeddings.
Table 2.1: batch 2M tokens (1024 sequences of 2048), learning rate 1.2e-4.
Appendix B: AdamW b1 0.9, b2 0.95, eps 1e-8, clip 1.0, weight decay 0.1, linear warmup over 375M
tokens, cosine decay to 10%; 300B tokens in total (the paper decays over 260B tokens, then holds;
here the cosine spans the whole run).
Not reproduced: the paper's alternating locally banded sparse attention (every layer is dense
here), its batch-size ramp over the first 4-12B tokens, and its data mix. No dropout (not stated
in the paper). bf16 compute, float32 parameters.

Command:
  python -m models.summary --config configs/gpt3_6_7b.py

Expected:
  params_total 6,658,404,352; params_non_embedding 6,444,163,072; train_flops_per_token 4.151e10
  (seq_len 2048).
"""

from configs import presets


def get_config():
  return presets.gpt3("6_7b")
