r"""Quickstart: a tiny GPT-style decoder trained on the embedded corpus, on a laptop CPU.

  python train.py --config configs/quickstart.py --workdir runs/quickstart

2 layers, d_model 128, 4 heads, context 64, a byte-level BPE vocabulary of 2048 trained on the
embedded corpus (CPython docs, offline), batch 16, 400 AdamW steps (lr 2e-3, b2 0.95, 50 warmup
steps, cosine decay to 10%), float32, data parallel over whatever devices exist (one on a laptop).

Expected (on 2 CPU devices, trainlib/cpu_devices.py; another device count differs in float
rounding only):
  held-out loss (4 batches of the validation split): step 0: 7.65 (ln 2048 = 7.62, uniform)
                                                     step 200: 5.44, step 400: 5.08
  train loss (the last 50 steps): 4.92
"""

from configs import base


def get_config():
  c = base.get_config()
  c.name = "quickstart"
  m = c.model
  m.family = "decoder"
  m.vocab_size = 2048
  m.max_len = 64
  m.num_layers = 2
  m.d_model = 128
  m.num_heads = 4
  m.ln_placement = "pre"
  m.activation = "gelu_tanh"
  m.dtype = "float32"
  c.objective.name = "causal"
  d = c.data
  d.corpus = "embedded"
  d.tokenizer = "bpe"
  d.train_vocab_size = 2048
  d.seq_len = 64
  t = c.train
  t.global_batch_size = 16
  t.num_steps = 400
  t.log_every = 50
  t.eval_every = 200
  t.eval_batches = 4
  t.checkpoint_every = 200
  o = c.optim
  o.learning_rate = 2e-3
  o.warmup_steps = 50
  o.schedule = "cosine"
  o.b2 = 0.95
  return c
