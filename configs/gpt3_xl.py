r"""GPT-3 XL (1.3B) (Brown et al. 2020, Table 2.1): 24 layers, d_model 2048, 16 heads of 128.

Causal pre-LN decoder, context 2048, vocabulary 50,257, LM head tied to the token embeddings.
Table 2.1: batch 1M tokens (512 sequences of 2048), learning rate 2.0e-4.
Appendix B: AdamW b1 0.9, b2 0.95, eps 1e-8, clip 1.0, weight decay 0.1, linear warmup over 375M
tokens, cosine decay to 10%; 300B tokens in total (the paper decays over 260B tokens, then holds;
here the cosine spans the whole run).
Table 2.1 prints 24 heads of d_head 128, an attention width of 3072 != d_model 2048 that
would give 1.52B parameters; 16 heads of 128 keep the width at d_model and give the row's 1.3B
(as Megatron-LM and Pythia). For the literal row: --config.model.num_heads=24.
Not reproduced: the paper's alternating locally banded sparse attention (every layer is dense
here), its batch-size ramp over the first 4-12B tokens, and its data mix. No dropout (not stated
in the paper). bf16 compute, float32 parameters.

Command:
  python -m models.summary --config configs/gpt3_xl.py

Expected:
  params_total 1,315,723,264; params_non_embedding 1,208,602,624; train_flops_per_token 8.473e9
  (seq_len 2048).
"""

from configs import presets


def get_config():
  return presets.gpt3("xl")
