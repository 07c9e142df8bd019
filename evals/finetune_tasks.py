"""Classification tasks for the finetune suite, all read as TFDS random-access data sources.

- GLUE (glue/sst2, glue/mrpc, glue/qnli, glue/mnli, ...): TFDS's own preparation, which must
  already be in data.data_dir in a random-access format (file_format="array_record"); nothing is
  downloaded at run time.
- "doc_order" (offline): derived from the run's own corpus, in GLUE's feature format (like
  glue/mrpc: sentence1, sentence2, label, idx). Two consecutive prose sentences of one document,
  given in their original order (label 1, "in_order") or swapped (label 0, "swapped"), 50/50.
  Its train split comes from data.train_split, its validation split from data.eval_split, so
  fine-tuning never sees held-out text. The project's TFDS builder ("pancake_tasks") prepares it
  into data_dir once, atomically and under a lock, like the corpus itself (pipeline.tfds_text).
"""
import dataclasses
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from configs.errors import ConfigError
from pipeline import corpora
from pipeline import files as files_lib
from pipeline.tfds_text import _quiet_tfds  # same TFDS log/progress-bar silencing as the corpus
from pipeline.tfds_text import prepare_offline
from pipeline.token_cache import sentence_spans

TASKS_VERSION = "1.0.0"
_MAX_DERIVED = {"train": 20_000, "validation": 2_000}  # examples per derived split
_DERIVED_SEED = 0x0D0C  # the task's labels are part of its identity, not of eval.seed


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  text_keys: tuple          # one feature (single sentence) or two (a pair)
  num_classes: int
  train_split: str
  eval_split: str


TASKS = {
    "doc_order": TaskSpec(("sentence1", "sentence2"), 2, "train", "validation"),
    "glue/sst2": TaskSpec(("sentence",), 2, "train", "validation"),
    "glue/cola": TaskSpec(("sentence",), 2, "train", "validation"),
    "glue/mrpc": TaskSpec(("sentence1", "sentence2"), 2, "train", "validation"),
    "glue/rte": TaskSpec(("sentence1", "sentence2"), 2, "train", "validation"),
    "glue/qqp": TaskSpec(("question1", "question2"), 2, "train", "validation"),
    "glue/qnli": TaskSpec(("question", "sentence"), 2, "train", "validation"),
    "glue/mnli": TaskSpec(("premise", "hypothesis"), 3, "train", "validation_matched"),
}


def spec(name) -> TaskSpec:
  if name not in TASKS:
    raise ConfigError(f"eval.finetune_task={name!r} is not one of {', '.join(map(repr, TASKS))}")
  return TASKS[name]


def check_available(config) -> None:
  """ConfigError now (before anything compiles) if a GLUE task is not prepared in data_dir."""
  name = config.eval.finetune_task
  if spec(name) and name != "doc_order":
    _glue_builder(config)


def _glue_builder(config):
  data_dir = corpora.resolved_data_dir(config.data)
  hint = (f"prepare it into {data_dir!r} with file_format='array_record' (e.g. `tfds build "
          f"{config.eval.finetune_task} --data_dir={data_dir} --file_format=array_record`), or "
          "use eval.finetune_task='doc_order' (offline)")
  try:
    builder = tfds.builder(config.eval.finetune_task, data_dir=data_dir)
  except Exception as e:  # TFDS raises several types for names it cannot find or load
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ConfigError(f"eval.finetune_task={config.eval.finetune_task!r} cannot be opened in "
                      f"data_dir {data_dir!r} ({first}); {hint}") from None
  if not builder.is_prepared():
    raise ConfigError(f"eval.finetune_task={config.eval.finetune_task!r} is not prepared in "
                      f"data_dir {data_dir!r}; {hint}")
  return builder


def open_splits(config):
  """-> (TaskSpec, train source, eval source): random-access sequences of feature dicts."""
  task = spec(config.eval.finetune_task)
  builder = (derived_builder(config) if config.eval.finetune_task == "doc_order"
             else _glue_builder(config))
  try:
    return (task, builder.as_data_source(split=task.train_split),
            builder.as_data_source(split=task.eval_split))
  except (NotImplementedError, ValueError) as e:
    raise ConfigError(f"eval.finetune_task={config.eval.finetune_task!r} cannot be read by "
                      f"index ({e}); prepare it with file_format='array_record'") from None


def texts(record, keys) -> list[str]:
  out = []
  for key in keys:
    value = record[key]
    out.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
  return out


# --------------------------------------------------------------------------- derived: doc_order


def _prose(text: str) -> bool:
  words = text.split()
  letters = sum(c.isalpha() for c in text) / max(1, sum(not c.isspace() for c in text))
  return 4 <= len(words) <= 60 and letters >= 0.6


def doc_order_pairs(documents, limit: int):
  """Yields (key, features) of the doc_order task from an iterable of document strings."""
  count = 0
  for d, doc in enumerate(documents):
    sentences = [doc[a:b].strip() for a, b in sentence_spans(doc)]
    rng = np.random.default_rng([_DERIVED_SEED, d])
    # Non-overlapping pairs (0, 1), (2, 3), ...: no sentence appears in two examples.
    for i in range(0, len(sentences) - 1, 2):
      first, second = sentences[i], sentences[i + 1]
      if not (_prose(first) and _prose(second)):
        continue
      in_order = bool(rng.integers(2))
      pair = (first, second) if in_order else (second, first)
      yield f"{d}-{i}", {"sentence1": pair[0], "sentence2": pair[1], "label": int(in_order),
                         "idx": count}
      count += 1
      if count >= limit:
        return


@dataclasses.dataclass(eq=False)
class PancakeTasksConfig(tfds.core.BuilderConfig):
  task: str = "doc_order"


class PancakeTasks(tfds.core.GeneratorBasedBuilder):
  """Classification tasks derived from a pancake corpus (GLUE feature format)."""

  VERSION = tfds.core.Version(TASKS_VERSION)
  BUILDER_CONFIGS = []

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return None  # as pipeline.tfds_text.PancakeText: no checksums or code-relative resources

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description="doc_order: are two consecutive sentences of a document in their order?",
        features=tfds.features.FeaturesDict({
            "sentence1": tfds.features.Text(),
            "sentence2": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["swapped", "in_order"]),
            "idx": tfds.features.Scalar(np.int32),
        }))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded: the corpus is set on the builder before preparing
    return {split: self._generate(split, source) for split, source in self.source_splits.items()}

  def _generate(self, task_split, source_split):
    docs = self.corpus.documents(source_split)
    yield from doc_order_pairs(docs.iter_range(0, len(docs)), _MAX_DERIVED[task_split])

  def _generate_examples(self, **unused):  # required by the base class; splits use _generate
    raise RuntimeError("PancakeTasks generates through _split_generators")


def _builder(data_dir, name):
  config = PancakeTasksConfig(name=name, version=TASKS_VERSION)
  return PancakeTasks(data_dir=data_dir, config=config, file_format="array_record")


def derived_builder(config):
  """The prepared doc_order builder of config's corpus and splits (prepared on first use)."""
  d = config.data
  corpus = corpora.open_corpus(d)
  raw = f"doc_order|{corpus.fingerprint}|{d.train_split}|{d.eval_split}"
  name = "doc_order_" + hashlib.sha256(raw.encode()).hexdigest()[:16]
  data_dir = corpora.resolved_data_dir(d)
  with _quiet_tfds():
    builder = _builder(data_dir, name)
  if builder.is_prepared():
    return builder
  with files_lib.locked(os.path.join(data_dir, "pancake_tasks", name)):
    with _quiet_tfds():
      builder = _builder(data_dir, name)
      if builder.is_prepared():  # another process finished it while we waited
        return builder
      builder.corpus = corpus
      builder.source_splits = {"train": d.train_split, "validation": d.eval_split}
      prepare_offline(builder, data_dir, f"the doc_order task of {corpus.description}")
  return builder
