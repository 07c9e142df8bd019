"""Tokenizer files in the layouts Hugging Face model directories hold, read the way a user reads
them (configs/from_hf.py:DIR, then pipeline.get_tokenizer), give the ids of transformers'
AutoTokenizer on the same directory, line by line, on 3,000 lines of real text plus the
tests/interop_testlib.TRICKY lines:

- tokenizer.json alone, saved with `"padding": {"strategy": {"Fixed": 128}}` and
  `"truncation": {"max_length": 128}` (as many sentence-transformers checkpoints are), WordPiece
  and byte-level BPE;
- tokenizer.json + tokenizer_config.json + special_tokens_map.json, cased, padded;
- vocab.txt only; vocab.json + merges.txt only;
- a tokenizer with added tokens (plain words and an extra special token).

The directories are built here (tokenizers trained on local text, written by transformers'
save_pretrained or the files of the original BERT / GPT-2 releases) next to a config.json: no
weights are needed to read a tokenizer. The last test checks that a document far longer than
the padding length keeps all its tokens in the corpus cache.
"""
import collections
import json
import logging
import os

import numpy as np
import pytest
import transformers

import objectives
import pipeline
from configs import from_hf
from tests import interop_testlib as lib

PAD_TO = 128


@pytest.fixture(scope="module")
def lines():
  return lib.text_lines(3000)


@pytest.fixture(scope="module")
def wordpiece_vocab(lines):
  return lib.train_wordpiece(lines[::2], True, vocab_size=2000)


def _model_config(out_dir, family, vocab_size):
  cfg = (transformers.BertConfig(vocab_size=vocab_size, num_hidden_layers=1, hidden_size=32,
                                 num_attention_heads=2, intermediate_size=64)
         if family == "encoder" else
         transformers.GPT2Config(vocab_size=vocab_size, n_layer=1, n_embd=32, n_head=2))
  cfg.save_pretrained(out_dir)


def _files(out_dir):
  return sorted(os.listdir(out_dir))


def _pad_and_truncate_file(path, pad_token, pad_id):
  """Sets the padding and truncation a Hub tokenizer.json often carries."""
  lib.set_fixed_padding(path, PAD_TO, pad_token, pad_id)
  spec = json.load(open(path, encoding="utf-8"))
  assert spec["padding"]["strategy"] == {"Fixed": PAD_TO}
  assert spec["truncation"]["max_length"] == PAD_TO


def _ours_and_theirs(hf_dir):
  config = from_hf.get_config(hf_dir)
  return config, objectives.get_tokenizer(config), transformers.AutoTokenizer.from_pretrained(hf_dir)


def _assert_same_ids(ours, theirs, lines):
  ids = ours.encode_batch(lines)
  want = theirs(lines, add_special_tokens=False)["input_ids"]
  differ = [i for i, (a, b) in enumerate(zip(ids, want)) if a != b]
  assert not differ, (f"{len(differ)} of {len(lines)} lines differ; first: {lines[differ[0]]!r}: "
                      f"{ids[differ[0]][:20]} vs {want[differ[0]][:20]}")
  assert sum(map(len, ids)) > 5 * len(lines)  # real tokenization, not empty rows
  assert max(map(len, ids)) > PAD_TO  # some lines are longer than the padding length


def _long_lines(lines):
  """The test lines plus lines of several hundred tokens (a padding tokenizer would cut them)."""
  return lines + [" ".join(lines[i:i + 40]) for i in range(0, 400, 40)]


def test_padded_wordpiece_tokenizer_json_alone(lines, wordpiece_vocab, tmp_path, caplog):
  hf_dir = str(tmp_path)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  transformers.BertTokenizerFast(vocab=wordpiece_vocab).backend_tokenizer.save(
      str(tmp_path / "tokenizer.json"))
  _pad_and_truncate_file(str(tmp_path / "tokenizer.json"), "[PAD]", 0)
  assert _files(hf_dir) == ["config.json", "tokenizer.json"]
  with caplog.at_level(logging.WARNING):
    config, ours, theirs = _ours_and_theirs(hf_dir)
  assert config.data.tokenizer_file.endswith("tokenizer.json")
  said = [r.getMessage() for r in caplog.records if "ignoring its padding" in r.getMessage()]
  assert said == [f"{hf_dir}/tokenizer.json: ignoring its padding (Fixed {PAD_TO}) and "
                  f"truncation (max_length {PAD_TO}); pancake packs and pads itself"], said
  assert ours.hf.padding is None and ours.hf.truncation is None
  assert not [r for r in caplog.records if "do_lower_case" in r.getMessage()]  # both lowercase
  assert ours.hf.normalizer is not None and ours.decode(ours.encode("The CAT")) == "the cat"
  _assert_same_ids(ours, theirs, _long_lines(lines))


def test_padded_byte_level_bpe_tokenizer_json_alone(lines, tmp_path, caplog):
  hf_dir = str(tmp_path)
  vocab, merges = lib.train_bpe(lines[::2], vocab_size=2000)
  _model_config(hf_dir, "decoder", 2000)
  transformers.GPT2TokenizerFast(vocab=vocab, merges=merges).backend_tokenizer.save(
      str(tmp_path / "tokenizer.json"))
  _pad_and_truncate_file(str(tmp_path / "tokenizer.json"), "<|endoftext|>", 0)
  with caplog.at_level(logging.WARNING):
    _, ours, theirs = _ours_and_theirs(hf_dir)
  assert any("ignoring its padding" in r.getMessage() for r in caplog.records)
  _assert_same_ids(ours, theirs, _long_lines(lines))


def test_tokenizer_json_with_config_and_special_tokens_map_cased(lines, tmp_path):
  hf_dir = str(tmp_path)
  vocab = lib.train_wordpiece(lines[::2], False, vocab_size=2000)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  tok = transformers.BertTokenizerFast(vocab=vocab, do_lower_case=False)
  tok.save_pretrained(hf_dir)
  lib.write_special_tokens_map(tok, hf_dir)
  _pad_and_truncate_file(str(tmp_path / "tokenizer.json"), "[PAD]", 0)
  assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= set(
      _files(hf_dir))
  config, ours, theirs = _ours_and_theirs(hf_dir)
  assert config.data.lowercase is False
  assert ours.decode(ours.encode("The CAT")) != "the cat"  # cased: kept
  _assert_same_ids(ours, theirs, _long_lines(lines))


def test_cased_tokenizer_json_alone_says_transformers_would_lowercase(lines, tmp_path, caplog):
  """transformers' BertTokenizer applies do_lower_case (default True) over tokenizer.json's own
  normalizer; pancake keeps the file's and says where the two part."""
  hf_dir = str(tmp_path)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  vocab = lib.train_wordpiece(lines[::8], False, vocab_size=800)
  transformers.BertTokenizerFast(vocab=vocab, do_lower_case=False).backend_tokenizer.save(
      str(tmp_path / "tokenizer.json"))
  with caplog.at_level(logging.WARNING):
    config, ours, theirs = _ours_and_theirs(hf_dir)
  assert config.data.lowercase is False
  assert [r.getMessage() for r in caplog.records if "do_lower_case" in r.getMessage()] == [
      f"{hf_dir}/tokenizer.json does not lowercase, but do_lower_case (no tokenizer_config.json "
      "gives it: True)=True: transformers' BertTokenizer follows do_lower_case, pancake follows "
      "tokenizer.json, so ids differ on upper-case text"]
  assert ours.encode("the king") == theirs("the king", add_special_tokens=False)["input_ids"]
  assert ours.encode("The KING") != theirs("The KING", add_special_tokens=False)["input_ids"]


def test_vocab_txt_only(lines, wordpiece_vocab, tmp_path):
  hf_dir = str(tmp_path)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  lib.write_bert_vocab_file(wordpiece_vocab, hf_dir)
  assert _files(hf_dir) == ["config.json", "vocab.txt"]
  config, ours, theirs = _ours_and_theirs(hf_dir)
  assert config.data.vocab_file.endswith("vocab.txt") and not config.data.tokenizer_file
  _assert_same_ids(ours, theirs, _long_lines(lines))


def test_vocab_json_and_merges_txt_only(lines, tmp_path):
  hf_dir = str(tmp_path)
  vocab, merges = lib.train_bpe(lines[::2], vocab_size=2000)
  _model_config(hf_dir, "decoder", 2000)
  lib.write_gpt2_vocab_files(vocab, merges, hf_dir)
  assert _files(hf_dir) == ["config.json", "merges.txt", "vocab.json"]
  config, ours, theirs = _ours_and_theirs(hf_dir)
  assert config.data.merges_file.endswith("merges.txt")
  _assert_same_ids(ours, theirs, _long_lines(lines))


def test_added_tokens(lines, wordpiece_vocab, tmp_path):
  hf_dir = str(tmp_path)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  tok = transformers.BertTokenizerFast(vocab=wordpiece_vocab)
  counts = collections.Counter(w for line in lines for w in line.lower().split()
                               if w.isalpha() and len(w) > 6 and w not in wordpiece_vocab)
  added = [w for w, _ in counts.most_common(2)] + ["pancakes"]  # two words of the text, in pieces
  assert tok.add_tokens(added) == len(added)
  tok.add_special_tokens({"additional_special_tokens": ["<ent>"]})
  tok.save_pretrained(hf_dir)
  _pad_and_truncate_file(str(tmp_path / "tokenizer.json"), "[PAD]", 0)
  _, ours, theirs = _ours_and_theirs(hf_dir)
  assert ours.vocab_size == len(theirs) == len(wordpiece_vocab) + len(added) + 1
  ids = ours.encode_batch(lines)
  for word in added[:2]:
    word_id = ours.token_to_id(word)
    assert word_id >= len(wordpiece_vocab) and any(word_id in row for row in ids), word
  _assert_same_ids(ours, theirs, _long_lines(lines))
  # pancake reads corpus text that spells a special token as text (transformers would not)
  assert ours.token_to_id("<ent>") not in ours.encode("an <ent> here")


def test_padded_tokenizer_json_keeps_every_token_of_a_long_document_in_the_corpus_cache(
    lines, wordpiece_vocab, tmp_path):
  hf_dir = str(tmp_path / "model")
  os.makedirs(hf_dir)
  _model_config(hf_dir, "encoder", lib.VOCAB * 4)
  transformers.BertTokenizerFast(vocab=wordpiece_vocab).backend_tokenizer.save(
      os.path.join(hf_dir, "tokenizer.json"))
  _pad_and_truncate_file(os.path.join(hf_dir, "tokenizer.json"), "[PAD]", 0)
  docs = ["\n".join(lines[i:i + 150]) for i in (0, 150)]  # two of over 10 x 128 tokens
  docs += ["\n".join(lines[i:i + 3]) for i in range(300, 360, 3)]
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("\n\n".join(docs) + "\n")
  config = from_hf.get_config(hf_dir)
  c = config
  c.data.corpus, c.data.text_files, c.data.validation_fraction = "local_text", str(corpus), 0.25
  c.data.data_dir, c.data.cache_dir = str(tmp_path / "data"), str(tmp_path / "cache")
  tok, cached = None, []
  for split in ("train", "validation"):
    pipe = objectives.make_pipeline(config, split)
    tok, data = pipe.tokenizer, pipe.data
    cached += _docs_of(data)
    assert np.count_nonzero(np.asarray(data.tokens) == tok.pad_id) == 0
  want = [tok.encode(d) for d in docs]
  assert min(len(w) for w in want[:2]) > 10 * PAD_TO
  assert sorted(map(tuple, cached)) == sorted(map(tuple, want))


def _doc_token_starts(data):
  return [data.sent_starts[data.doc_sents[d]] for d in range(data.num_docs)]


def _doc_token_ends(data):
  return [data.sent_ends[data.doc_sents[d + 1] - 1] for d in range(data.num_docs)]


def _docs_of(data):
  return [list(data.tokens[s:e]) for s, e in zip(_doc_token_starts(data), _doc_token_ends(data))]
