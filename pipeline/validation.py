"""pipeline.validate: every data.* and objective.* value checked before anything is built."""
import os

from configs import fields
from configs.errors import ConfigError

CORPORA = ("embedded", "local_text", "tfds")
TOKENIZERS = ("wordpiece", "bpe", "byte")
DECODE_ERRORS = ("error", "skip")
_one_of, _in_range, _int_at_least = fields.one_of, fields.in_range, fields.int_at_least


def validate(config, objective, process_count: int = 1) -> None:
  """Raises ConfigError for a bad data.*, objective.* or batch-sharding value. `objective`: the
  objectives.base.Objective of config.objective.name (its layout, length and own checks)."""
  d, o = config.data, config.objective
  if objective.name != o.name:
    raise ValueError(f"objective {objective.name!r} given for objective.name={o.name!r}")
  _one_of("data.corpus", d.corpus, CORPORA)
  _one_of("data.tokenizer", d.tokenizer, TOKENIZERS)
  _one_of("data.on_decode_error", d.on_decode_error, DECODE_ERRORS)
  if d.corpus == "tfds" and not d.tfds_name:
    raise ConfigError("data.tfds_name='' but data.corpus='tfds' needs a catalog name with "
                      "version, e.g. 'wiki40b/en:1.3.0'")
  if d.corpus == "local_text" and not d.text_files.strip():
    raise ConfigError("data.text_files='' but data.corpus='local_text' needs a comma-separated "
                      "list of text files or globs")
  if d.corpus != "tfds":
    for field in ("train_split", "eval_split"):
      base = getattr(d, field).split("[")[0]
      _one_of(f"data.{field}", base, ("train", "validation"))
  _in_range("data.validation_fraction", d.validation_fraction, 0, 1, lo_open=True, hi_open=True)
  _int_at_least("data.seq_len", d.seq_len, objective.min_seq_len,
                f" for objective.name={o.name!r} (layout {objective.layout_text})")
  _int_at_least("data.seed", d.seed, 0)
  _int_at_least("data.num_workers", d.num_workers, 0,
                " (0 builds batches in a thread; N > 0 in N worker processes)")
  if d.tokenizer_file:
    if d.tokenizer == "byte" or d.vocab_file:
      raise ConfigError(f"data.tokenizer_file={d.tokenizer_file!r} is set with data.tokenizer="
                        f"{d.tokenizer!r} and data.vocab_file={d.vocab_file!r}; a tokenizer.json "
                        "needs data.tokenizer 'bpe' or 'wordpiece' and no vocab_file")
    if not os.path.isfile(d.tokenizer_file):
      raise ConfigError(f"data.tokenizer_file={d.tokenizer_file!r} does not exist")
  elif d.vocab_file:
    if d.tokenizer == "byte":
      raise ConfigError(f"data.vocab_file={d.vocab_file!r} is set but data.tokenizer='byte' has "
                        "a fixed vocabulary; clear vocab_file or use 'wordpiece' / 'bpe'")
    if not os.path.isfile(d.vocab_file):
      raise ConfigError(f"data.vocab_file={d.vocab_file!r} does not exist")
    if d.tokenizer == "bpe" and not d.merges_file:
      raise ConfigError("data.merges_file='' but data.tokenizer='bpe' with data.vocab_file "
                        "needs the GPT-2 merges.txt beside vocab.json")
    if d.merges_file and not os.path.isfile(d.merges_file):
      raise ConfigError(f"data.merges_file={d.merges_file!r} does not exist")
  elif d.tokenizer in ("wordpiece", "bpe"):
    least = 300 if d.tokenizer == "bpe" else 100
    _int_at_least("data.train_vocab_size", d.train_vocab_size, least,
                  f" for a trained {d.tokenizer} tokenizer (its alphabet alone needs ~"
                  f"{256 if d.tokenizer == 'bpe' else 100})")
  objective.validate_fields(config)
  gbs = config.train.global_batch_size
  _int_at_least("train.global_batch_size", gbs, 1)
  _int_at_least("process_count", process_count, 1)
  if gbs % process_count:
    raise ConfigError(f"train.global_batch_size={gbs} is not divisible by the process count "
                      f"{process_count}; every host must get the same number of rows")
