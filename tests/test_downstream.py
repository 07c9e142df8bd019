"""The downstream suite: derived tasks, their baselines, the recipe, and a planted signal that a
tiny random-init encoder and decoder must learn (the suite's machinery can learn at all)."""
import collections

import numpy as np
import pytest

from configs.errors import ConfigError
from evals import baselines, downstream, finetune, finetune_tasks
from evals.context import EvalContext
from tests.train_testlib import tiny_config
from trainlib import mesh as mesh_lib
from trainlib import state as state_lib


def _texts(record, keys):
  return finetune_tasks.texts(record, keys)


@pytest.fixture(scope="module")
def task_splits(embedded_data_dir):
  from tests.conftest import make_embedded_config
  config = make_embedded_config(embedded_data_dir, "causal", "bpe")
  return config, {name: finetune_tasks.open_splits(config, name)
                  for name in ("same_doc", "word_order", "replaced_word")}


def _all(source):
  return [source[i] for i in range(len(source))]


def test_word_order_shuffles_words_so_a_bag_of_words_cannot_tell(task_splits):
  config, splits = task_splits
  task, s = splits["word_order"]
  test = _all(s["test"])
  labels = np.asarray([r["label"] for r in test])
  assert 0.4 < labels.mean() < 0.6 and task.text_keys == ("sentence",)
  from evals import cloze
  held_out = "\n".join(cloze.held_out_documents(config))
  for r in test[:200]:
    text = r["sentence"].decode()
    if r["label"] == 1:
      assert text in held_out  # as written
    else:  # the same words in another order, not a sentence of the held-out text
      assert text not in held_out
  # every shuffled sentence has the same bag of words as some original sentence
  originals = {tuple(sorted(t.split())) for d in cloze.held_out_documents(config)
               for t in finetune_tasks.prose_sentences(d)}
  assert all(tuple(sorted(r["sentence"].decode().split())) in originals for r in test[:200])


def test_same_doc_pairs_come_from_one_document_exactly_when_labelled_so(task_splits):
  config, splits = task_splits
  _, s = splits["same_doc"]
  from evals import cloze
  docs = [finetune_tasks.prose_sentences(d) for d in cloze.held_out_documents(config)]
  test = _all(s["test"])
  assert 0.4 < np.mean([r["label"] for r in test]) < 0.6
  for r in test[:200]:
    a, b = (r[k].decode() for k in ("sentence1", "sentence2"))
    home = [i for i, d in enumerate(docs) if a in d]
    assert home and a != b
    assert (b in docs[home[0]]) == bool(r["label"]) or len(home) > 1


def test_replaced_word_labels_one_per_word_about_fifteen_percent(task_splits):
  _, splits = task_splits
  task, s = splits["replaced_word"]
  assert task.word_labels
  test = _all(s["test"])
  labels = np.concatenate([np.asarray(r["word_labels"]) for r in test])
  assert all(len(r["word_labels"]) == len(r["sentence"].decode().split()) for r in test)
  assert 0.08 < labels.mean() < 0.2


def test_derived_splits_keep_test_text_out_of_train_and_dev(task_splits):
  config, splits = task_splits
  _, s = splits["word_order"]
  train = {r["sentence"] for r in _all(s["train"]) if r["label"] == 1}
  test = {r["sentence"] for r in _all(s["test"]) if r["label"] == 1}
  dev = {r["sentence"] for r in _all(s["dev"]) if r["label"] == 1}
  assert not test & train  # held-out boilerplate that the train documents repeat is left out
  assert len(dev & train) < 0.3 * len(dev)  # dev documents are train-split documents


@pytest.mark.parametrize("objective,kind", [("causal", "bpe"), ("mlm_nsp", "wordpiece")])
def test_first_tokens_of_words_follow_character_offsets(embedded_data_dir, objective, kind):
  import objectives
  from tests.conftest import make_embedded_config
  tok = objectives.get_tokenizer(make_embedded_config(embedded_data_dir, objective, kind))
  text = "Return the  quickest exception-handler now."
  enc = tok.hf.encode(text, add_special_tokens=False)
  firsts = finetune.first_tokens_of_words(text, enc.offsets)
  assert len(firsts) == 5 and firsts[0] == 0 and firsts == sorted(set(firsts))
  for w, t in zip(text.split(), firsts):  # each first token lies inside its word
    a, b = enc.offsets[t]
    assert text[a:b].strip() and text[a:b].strip().lower() in w.lower()


def test_word_level_rows_put_labels_at_first_tokens(task_splits):
  import objectives
  config, _ = task_splits
  tok = objectives.get_tokenizer(config)
  for family in ("encoder", "decoder"):
    rows = finetune.encode(tok, family, [["alpha beta gamma"]], 16, word_labels=[[0, 1, 0]])
    w = np.flatnonzero(rows["token_weights"][0])
    assert len(w) == 3 and w[0] == 1  # after [CLS] / <bos>
    assert rows["token_labels"][0, w].tolist() == [0, 1, 0]


def test_bag_of_words_features_are_order_blind_and_bigrams_are_not():
  rows = {"input_ids": np.asarray([[5, 6, 7, 0], [7, 6, 5, 0]]),
          "token_type_ids": np.zeros((2, 4), np.int64),
          "input_mask": np.asarray([[1, 1, 1, 0]] * 2)}
  uni = baselines.features(rows, bigrams=False)
  both = baselines.features(rows, bigrams=True)
  assert np.array_equal(uni[0], uni[1]) and not np.array_equal(both[0], both[1])
  assert uni.sum() == pytest.approx(2 * 3 * np.log(2))


def test_eval_steps_and_choice_on_mean_dev_accuracy():
  assert downstream.eval_steps(400, 4) == [100, 200, 300, 400]
  assert downstream.eval_steps(3, 4) == [1, 2, 3]
  grid = [{"learning_rate": lr, "seed": s, "step": st, "dev": dev, "test": 0.0}
          for lr, s, st, dev in [(1, 0, 10, 0.9), (1, 1, 10, 0.1), (2, 0, 10, 0.6),
                                 (2, 1, 10, 0.6), (1, 0, 20, 0.5), (1, 1, 20, 0.5),
                                 (2, 0, 20, 0.4), (2, 1, 20, 0.5)]]
  assert downstream.choose(grid, [1, 2], [10, 20]) == (2, 10)


@pytest.mark.parametrize("field,value,match", [
    ("downstream_tasks", "same_doc,nope", r"eval.downstream_tasks='nope' is not one of"),
    ("downstream_tasks", " , ", r"names no task"),
    ("downstream_learning_rates", "1e-3,fast", r"comma-separated numbers"),
    ("downstream_learning_rates", "1e-3,-1", r"must be a finite number > 0"),
    ("downstream_seeds", 0, r"eval.downstream_seeds=0 must be an integer >= 1"),
    ("downstream_evals", 500, r"downstream_evals=500 is more than eval.finetune_steps"),
])
def test_bad_downstream_settings_are_one_line_config_errors(field, value, match):
  config = tiny_config("causal")
  config.eval[field] = value
  with pytest.raises(ConfigError, match=match):
    downstream.validate(config, None)


# ------------------------------------------------------------------------------ planted signal


def _planted_rows(n, seq, vocab, rng):
  """Random tokens with one planted token (id 3: label 1, id 4: label 0) at a random place."""
  ids = rng.integers(5, vocab, size=(n, seq)).astype(np.int32)
  labels = rng.integers(2, size=n).astype(np.int32)
  ids[np.arange(n), rng.integers(1, seq - 1, size=n)] = np.where(labels == 1, 3, 4)
  ids[:, 0] = 2
  return dict(input_ids=ids, token_type_ids=np.zeros_like(ids), input_mask=np.ones_like(ids),
              length=np.full(n, seq, np.int32), labels=labels, weights=np.ones(n, np.float32))


@pytest.mark.parametrize("objective", ["causal", "mlm_nsp"])
def test_a_planted_signal_is_learned_from_random_init(objective):
  config = tiny_config(objective, vocab=96, seq_len=16, batch=8)
  config.eval.downstream_learning_rates, config.eval.downstream_seeds = "1e-4,1e-3", 2
  config.eval.finetune_steps, config.eval.finetune_batch_size, config.eval.downstream_evals = \
      120, 32, 2
  mesh = mesh_lib.make_mesh(config)
  setup = state_lib.build_setup(config, mesh)
  ctx = EvalContext(config=config, workdir="", setup=setup, params=state_lib.init_params(setup),
                    step=0, tokenizer=None)
  rng = np.random.default_rng(0)
  task = finetune_tasks.TaskSpec(("sentence",), 2, "train", "dev", "test")
  data = finetune.TaskData.from_rows(task, {role: _planted_rows(n, 16, 96, rng) for role, n in
                                            (("train", 1024), ("dev", 128), ("test", 256))})
  metrics, record = downstream.run_task(ctx, "planted", data)
  assert metrics["planted_accuracy"] > 0.97, record["grid"]
  assert record["chosen"]["learning_rate"] == 1e-3
  assert 0.4 < metrics["planted_majority_accuracy"] < 0.6
  assert metrics["planted_bow_accuracy"] > 0.97  # one token reveals the label: a bag sees it
  assert len(record["grid"]) == 2 * 2 * 2 and len(record["chosen"]["test_per_seed"]) == 2


def test_doc_order_cue_rule_decides_only_when_one_sentence_refers_back():
  from evals import doc_order_study
  split = [{"sentence1": b"A list is a sequence.", "sentence2": b"It is mutable.", "label": 1},
           {"sentence1": b"This returns None.", "sentence2": b"Call f() first.", "label": 0},
           {"sentence1": b"This one.", "sentence2": b"It too.", "label": 1},  # both: undecided
           {"sentence1": b"Plain.", "sentence2": b"However, no.", "label": 0}]  # decided wrong
  r = doc_order_study.cue_rule(split)
  assert r["coverage"] == 0.75 and r["accuracy_where_it_decides"] == pytest.approx(2 / 3)
  assert r["accuracy"] == pytest.approx((2 + 0.5) / 4)


def test_doc_order_study_refuses_a_bad_run_argument(capsys):
  from evals import doc_order_study
  assert doc_order_study.main(["--run", "configs/quickstart.py", "--out", "/tmp/x"]) == 2
  assert "must be CONFIG=WORKDIR" in capsys.readouterr().err


@pytest.mark.parametrize("objective,kind,family", [("causal", "bpe", "decoder"),
                                                   ("mlm_nsp", "wordpiece", "encoder")])
def test_rows_cut_to_the_task_width_keep_the_token_the_classifier_reads(
    embedded_data_dir, objective, kind, family):
  """A row longer than the task's width is cut inside its texts (BERT's longest-first), never
  after: a decoder's last token (the one 'last' pooling reads) stays, length <= width."""
  import objectives
  from tests.conftest import make_embedded_config
  tok = objectives.get_tokenizer(make_embedded_config(embedded_data_dir, objective, kind))
  long = " ".join(["word"] * 200)
  task = finetune_tasks.TaskSpec(("sentence1", "sentence2"), 2, "train", "dev", "test")
  split = [{"sentence1": long, "sentence2": "short one", "label": 1}] + [
      {"sentence1": "a b", "sentence2": "c d", "label": 0}] * 199
  data = finetune.TaskData(task, {"train": split}, tok, family, 128)
  rows = data.splits["train"]
  width = rows["input_ids"].shape[1]
  assert width < 128 and rows["length"].max() == width  # the long row is cut to the width
  last = rows["input_ids"][0, width - 1]
  assert last == (tok.sep_id if family == "encoder" else finetune.bos_id(tok))
