r"""Start from a Hugging Face GPT-2, BERT, Llama or ModernBERT checkpoint you have:
`configs/from_hf.py:DIR`.

DIR is a model directory as `save_pretrained` writes it: config.json, model.safetensors (or a
sharded model.safetensors.index.json) and the tokenizer (tokenizer.json, or vocab.json +
merges.txt for GPT-2, or vocab.txt for BERT). Supported: GPT2LMHeadModel (every size) and
BertForPreTraining / BertForMaskedLM / BertModel (heads a checkpoint lacks are initialised from
config.seed, and a warning line says which), LlamaForCausalLM and ModernBertForMaskedLM (its
pooler-less encoder gets pancake's pooler initialised; tokenizer: vocab.txt or a WordPiece
tokenizer.json). Llama and ModernBERT set the block options too (RoPE thetas, RMSNorm or
LayerNorm, GLU, key/value heads, sliding windows, biases, first_attention_norm, type_vocab_size).

The tokenizer keeps its files' settings except padding and truncation: a tokenizer.json saved
with `"padding": {"strategy": {"Fixed": 128}}` (many Hub checkpoints are) is read without them,
as transformers reads it, and one warning line says so. The run is named after the model
(`model_name`: its Hub id from a Hub cache path or config.json's `_name_or_path`, else DIR's name).

The config reproduces the checkpoint's architecture from config.json (family, layers, width,
heads, d_ff, vocabulary, positions, LayerNorm epsilon, activation, tied head, segment
vocabulary, NSP head) and its dropout, sets the tokenizer from DIR, and sets init.from_hf = DIR:
the weights are loaded at step 0 whenever the workdir holds no checkpoint (later runs resume
from their own checkpoints). Overrides apply as usual (another corpus, data.seq_len, the
optimizer, the mesh); one that contradicts config.json (e.g. model.num_layers) is exit code 2.

Commands:
  python train.py --config configs/from_hf.py:/models/gpt2 --workdir W        # continue pre-training
  python eval.py  --config configs/from_hf.py:/models/gpt2 --workdir W \
      --suite heldout,cloze,generate,attention                               # the weights as they are
  python -m interop.hf export --config configs/from_hf.py:/models/gpt2 --workdir W --out DIR2
  python -m interop.hf export --config configs/from_hf.py:/models/gpt2 --out DIR2  # as imported

Training defaults (continued pre-training; point data.* at your corpus, the default is the
embedded one): GPT-2 causal LM at data.seq_len = min(n_positions, 1024), BERT MLM (+NSP when the
checkpoint has the head) at 128 with 20 predictions per sequence; AdamW lr 1e-4, 100 warmup
steps, linear decay to 0, batch 32, 1000 steps (base.py's), float32.

Expected, on the random-init GPT-2 of tests/interop_testlib.py (`save_gpt2(DIR)`: 3 layers x 64,
a 512-token vocabulary), the tests' stand-in for real weights: imported logits within 1e-5 of
transformers' (tests/test_interop_gpt2.py; parity in docs/interop.md); eval.py's held-out loss
about 6.52 on the embedded corpus (ln 512 = 6.24: a random model), and a step-0 held-out loss
equal to transformers' on the same batches to 1e-4.
"""

import os

from configs import base, paths
from interop import hf_config


def model_name(hf_dir, cfg):
  """The model's own name, the run name: its Hub id when DIR is a Hub cache snapshot
  (.../models--ORG--NAME/snapshots/REV) or config.json's `_name_or_path` (transformers 4 wrote
  it) is one; else DIR's own name."""
  parts = os.path.normpath(hf_dir).split(os.sep)
  for part in reversed(parts):
    if part.startswith("models--"):
      return part[len("models--"):].replace("--", "/")
  named = cfg.get("_name_or_path")
  if (isinstance(named, str) and named.strip() and named.count("/") <= 1
      and not named.startswith(("/", ".", "~")) and "\\" not in named):
    return named.strip()
  return parts[-1]


def get_config(hf_dir=""):
  hf_dir = paths.absolute(hf_dir)
  cfg = hf_config.read_config(hf_dir)
  fixed = hf_config.fixed_model_fields(cfg, hf_dir)
  c = base.get_config()
  c.name = model_name(hf_dir, cfg)
  for key, value in {**fixed, **hf_config.free_model_fields(cfg)}.items():
    c.model[key] = value
  c.model.dtype = "float32"
  c.init.from_hf = hf_dir
  for key, value in hf_config.tokenizer_fields(hf_dir, fixed["family"]).items():
    c.data[key] = value
  if fixed["family"] == "decoder":
    c.objective.name = "causal"
    c.data.seq_len = min(fixed["max_len"], 1024)
  else:
    c.objective.name = "mlm_nsp" if c.model.nsp_head else "mlm"
    c.data.seq_len = min(fixed["max_len"], 128)
    c.objective.max_predictions_per_seq = 20
  c.data.train_vocab_size = fixed["vocab_size"]
  o = c.optim
  o.learning_rate, o.warmup_steps, o.schedule, o.end_lr_frac = 1e-4, 100, "linear", 0.0
  return c
