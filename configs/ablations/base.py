"""The shared base of the objective ablations: BERT's recipe, in a CPU size and a pod size.

Every ablation (bert_mlm_nsp, mlm_only, roberta_full_sentences, ltr_causal) is this config plus
the few fields `ALLOWED_DIFFS` lists for it, so a difference in the results table comes from the
objective and nothing else: same corpus, tokenizer, backbone size and shape, optimizer, schedule,
masking policy and token budget.

Sizes (`--config configs/ablations/<name>.py:cpu` or `:pod`):
- "pod": the protocol of RoBERTa Table 2 (Liu et al. 2019), which is BERT-base's architecture and
  budget: 12 layers, d_model 768, 12 heads, d_ff 3072, post-LN, exact GELU, LN eps 1e-12,
  dropout 0.1, WordPiece vocab 30,522; 1M steps of 256 sequences of 512 tokens (131B tokens);
  Adam(0.9, 0.999, eps 1e-6), peak LR 1e-4, 10k warmup steps then linear decay to 0, weight decay
  0.01; bf16 compute. Corpus: English Wikipedia from TFDS stands in for BookCorpus + Wikipedia
  (BookCorpus is not in the TFDS catalog); point data.tfds_name elsewhere to change it.
- "cpu": a 2-layer, d_model 128 version on the embedded corpus (WordPiece trained to 4,096), 400
  steps of 16 x 128 tokens (819k tokens); ltr_causal steps more slowly than the MLM configs (its
  output layer scores every position). Dropout is 0 here: a few hundred steps are far from
  overfitting.

Budget matching rule (the same for every objective):
  Every ablation processes the same number of tokens: num_steps x global_batch_size x seq_len
  input tokens, the convention of BERT Table 5 and RoBERTa Table 2 (equal steps and batch).
  The objectives then differ in how many of those tokens are prediction targets: MLM predicts
  ~15% of tokens (objective.mask_prob, capped by max_predictions_per_seq), the causal LM predicts
  every token. Training FLOPs are equal up to that output-head term (the backbone costs the same
  per token; causal attention is counted as half of bidirectional; at the pod size
  models.counting gives 5.89e8 FLOPs per token for MLM+NSP and 6.79e8 for the causal LM, whose
  output layer scores all 512 positions instead of ~77), so the figures report both
  budgets for every run: tokens seen and training FLOPs (metrics.jsonl `tokens_seen`,
  `flops_seen`, from the objective's own FLOP accounting). Matching FLOPs instead would give the
  MLM models more tokens, a different experiment from the papers'.

Masking policy: dynamic masking for all MLM variants (RoBERTa's choice; static vs dynamic masking
is its own ablation, RoBERTa Table 1, and would confound this one).
"""

from configs import base as defaults
from configs.errors import ConfigError

SIZES = ("cpu", "pod")

# The only fields each ablation may change relative to this base (dotted paths into the config).
# tests/test_sweep_configs.py checks every ablation config against this table.
ALLOWED_DIFFS = {
    "bert_mlm_nsp": ("name",),
    "mlm_only": ("name", "objective.name", "model.nsp_head"),
    "roberta_full_sentences": ("name", "objective.name", "model.nsp_head"),
    "ltr_causal": ("name", "objective.name", "model.family", "model.nsp_head"),
}


def get_config(size="cpu"):
  """The shared base (objective MLM+NSP, i.e. BERT as published) in the given size."""
  if size not in SIZES:
    raise ConfigError(f"ablation size={size!r} is not one of {', '.join(map(repr, SIZES))}")
  c = defaults.get_config()
  c.name = "ablation_base"

  # BERT's backbone, shared by all four objectives (the LTR model keeps it too, see ltr_causal.py).
  m = c.model
  m.family = "encoder"
  m.ln_placement = "post"
  m.activation = "gelu_exact"
  m.ln_epsilon = 1e-12
  m.scale_residual_init = False   # BERT initialises every dense layer with std 0.02
  m.tie_embeddings = True
  m.nsp_head = True

  o = c.objective
  o.name = "mlm_nsp"
  o.mask_prob = 0.15
  o.dynamic_masking = True

  c.data.tokenizer = "wordpiece"
  c.data.lowercase = True

  op = c.optim
  op.schedule = "linear"
  op.end_lr_frac = 0.0
  op.b1, op.b2, op.eps = 0.9, 0.999, 1e-6
  op.weight_decay = 0.01
  op.clip_norm = 1.0

  c.eval.suites = "heldout,cloze,downstream"

  if size == "pod":
    m.num_layers, m.d_model, m.num_heads, m.d_ff = 12, 768, 12, 3072
    m.vocab_size = 30522
    m.max_len = 512
    m.dropout_rate = m.attention_dropout_rate = 0.1
    m.dtype = "bfloat16"
    o.max_predictions_per_seq = 80  # BERT at length 512
    c.data.corpus = "tfds"
    c.data.tfds_name = "wikipedia/20230601.en:1.0.0"
    c.data.eval_split = "train[99%:]"   # Wikipedia has one split: hold out its last 1%
    c.data.train_split = "train[:99%]"
    c.data.seq_len = 512
    c.data.train_vocab_size = 30522
    t = c.train
    t.global_batch_size = 256
    t.num_steps = 1_000_000
    t.log_every = 100
    t.eval_every = 10_000
    t.eval_batches = 50
    t.checkpoint_every = 10_000
    op.learning_rate = 1e-4
    op.warmup_steps = 10_000
    c.eval.finetune_task = "glue/sst2"  # reported by both BERT Table 5 and RoBERTa Table 2
    c.eval.finetune_steps = 6000        # ~3 epochs of SST-2 at batch 32, as BERT fine-tunes
    c.eval.finetune_learning_rate = 2e-5
    c.eval.downstream_tasks = "glue/sst2"  # prepared in data_dir beforehand (offline)
    c.eval.downstream_learning_rates = "2e-5,3e-5,5e-5"  # BERT's fine-tuning grid
    c.eval.num_batches = 100
  else:
    m.num_layers, m.d_model, m.num_heads, m.d_ff = 2, 128, 4, 512
    m.vocab_size = 4096
    m.max_len = 128
    m.dropout_rate = m.attention_dropout_rate = 0.0
    o.max_predictions_per_seq = 20  # BERT at length 128
    c.data.corpus = "embedded"
    c.data.seq_len = 128
    c.data.train_vocab_size = 4096
    t = c.train
    t.global_batch_size = 16
    t.num_steps = 400
    t.log_every = 10
    t.eval_every = 50
    t.eval_batches = 4
    t.checkpoint_every = 200
    op.learning_rate = 1e-3
    op.warmup_steps = 40
    c.eval.finetune_steps = 200  # per downstream run (2 learning rates x 3 seeds per task)
    c.eval.num_batches = 8
  return c
