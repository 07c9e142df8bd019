"""pancake's tokenizers, built from HF tokenizer files, give the ids of transformers' own classes
on a few thousand lines of real text (tests/interop_testlib.text_lines: 3,000 lines of
tinyshakespeare, or of the embedded CPython docs, plus lines with accents, CJK, emoji, odd
whitespace). GPT2TokenizerFast and BertTokenizerFast are aliases of GPT2Tokenizer and
BertTokenizer in transformers 5; both are checked from the files a hub directory holds."""
import pytest
import transformers

from configs import from_hf
from pipeline import tokenization
from tests import interop_testlib as lib


@pytest.fixture(scope="module")
def lines():
  return lib.text_lines(3000)


def _hf_ids(hf_tok, lines):
  return hf_tok(lines, add_special_tokens=False)["input_ids"]


def test_gpt2_bpe_from_vocab_json_and_merges_equals_gpt2_tokenizer_fast(lines, tmp_path):
  vocab, merges = lib.train_bpe(lines[::2], vocab_size=2000)
  lib.write_gpt2_vocab_files(vocab, merges, str(tmp_path))
  ours = tokenization.load_gpt2_vocab(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
  theirs = transformers.GPT2TokenizerFast.from_pretrained(str(tmp_path))  # the two files
  ids = ours.encode_batch(lines)
  assert ids == _hf_ids(theirs, lines)
  assert sum(map(len, ids)) > 5 * len(lines)  # real tokenization, not empty rows
  assert ours.eot_id == theirs.eos_token_id
  # and through a saved tokenizer.json, the file transformers 5's save_pretrained writes
  theirs.save_pretrained(str(tmp_path / "saved"))
  fields = from_hf.hf_config.tokenizer_fields(str(tmp_path / "saved"), "decoder")
  again = tokenization.load_tokenizer_json(fields["tokenizer_file"], "bpe")
  assert again.encode_batch(lines) == _hf_ids(theirs, lines)


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_wordpiece_from_vocab_txt_equals_bert_tokenizer_fast(lines, tmp_path, lowercase):
  vocab = lib.train_wordpiece(lines[::2], lowercase, vocab_size=2000)
  lib.write_bert_vocab_file(vocab, str(tmp_path))
  ours = tokenization.load_bert_vocab(str(tmp_path / "vocab.txt"), lowercase)
  theirs = transformers.BertTokenizerFast.from_pretrained(str(tmp_path), do_lower_case=lowercase)
  ids = ours.encode_batch(lines)
  assert ids == _hf_ids(theirs, lines)
  assert sum(map(len, ids)) > 5 * len(lines)
  assert sum(i == ours.unk_id for row in ids for i in row) < sum(map(len, ids)) // 20
  theirs.save_pretrained(str(tmp_path / "saved"))
  fields = from_hf.hf_config.tokenizer_fields(str(tmp_path / "saved"), "encoder")
  assert fields["lowercase"] is lowercase
  again = tokenization.load_tokenizer_json(fields["tokenizer_file"], "wordpiece")
  assert again.encode_batch(lines) == _hf_ids(theirs, lines)
