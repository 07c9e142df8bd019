r"""GPT-2 1.5B (Radford et al. 2019): 48 layers, d_model 1600, 25 heads, context 1024.

Causal pre-LN decoder with a final LayerNorm and an LM head tied to the token embeddings; tanh
GELU, LayerNorm eps 1e-5, dropout 0.1, init std 0.02 with residual projections scaled by
1/sqrt(2 * 48); byte-level BPE vocabulary of 50,257. Sizes: configs/presets.py (GPT-2 paper,
Table 2; the released HF configs). The paper gives batch 512 x 1024 tokens but no learning rate or
length: lr 2e-4 is the GPT-3 Table 2.1 row of the nearest size, with GPT-3's AdamW (b2 0.95,
eps 1e-8, weight decay 0.1), 375M-token warmup and cosine decay to 10% over 300B tokens.
Load the real GPT-2 vocabulary with data.vocab_file=.../vocab.json data.merges_file=.../merges.txt.

Command:
  python -m models.summary --config configs/gpt2_xl.py

Expected:
  params_total 1,557,611,200; params_non_embedding 1,475,561,600; train_flops_per_token 9.808e9
  (seq_len 1024).
"""

from configs import presets


def get_config():
  return presets.gpt2("xl")
