r"""GPT-3 Large (760M) (Brown et al. 2020, Table 2.1): 24 layers, d_model 1536, 16 heads of 96.

Causal pre-LN decoder, context 2048, vocabulary 50,257, LM head tied to the token embeddings.
Table 2.1: batch 0.5M tokens (256 sequences of 2048), learning rate 2.5e-4.
Appendix B: AdamW b1 0.9, b2 0.95, eps 1e-8, clip 1.0, weight decay 0.1, linear warmup over 375M
tokens, cosine decay to 10%; 300B tokens in total (the paper decays over 260B tokens, then holds;
here the cosine spans the whole run).
Not reproduced: the paper's alternating locally banded sparse attention (every layer is dense
here), its batch-size ramp over the first 4-12B tokens, and its data mix. No dropout (not stated
in the paper). bf16 compute, float32 parameters.

Command:
  python -m models.summary --config configs/gpt3_large.py

Expected:
  params_total 760,300,032; params_non_embedding 679,959,552; train_flops_per_token 4.996e9
  (seq_len 2048).
"""

from configs import presets


def get_config():
  return presets.gpt3("large")
