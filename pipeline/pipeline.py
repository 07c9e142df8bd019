"""Pipeline: batch(step) = this host's rows of global batch `step`, a pure f(seed, step).

The objective is an argument (an objectives.base.Objective: its example builder, the objective.*
fields its rows read, the tokens it needs), so the pipeline never looks an objective up;
objectives.make_pipeline passes config.objective.name's.
"""
import dataclasses
import hashlib
import json
import os

from absl import logging
import numpy as np

from configs.errors import ConfigError
from pipeline import corpora
from pipeline import files as files_lib
from pipeline import token_cache
from pipeline import tokenization
from pipeline import validation

# Bump when example construction changes, so fingerprints of old checkpoints stop matching.
BUILDER_VERSION = "1"


def resolved_cache_dir(data_cfg) -> str:
  if data_cfg.cache_dir:
    return data_cfg.cache_dir
  data_dir = corpora.resolved_data_dir(data_cfg)
  if files_lib.is_remote(data_dir):
    return os.path.join(os.path.expanduser("~"), ".cache", "pancake", "cache")
  return os.path.join(data_dir, "pancake_cache")


def _tokenizer(config, objective, corpus=None) -> tokenization.Tokenizer:
  d = config.data
  if d.tokenizer == "byte":
    tok = tokenization.byte_tokenizer()
  elif d.tokenizer_file:
    tok = tokenization.load_tokenizer_json(d.tokenizer_file, d.tokenizer)
  elif d.vocab_file and d.tokenizer == "wordpiece":
    tok = tokenization.load_bert_vocab(d.vocab_file, d.lowercase)
  elif d.vocab_file:
    tok = tokenization.load_gpt2_vocab(d.vocab_file, d.merges_file)
  else:
    corpus = corpus or corpora.open_corpus(d)
    train_docs = lambda: corpora.sample_documents(
        corpus.documents(d.train_split), tokenization.TOKENIZER_TRAIN_MAX_CHARS)
    tok = tokenization.trained_tokenizer(d, resolved_cache_dir(d), corpus.fingerprint,
                                         train_docs)
  tokenization.check_special_tokens(tok, objective, d)
  return tok


def get_tokenizer(config, objective) -> tokenization.Tokenizer:
  """The tokenizer data.* describes (trained on the corpus and cached on first use), checked
  for the special tokens `objective` needs."""
  validation.validate(config, objective)
  return _tokenizer(config, objective)


@dataclasses.dataclass
class Pipeline:
  config: object
  split: str
  process_index: int
  process_count: int
  tokenizer: tokenization.Tokenizer
  data: token_cache.TokenizedSplit
  builder: object
  fingerprint: str
  objective: object  # the objectives.base.Objective whose examples these are

  @property
  def global_batch_size(self) -> int:
    return self.config.train.global_batch_size

  @property
  def host_batch_size(self) -> int:
    return self.global_batch_size // self.process_count

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's rows [p * n, (p + 1) * n) of global batch `step` (n = host_batch_size)."""
    if step < 0:
      raise ValueError(f"step={step} must be >= 0")
    first = step * self.global_batch_size + self.process_index * self.host_batch_size
    return self.builder.rows(np.arange(first, first + self.host_batch_size, dtype=np.int64))

  def state_dict(self, step: int) -> dict:
    """What a checkpoint stores to resume the data exactly: the next step plus identity checks."""
    return dict(step=int(step), seed=int(self.config.data.seed), split=self.split,
                global_batch_size=int(self.global_batch_size), fingerprint=self.fingerprint)

  def restore(self, state: dict, strict: bool = False) -> int:
    """Returns the step to resume at; warns (or raises, if strict) when the data differ."""
    expected = self.state_dict(state.get("step", 0))
    diffs = [f"{k}: checkpoint {state.get(k)!r} vs now {v!r}" for k, v in expected.items()
             if k != "step" and state.get(k) != v]
    if diffs:
      message = "resumed data stream differs from the checkpoint's: " + "; ".join(diffs)
      if strict:
        raise ConfigError(message)
      logging.warning(message)
    return int(state["step"])


def _fingerprint(config, objective, corpus_fp: str, tokenizer_fp: str, split: str) -> str:
  # Only the objective.* fields the rows read (its `data_settings`): masking settings do not
  # touch causal rows.
  settings = dict(corpus=corpus_fp, tokenizer=tokenizer_fp, split=split,
                  seq_len=config.data.seq_len,
                  objective=objective.data_settings(config.objective),
                  segmentation=token_cache.SEGMENTATION_VERSION, builder=BUILDER_VERSION)
  raw = json.dumps(settings, sort_keys=True)
  return hashlib.sha256(raw.encode()).hexdigest()[:16]


def make_pipeline(config, split: str, objective, *, process_index: int = 0,
                  process_count: int = 1) -> Pipeline:
  """Builds (preparing corpus, tokenizer and token cache on first use) the pipeline of `split`,
  whose rows `objective`'s example builder makes."""
  validation.validate(config, objective, process_count)
  if not 0 <= process_index < process_count:
    raise ConfigError(f"process_index={process_index} must be in [0, {process_count})")
  d = config.data
  corpus = corpora.open_corpus(d)
  tok = _tokenizer(config, objective, corpus)
  if "model" in config and config.model.vocab_size < tok.vocab_size:
    raise ConfigError(f"model.vocab_size={config.model.vocab_size} is smaller than the "
                      f"tokenizer's vocabulary ({tok.vocab_size} ids)")
  documents = corpus.documents(split)
  key = f"{corpus.fingerprint}-{tok.fingerprint}-{hashlib.sha256(split.encode()).hexdigest()[:8]}"
  data = token_cache.tokenized_split(resolved_cache_dir(d), key, documents, tok)
  if data.num_sentences == 0:
    raise ConfigError(f"split {split!r} of {corpus.description} has no text after tokenization")
  builder = objective.examples(data, tok, config, split)
  return Pipeline(config, split, process_index, process_count, tok, data, builder,
                  _fingerprint(config, objective, corpus.fingerprint, tok.fingerprint, split),
                  objective)
