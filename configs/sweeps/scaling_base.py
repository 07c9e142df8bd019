"""The decoder (GPT-style causal LM) that the scaling sweeps vary in depth and width.

Sizes (`configs/sweeps/scaling_base.py:cpu` or `:pod`); the sweeps set num_layers, d_model,
num_heads, d_ff, learning rate, batch, steps and warmup per run (configs/scaling_rules.py):
- "cpu": embedded corpus, byte-level BPE trained to 2,048 tokens (a small vocabulary keeps the
  output layer from dominating tiny models' FLOPs), length 128, GPT-3 optimizer settings.
- "pod": GPT-3 (Brown et al. 2020, Section 2.3 and Appendix B): length 2048, GPT-2 BPE vocabulary
  of 50,257 (pass data.vocab_file and data.merges_file for the original files), Adam(0.9, 0.95,
  eps 1e-8), weight decay 0.1, clip 1.0, cosine decay to 10%, bf16 compute, full remat.
  Corpus: C4 from TFDS. The mesh depends on the slice: take it from the pod recipe table
  (launch/aot.py) and pass it to the sweep with `--override mesh.fsdp=... --override mesh.data=...`.
- "cpu_mup": "cpu" made fit for an isoFLOP study on the embedded corpus, used by the muP and
  isoFLOP sweeps (configs/sweeps/mup_transfer_cpu.py, isoflop_cpu.py):
  - byte-level ids (data.tokenizer "byte", vocabulary 261 padded to 264). The corpus is 2.08M
    bytes, so this gives about 2.0M training tokens against 638k with the 2,048-entry BPE: three
    times the data before any repetition. The output layer then costs 6 * 264 * d_model FLOPs
    per token instead of 6 * 2048 * d_model, so most of the compute goes into N (Porian et al.
    2024's first factor);
  - 2 layers and 2 heads at every width, so d_head grows with d_model, the case muP's 1/d_head
    attention scale is written for (models/mup.py);
  - muP relative to a base width of 64 (MUP_BASE_WIDTH), where it equals SP;
  - a checkpoint every 2,000 steps (and at the end), since each save costs seconds.
"""

from configs import base as defaults
from configs.errors import ConfigError

SIZES = ("cpu", "cpu_mup", "pod")
MUP_BASE_WIDTH = 64


def get_config(size="cpu"):
  if size not in SIZES:
    raise ConfigError(f"scaling size={size!r} is not one of {', '.join(map(repr, SIZES))}")
  c = defaults.get_config()
  c.name = "scaling_base"
  m, o, d, t, op = c.model, c.objective, c.data, c.train, c.optim
  m.family = "decoder"
  m.ln_placement = "pre"
  m.activation = "gelu_tanh"
  m.ln_epsilon = 1e-5
  m.scale_residual_init = True
  m.tie_embeddings = True
  m.nsp_head = False
  m.dropout_rate = m.attention_dropout_rate = 0.0
  o.name = "causal"
  d.tokenizer = "bpe"
  op.b1, op.b2, op.eps = 0.9, 0.95, 1e-8
  op.weight_decay = 0.1
  op.clip_norm = 1.0
  op.schedule = "cosine"
  op.end_lr_frac = 0.1
  c.eval.suites = "heldout"
  if size == "pod":
    m.vocab_size = 50257
    m.max_len = 2048
    m.dtype = "bfloat16"
    m.remat_policy = "full"
    d.corpus = "tfds"
    d.tfds_name = "c4/en:3.1.0"
    d.seq_len = 2048
    d.train_vocab_size = 50257
    t.log_every = 50
    t.eval_batches = 20
    t.checkpoint_every = 1000
  else:
    m.vocab_size = 2048
    m.max_len = 128
    d.corpus = "embedded"
    d.seq_len = 128
    d.train_vocab_size = 2048
    t.global_batch_size = 16
    t.log_every = 10
    t.eval_batches = 4
    t.checkpoint_every = 200
  if size == "cpu_mup":
    d.tokenizer = "byte"
    m.vocab_size = 264
    m.num_layers, m.num_heads, m.d_head = 2, 2, 0
    m.parametrization = "mup"
    m.mup_base_width = MUP_BASE_WIDTH
    t.checkpoint_every = 2000   # a save costs seconds: runs of 1-6 minutes keep 0-3 of them
  return c
