r"""GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads of 128.

Causal pre-LN decoder, context 2048, vocabulary 50,257, LM head tied to the token embeddings.
Table 2.1: batch 3.2M tokens (1536 sequences of 2048), learning rate 0.6e-4.
Appendix B: AdamW b1 0.9, b2 0.95, eps 1e-8, clip 1.0, weight decay 0.1, linear warmup over 375M
tokens, cosine decay to 10%; 300B tokens in total (the paper decays over 260B tokens, then holds;
here the cosine spans the whole run).
3.2M tokens is 1562.5 sequences of 2048; 1536 sequences (3.1M tokens) as in Megatron-LM.
Pod recipe (topology, mesh, remat, attention_impl='flash'): configs/pod_recipes.py, docs/pods.md.
Not reproduced: the paper's alternating locally banded sparse attention (every layer is dense
here), its batch-size ramp over the first 4-12B tokens, and its data mix. No dropout (not stated
in the paper). bf16 compute, float32 parameters.

Command:
  python -m models.summary --config configs/gpt3_175b.py

Expected:
  params_total 174,604,259,328; params_non_embedding 173,961,535,488; train_flops_per_token 1.062e12
  (seq_len 2048).
"""

from configs import presets


def get_config():
  return presets.gpt3("175b")
