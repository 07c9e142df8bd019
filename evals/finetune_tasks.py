"""Classification tasks for the finetune and downstream suites, read as TFDS random-access sources.

Every task has three splits: `train` (fine-tuning), `dev` (choosing the learning rate and the
number of steps) and `test` (the reported number).

- GLUE (glue/sst2, glue/mrpc, glue/qnli, glue/mnli, ...): TFDS's own preparation, which must
  already be in data.data_dir in a random-access format (file_format="array_record"); nothing is
  downloaded at run time. dev = the first 5% of GLUE's train split, train = the rest, test =
  GLUE's validation split (its test split has no labels).
- Offline tasks derived from the run's own corpus, in GLUE's feature format. Their train split
  comes from the documents of data.train_split (every tenth document goes to dev instead), their
  test split from the held-out documents of data.eval_split, so no test text was pre-trained on
  (held-out sentences that also occur in those train documents, i.e. boilerplate, are left out).
  Labels are a pure function of the corpus (a fixed seed per document), 50/50 where balanced:
  - "doc_order" (pair, like glue/mrpc): two consecutive sentences of a document, in their order
    (label 1) or swapped (0). Documented in docs/experiments.md: on the embedded corpus nothing
    learns it (not even an n-gram model), so it ranks no objective.
  - "same_doc" (pair): two sentences from one document (1), or the first with a sentence of
    another document of the same split (0). Topic knowledge; a bag of words sees shared words.
  - "word_order" (single sentence, like glue/cola): a sentence as written (1) or with its words
    shuffled (0). A bag of words is at chance by construction: the two bags are equal.
  - "replaced_word" (token level, like ELECTRA's replaced token detection on words): 15% of a
    sentence's words replaced by words drawn from other sentences of the split (so by word
    frequency); each word labelled replaced (1) or original (0), predicted at its first token.
The project's TFDS builder ("pancake_tasks") prepares each into data_dir once, atomically and
under a lock, like the corpus itself (pipeline.tfds_text).
"""
import collections
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

TASKS_VERSION = "2.0.0"
_MAX_DERIVED = {"train": 20_000, "dev": 1_000, "test": 2_000}  # examples per derived split
_DERIVED_SEED = 0x0D0C  # the task's labels are part of its identity, not of eval.seed
_DEV_EVERY = 10         # every tenth train-split document goes to the dev split
_RECENT_DOCS = 64       # same_doc / replaced_word draw other-document text from this many
_REPLACED_FRACTION = 0.15


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  text_keys: tuple          # one feature (single sentence) or two (a pair)
  num_classes: int
  train_split: str
  dev_split: str
  test_split: str
  derived: bool = False
  word_labels: bool = False  # token level: one label per whitespace word ("word_labels")
  description: str = ""


_PAIR, _SINGLE = ("sentence1", "sentence2"), ("sentence",)


def _glue(keys, classes=2, test="validation"):
  return TaskSpec(keys, classes, "train[5%:]", "train[:5%]", test)


def _derived(keys, description, word_labels=False):
  return TaskSpec(keys, 2, "train", "dev", "test", derived=True, word_labels=word_labels,
                  description=description)


TASKS = {
    "doc_order": _derived(_PAIR, "are two consecutive sentences of a document in their order?"),
    "same_doc": _derived(_PAIR, "do two sentences come from the same document?"),
    "word_order": _derived(_SINGLE, "is the sentence as written, or are its words shuffled?"),
    "replaced_word": _derived(_SINGLE, "which words of the sentence were replaced?",
                              word_labels=True),
    "glue/sst2": _glue(("sentence",)),
    "glue/cola": _glue(("sentence",)),
    "glue/mrpc": _glue(("sentence1", "sentence2")),
    "glue/rte": _glue(("sentence1", "sentence2")),
    "glue/qqp": _glue(("question1", "question2")),
    "glue/qnli": _glue(("question", "sentence")),
    "glue/mnli": _glue(("premise", "hypothesis"), 3, "validation_matched"),
}
DERIVED = tuple(name for name, task in TASKS.items() if task.derived)


def spec(name, field="eval.finetune_task") -> TaskSpec:
  if name not in TASKS:
    raise ConfigError(f"{field}={name!r} is not one of {', '.join(map(repr, TASKS))}")
  return TASKS[name]


def check_available(config, name, field="eval.finetune_task") -> None:
  """ConfigError now (before anything compiles) if a GLUE task is not prepared in data_dir."""
  if not spec(name, field).derived:
    _glue_builder(config, name)


def _glue_builder(config, name):
  data_dir = corpora.resolved_data_dir(config.data)
  hint = (f"prepare it into {data_dir!r} with file_format='array_record' (e.g. `tfds build "
          f"{name} --data_dir={data_dir} --file_format=array_record`), or use one of the "
          f"offline tasks {', '.join(map(repr, DERIVED))}")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # TFDS raises several types for names it cannot find or load
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ConfigError(f"task {name!r} cannot be opened in data_dir {data_dir!r} ({first}); "
                      f"{hint}") from None
  if not builder.is_prepared():
    raise ConfigError(f"task {name!r} is not prepared in data_dir {data_dir!r}; {hint}")
  return builder


def open_splits(config, name=None):
  """-> (TaskSpec, {"train", "dev", "test": random-access sequence of feature dicts})."""
  name = name or config.eval.finetune_task
  task = spec(name)
  builder = derived_builder(config, name) if task.derived else _glue_builder(config, name)
  splits = {"train": task.train_split, "dev": task.dev_split, "test": task.test_split}
  try:
    return task, {role: builder.as_data_source(split=split) for role, split in splits.items()}
  except (NotImplementedError, ValueError) as e:
    raise ConfigError(f"task {name!r} cannot be read by index ({e}); prepare it with "
                      "file_format='array_record'") from None


def texts(record, keys) -> list[str]:
  out = []
  for key in keys:
    value = record[key]
    out.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
  return out


# ------------------------------------------------------------------------- derived tasks


def _prose(text: str) -> bool:
  words = text.split()
  letters = sum(c.isalpha() for c in text) / max(1, sum(not c.isspace() for c in text))
  return 4 <= len(words) <= 60 and letters >= 0.6


def prose_sentences(doc: str) -> list[str]:
  return [s for s in (doc[a:b].strip() for a, b in sentence_spans(doc)) if _prose(s)]


def _doc_order(d, sentences, rng, recent):
  del recent
  # Consecutive sentences of the document (prose or not), non-overlapping pairs (0, 1), (2, 3),
  # ...: no sentence appears in two examples.
  for i in range(0, len(sentences) - 1, 2):
    first, second = sentences[i], sentences[i + 1]
    if not (_prose(first) and _prose(second)):
      continue
    in_order = bool(rng.integers(2))
    pair = (first, second) if in_order else (second, first)
    yield f"{d}-{i}", {"sentence1": pair[0], "sentence2": pair[1], "label": int(in_order)}


def _same_doc(d, sentences, rng, recent):
  prose = [s for s in sentences if _prose(s)]
  others = [doc for doc in recent if doc]
  for i in range(0, len(prose) - 1, 2):  # each sentence is a first sentence at most once
    same = bool(rng.integers(2))
    if same:
      partner = prose[i + 1 + int(rng.integers(len(prose) - i - 1))]
    elif others:
      other = others[int(rng.integers(len(others)))]
      partner = other[int(rng.integers(len(other)))]
    else:
      continue  # the first document of a split has no other document yet
    yield f"{d}-{i}", {"sentence1": prose[i], "sentence2": partner, "label": int(same)}


def shuffled(words, rng):
  """words in a random order that differs from theirs, or None if every order is the same."""
  if len(set(words)) < 2:
    return None
  while True:
    out = [words[i] for i in rng.permutation(len(words))]
    if out != list(words):
      return out


def _word_order(d, sentences, rng, recent):
  del recent
  for i, sentence in enumerate(s for s in sentences if _prose(s)):
    words = sentence.split()
    keep = bool(rng.integers(2))
    mixed = None if keep else shuffled(words, rng)
    text = sentence if mixed is None else " ".join(mixed)
    yield f"{d}-{i}", {"sentence": text, "label": int(mixed is None)}


def _replaced_word(d, sentences, rng, recent):
  pool = [w for doc in recent for s in doc for w in s.split()]
  if not pool:
    return  # nothing to draw replacements from yet
  for i, sentence in enumerate(s for s in sentences if _prose(s)):
    words = sentence.split()
    labels = np.zeros(len(words), np.int32)
    k = max(1, int(round(_REPLACED_FRACTION * len(words))))
    for p in rng.choice(len(words), size=k, replace=False):
      replacement = pool[int(rng.integers(len(pool)))]
      if replacement != words[p]:
        words[p], labels[p] = replacement, 1
    yield f"{d}-{i}", {"sentence": " ".join(words), "word_labels": labels}


_GENERATORS = {"doc_order": _doc_order, "same_doc": _same_doc, "word_order": _word_order,
               "replaced_word": _replaced_word}


def derived_examples(name, documents, limit: int, seen=None, exclude=frozenset()):
  """Yields (key, features) of derived task `name` from an iterable of document strings.

  Sentences in `exclude` are blanked (no example uses them; document order is kept); the prose
  sentences of every document read are added to `seen` when given."""
  generate = _GENERATORS[name]
  recent = collections.deque(maxlen=_RECENT_DOCS)  # prose sentences of the previous documents
  count = 0
  for d, doc in enumerate(documents):
    sentences = [doc[a:b].strip() for a, b in sentence_spans(doc)]
    if seen is not None:
      seen.update(s for s in sentences if _prose(s))
    sentences = ["" if s in exclude else s for s in sentences]
    rng = np.random.default_rng([_DERIVED_SEED, d])
    for key, features in generate(d, sentences, rng, list(recent)):
      yield key, {**features, "idx": count}
      count += 1
      if count >= limit:
        return
    recent.append([s for s in sentences if _prose(s)])


def _features(task):
  features = {key: tfds.features.Text() for key in task.text_keys}
  if task.word_labels:
    features["word_labels"] = tfds.features.Sequence(tfds.features.Scalar(np.int32))
  else:
    features["label"] = tfds.features.ClassLabel(num_classes=task.num_classes)
  features["idx"] = tfds.features.Scalar(np.int32)
  return tfds.features.FeaturesDict(features)


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
    task = self.builder_config.task
    return tfds.core.DatasetInfo(builder=self, description=f"{task}: {TASKS[task].description}",
                                 features=_features(TASKS[task]))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded: the corpus is set on the builder before preparing
    # train and dev first: a held-out sentence that also occurs in the documents they were made
    # from (boilerplate repeated across documents) is kept out of the test split.
    seen = set()
    splits = {split: list(self._generate(split, seen=seen)) for split in ("train", "dev")}
    splits["test"] = list(self._generate("test", exclude=frozenset(seen)))
    empty = [split for split, examples in splits.items() if not examples]
    if empty:
      raise ConfigError(
          f"the {self.builder_config.task} task of {self.corpus.description} has no "
          f"{' or '.join(empty)} examples (too few documents or prose sentences, or held-out "
          f"sentences that all repeat train text); use a larger corpus or another task "
          f"({', '.join(DERIVED)})")
    return splits

  def _generate(self, task_split, **kwargs):
    if task_split == "test":
      docs = self.corpus.documents(self.source_splits["test"])
      documents = docs.iter_range(0, len(docs))
    else:
      docs = self.corpus.documents(self.source_splits["train"])
      dev = task_split == "dev"
      documents = (text for i, text in enumerate(docs.iter_range(0, len(docs)))
                   if (i % _DEV_EVERY == 0) == dev)
    yield from derived_examples(self.builder_config.task, documents, _MAX_DERIVED[task_split],
                                **kwargs)

  def _generate_examples(self, **unused):  # required by the base class; splits use _generate
    raise RuntimeError("PancakeTasks generates through _split_generators")


def _builder(data_dir, name, task):
  config = PancakeTasksConfig(name=name, version=TASKS_VERSION, task=task)
  return PancakeTasks(data_dir=data_dir, config=config, file_format="array_record")


def derived_builder(config, task):
  """The prepared builder of derived `task` on config's corpus and splits (prepared once)."""
  d = config.data
  corpus = corpora.open_corpus(d)
  raw = f"{task}|{corpus.fingerprint}|{d.train_split}|{d.eval_split}"
  name = task + "_" + hashlib.sha256(raw.encode()).hexdigest()[:16]
  data_dir = corpora.resolved_data_dir(d)
  with _quiet_tfds():
    builder = _builder(data_dir, name, task)
  if builder.is_prepared():
    return builder
  with files_lib.locked(os.path.join(data_dir, "pancake_tasks", name)):
    with _quiet_tfds():
      builder = _builder(data_dir, name, task)
      if builder.is_prepared():  # another process finished it while we waited
        return builder
      builder.corpus = corpus
      builder.source_splits = {"train": d.train_split, "test": d.eval_split}
      prepare_offline(builder, data_dir, f"the {task} task of {corpus.description}")
  return builder
