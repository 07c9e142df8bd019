r"""BERT-base (Devlin et al. 2019): 12 layers, d_model 768, 12 heads, 110M parameters.

Bidirectional post-LN encoder with MLM + NSP heads, pre-trained with the paper's phase-1 recipe:
128-token sequences, batch 256, 900k steps (90% of 1M), AdamW lr 1e-4 with 10k warmup steps and
linear decay to 0, b2 0.999, eps 1e-6, weight decay 0.01, dropout 0.1, exact GELU, LayerNorm eps
1e-12, WordPiece vocabulary of 30,522 (uncased), 20 predictions per sequence, static masks.
Sizes: configs/presets.py (BERT paper, sec. 3; google-research/bert bert_config.json).
The paper's "110M" is the encoder with pooler: 109,482,240 here; the MLM transform, its output
bias and the NSP classifier add 624,188. Point data.* at a corpus (e.g. data.corpus=tfds,
data.tfds_name=wiki40b/en:1.3.0) for a real run; bf16 compute, float32 parameters.

Command:
  python -m models.summary --config configs/bert_base.py

Expected:
  params_total 110,106,428; params_non_embedding 86,240,258; train_flops_per_token 5.471e8
  (seq_len 128, 20 predictions per sequence).
"""

from configs import presets


def get_config():
  return presets.bert("base")
