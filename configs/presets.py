"""Published model sizes and their training recipes, composed onto configs/base.py.

Sources:
  BERT: Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers", sec. 3 and
    appendix A.2; google-research/bert (bert_config.json of the released checkpoints:
    vocab 30522, 512 positions, 2 token types, GELU, LayerNorm eps 1e-12, init std 0.02;
    optimization.py: AdamW b1 0.9, b2 0.999, eps 1e-6, weight decay 0.01, warmup 10k steps,
    linear decay to 0; run_pretraining: batch 256, 20 predictions per 128-token sequence).
  GPT-2: Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", Table 2
    (layers, d_model), and the released HF configs (n_head 12/16/20/25, vocab 50257, 1024
    positions, gelu_new = tanh GELU, LayerNorm eps 1e-5, dropout 0.1, init 0.02 with
    1/sqrt(2 * n_layer) residual scaling). The paper gives batch 512 but no learning rates.
  GPT-3: Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1 (sizes, batch
    in tokens, learning rates) and appendix B (Adam b1 0.9, b2 0.95, eps 1e-8, clip 1.0, weight
    decay 0.1, linear warmup over 375M tokens, cosine decay to 10% over 260B tokens, 300B tokens
    in total, context 2048).

Plain data: each preset file calls one function here; the functions only set fields.
"""

from configs import base

# name: (num_layers, d_model, num_heads, d_head, batch in sequences, peak learning rate)
GPT3_TABLE = {
    "small": (12, 768, 12, 64, 256, 6.0e-4),       # 125M, batch 0.5M tokens
    "medium": (24, 1024, 16, 64, 256, 3.0e-4),     # 350M, 0.5M
    "large": (24, 1536, 16, 96, 256, 2.5e-4),      # 760M, 0.5M
    # Table 2.1 prints 24 heads of 128 (attention width 3072 != d_model 2048, 1.52B params);
    # 16 heads of 128 keep width = d_model and give the row's 1.3B (as Megatron-LM and Pythia).
    "xl": (24, 2048, 16, 128, 512, 2.0e-4),        # 1.3B, 1M
    "2_7b": (32, 2560, 32, 80, 512, 1.6e-4),       # 2.7B, 1M
    "6_7b": (32, 4096, 32, 128, 1024, 1.2e-4),     # 6.7B, 2M
    # Table 2.1 prints d_model 5140, which 40 heads do not divide; 40 x 128 = 5120.
    "13b": (40, 5120, 40, 128, 1024, 1.0e-4),      # 13B, 2M
    # 3.2M tokens = 1562.5 sequences of 2048; 1536 (3.1M) as in Megatron-LM's GPT-3 recipe.
    "175b": (96, 12288, 96, 128, 1536, 0.6e-4),    # 175B
}
GPT3_CONTEXT = 2048
GPT3_TOTAL_TOKENS = 300e9
GPT3_WARMUP_TOKENS = 375e6

# name: (num_layers, d_model, num_heads, the GPT-3 row whose batch and learning rate we use)
GPT2_TABLE = {
    "small": (12, 768, 12, "small"),     # 124M
    "medium": (24, 1024, 16, "medium"),  # 355M
    "large": (36, 1280, 20, "large"),    # 774M
    "xl": (48, 1600, 25, "xl"),          # 1.5B
}
GPT2_CONTEXT = 1024

# name: (num_layers, d_model, num_heads)
BERT_TABLE = {
    "base": (12, 768, 12),    # 110M
    "large": (24, 1024, 16),  # 340M
}


def _set_size(c, num_layers, d_model, num_heads, d_head=0):
  c.model.num_layers = num_layers
  c.model.d_model = d_model
  c.model.num_heads = num_heads
  c.model.d_head = d_head
  c.model.d_ff = 0  # 4 * d_model in all three papers
  return c


def bert(size):
  """BERT-base/large, phase 1 of pre-training (128-token sequences, 90% of the 1M steps)."""
  c = _set_size(base.get_config(), *BERT_TABLE[size])
  c.name = f"bert_{size}"
  m = c.model
  m.family = "encoder"
  m.vocab_size = 30522
  m.max_len = 512
  m.type_vocab_size = 2
  m.activation = "gelu_exact"
  m.ln_placement = "post"
  m.ln_epsilon = 1e-12
  m.dropout_rate = 0.1
  m.attention_dropout_rate = 0.1
  m.scale_residual_init = False
  m.tie_embeddings = True
  m.nsp_head = True
  m.dtype = "bfloat16"
  c.objective.name = "mlm_nsp"
  c.objective.max_predictions_per_seq = 20
  c.objective.dynamic_masking = False  # BERT drew masks once (dupe_factor 10 copies)
  c.objective.static_masking_dupes = 10
  c.data.seq_len = 128
  c.data.tokenizer = "wordpiece"
  c.data.train_vocab_size = 30522
  c.data.lowercase = True
  c.train.global_batch_size = 256
  c.train.num_steps = 900_000
  c.optim.learning_rate = 1e-4
  c.optim.warmup_steps = 10_000
  c.optim.schedule = "linear"
  c.optim.end_lr_frac = 0.0
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-6
  c.optim.weight_decay = 0.01
  c.optim.clip_norm = 1.0
  return c


def _gpt_common(c, context):
  m = c.model
  m.family = "decoder"
  m.vocab_size = 50257
  m.max_len = context
  m.activation = "gelu_tanh"
  m.ln_placement = "pre"
  m.ln_epsilon = 1e-5
  m.scale_residual_init = True
  m.tie_embeddings = True
  m.dtype = "bfloat16"
  c.objective.name = "causal"
  c.data.seq_len = context
  c.data.tokenizer = "bpe"
  c.data.train_vocab_size = 50257
  c.optim.schedule = "cosine"
  c.optim.end_lr_frac = 0.1
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.1
  c.optim.clip_norm = 1.0
  return c


def _token_schedule(c, batch, context, learning_rate):
  """GPT-3's schedule in tokens (375M warmup, 300B total) turned into optimizer steps."""
  tokens_per_step = batch * context
  c.train.global_batch_size = batch
  c.train.num_steps = int(GPT3_TOTAL_TOKENS // tokens_per_step)
  c.optim.warmup_steps = int(GPT3_WARMUP_TOKENS // tokens_per_step)
  c.optim.learning_rate = learning_rate
  return c


def gpt2(size):
  """GPT-2 sizes: batch 512 x 1024 (GPT-2 paper, sec. 2.3); the paper gives no learning rate or
  length, so the learning rate is the GPT-3 row of the nearest size and the schedule GPT-3's."""
  num_layers, d_model, num_heads, gpt3_row = GPT2_TABLE[size]
  c = _gpt_common(_set_size(base.get_config(), num_layers, d_model, num_heads), GPT2_CONTEXT)
  c.name = f"gpt2_{size}"
  c.model.dropout_rate = 0.1
  c.model.attention_dropout_rate = 0.1
  return _token_schedule(c, 512, GPT2_CONTEXT, GPT3_TABLE[gpt3_row][-1])


def gpt3(size):
  """GPT-3 Table 2.1 rows (dense attention in every layer; see each preset's docstring)."""
  num_layers, d_model, num_heads, d_head, batch, learning_rate = GPT3_TABLE[size]
  c = _gpt_common(_set_size(base.get_config(), num_layers, d_model, num_heads, d_head),
                  GPT3_CONTEXT)
  c.name = f"gpt3_{size}"
  c.model.dropout_rate = 0.0  # not stated by Brown et al.; none, as usual for one-epoch training
  c.model.attention_dropout_rate = 0.0
  return _token_schedule(c, batch, GPT3_CONTEXT, learning_rate)


def tiny_encoder():
  """A 2-layer BERT-shaped encoder (post-LN, MLM+NSP) that trains in minutes on 2 CPU cores."""
  c = _set_size(base.get_config(), num_layers=2, d_model=128, num_heads=4)
  c.name = "tiny_encoder"
  m = c.model
  m.family = "encoder"
  m.vocab_size = 8192
  m.max_len = 128
  m.activation = "gelu_exact"
  m.ln_placement = "post"
  m.ln_epsilon = 1e-12
  m.scale_residual_init = False
  c.objective.name = "mlm_nsp"
  c.objective.max_predictions_per_seq = 20
  c.data.seq_len = 128
  c.data.tokenizer = "wordpiece"
  c.data.train_vocab_size = 8192
  c.train.global_batch_size = 32
  c.train.num_steps = 600
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 60
  c.optim.schedule = "linear"
  c.optim.end_lr_frac = 0.0
  return c


def tiny_decoder():
  """A 4-layer GPT-shaped decoder (pre-LN, causal LM) that trains in minutes on 2 CPU cores."""
  c = _set_size(base.get_config(), num_layers=4, d_model=128, num_heads=4)
  c.name = "tiny_decoder"
  c = _gpt_common(c, context=256)
  c.model.vocab_size = 8192
  c.model.dtype = "float32"
  c.data.seq_len = 128
  c.data.train_vocab_size = 8192
  c.train.global_batch_size = 16
  c.train.num_steps = 500
  c.optim.learning_rate = 2e-3
  c.optim.warmup_steps = 50
  return c


# Ettin (Weller et al. 2025, "Seq vs Seq: An Open Suite of Paired Encoders and Decoders",
# arXiv 2507.11412): encoder and decoder pairs of one architecture (ModernBERT's, Warner et al.
# 2024) and size, trained alike. Sizes from the paper's model table and the HF configs of
# jhu-clsp/ettin-encoder-* / ettin-decoder-* (hidden_size, num_hidden_layers,
# num_attention_heads, intermediate_size = the width of each GLU branch), vocabulary 50,368
# (ModernBERT's tokenizer). ModernBERT's config.json (answerdotai/ModernBERT-base / -large, the
# 150M and 400M shapes) gives the rest: pre-norm LayerNorm without biases (eps 1e-5), no biases
# anywhere else (the MLM decoder bias stays), GeGLU (exact GELU), RoPE with theta 160,000 in the
# global layers and 10,000 in the sliding-window ones, local_attention 128 (64 tokens each side),
# every third layer global (global_attn_every_n_layers 3, layer 0 included), tied embeddings,
# init std 0.02, context 8192.
# name: (num_layers, d_model, num_heads, d_ff)
ETTIN_TABLE = {
    "17m": (7, 256, 4, 384),
    "32m": (10, 384, 6, 576),
    "68m": (19, 512, 8, 768),
    "150m": (22, 768, 12, 1152),     # = ModernBERT-base
    "400m": (28, 1024, 16, 2624),    # = ModernBERT-large
    "1b": (28, 1792, 28, 3840),
}
ETTIN_CONTEXT = 8192


def _modernbert_block(m):
  """The block options of ModernBERT / Ettin (see ETTIN_TABLE's comment)."""
  m.ln_placement = "pre"
  m.norm = "layernorm"
  m.ln_epsilon = 1e-5
  m.use_bias = False
  m.mlp = "glu"
  m.activation = "gelu_exact"
  m.position_embedding = "rope"
  m.rope_base = 160_000.0
  m.rope_local_base = 10_000.0
  m.attention_window = 128
  m.global_every = 3
  m.scale_residual_init = False
  m.tie_embeddings = True
  return m


def ettin(family, size):
  """Ettin encoder (MLM) or decoder (causal LM) of one published size: the architecture.

  The training recipe (2T tokens, ModernBERT's trapezoidal schedule and sequence-length
  stages) is not reproduced here: optim.* and train.* are configs/base.py's."""
  num_layers, d_model, num_heads, d_ff = ETTIN_TABLE[size]
  c = _set_size(base.get_config(), num_layers, d_model, num_heads)
  c.name = f"ettin_{family}_{size}"
  m = _modernbert_block(c.model)
  m.family = family
  m.d_ff = d_ff
  m.vocab_size = 50368
  m.max_len = ETTIN_CONTEXT
  m.dtype = "bfloat16"
  c.data.tokenizer = "bpe"
  c.data.train_vocab_size = 50368
  c.data.seq_len = 1024  # ModernBERT's first pre-training stage
  if family == "encoder":
    m.type_vocab_size = 1  # ModernBERT has no segments; one row keeps the encoder's table
    m.nsp_head = False
    c.objective.name = "mlm"
    c.objective.mask_prob = 0.3  # ModernBERT (and Ettin's encoders) mask 30%
    c.objective.max_predictions_per_seq = 308  # 30% of 1024, rounded up
  else:
    c.objective.name = "causal"
  return c


# Llama 2 (Touvron et al. 2023, "Llama 2: Open Foundation and Fine-Tuned Chat Models", Table 1 and
# sec. 2.2; the released config.json of meta-llama/Llama-2-7b-hf): 32 layers, d_model 4096, 32
# heads, SwiGLU with d_ff 11008, RMSNorm eps 1e-5, RoPE theta 10,000, no biases, untied head,
# vocabulary 32,000, context 4096; AdamW b1 0.9, b2 0.95, eps 1e-5, weight decay 0.1, clip 1.0,
# 2000 warmup steps, cosine decay to 10% of the peak 3e-4, batch 4M tokens (1024 x 4096).
def llama2_7b():
  """Llama 2 7B: the Llama-style decoder (pre-RMSNorm, SwiGLU, RoPE, no biases)."""
  c = _set_size(base.get_config(), 32, 4096, 32)
  c.name = "llama2_7b"
  m = c.model
  m.family = "decoder"
  m.d_ff = 11008
  m.vocab_size = 32000
  m.max_len = 4096
  m.ln_placement = "pre"
  m.norm = "rmsnorm"
  m.ln_epsilon = 1e-5
  m.use_bias = False
  m.mlp = "glu"
  m.activation = "silu"
  m.position_embedding = "rope"
  m.rope_base = 10_000.0
  m.tie_embeddings = False
  m.scale_residual_init = False
  m.dtype = "bfloat16"
  c.objective.name = "causal"
  c.data.seq_len = 4096
  c.data.tokenizer = "bpe"
  c.data.train_vocab_size = 32000
  c.train.global_batch_size = 1024
  c.train.num_steps = 500_000  # 2T tokens / 4M tokens per step
  c.optim.learning_rate = 3e-4
  c.optim.warmup_steps = 2000
  c.optim.schedule = "cosine"
  c.optim.end_lr_frac = 0.1
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95
  c.optim.eps = 1e-5
  c.optim.weight_decay = 0.1
  c.optim.clip_norm = 1.0
  return c


def tiny_modern(family):
  """A ModernBERT/Ettin-shaped pair (pre-norm, GeGLU, RoPE, sliding window + global layers,
  grouped-query attention, no biases) at the tiny presets' sizes, for 2 CPU cores: the recipe
  (data, steps, optimizer) of tiny_encoder / tiny_decoder, only the block and MLM's masking differ."""
  c = tiny_encoder() if family == "encoder" else tiny_decoder()
  c.model = base.get_config().model  # the block is ModernBERT's, not BERT's or GPT-2's
  c = _set_size(c, num_layers=3, d_model=128, num_heads=4)
  c.name = f"tiny_modern_{family}"
  m = _modernbert_block(c.model)
  m.family = family
  m.num_kv_heads = 2
  m.d_ff = 256  # two GLU branches of 256: about the 4 * d_model dense MLP's parameters
  m.vocab_size = 8192
  m.max_len = 128
  m.attention_window = 32  # 16 tokens each side, in layers 1 and 2; layer 0 global
  if family == "encoder":
    m.nsp_head = False
    m.type_vocab_size = 1
    c.objective.name = "mlm"
    c.objective.mask_prob = 0.3
    c.objective.max_predictions_per_seq = 40
  return c
