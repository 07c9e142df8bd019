"""RoBERTa's FULL-SENTENCES: MLM on inputs packed with contiguous full sentences, no NSP.

Mirrors RoBERTa Table 2 (Liu et al. 2019), row "Our reimplementation (without NSP loss):
FULL-SENTENCES" (SQuAD 1.1/2.0 90.4/79.1, MNLI-m 84.7, SST-2 92.5, RACE 64.8): each input is
filled with full sentences sampled contiguously from one or more documents (crossing a document
boundary adds a separator), up to seq_len tokens. RoBERTa found it matches or beats SEGMENT-PAIR
with NSP. Differs from the shared base only in objective.name ("mlm_full_sentences") and
model.nsp_head (off).
"""

from configs.ablations import base


def get_config(size="cpu"):
  c = base.get_config(size)
  c.name = "roberta_full_sentences"
  c.objective.name = "mlm_full_sentences"
  c.model.nsp_head = False
  return c
