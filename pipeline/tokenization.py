"""Tokenizers from HF `tokenizers`: trained WordPiece / byte-level BPE, loaded vocabularies, bytes.

Kinds (data.tokenizer):
- "wordpiece": BERT. Trained on the corpus (data.train_vocab_size) with [PAD]=0 [UNK]=1 [CLS]=2
  [SEP]=3 [MASK]=4, or loaded from a BERT vocab.txt (data.vocab_file). BERT normalizer with
  data.lowercase (lowercase + strip accents = "uncased"). Has no end-of-text token of its own:
  [SEP] serves as the document separator for the causal objective.
- "bpe": GPT-2 byte-level BPE. Trained with <|endoftext|>=0 <pad>=1 <s>=2 </s>=3 <mask>=4
  (RoBERTa's names for PAD/CLS/SEP/MASK), or loaded from GPT-2 vocab.json + merges.txt (which
  has only <|endoftext|>: MLM objectives then fail with a ConfigError naming <mask>).
- "byte": ids 0..255 are the raw UTF-8 bytes, then <|endoftext|> <pad> <s> </s> <mask>.
"wordpiece" and "bpe" may instead come whole from an HF tokenizer.json (data.tokenizer_file),
e.g. the one in a Hugging Face model directory (configs/from_hf.py sets it). Its normalizer,
pre-tokenizer, added and special tokens are kept; its padding and truncation settings (many Hub
checkpoints save `"padding": {"strategy": {"Fixed": 128}}`) are dropped, as transformers'
tokenizer classes drop them unless a call asks for them: pancake packs, truncates and pads rows
itself, and a tokenizer that pads would put [PAD] inside every document. One warning line per
file says what was dropped.

Trained tokenizers are cached as tokenizer.json under data.cache_dir, keyed by kind, size,
lowercase and the corpus fingerprint; written atomically. WordPiece training returns ids in a
hash-map order (see _train_wordpiece), so WordPiece vocabularies come from a deterministic BPE pass.
"""
import collections
import dataclasses
import hashlib
import json
import os

import numpy as np
import tokenizers
from absl import logging
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from configs.errors import ConfigError
from pipeline import files as files_lib

WORDPIECE_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]",
                      "mask": "[MASK]"}
BPE_SPECIALS = {"eot": "<|endoftext|>", "pad": "<pad>", "cls": "<s>", "sep": "</s>",
                "mask": "<mask>"}
# Trained tokenizers see at most this much text: enough for a stable vocabulary of tens of
# thousands of tokens, and bounded time on catalog corpora of hundreds of GB.
TOKENIZER_TRAIN_MAX_CHARS = 50_000_000
# Byte-level markers of whitespace in GPT-2's byte-to-unicode table: space, newline, tab, CR.
_BYTE_LEVEL_SPACES = ("\u0120", "\u010a", "\u0109", "\u010d")


def _bytes_to_unicode() -> dict[int, str]:
  """GPT-2's reversible byte -> printable character table (ByteLevel's alphabet)."""
  printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
               + list(range(ord("\xae"), ord("\xff") + 1)))
  table, extra = {}, 0
  for b in range(256):
    if b in printable:
      table[b] = chr(b)
    else:
      table[b] = chr(256 + extra)
      extra += 1
  return table


@dataclasses.dataclass
class Tokenizer:
  """A HF tokenizer plus the project's explicit special-token ids (None where the kind has none)."""
  kind: str
  hf: tokenizers.Tokenizer
  pad_id: int | None
  cls_id: int | None
  sep_id: int | None
  mask_id: int | None
  eot_id: int | None
  unk_id: int | None = None

  def __post_init__(self):
    # Corpus text that happens to contain "[SEP]" or "<|endoftext|>" is text, not a control token.
    self.hf.encode_special_tokens = True

  @property
  def vocab_size(self) -> int:
    return self.hf.get_vocab_size(with_added_tokens=True)

  @property
  def special_ids(self) -> list[int]:
    ids = {self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.eot_id, self.unk_id}
    return sorted(i for i in ids if i is not None)

  @property
  def fingerprint(self) -> str:
    return hashlib.sha256(self.hf.to_str().encode()).hexdigest()[:16]

  def encode(self, text: str) -> list[int]:
    return self.hf.encode(text, add_special_tokens=False).ids

  def encode_batch(self, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

  def decode(self, ids, skip_special_tokens: bool = False) -> str:
    return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

  def id_to_token(self, i: int) -> str:
    return self.hf.id_to_token(int(i))

  def token_to_id(self, token: str) -> int | None:
    return self.hf.token_to_id(token)

  def word_boundary_tables(self) -> tuple[np.ndarray, np.ndarray]:
    """(starts_word[V], ends_with_space[V]) bools for whole-word masking.

    Token i starts a new word if starts_word[t_i] or ends_with_space[t_{i-1}]: WordPiece
    continuation pieces start with "##"; byte-level tokens carry their leading space.
    """
    v = self.vocab_size
    starts, ends = np.ones(v, bool), np.zeros(v, bool)
    specials = set(self.special_ids)
    for i in range(v):
      if i in specials:
        continue
      if self.kind == "byte":
        is_space = i < 256 and chr(i).isspace()
        starts[i], ends[i] = is_space, is_space
        continue
      tok = self.hf.id_to_token(i) or ""
      if self.kind == "wordpiece":
        starts[i] = not tok.startswith("##")
      else:
        starts[i] = tok.startswith(_BYTE_LEVEL_SPACES)
        ends[i] = tok.endswith(_BYTE_LEVEL_SPACES)
    return starts, ends


def _ids(hf, names: dict[str, str]) -> dict[str, int | None]:
  return {f"{role}_id": hf.token_to_id(tok) for role, tok in names.items()}


def _wordpiece(vocab: dict[str, int], lowercase: bool) -> tokenizers.Tokenizer:
  hf = tokenizers.Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]",
                                             max_input_chars_per_word=100))
  hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                             strip_accents=lowercase, lowercase=lowercase)
  hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  hf.decoder = decoders.WordPiece(prefix="##")
  hf.add_special_tokens([t for t in WORDPIECE_SPECIALS.values() if t in vocab])
  return hf


def _byte_level(vocab: dict[str, int], merges: list) -> tokenizers.Tokenizer:
  hf = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges))
  hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  hf.decoder = decoders.ByteLevel()
  hf.add_special_tokens([t for t in BPE_SPECIALS.values() if t in vocab])
  return hf


def byte_tokenizer() -> Tokenizer:
  table = _bytes_to_unicode()
  vocab = {table[b]: b for b in range(256)}
  for i, tok in enumerate(BPE_SPECIALS.values()):
    vocab[tok] = 256 + i
  hf = _byte_level(vocab, [])
  # One token per byte: a regex split would only add work, bytes never merge.
  hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  return Tokenizer("byte", hf, **_ids(hf, BPE_SPECIALS))


def load_bert_vocab(path: str, lowercase: bool) -> Tokenizer:
  with open(path, encoding="utf-8") as f:
    tokens = [line.rstrip("\n") for line in f]
  vocab = {}
  for tok in tokens:
    if tok and tok not in vocab:
      vocab[tok] = len(vocab)
  if "[UNK]" not in vocab:
    raise ConfigError(f"data.vocab_file={path!r} has no [UNK] token; a WordPiece vocabulary "
                      "needs [UNK] (and [PAD], [CLS], [SEP], [MASK] for MLM objectives)")
  hf = _wordpiece(vocab, lowercase)
  return Tokenizer("wordpiece", hf, eot_id=hf.token_to_id("[SEP]"),
                   **{k: v for k, v in _ids(hf, WORDPIECE_SPECIALS).items()})


def load_gpt2_vocab(vocab_path: str, merges_path: str) -> Tokenizer:
  try:
    with open(vocab_path, encoding="utf-8") as f:
      vocab = json.load(f)
  except json.JSONDecodeError as e:
    raise ConfigError(f"data.vocab_file={vocab_path!r} is not a GPT-2 vocab.json ({e})") from None
  merges = []
  with open(merges_path, encoding="utf-8") as f:
    for line in f:
      if line.startswith("#version") or not line.strip():
        continue
      parts = line.rstrip("\n").split(" ")
      if len(parts) != 2:
        raise ConfigError(f"data.merges_file={merges_path!r}: line {line!r} is not 'a b'")
      merges.append((parts[0], parts[1]))
  hf = _byte_level(vocab, merges)
  return Tokenizer("bpe", hf, **_ids(hf, BPE_SPECIALS))


_HF_MODEL_TYPES = {"bpe": "BPE", "wordpiece": "WordPiece"}
_REPORTED_SETTINGS = set()  # files whose dropped settings were already reported (one line each)


def dropped_settings(hf: tokenizers.Tokenizer) -> list[str]:
  """The padding / truncation settings `hf` carries, in words (empty: it has none)."""
  dropped = []
  if hf.padding is not None:
    pad = hf.padding
    strategy = f"Fixed {pad['length']}" if pad["length"] is not None else "BatchLongest"
    if pad.get("pad_to_multiple_of"):
      strategy += f", multiple of {pad['pad_to_multiple_of']}"
    dropped.append(f"padding ({strategy})")
  if hf.truncation is not None:
    dropped.append(f"truncation (max_length {hf.truncation['max_length']})")
  return dropped


def without_padding_and_truncation(hf: tokenizers.Tokenizer, source: str) -> tokenizers.Tokenizer:
  """`hf` with the padding and truncation of its file turned off (in place), said once per
  `source`: pancake's encode() must return a document's ids, all of them and nothing else."""
  dropped = dropped_settings(hf)
  if dropped:
    hf.no_padding()
    hf.no_truncation()
    if source not in _REPORTED_SETTINGS:
      _REPORTED_SETTINGS.add(source)
      logging.warning("%s: ignoring its %s; pancake packs and pads itself", source,
                      " and ".join(dropped))
  return hf


def load_tokenizer_json(path: str, kind: str) -> Tokenizer:
  """An HF tokenizer.json (e.g. from a Hugging Face model directory) as a `kind` tokenizer."""
  try:
    hf = tokenizers.Tokenizer.from_file(path)
  except Exception as e:  # noqa: BLE001  (tokenizers raises plain Exception)
    raise ConfigError(f"data.tokenizer_file={path!r} is not an HF tokenizer.json "
                      f"({str(e).splitlines()[0][:200]})") from None
  model_type = json.loads(hf.model.__getstate__())["type"]
  if model_type != _HF_MODEL_TYPES[kind]:
    raise ConfigError(f"data.tokenizer_file={path!r} holds a {model_type} model but "
                      f"data.tokenizer={kind!r} needs {_HF_MODEL_TYPES[kind]}")
  return tokenizer_from_hf(kind, without_padding_and_truncation(hf, path))


_WORD_START = "\u2581"  # marks the first character of a word for the BPE pass below


def _train_wordpiece(texts, vocab_size: int, lowercase: bool) -> tokenizers.Tokenizer:
  """A WordPiece vocabulary from a byte-pair pass over BERT-normalized, pre-tokenized words.

  HF's WordPieceTrainer is not deterministic (huggingface/tokenizers#1794: "##" pieces get ids
  in hash-map order, and those ids break ties between merges), and every host of a pod may train
  its own copy. So the words are marked at their start ("\u2581word") and a BPE trainer (whose
  ids, hence ties, are deterministic) learns the merges; a merged token with the start mark is
  a word-initial piece, one without is a "##" continuation. Vocabulary: the specials, every
  character in both forms, then pieces in merge order up to vocab_size.
  """
  shell = _wordpiece({"[UNK]": 0}, lowercase)

  def marked(text):
    norm = shell.normalizer.normalize_str(text)
    return " ".join(_WORD_START + w for w, _ in shell.pre_tokenizer.pre_tokenize_str(norm))

  words = [marked(t) for t in texts]
  # The alphabet is chosen here, ties by character: the trainer's own limit_alphabet breaks
  # frequency ties in hash order too. Rarer characters become [UNK].
  counts = collections.Counter()
  for w in words:
    counts.update(w)
  counts.pop(" ", None)
  ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
  alphabet = [c for c, _ in ranked[:min(1000, vocab_size // 4)]]
  bpe = tokenizers.Tokenizer(models.BPE())
  bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet,
                                limit_alphabet=len(alphabet), show_progress=False)
  bpe.train_from_iterator(words, trainer)
  pieces = sorted(bpe.get_vocab().items(), key=lambda kv: kv[1])
  vocab = {t: i for i, t in enumerate(WORDPIECE_SPECIALS.values())}
  chars = [t for t, _ in pieces if len(t) == 1 and t != _WORD_START]
  for piece in chars + [t for t, _ in pieces if len(t) > 1]:
    forms = ([piece, "##" + piece] if len(piece) == 1 else
             [piece[1:]] if piece.startswith(_WORD_START) else ["##" + piece])
    for form in forms:
      if form and form not in vocab and len(vocab) < vocab_size:
        vocab[form] = len(vocab)
  return _wordpiece(vocab, lowercase)


def _train_bpe(texts, vocab_size: int) -> tokenizers.Tokenizer:
  hf = _byte_level({}, [])
  trainer = trainers.BpeTrainer(
      vocab_size=vocab_size, special_tokens=list(BPE_SPECIALS.values()),
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  hf.train_from_iterator(texts, trainer)
  return hf


def tokenizer_from_hf(kind: str, hf: tokenizers.Tokenizer) -> Tokenizer:
  if kind == "wordpiece":
    ids = _ids(hf, WORDPIECE_SPECIALS)
    return Tokenizer("wordpiece", hf, eot_id=ids["sep_id"], **ids)
  return Tokenizer(kind, hf, **_ids(hf, BPE_SPECIALS))


def trained_tokenizer(data_cfg, cache_dir: str, corpus_fingerprint: str, train_texts_fn):
  """Loads the cached trained tokenizer, or trains it on train_texts_fn() and caches it."""
  kind, size = data_cfg.tokenizer, data_cfg.train_vocab_size
  lower = f"-lower{int(data_cfg.lowercase)}" if kind == "wordpiece" else ""
  path = os.path.join(cache_dir, f"tokenizer-{kind}-{size}{lower}-{corpus_fingerprint}.json")
  if not os.path.exists(path):
    with files_lib.locked(path):
      if not os.path.exists(path):
        texts = train_texts_fn()
        hf = (_train_wordpiece(texts, size, data_cfg.lowercase) if kind == "wordpiece"
              else _train_bpe(texts, size))
        files_lib.write_text_atomic(path, hf.to_str())
  return tokenizer_from_hf(kind, tokenizers.Tokenizer.from_file(path))


def check_special_tokens(tok: Tokenizer, objective, data_cfg) -> None:
  """ConfigError naming the first special token `objective` (an objectives.base.Objective)
  needs (its `special_ids`) that the tokenizer lacks."""
  names = WORDPIECE_SPECIALS if tok.kind == "wordpiece" else BPE_SPECIALS
  for attr in objective.special_ids:
    if getattr(tok, attr) is None:
      role = attr[:-3]
      token = names.get(role, "[SEP]" if role == "eot" else role)
      source = f"data.vocab_file={data_cfg.vocab_file!r}" if data_cfg.vocab_file else \
          f"the {tok.kind} tokenizer"
      raise ConfigError(f"{source} has no {token} token, which objective.name="
                        f"{objective.name!r} needs (as its {role} token)")
