"""Corpora through TFDS: the embedded CPython corpus, local text files, a catalog dataset."""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import objectives
import pipeline
from configs.base import get_config
from configs.errors import ConfigError
from pipeline import corpora

SHAKESPEARE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "shared", "data", "tinyshakespeare.txt")


def _all_docs(corpus, split):
  docs = corpus.documents(split)
  return list(docs.iter_range(0, len(docs)))


def test_embedded_corpus_is_prose_split_in_two(embedded_config):
  corpus = corpora.open_corpus(embedded_config("mlm").data)
  train, val = _all_docs(corpus, "train"), _all_docs(corpus, "validation")
  assert len(train) > 300 and len(val) == round(0.02 * (len(train) + len(val)))
  assert not set(train) & set(val)
  text = " ".join(train)
  assert text.count(" the ") > 5000 and len(text) > 1_000_000


def _local(tmp_path, files, data_dir, fraction=0.25):
  c = get_config()
  c.data.corpus, c.data.text_files, c.data.data_dir = "local_text", files, str(data_dir)
  c.data.validation_fraction, c.data.tokenizer, c.data.seq_len = fraction, "byte", 32
  c.model.vocab_size = 512
  return c


def test_local_text_documents_and_deterministic_split(tmp_path):
  docs = [f"Document {i} line one.\nDocument {i} line two." for i in range(20)]
  (tmp_path / "a.txt").write_text("\n\n".join(docs[:12]) + "\n")
  (tmp_path / "b.txt").write_text("\n\n\n".join(docs[12:]))
  files = f"{tmp_path}/a.txt,{tmp_path}/b*.txt"
  splits = []
  for data_dir in ("d1", "d2"):
    corpus = corpora.open_corpus(_local(tmp_path, files, tmp_path / data_dir).data)
    splits.append((sorted(_all_docs(corpus, "train")), sorted(_all_docs(corpus, "validation"))))
  train, val = splits[0]
  assert splits[0] == splits[1]
  assert len(val) == 5 and sorted(train + val) == sorted(docs)


def test_local_text_pipeline_on_tinyshakespeare(tmp_path):
  if not os.path.exists(SHAKESPEARE):
    pytest.skip("shared/data/tinyshakespeare.txt is absent")
  config = _local(tmp_path, SHAKESPEARE, tmp_path / "d", fraction=0.05)
  config.objective.name, config.data.seq_len = "causal", 128
  pipe = objectives.make_pipeline(config, "train")
  text = pipe.tokenizer.decode(pipe.batch(0)["input_ids"][0])
  assert len(text) > 50 and any(w in text for w in (" the ", " and ", " I ", " to "))
  val = objectives.make_pipeline(config, "validation")
  assert 0 < val.data.num_tokens < pipe.data.num_tokens / 5


class PancakeTestCatalog(tfds.core.GeneratorBasedBuilder):
  """Stands in for a catalog dataset (wiki40b, c4) prepared in a data_dir as ArrayRecord."""
  VERSION = tfds.core.Version("1.2.0")

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return None

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {"body": tfds.features.Text(), "id": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {"train": self._gen(40), "validation": self._gen(5)}

  def _generate_examples(self, **unused):
    raise RuntimeError

  def _gen(self, n):
    for i in range(n):
      yield i, {"body": f"Article {i}. It has two sentences about topic {i % 7}.", "id": str(i)}


def test_tfds_catalog_dataset_by_name_and_version(tmp_path):
  data_dir = str(tmp_path / "tfds")
  PancakeTestCatalog(data_dir=data_dir, file_format="array_record").download_and_prepare()
  c = get_config()
  c.data.corpus, c.data.tfds_name, c.data.text_key = "tfds", "pancake_test_catalog:1.2.0", "body"
  c.data.data_dir, c.data.tokenizer, c.data.seq_len = data_dir, "byte", 24
  c.objective.name, c.model.vocab_size = "mlm", 512
  pipe = objectives.make_pipeline(c, "train")
  assert pipe.data.num_docs == 40
  b = pipe.batch(0)
  assert b["input_ids"].shape == (32, 24) and np.all(b["input_ids"][:, 0] == pipe.tokenizer.cls_id)
  c.data.text_key = "title"
  with pytest.raises(ConfigError, match="data.text_key='title' is not a feature"):
    objectives.make_pipeline(c, "train")
  c.data.text_key, c.data.tfds_name = "body", "pancake_test_catalog:9.9.9"
  with pytest.raises(ConfigError, match="data.tfds_name='pancake_test_catalog:9.9.9'"):
    objectives.make_pipeline(c, "train")


def test_offline_preparation_says_what_it_does_not_downloading_unknown_size(tmp_path, capfd):
  """TFDS's "Downloading and preparing dataset Unknown size" (nothing is downloaded) is replaced
  by one line, for the corpus and for the offline doc_order task derived from it."""
  from evals import finetune_tasks
  docs = [f"Document number {i} opens here. It goes on for {i} lines.\nThen it ends here, at {i}."
          for i in range(40)]
  (tmp_path / "a.txt").write_text("\n\n".join(docs) + "\n")
  config = _local(tmp_path, f"{tmp_path}/a.txt", tmp_path / "data")
  corpora.open_corpus(config.data)
  finetune_tasks.derived_builder(config, "doc_order")
  out, err = capfd.readouterr()
  assert "Downloading" not in out + err and "Unknown size" not in out + err, out + err
  said = [line for line in err.splitlines() if line.startswith("preparing ")]
  assert len(said) == 2 and all("(from local text, nothing downloaded; once)" in s for s in said)
  assert said[0].startswith(f"preparing data.text_files='{tmp_path}/a.txt' as TFDS dataset")
  assert said[1].startswith("preparing the doc_order task of")


def test_a_derived_task_without_test_examples_is_a_one_line_config_error(tmp_path):
  """Every held-out sentence repeats train text: no test example is left, and preparing says
  so (instead of TFDS's "No examples were yielded") and writes nothing."""
  from evals import finetune_tasks
  docs = [f"#{i}\nIt opens here, as usual. It goes on for a while. Then it ends, as always."
          for i in range(40)]  # distinct documents whose prose sentences are all the same
  (tmp_path / "a.txt").write_text("\n\n".join(docs) + "\n")
  config = _local(tmp_path, f"{tmp_path}/a.txt", tmp_path / "data")
  with pytest.raises(ConfigError, match=r"the word_order task of .* has no test examples"):
    finetune_tasks.derived_builder(config, "word_order")
  import glob
  assert not glob.glob(str(tmp_path / "data" / "pancake_tasks" / "*" / "*" / "dataset_info.json"))
