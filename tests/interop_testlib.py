"""Shared by tests/test_interop_*.py: random-init HF models saved with save_pretrained, their
tokenizers, and HF-side reference computations (torch, CPU, float32).

Nothing is downloaded: the tokenizers are trained here with `tokenizers` on real text
(../shared/data/tinyshakespeare.txt when present, else the embedded CPython docs corpus) and
saved through transformers' own tokenizer classes, as a model directory from the hub would be.
"""
import functools
import itertools
import json
import os

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import models, normalizers, pre_tokenizers, trainers

from bench import hf_parity

SHAKESPEARE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                           "tinyshakespeare.txt")
VOCAB = 512
# Lines that exercise the normalizers beyond plain English: accents, CJK, emoji, control chars,
# odd spacing and numbers. (Text that spells a special token, "<|endoftext|>", is left out:
# pancake encodes it as text, never as the control token; HF's tokenizers make it the token.)
TRICKY = ["Café naïve résumé Ångström", "北京大学 and 東京", "emoji 🙂 here", "tab\tand\u00a0nbsp",
          "  leading  and trailing  ", "3.14159, 1,000,000 and 2nd",
          "Ünïcödé ÀÉÎÕÜ straße", "don't won't y'all", "a" * 120]


def _first_nonempty(lines, n):
  return tuple(itertools.islice((line.strip() for line in lines if line.strip()), n))


@functools.lru_cache(maxsize=None)
def _real_lines(n):
  if os.path.exists(SHAKESPEARE):
    with open(SHAKESPEARE, encoding="utf-8") as f:
      return _first_nonempty(f, n)
  # the embedded corpus: CPython's documentation text (no network), read only as far as n lines
  from pipeline import sources
  return _first_nonempty((line for _, doc in sources.embedded_documents()
                          for line in doc.splitlines()), n)


def text_lines(n=3000):
  """n non-empty lines of real text (read once per n), then the TRICKY lines."""
  return list(_real_lines(n)) + TRICKY


def train_bpe(lines, vocab_size=VOCAB):
  """(vocab, merges) of a byte-level BPE with <|endoftext|> = 0, as GPT-2's tokenizer is built."""
  t = tokenizers.Tokenizer(models.BPE())
  t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  t.train_from_iterator(lines, trainers.BpeTrainer(
      vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  spec = json.loads(t.to_str())["model"]
  return spec["vocab"], [tuple(m) for m in spec["merges"]]


def train_wordpiece(lines, lowercase, vocab_size=VOCAB):
  """A WordPiece vocabulary {token: id} with [PAD] [UNK] [CLS] [SEP] [MASK] = 0..4."""
  t = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
  t.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
  t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  t.train_from_iterator(lines, trainers.WordPieceTrainer(
      vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
      show_progress=False))
  return json.loads(t.to_str())["model"]["vocab"]


def write_gpt2_vocab_files(vocab, merges, out_dir):
  """vocab.json + merges.txt, the layout of the original GPT-2 release."""
  with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False)
  with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n")
    f.writelines(f"{a} {b}\n" for a, b in merges)


def write_bert_vocab_file(vocab, out_dir):
  with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
    f.writelines(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]))


def save_gpt2(out_dir, *, layers=3, width=64, heads=4, positions=64, tie=True, seed=0,
              vocab_files=False):
  """A random-init GPT2LMHeadModel + its tokenizer in `out_dir` -> the torch model (eval mode).

  initializer_range 0.1 spreads the logits so greedy choices are not near-ties.
  """
  vocab, merges = train_bpe(text_lines())
  torch.manual_seed(seed)
  cfg = transformers.GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=positions,
                                vocab_size=VOCAB, bos_token_id=0, eos_token_id=0,
                                initializer_range=0.1, tie_word_embeddings=tie)
  model = transformers.GPT2LMHeadModel(cfg).eval()
  model.save_pretrained(out_dir)
  if vocab_files:
    write_gpt2_vocab_files(vocab, merges, out_dir)
  else:
    transformers.GPT2TokenizerFast(vocab=vocab, merges=merges).save_pretrained(out_dir)
  return model


def save_bert(out_dir, cls=transformers.BertForPreTraining, *, layers=2, width=64, heads=4,
              positions=64, seed=0, lowercase=True, padded_tokenizer_json=0):
  """A random-init BERT of class `cls` + a vocab.txt WordPiece tokenizer -> the torch model.

  padded_tokenizer_json=N: the tokenizer is a tokenizer.json alone, saved with fixed padding
  and truncation at N (sentence-transformers' layout) instead of vocab.txt."""
  vocab = train_wordpiece(text_lines(), lowercase)
  torch.manual_seed(seed)
  cfg = transformers.BertConfig(num_hidden_layers=layers, hidden_size=width,
                                num_attention_heads=heads, intermediate_size=2 * width,
                                max_position_embeddings=positions, vocab_size=VOCAB,
                                initializer_range=0.1, pad_token_id=0)
  model = cls(cfg).eval()
  model.save_pretrained(out_dir)
  if padded_tokenizer_json:
    path = os.path.join(out_dir, "tokenizer.json")
    transformers.BertTokenizerFast(vocab=vocab, do_lower_case=lowercase).backend_tokenizer.save(
        path)
    set_fixed_padding(path, padded_tokenizer_json, "[PAD]", vocab["[PAD]"])
    return model
  write_bert_vocab_file(vocab, out_dir)
  with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
    json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase}, f)
  return model


def padded_batch(vocab, batch=3, length=16, seed=0, pair=False):
  """Random ids [B, L] with right padding (row r has L - 3r real tokens) and a 0/1 mask;
  with pair=True also token types (second half of each row's real tokens = 1)."""
  rs = np.random.RandomState(seed)
  ids = rs.randint(5, vocab, (batch, length)).astype(np.int32)
  lengths = length - 3 * np.arange(batch)
  mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
  ids = np.where(mask > 0, ids, 0)
  types = ((np.arange(length)[None] >= lengths[:, None] // 2) & (mask > 0)).astype(np.int32)
  return ids, mask, (types if pair else np.zeros_like(types))


def torch_logits(model, ids, mask=None, types=None):
  kwargs = {"input_ids": torch.tensor(ids, dtype=torch.long)}
  if mask is not None:
    kwargs["attention_mask"] = torch.tensor(mask, dtype=torch.long)
  if types is not None:
    kwargs["token_type_ids"] = torch.tensor(types, dtype=torch.long)
  with torch.no_grad():
    return model(**kwargs)


def hf_causal_loss(model, batch):
  """Token-weighted mean LM loss of HF `model` on a pancake causal batch (bench/hf_parity.py)."""
  total, weight = hf_parity.hf_causal_loss(model, batch)
  return total / weight


hf_greedy = hf_parity.hf_greedy


def save_llama(out_dir, *, layers=2, width=64, heads=4, kv_heads=2, positions=64, tie=False,
               seed=0, theta=500.0):
  """A random-init LlamaForCausalLM (GQA, SwiGLU, RMSNorm, RoPE) + a byte-level BPE tokenizer.

  A small rope theta makes the rotation visible at 64 positions (every frequency turns)."""
  vocab, merges = train_bpe(text_lines())
  torch.manual_seed(seed)
  cfg = transformers.LlamaConfig(
      num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
      num_key_value_heads=kv_heads, intermediate_size=3 * width, max_position_embeddings=positions,
      vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=None, initializer_range=0.1,
      rms_norm_eps=1e-6, tie_word_embeddings=tie,
      rope_parameters={"rope_type": "default", "rope_theta": theta}, attn_implementation="eager")
  model = transformers.LlamaForCausalLM(cfg).eval()
  _randomise_norms(model)
  model.save_pretrained(out_dir)
  transformers.GPT2TokenizerFast(vocab=vocab, merges=merges).save_pretrained(out_dir)
  return model


def save_modernbert(out_dir, *, layers=4, width=64, heads=4, positions=64, window=8, every=3,
                    tie=True, seed=0):
  """A random-init ModernBertForMaskedLM (global layers 0 and 3, 8-token windows elsewhere, so
  16-token inputs see the window) + a vocab.txt WordPiece tokenizer -> the torch model."""
  vocab = train_wordpiece(text_lines(), True)
  torch.manual_seed(seed)
  cfg = transformers.ModernBertConfig(
      num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
      intermediate_size=2 * width, max_position_embeddings=positions, vocab_size=VOCAB,
      pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3,
      initializer_range=0.1, local_attention=window, global_attn_every_n_layers=every,
      rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000.0},
                       "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
      tie_word_embeddings=tie, attn_implementation="eager", reference_compile=False)
  model = transformers.ModernBertForMaskedLM(cfg).eval()
  _randomise_norms(model)
  model.save_pretrained(out_dir)
  write_bert_vocab_file(vocab, out_dir)
  with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
    json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True}, f)
  return model


def _randomise_norms(model):
  """Norm weights (and the MLM decoder bias) init to ones/zeros; random values test their
  mapping too."""
  gen = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name or name.endswith("decoder.bias"):
        p.copy_(p + 0.2 * torch.randn(p.shape, generator=gen))


def set_fixed_padding(tokenizer_json, length, pad_token, pad_id):
  """Rewrites a tokenizer.json with `"padding": {"strategy": {"Fixed": length}}` and truncation
  at `length`, the settings many Hub checkpoints (sentence-transformers') were saved with."""
  import tokenizers as tk
  t = tk.Tokenizer.from_file(tokenizer_json)
  t.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token)
  t.enable_truncation(max_length=length)
  t.save(tokenizer_json)


def write_special_tokens_map(tokenizer, out_dir):
  """special_tokens_map.json as transformers 4's save_pretrained wrote it (5 writes none)."""
  path = os.path.join(out_dir, "special_tokens_map.json")
  if not os.path.exists(path):
    tokens = {k: str(getattr(tokenizer, k)) for k in
              ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
    with open(path, "w", encoding="utf-8") as f:
      json.dump(tokens, f)
