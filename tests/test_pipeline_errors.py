"""Bad input gets a clear error (naming the field and value) and leaves nothing half-written."""
import glob
import json
import logging
import os
import subprocess
import sys

import pytest

import objectives
import pipeline
from configs.base import get_config
from configs.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _local_config(tmp_path, text_files, **data):
  c = get_config()
  c.data.corpus, c.data.text_files = "local_text", text_files
  c.data.data_dir = str(tmp_path / "data")
  c.data.tokenizer = "byte"
  c.model.vocab_size = 512
  for k, v in data.items():
    setattr(c.data, k, v)
  return c


def _nothing_written(data_dir):
  prepared = glob.glob(os.path.join(data_dir, "**", "dataset_info.json"), recursive=True)
  partial = [p for p in glob.glob(os.path.join(data_dir, "**", "*"), recursive=True)
             if "incomplete" in os.path.basename(p) or os.path.basename(p).startswith(".tmp")]
  return not prepared and not partial


def test_missing_corpus(tmp_path):
  config = _local_config(tmp_path, str(tmp_path / "nope" / "*.txt"))
  with pytest.raises(ConfigError, match=r"data.text_files: .*matches no file"):
    objectives.make_pipeline(config, "train")
  config.data.text_files = ""
  with pytest.raises(ConfigError, match="data.text_files=''"):
    pipeline.validate(config, objectives.get(config.objective.name))


def test_empty_corpus_writes_nothing(tmp_path):
  (tmp_path / "a.txt").write_text("\n\n   \n")
  (tmp_path / "b.txt").write_text("")
  config = _local_config(tmp_path, str(tmp_path / "*.txt"))
  with pytest.raises(pipeline.CorpusError, match="no documents"):
    objectives.make_pipeline(config, "train")
  assert _nothing_written(config.data.data_dir)


def test_non_utf8_reports_file_and_offset_and_writes_nothing(tmp_path):
  content = b"First document line.\n\nSecond document, fine.\n\nThird has a bad \xff byte.\n"
  path = tmp_path / "bad.txt"
  path.write_bytes(content)
  config = _local_config(tmp_path, str(path))
  with pytest.raises(pipeline.CorpusError) as err:
    objectives.make_pipeline(config, "train")
  message = str(err.value)
  offset = content.index(b"\xff")
  assert str(path) in message and f"byte offset {offset}" in message
  assert "on_decode_error" in message
  assert _nothing_written(config.data.data_dir)


def test_non_utf8_skip_drops_the_document_and_logs(tmp_path, caplog):
  good = [f"Document number {i} has some words." for i in range(6)]
  content = "\n\n".join(good).encode() + b"\n\nBroken \xfe\xff document.\n"
  (tmp_path / "mixed.txt").write_bytes(content)
  config = _local_config(tmp_path, str(tmp_path / "mixed.txt"), on_decode_error="skip",
                         seq_len=16)
  with caplog.at_level(logging.WARNING):
    pipe = objectives.make_pipeline(config, "train")
  assert any("skipped 1 document" in r.getMessage() for r in caplog.records)
  from pipeline import corpora  # pylint: disable=g-import-not-at-top
  corpus = corpora.open_corpus(config.data)
  texts = [d for s in ("train", "validation") for d in corpus.documents(s).iter_range(
      0, len(corpus.documents(s)))]
  assert sorted(texts) == sorted(good)
  assert pipe.batch(0)["input_ids"].shape == (config.train.global_batch_size, 16)


def _write_bert_vocab(path, tokens):
  path.write_text("\n".join(tokens) + "\n")
  return str(path)


def test_vocab_without_required_special_token(tmp_path, embedded_data_dir):
  vocab = _write_bert_vocab(tmp_path / "vocab.txt",
                            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "##s", "a"])
  c = get_config()
  c.data.data_dir, c.data.tokenizer, c.data.vocab_file = embedded_data_dir, "wordpiece", vocab
  c.objective.name = "mlm"
  with pytest.raises(ConfigError, match=r"vocab_file=.*no \[MASK\] token.*'mlm'"):
    objectives.get_tokenizer(c)
  c.objective.name = "causal"  # [SEP] is the document separator: this vocabulary is enough
  assert objectives.get_tokenizer(c).eot_id == 3


def test_gpt2_vocab_has_no_mask_token(tmp_path):
  from pipeline import tokenization  # pylint: disable=g-import-not-at-top
  table = tokenization._bytes_to_unicode()  # pylint: disable=protected-access
  vocab = {ch: i for i, ch in enumerate(table.values())}
  vocab["th"] = len(vocab)
  (tmp_path / "vocab.json").write_text(json.dumps(vocab))
  (tmp_path / "merges.txt").write_text("#version: 0.2\nt h\n")
  c = get_config()
  c.data.tokenizer, c.data.vocab_file = "bpe", str(tmp_path / "vocab.json")
  c.data.merges_file = str(tmp_path / "merges.txt")
  c.objective.name = "causal"
  with pytest.raises(ConfigError, match=r"no <\|endoftext\|> token.*'causal'"):
    objectives.get_tokenizer(c)
  vocab["<|endoftext|>"] = len(vocab)
  (tmp_path / "vocab.json").write_text(json.dumps(vocab))
  tok = objectives.get_tokenizer(c)
  assert tok.encode("the") == [vocab["th"], vocab["e"]]
  c.objective.name = "mlm_nsp"
  with pytest.raises(ConfigError, match=r"no <pad> token|no <mask> token"):
    objectives.get_tokenizer(c)


@pytest.mark.parametrize("field,value,pattern", [
    ("data.seq_len", 4, r"data.seq_len=4 must be an integer >= 5 .*\[CLS\] A \[SEP\] B \[SEP\]"),
    ("data.tokenizer", "sentencepiece", r"data.tokenizer='sentencepiece' is not one of"),
    ("data.corpus", "c4", r"data.corpus='c4' is not one of"),
    ("objective.name", "t5", r"objective.name='t5' is not one of"),
    ("objective.mask_prob", 0.0, r"objective.mask_prob=0.0 must be a number in \(0, 1\]"),
    ("objective.max_predictions_per_seq", 0, r"max_predictions_per_seq=0 must be"),
    ("data.on_decode_error", "ignore", r"on_decode_error='ignore'"),
    ("data.train_vocab_size", 50, r"train_vocab_size=50 must be an integer >= 100"),
    ("data.num_workers", -1, r"data.num_workers=-1 must be an integer >= 0 \(0 builds"),
])
def test_validate_names_field_and_value(field, value, pattern):
  c = get_config()
  c.objective.name, c.data.tokenizer = "mlm_nsp", "wordpiece"
  section, name = field.split(".")
  setattr(c[section], name, value)
  with pytest.raises(ConfigError, match=pattern):
    pipeline.validate(c, objectives.get(c.objective.name))


def test_batch_must_divide_over_hosts():
  c = get_config()
  c.train.global_batch_size = 6
  pipeline.validate(c, objectives.get(c.objective.name), process_count=2)
  with pytest.raises(ConfigError, match="global_batch_size=6 is not divisible .* 4"):
    pipeline.validate(c, objectives.get(c.objective.name), process_count=4)


def test_inspect_cli_bad_config_exits_2_with_one_line():
  proc = subprocess.run(
      [sys.executable, "-m", "pipeline.inspect", "--config", "configs/base.py",
       "--config.objective.name=mlm_nsp", "--config.data.seq_len=4"],
      cwd=ROOT, capture_output=True, text=True, timeout=120,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: data.seq_len=4"), proc.stderr
