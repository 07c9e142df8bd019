"""The shared base of the paired study: one modern block and one recipe for encoder and decoder.

Ettin (Weller et al. 2025, "Seq vs Seq: An Open Suite of Paired Encoders and Decoders",
arXiv 2507.11412) trains encoders and decoders that differ only in attention mask and objective:
ModernBERT's block (pre-norm, GeGLU, RoPE, no biases, alternating sliding-window and global
attention), the same data, tokenizer, schedule and token budget. This base is that recipe; the run
files change only the fields `ALLOWED_DIFFS` lists, and tests/test_paired_configs.py checks it.

Sizes (`--config configs/paired/<run>.py:cpu` or `:pod`):
- "cpu": the modern block at the tiny modern presets' shape (3 layers, d_model 128, 4 query and
  2 key/value heads, GeGLU with 256 per branch, RoPE theta 160k in the global layers and 10k in
  the windowed ones, 32-token windows with every third layer global, tied embeddings), trained
  with the CPU objective ablations' recipe (configs/ablations/base.py "cpu"): the embedded corpus,
  one lowercased WordPiece vocabulary of 4,096 for both families (continued training across
  families needs one embedding table), 400 AdamW steps of 16 x 128 tokens (819k tokens), peak LR
  1e-3 after 40 warmup steps, linear decay to 0, no dropout. Encoders mask 30% (ModernBERT's and
  Ettin's rate; at most 40 predictions per 128 tokens).
- "pod": Ettin's 150M pair (configs/ettin_*_150m.py: 22 layers, d_model 768, 12 heads, GeGLU
  1152, 128-token windows, byte-level BPE of 50,368) on the objective ablations' pod budget and
  corpus (English Wikipedia from TFDS, 1M steps of 256 x 512 tokens, BERT's optimizer); Ettin's
  own 2T-token three-stage schedule is not reproduced.

What the "cpu" study measured (2 seeds, runtime, the table): configs/sweeps/paired_cpu.py and
results/paired_cpu/.

Budget rule: every native run (modern_encoder, modern_decoder) processes the same tokens; the
classic blocks (bert_encoder, gpt2_decoder) get the same training FLOPs as the modern run of
their family (`equal_compute_steps`, from models.counting), so they train for a different number
of steps. Continued-training runs (the sweep) add CONTINUE_FRACTION of the budget.
"""

from configs import base as defaults
from configs import presets
from configs.ablations import base as ablation_base
from configs.errors import ConfigError

SIZES = ("cpu", "pod")

# Continued training (the sweep's *_from_* and *_continued runs): this fraction of the native
# budget, with its own warmup (the same fraction of the native warmup) and decay.
CONTINUE_FRACTION = 0.25

# The only fields each run file may change relative to this base (dotted paths into the config).
_CLASSIC_BLOCK = ("model.ln_placement", "model.ln_epsilon", "model.activation", "model.mlp",
                  "model.d_ff", "model.use_bias", "model.position_embedding", "model.rope_base",
                  "model.rope_local_base", "model.attention_window", "model.global_every",
                  "model.num_kv_heads", "model.scale_residual_init", "model.type_vocab_size")
ALLOWED_DIFFS = {
    "modern_encoder": ("name",),
    "modern_decoder": ("name", "model.family", "objective.name"),
    "bert_encoder": ("name", "train.num_steps") + _CLASSIC_BLOCK,
    "gpt2_decoder": ("name", "model.family", "objective.name", "train.num_steps") + _CLASSIC_BLOCK,
}


def get_config(size="cpu"):
  """The shared base: the modern encoder (MLM) in the given size."""
  if size not in SIZES:
    raise ConfigError(f"paired size={size!r} is not one of {', '.join(map(repr, SIZES))}")
  # Data, tokenizer, optimizer, budget and eval suites: the objective ablations' recipe.
  c = ablation_base.get_config(size)
  c.name = "paired_base"
  if size == "cpu":
    c.model = defaults.get_config().model
    m = presets._modernbert_block(c.model)  # pylint: disable=protected-access
    m.num_layers, m.d_model, m.num_heads, m.num_kv_heads, m.d_ff = 3, 128, 4, 2, 256
    m.vocab_size = c.data.train_vocab_size
    m.max_len = c.data.seq_len
    m.attention_window = 32  # 16 tokens each side in layers 1 and 2; layer 0 is global
    c.objective.max_predictions_per_seq = 40  # 30% of 128, rounded up
  else:
    c.model = presets.ettin("encoder", "150m").model
    c.model.max_len = c.data.seq_len
    c.data.tokenizer = "bpe"
    c.data.lowercase = False
    c.data.train_vocab_size = c.model.vocab_size
    c.objective.max_predictions_per_seq = 154  # 30% of 512, rounded up
  m = c.model
  m.family = "encoder"
  m.type_vocab_size = 1  # ModernBERT has no segments (one row keeps the encoder's table)
  m.nsp_head = False
  c.objective.name = "mlm"
  c.objective.mask_prob = 0.3
  return c


def to_decoder(c):
  """The same run as a causal decoder: mask and loss change, nothing else."""
  c.model.family = "decoder"
  c.objective.name = "causal"
  return c


def classic_block(c):
  """BERT's block (encoder) or GPT-2's (decoder) in place of the modern one, same size and data:
  learned positions, biases, a dense 4 x d_model MLP, every head its own keys and values, global
  attention everywhere; BERT post-LN with exact GELU and LN eps 1e-12 and two segment rows,
  GPT-2 pre-LN with tanh GELU and residual projections scaled by 1/sqrt(2 * layers) at init."""
  m, fresh = c.model, defaults.get_config().model
  for field in _CLASSIC_BLOCK:
    name = field.split(".", 1)[1]
    m[name] = fresh[name]
  if m.family == "encoder":
    m.ln_placement, m.activation, m.ln_epsilon = "post", "gelu_exact", 1e-12
    m.scale_residual_init = False
    m.type_vocab_size = 2
  else:
    m.ln_placement, m.activation, m.ln_epsilon = "pre", "gelu_tanh", 1e-5
    m.scale_residual_init = True
  return c


def equal_compute_steps(c, reference):
  """Steps that give config `c` the training FLOPs `reference` spends (same batch and length)."""
  import objectives  # late: start-up time (JAX loads only when a config is built, not imported)

  def per_token(cfg):
    return objectives.train_flops_per_token(cfg.model, cfg.data.seq_len, cfg.objective.name,
                                            objective_cfg=cfg.objective)
  return max(1, round(reference.train.num_steps * per_token(reference) / per_token(c)))
