"""The project's TFDS builder for plain text: local files and the embedded CPython corpus.

One `GeneratorBasedBuilder` ("pancake_text") with one builder config per source: "embedded_<python
version>_<hash>" or "files_<hash of paths, sizes, mtimes and split settings>". It writes ArrayRecord
files (random access without TensorFlow) with train and validation splits.

Nothing half-written: the whole source is scanned first (UTF-8 errors and empty corpora raise here,
before anything is created), then TFDS writes into an `incomplete.*` directory that it renames into
place only on success and removes on failure. A file lock keeps concurrent local processes from
preparing the same dataset twice.
"""
import contextlib
import dataclasses
import hashlib
import io
import logging as std_logging
import os
import sys

import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import tqdm_utils

from pipeline import files as files_lib
from pipeline import sources

VERSION = "1.0.0"


@dataclasses.dataclass(eq=False)
class PancakeTextConfig(tfds.core.BuilderConfig):
  source: str = "embedded"            # "embedded" | "local"
  text_files: tuple = ()              # local: resolved file paths
  on_decode_error: str = "error"      # local: "error" | "skip"
  validation_threshold: int = -1      # documents with content hash <= this go to validation


class PancakeText(tfds.core.GeneratorBasedBuilder):
  """Plain-text documents (feature "text"), split by content hash into train and validation."""

  VERSION = tfds.core.Version(VERSION)
  BUILDER_CONFIGS = []

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    # No checksums file or code-relative resources. (TFDS's own lookup of the code path needs
    # the importlib_resources backport, which TFDS without TensorFlow does not install.)
    return None

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description="pancake plain-text corpus (embedded CPython docs or local files)",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    return {"train": self._generate(validation=False),
            "validation": self._generate(validation=True)}

  def _generate_examples(self, **unused):  # required by the base class; splits use _generate
    raise RuntimeError("PancakeText generates through _split_generators")

  def _documents(self):
    if getattr(self, "scanned_documents", None) is not None:
      return iter(self.scanned_documents)
    cfg = self.builder_config
    if cfg.source == "embedded":
      return sources.embedded_documents()
    return sources.local_documents(list(cfg.text_files), cfg.on_decode_error)

  def _generate(self, validation: bool):
    threshold = self.builder_config.validation_threshold
    for key, text in self._documents():
      if (sources.document_hash(text) <= threshold) == validation:
        yield key, {"text": text}


@contextlib.contextmanager
def _quiet_tfds():
  """TFDS logs a warning for every custom builder config and draws progress bars: hide both."""
  logger = std_logging.getLogger("absl")
  level, bars = logger.level, tqdm_utils._active  # pylint: disable=protected-access
  logger.setLevel(std_logging.ERROR)
  tfds.display_progress_bar(False)
  try:
    yield
  finally:
    logger.setLevel(level)
    tfds.display_progress_bar(bars)


def prepare_offline(builder, data_dir: str, what: str) -> None:
  """builder.download_and_prepare() for a builder that downloads nothing, in _quiet_tfds.

  TFDS prints "Downloading and preparing dataset Unknown size (download: Unknown size, ...)" and
  "Dataset ... downloaded and prepared" on stdout; for a dataset written from local text both
  mislead, so they are dropped and one line on stderr says what happens."""
  print(f"preparing {what} as TFDS dataset {builder.name}/{builder.builder_config.name} in "
        f"{data_dir} (from local text, nothing downloaded; once)", file=sys.stderr, flush=True)
  with contextlib.redirect_stdout(io.StringIO()):
    builder.download_and_prepare(
        download_dir=os.path.join(data_dir, "downloads"),
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))


def _config_name(data_cfg, files: list[str]) -> str:
  settings = f"{data_cfg.validation_fraction!r}|{data_cfg.on_decode_error}"
  if data_cfg.corpus == "embedded":
    digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return f"embedded_{sources.embedded_source_name()}_{digest}"
  h = hashlib.sha256(settings.encode())
  for path in files:
    st = os.stat(path)
    h.update(f"|{path}|{st.st_size}|{st.st_mtime_ns}".encode())
  return "files_" + h.hexdigest()[:16]


def _builder(data_dir: str, name: str, **config_fields) -> PancakeText:
  config = PancakeTextConfig(name=name, version=VERSION, **config_fields)
  return PancakeText(data_dir=data_dir, config=config, file_format="array_record")


def prepared_builder(data_cfg, data_dir: str) -> PancakeText:
  """Returns the builder of data_cfg's embedded/local corpus, preparing it first if needed."""
  files = [] if data_cfg.corpus == "embedded" else sources.resolve_text_files(data_cfg.text_files)
  name = _config_name(data_cfg, files)
  fields = dict(source="embedded" if data_cfg.corpus == "embedded" else "local",
                text_files=tuple(files), on_decode_error=data_cfg.on_decode_error)
  with _quiet_tfds():
    builder = _builder(data_dir, name, **fields)
  if builder.is_prepared():
    return builder
  lock_path = os.path.join(data_dir, "pancake_text", name)
  with files_lib.locked(lock_path):
    with _quiet_tfds():
      builder = _builder(data_dir, name, **fields)
    if builder.is_prepared():  # another process finished it while we waited
      return builder
    what = ("the embedded corpus" if data_cfg.corpus == "embedded"
            else f"data.text_files={data_cfg.text_files!r}")
    # The embedded corpus (~2 MB) is kept from the scan; local files are streamed twice.
    docs = (list(sources.embedded_documents()) if data_cfg.corpus == "embedded"
            else sources.local_documents(files, data_cfg.on_decode_error))
    hashes = [sources.document_hash(text) for _, text in docs]  # full scan: errors raise here
    threshold = sources.validation_threshold(hashes, data_cfg.validation_fraction, what)
    if all(h <= threshold for h in hashes):
      raise sources.CorpusError(f"{what}: every document is a duplicate of the validation "
                                "documents; the train split would be empty")
    with _quiet_tfds():  # (the second pass over local files repeats the skip warning: hidden)
      builder = _builder(data_dir, name, validation_threshold=threshold, **fields)
      builder.scanned_documents = docs if isinstance(docs, list) else None
      prepare_offline(builder, data_dir, what)
    return builder
