"""Every default of pancake, once.

Run configs (presets, quickstart, ablations, sweeps) start from `get_config()` here and change
only what differs; a field that is not here does not exist (an unknown `--config.x=...` override
is an error, exit code 2). Each field is commented once, here.

This file is plain data: no logic beyond building the dict.
"""

import ml_collections

# Mesh axes of the device mesh, outermost first. Layer code never names them; the logical-axis
# rules below map the names that layers use onto these.
MESH_AXES = ("data", "fsdp", "tensor")

# Logical axis -> mesh axis (or tuple of mesh axes, or None = replicated). Parameter names first,
# then activation names. A mesh axis of size 1 makes its rule a no-op, so one table serves pure data
# parallel, FSDP and FSDP+tensor meshes alike.
DEFAULT_RULES = (
    # parameters
    ("vocab", "tensor"),          # embedding rows / LM-head columns
    ("embed", "fsdp"),            # d_model dimension of weights (ZeRO-3 style sharding)
    ("mlp", "tensor"),            # d_ff dimension (Megatron column/row parallel)
    ("heads", "tensor"),          # attention heads
    ("kv_heads", None),           # key/value heads of grouped-query attention (num_kv_heads <
                                  # num_heads): few (1 for multi-query), so replicated
    ("kv", None),                 # per-head dimension
    ("layers", None),             # stacked layer dimension of scanned params
    ("positions", None),          # position-embedding table rows
    ("token_types", None),        # segment (token-type) embedding rows
    ("classes", None),            # classifier outputs (NSP, fine-tuning heads)
    # activations
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_mlp", "tensor"),
    ("activation_heads", "tensor"),
    ("activation_kv_heads", None),
    ("activation_kv", None),
    ("activation_vocab", "tensor"),
)


# The model section (models/), one row per field: (name, default, valid values, meaning).
# Valid values are a tuple of choices or a kind: "int>0", "int>=0" (0 = the default the meaning
# names), "bool", "rate" (a number in [0, 1)), "fraction" (in (0, 1]), "number>0", "number>=0".
# models/spec.py derives ModelSpec, validate() and resolve() from this table;
# nothing else lists model fields.
MODEL_FIELDS = (
    ("family", "decoder", ("encoder", "decoder"),
     '"encoder" (BERT: bidirectional, post-LN) | "decoder" (GPT: causal)'),
    ("vocab_size", 8192, "int>0", "rows of the token embedding; must cover the tokenizer's vocab"),
    ("max_len", 256, "int>0",
     "longest sequence (rows of the learned position table; the KV cache length)"),
    ("type_vocab_size", 2, "int>=0",
     "segment (token-type) embeddings; encoder only; 0 = no segment table (ModernBERT; no NSP)"),
    ("num_layers", 4, "int>0", "transformer blocks"),
    ("d_model", 256, "int>0", "residual width"),
    ("num_heads", 4, "int>0", "attention (query) heads; d_model must divide by it unless d_head is set"),
    ("num_kv_heads", 0, "int>=0",
     "key/value heads, dividing num_heads (grouped-query; 1 = multi-query); 0 means num_heads"),
    ("d_head", 0, "int>=0", "per-head width; 0 means d_model // num_heads"),
    ("d_ff", 0, "int>=0", "MLP hidden width (of each GLU branch); 0 means 4 * d_model"),
    ("mlp", "dense", ("dense", "glu"),
     '"dense" (act(x W_i) W_o) | "glu" (act(x W_gate) * x W_i, then W_o: GeGLU with gelu, SwiGLU with silu)'),
    ("activation", "gelu_tanh", ("gelu_exact", "gelu_tanh", "relu", "silu"),
     '"gelu_exact" (BERT) | "gelu_tanh" (GPT-2) | "relu" | "silu" (SwiGLU: Llama)'),
    ("norm", "layernorm", ("layernorm", "rmsnorm"),
     '"layernorm" (BERT, GPT-2) | "rmsnorm" (Llama: no mean, no bias); every norm of the model'),
    ("ln_placement", "pre", ("post", "pre"), '"post" (BERT as published) | "pre" (GPT-2/3)'),
    ("first_attention_norm", True, "bool",
     "pre-LN: block 0 normalises its attention input; False = ModernBERT, whose embedding norm "
     "already did (block 0's ln_attention is then kept but unused)"),
    ("ln_epsilon", 1e-5, "number>0", "norm epsilon; BERT uses 1e-12, GPT-2 1e-5"),
    ("position_embedding", "learned", ("learned", "rope"),
     '"learned" (a max_len x d_model table added to the tokens) | "rope" (rotary, on q and k)'),
    ("rope_base", 10000.0, "number>0", "RoPE theta of global layers (Llama 2: 1e4, ModernBERT: 1.6e5)"),
    ("rope_local_base", 0.0, "number>=0",
     "RoPE theta of sliding-window layers (ModernBERT: 1e4); 0 means rope_base"),
    ("rope_fraction", 1.0, "fraction",
     "fraction of each head's dims rotated (GPT-NeoX: 0.25); rounded down to an even count"),
    ("qk_norm", False, "bool", "RMSNorm over each head of q and k before attention (OLMo 2, Qwen 3)"),
    ("attention_window", 0, "int>=0",
     "sliding window: a query at i sees keys j with |i - j| <= window // 2 (and j <= i in "
     "decoders); 0 means global attention in every layer"),
    ("global_every", 0, "int>=0",
     "with attention_window: layers i with i % global_every == 0 stay global (ModernBERT: 3); "
     "0 means every layer is windowed"),
    ("dropout_rate", 0.0, "rate", "residual/embedding dropout (BERT and GPT-2 used 0.1)"),
    ("attention_dropout_rate", 0.0, "rate", "dropout on attention probabilities"),
    ("use_bias", True, "bool",
     "biases in every dense layer and LayerNorm (the MLM output bias stays, as in ModernBERT)"),
    ("init_range", 0.02, "number>0", "std of the truncated-normal/normal initializer"),
    ("scale_residual_init", True, "bool",
     "GPT-2: output projections scaled by 1/sqrt(2 * num_layers)"),
    ("tie_embeddings", True, "bool", "LM/MLM head reuses the token embedding matrix"),
    ("nsp_head", True, "bool", "encoder: build pooler + 2-way NSP classifier"),
    ("scan_layers", True, "bool",
     "nn.scan over layers (compile time flat in depth) vs unrolled"),
    ("scan_unroll", 0, "int>=0",
     "layers per scan iteration (speed only, same parameters); 0 = all on CPU up to 12 layers, "
     "else 1 (models/stack.py)"),
    ("remat_policy", "none", ("none", "full", "save_dots", "save_qkv_out"),
     '"none" | "full" | "save_dots" | "save_qkv_out" (see models/stack.py)'),
    ("dtype", "float32", ("float32", "bfloat16", "float16"),
     'compute dtype ("bfloat16" on pods); params stay float32'),
    ("param_dtype", "float32", ("float32", "bfloat16", "float16"), "storage dtype of parameters"),
    ("parametrization", "sp", ("sp", "mup"),
     '"sp" (standard) | "mup" (Yang et al. 2022, relative to mup_base_width: hidden init std '
     '/ sqrt(width_mult), hidden Adam learning rates / width_mult, logits / width_mult, '
     'attention logits / d_head; models/mup.py)'),
    ("mup_base_width", 0, "int>=0",
     "muP: the d_model at which muP equals SP (width_mult = d_model / this); 0 means d_model"),
    ("attention_impl", "xla", ("xla", "flash"),
     '"xla" (einsum softmax) | "flash" (Pallas on TPU, else jax.nn.dot_product_attention)'),
    ("head_loss", "auto", ("auto", "logits", "tiled"),
     'how the LM/MLM head and its cross-entropy run (objectives/head_loss.py): "auto" ("tiled" '
     'on TPU/GPU; on CPU the chunked decoder head up to width 64, else "logits") | "logits" (the '
     '[B, L, V] logits, then the loss) | "tiled" (token chunks whose logits never exist all at '
     'once, forward and backward)'),
)


def get_config():
  c = ml_collections.ConfigDict()
  c.name = "base"                 # run name, used in tables and figures
  c.seed = 0                      # one seed for init, dropout and data order (data uses data.seed)

  # ---------------------------------------------------------------- model (models/)
  m = c.model = ml_collections.ConfigDict({name: default for name, default, _, _ in MODEL_FIELDS})

  # ---------------------------------------------------------------- objective (objectives/)
  o = c.objective = ml_collections.ConfigDict()
  o.name = "causal"               # encoders: "mlm_nsp" (BERT) | "mlm" (No NSP) | "mlm_full_sentences" (RoBERTa); decoders: "causal" | "prefix_lm" | "gpt_bert" (objectives/)
  o.mask_prob = 0.15              # fraction of maskable tokens selected for prediction
  o.mask_token_frac = 0.8         # of the selected: replaced by [MASK]
  o.random_token_frac = 0.1       # of the selected: replaced by a random token (rest unchanged)
  o.max_predictions_per_seq = 40  # cap on predicted positions per sequence (BERT: 20 @128, 80 @512)
  o.whole_word_masking = False    # mask all WordPiece pieces of a chosen word together
  o.dynamic_masking = True        # redraw masks every time an example is seen (RoBERTa) vs static
  o.static_masking_dupes = 10     # static masking: number of distinct masks per example (BERT: 10)
  o.short_seq_prob = 0.1          # NSP/MLM: probability of a shorter target length (BERT: 0.1)
  o.nsp_random_prob = 0.5         # NSP: probability that segment B comes from another document
  o.causal_fraction = 1 / 16      # gpt_bert: share of each batch's rows that are causal, the rest masked next-token (GPT-BERT: 1:15)

  # ---------------------------------------------------------------- data (pipeline/)
  d = c.data = ml_collections.ConfigDict()
  d.corpus = "embedded"           # "embedded" (CPython docs, offline) | "local_text" | "tfds"
  d.tfds_name = ""                # corpus="tfds": catalog name with version, e.g. "wiki40b/en:1.3.0"
  d.text_key = "text"             # corpus="tfds": feature holding the document text
  d.text_files = ""               # corpus="local_text": comma-separated files or globs
  d.data_dir = ""                 # TFDS data_dir (local path or gs://); "" = ~/.cache/pancake/tfds
  d.train_split = "train"         # split used for training
  d.eval_split = "validation"     # held-out split for eval and the eval loss
  d.validation_fraction = 0.02    # local/embedded corpora: fraction of documents held out
  d.on_decode_error = "error"     # local text that is not UTF-8: "error" (file + offset) | "skip"
  d.seq_len = 128                 # tokens per training sequence
  d.seed = 0                      # data order and masking seed; batch(step) = f(seed, step)
  d.num_workers = 0               # processes building training batches ahead (0 = one thread): MLM objectives on a pod host want ~the spare cores; causal keeps 0 (bench/input_throughput.py)
  d.tokenizer = "bpe"             # "wordpiece" | "bpe" (byte-level, GPT-2 style) | "byte"
  d.vocab_file = ""               # existing vocab: BERT vocab.txt, or GPT-2 vocab.json
  d.merges_file = ""              # existing GPT-2 merges.txt (with vocab_file)
  d.tokenizer_file = ""           # existing HF tokenizer.json (BPE for "bpe", WordPiece for "wordpiece"); instead of vocab_file
  d.train_vocab_size = 8192       # vocab size when the tokenizer is trained on the corpus
  d.lowercase = True              # wordpiece: lowercase + strip accents (BERT uncased)
  d.cache_dir = ""                # trained tokenizers + tokenized splits; "" = <data_dir>/pancake_cache (local data_dir) or ~/.cache/pancake/cache

  # ---------------------------------------------------------------- initialisation (interop/, trainlib/from_run.py)
  i = c.init = ml_collections.ConfigDict()
  i.from_hf = ""                  # HF model directory (config.json + model.safetensors): its weights are step 0 when the workdir holds no checkpoint (configs/from_hf.py)
  i.from_run = ""                 # workdir of another pancake run: its parameters of matching path and shape are step 0 (any family/objective; the rest fresh) when the workdir holds no checkpoint (trainlib/from_run.py)
  i.from_step = -1                # init.from_run's checkpoint step; -1 = its latest

  # ---------------------------------------------------------------- training (trainlib/)
  t = c.train = ml_collections.ConfigDict()
  t.global_batch_size = 32        # sequences per optimizer step, over all hosts
  t.microbatches = 1              # gradient accumulation: the batch is split into this many
  t.num_steps = 1000              # optimizer steps
  t.log_every = 20                # steps between progress lines / metrics.jsonl rows
  t.eval_every = 200              # steps between held-out evaluations (0 = only at the end)
  t.eval_batches = 8              # batches per held-out evaluation
  t.checkpoint_every = 200        # steps between checkpoints
  t.keep_checkpoints = 3          # keep the newest N checkpoints
  t.async_checkpoint = True       # orbax async saves
  t.stop_on_nonfinite = True      # NaN/Inf loss stops the run (never checkpointed)
  t.profile_steps = 0             # if > 0, write a jax.profiler trace of this many steps
  t.peak_tflops_per_device = 0.0  # MFU denominator; 0 = device table (TPU/GPU bf16), CPU: measured matmul

  # ---------------------------------------------------------------- optimizer (optax)
  op = c.optim = ml_collections.ConfigDict()
  op.learning_rate = 1e-3         # peak learning rate
  op.warmup_steps = 100           # linear warmup from 0
  op.schedule = "cosine"          # decay after warmup: "linear" (BERT) | "cosine" (GPT-3) | "constant" | "wsd" (warmup-stable-decay, Hägele et al. 2024)
  op.end_lr_frac = 0.1            # final LR as a fraction of the peak (BERT: 0.0)
  op.decay_frac = 0.2             # wsd: the final fraction of train.num_steps that decays (the rest after warmup is constant)
  op.decay_shape = "1-sqrt"       # wsd decay: "linear" | "cosine" | "1-sqrt" (Hägele et al.'s best)
  op.cooldown_from_run = ""       # wsd cooldown branch: workdir of a stable-phase run; a fresh workdir starts from its checkpoint at cooldown_from_step
  op.cooldown_from_step = 0       # branch: the step of that run's checkpoint, where the decay starts
  op.cooldown_steps = 0           # branch: decay steps (train.num_steps must be cooldown_from_step + this); decay_frac is not used
  op.b1 = 0.9                     # Adam beta1
  op.b2 = 0.999                   # Adam beta2 (BERT 0.999, GPT-3 0.95)
  op.eps = 1e-6                   # Adam epsilon (BERT 1e-6, GPT-3 1e-8)
  op.weight_decay = 0.01          # decoupled weight decay; LayerNorm and biases excluded
  op.clip_norm = 1.0              # global-norm gradient clipping (0 = off)

  # ---------------------------------------------------------------- mesh and sharding (trainlib/)
  ms = c.mesh = ml_collections.ConfigDict()
  ms.data = -1                    # within-slice (ICI) degree of data parallelism; -1 fills the rest
  ms.fsdp = 1                     # within-slice degree of FSDP (params sharded over "embed")
  ms.tensor = 1                   # within-slice degree of tensor parallelism
  ms.dcn_data = 1                 # across-slice (DCN) degree of data parallelism
  ms.dcn_fsdp = 1                 # across-slice degree of FSDP
  ms.dcn_tensor = 1               # across-slice degree of tensor parallelism
  ms.cpu_devices = 0              # CPU backend: devices exposed, so the batch splits over cores; 0 = one per core when plain data parallel (trainlib/cpu_devices.py)
  c.logical_axis_rules = [list(r) for r in DEFAULT_RULES]  # logical -> mesh axes (see above)

  # ---------------------------------------------------------------- evaluation (eval.py)
  e = c.eval = ml_collections.ConfigDict()
  e.suites = "heldout"            # default suites for eval.py
  e.seed = 0                      # eval randomness (cloze items, fine-tuning, sampling), same for every run of a sweep
  e.num_batches = 16              # held-out batches per suite
  e.cloze_examples = 256          # cloze: held-out sentences with one blanked word
  e.cloze_candidates = 5          # cloze: choices per blank (the answer + distractors); chance = 1 / this
  e.finetune_task = "doc_order"   # offline (derived from the corpus): "same_doc" | "word_order" | "replaced_word" | "doc_order"; or "glue/sst2" | "glue/mrpc" | "glue/qnli" | "glue/mnli" | ...
  e.finetune_steps = 200          # fine-tuning steps
  e.finetune_batch_size = 32      # fine-tuning examples per step
  e.finetune_train_examples = 0   # fine-tune on a fixed random N of the train split (0 = all): data-efficiency curves
  e.finetune_learning_rate = 1e-4  # fine-tuning peak LR
  e.freeze_backbone = False       # probe (frozen backbone) vs full fine-tuning
  e.finetune_pooling = "auto"     # classifier input: "auto" (encoder: pooler, decoder: last) | "pooler" | "first" | "last" | "mean"
  # suite downstream: each task fine-tuned at every learning rate x seed, chosen on dev, test reported
  e.downstream_tasks = "word_order,same_doc"  # comma-separated task names (as eval.finetune_task)
  e.downstream_learning_rates = "3e-4,1e-3"  # comma-separated peak LRs searched (small models need more than BERT's 2e-5..5e-5)
  e.downstream_seeds = 3          # fine-tuning seeds per learning rate (eval.seed, eval.seed + 1, ...)
  e.downstream_evals = 2          # dev/test scored this many times, evenly spaced: the step count is searched too
  e.generate_prompts = "The,In the beginning"  # comma-separated prompts for the generate suite
  e.generate_max_new_tokens = 32  # tokens generated per prompt
  e.temperature = 1.0             # sampling temperature
  e.top_k = 0                     # top-k sampling (0 = off)
  e.top_p = 1.0                   # nucleus sampling (1.0 = off)
  e.beam_size = 4                 # beam search width
  e.length_penalty = 0.0          # beam score = logprob / ((5 + len) / 6) ** this (0 = off)
  e.attention_text = "The quick brown fox jumps over the lazy dog."  # sentence for the attention suite; "A ||| B" = a sentence pair
  e.attention_layer = -1          # layer of the head view (-1 = last)

  return c
