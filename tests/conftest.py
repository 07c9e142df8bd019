"""Session fixtures shared by every area's tests: the embedded corpus and small trained tokenizers.

- `embedded_data_dir`: a TFDS data_dir (in a session tmp dir) holding the embedded CPython corpus
  and WordPiece and byte-level BPE tokenizers trained on it with TEST_VOCAB_SIZE entries (in
  <data_dir>/pancake_cache). Built once per test session (~15 s on 2 cores).
- `embedded_config`: `make(objective="causal", tokenizer=None, **overrides) -> ConfigDict`, the
  base config pointed at that data_dir with a ready tokenizer (wordpiece for encoder objectives,
  bpe for causal unless given), model.family/vocab_size to match; overrides are "section.field"
  names with dots replaced by "__", e.g. make("mlm_nsp", data__seq_len=64).
"""
import pytest

from configs.base import get_config

TEST_VOCAB_SIZE = 512


def make_embedded_config(data_dir: str, objective: str = "causal", tokenizer: str | None = None,
                         **overrides):
  c = get_config()
  c.data.corpus = "embedded"
  c.data.data_dir = data_dir
  c.data.tokenizer = tokenizer or ("bpe" if objective == "causal" else "wordpiece")
  c.data.train_vocab_size = TEST_VOCAB_SIZE
  c.objective.name = objective
  c.model.family = "decoder" if objective == "causal" else "encoder"
  c.model.nsp_head = objective == "mlm_nsp"
  c.model.vocab_size = TEST_VOCAB_SIZE
  for key, value in overrides.items():
    section, field = key.split("__")
    setattr(c[section], field, value)
  return c


@pytest.fixture(scope="session")
def embedded_data_dir(tmp_path_factory) -> str:
  import objectives  # pylint: disable=g-import-not-at-top
  import pipeline  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp("pancake_tfds"))
  objectives.get_tokenizer(make_embedded_config(data_dir, "mlm_nsp", "wordpiece"))
  objectives.get_tokenizer(make_embedded_config(data_dir, "causal", "bpe"))
  return data_dir


@pytest.fixture(scope="session")
def embedded_config(embedded_data_dir):
  def make(objective: str = "causal", tokenizer: str | None = None, **overrides):
    return make_embedded_config(embedded_data_dir, objective, tokenizer, **overrides)
  return make
