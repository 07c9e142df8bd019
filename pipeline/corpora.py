"""Corpora as random-access document sources, all through TFDS (ArrayRecord data sources).

- corpus="embedded": CPython's documentation (`sources.embedded_documents`), prepared by the
  project's TFDS builder into data_dir on first use.
- corpus="local_text": the user's files (data.text_files), prepared by the same builder.
- corpus="tfds": any catalog dataset already prepared in data_dir in a random-access format
  (array_record), addressed by data.tfds_name ("name/config:version") and data.text_key.
  Nothing is downloaded at run time; TFRecord-only preparations need TensorFlow to convert.
"""
import dataclasses
import hashlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from configs.errors import ConfigError
from pipeline import files as files_lib
from pipeline import tfds_text


def resolved_data_dir(data_cfg) -> str:
  return data_cfg.data_dir or files_lib.default_data_dir()


@dataclasses.dataclass
class DocumentSource:
  """Random access to the documents (str) of one split, by index."""
  source: Any          # TFDS ArrayRecordDataSource
  text_key: str

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> str:
    return self._text(self.source[int(index)])

  def _text(self, record) -> str:
    value = record[self.text_key]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)

  def iter_range(self, start: int, stop: int, chunk: int = 1024):
    """Yields documents start..stop-1 in order, reading `chunk` records per call."""
    for lo in range(start, stop, chunk):
      for record in self.source.__getitems__(list(range(lo, min(stop, lo + chunk)))):
        yield self._text(record)


@dataclasses.dataclass
class Corpus:
  builder: Any
  text_key: str
  description: str     # what the config asked for, for error messages

  @property
  def fingerprint(self) -> str:
    """Dataset identity: builder name, config, version and the size of every split."""
    info = self.builder.info
    splits = ",".join(f"{k}={v.num_examples}" for k, v in sorted(info.splits.items()))
    cfg = self.builder.builder_config.name if self.builder.builder_config else ""
    raw = f"{self.builder.name}/{cfg}:{self.builder.version}|{self.text_key}|{splits}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]

  def documents(self, split: str) -> DocumentSource:
    available = sorted(self.builder.info.splits.keys())
    base = split.split("[")[0]
    if base not in available:
      raise ConfigError(f"split {split!r} (data.train_split / data.eval_split) is not in "
                        f"{self.description}; available splits: {', '.join(available)}")
    try:
      source = self.builder.as_data_source(split=split)
    except (NotImplementedError, ValueError) as e:
      raise ConfigError(f"{self.description} cannot be read by index: {e}") from None
    docs = DocumentSource(source, self.text_key)
    if len(docs) == 0:
      raise ConfigError(f"split {split!r} of {self.description} holds no documents")
    return docs


def open_corpus(data_cfg) -> Corpus:
  """Opens (preparing the embedded/local corpora if needed) the corpus named by data_cfg."""
  data_dir = resolved_data_dir(data_cfg)
  if data_cfg.corpus in ("embedded", "local_text"):
    builder = tfds_text.prepared_builder(data_cfg, data_dir)
    what = ("the embedded corpus" if data_cfg.corpus == "embedded"
            else f"data.text_files={data_cfg.text_files!r}")
    return Corpus(builder, "text", what)
  description = f"data.tfds_name={data_cfg.tfds_name!r} in data_dir {data_dir!r}"
  try:
    builder = tfds.builder(data_cfg.tfds_name, data_dir=data_dir)
  except Exception as e:  # TFDS raises several types for unknown names/versions
    raise ConfigError(f"{description}: cannot open the dataset ({type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''})") from None
  if not builder.is_prepared():
    raise ConfigError(f"{description} is not prepared; nothing is downloaded at run time: "
                      "prepare it into data_dir with file_format='array_record' first")
  features = builder.info.features
  if features is not None and data_cfg.text_key not in features:
    raise ConfigError(f"data.text_key={data_cfg.text_key!r} is not a feature of {description}; "
                      f"features: {', '.join(sorted(features.keys()))}")
  return Corpus(builder, data_cfg.text_key, description)


def sample_documents(docs: DocumentSource, max_chars: int) -> list[str]:
  """Evenly spaced documents totalling about max_chars, for training a tokenizer quickly."""
  n = len(docs)
  probe = [len(docs[i]) for i in np.linspace(0, n - 1, min(n, 64)).astype(int)]
  estimate = max(1, int(np.mean(probe)) * n)
  if estimate <= max_chars:
    return list(docs.iter_range(0, n))
  step = estimate / max_chars
  picks = sorted(set(int(i * step) for i in range(int(n / step))))
  return [docs[i] for i in picks]
