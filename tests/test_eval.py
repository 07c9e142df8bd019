"""eval suites in-process on tiny checkpoints trained in the test (tests/eval_testlib.py).

Each family runs every suite once (module fixtures); the tests check what the JSON says against
independent facts: the training loop's own held-out eval, exp(loss), the items both families
were asked, the derived task's source text, greedy decoding, the rendered files.
"""
import copy
import json
import logging
import math
import os
import re
import shutil
import struct

import numpy as np
import pytest

from configs.errors import ConfigError
from evals import cloze, cloze_items, finetune, finetune_tasks, runner
from tests.eval_testlib import trained_run
from trainlib import fs, rundir

ALL = "heldout,cloze,finetune,downstream,generate,attention"


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("eval_runs"))


class _Lines(logging.Handler):
  def __init__(self):
    super().__init__(logging.INFO)
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


def _evaluate(objective, data_dir, root, suites):
  """-> (config, workdir, records, what run() echoed, the INFO log lines of the eval)."""
  config, workdir = trained_run(objective, data_dir, root)
  printed, logged, logger = [], _Lines(), logging.getLogger("absl")
  level = logger.level
  logger.addHandler(logged)
  logger.setLevel(logging.INFO)
  try:
    records = runner.run(config, workdir, suites, echo=printed.append)
  finally:
    logger.removeHandler(logged)
    logger.setLevel(level)
  return config, workdir, records, "\n".join(printed), logged.lines


@pytest.fixture(scope="module")
def decoder(embedded_data_dir, runs_root):
  return _evaluate("causal", embedded_data_dir, runs_root, ALL)


@pytest.fixture(scope="module")
def encoder(embedded_data_dir, runs_root):
  return _evaluate("mlm_nsp", embedded_data_dir, runs_root, ALL.replace(",generate", ""))


def _final_eval_row(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [r for r in map(json.loads, f) if r["split"] == "eval"]
  return rows[-1]


def _tb_scalars(directory):
  """{tag: {step: value}} from the TensorBoard event files of `directory` (TFRecord framing)."""
  from tensorboardX.proto import event_pb2
  out = {}
  for name in os.listdir(directory):
    with open(os.path.join(directory, name), "rb") as f:
      data = f.read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for v in event.summary.value:
        out.setdefault(v.tag, {})[event.step] = v.simple_value
  return out


# ------------------------------------------------------------------------------ common fields


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_every_json_names_step_config_and_seed_and_matches_tensorboard(family, request):
  config, workdir, records, printed, _ = request.getfixturevalue(family)
  provenance = fs.read_json(os.path.join(workdir, "provenance.json"))
  scalars = _tb_scalars(os.path.join(workdir, "tb", "eval"))
  for suite, record in records.items():
    on_disk = fs.read_json(os.path.join(workdir, "eval", f"{suite}.json"))
    assert on_disk == json.loads(json.dumps(record))
    assert on_disk["suite"] == suite and on_disk["checkpoint_step"] == 12
    assert on_disk["config_hash"] == rundir.config_hash(config)
    assert on_disk["train_config_hash"] == provenance["config_hash"]
    assert on_disk["seed"] == config.eval.seed == 0
    for metric, value in on_disk["metrics"].items():
      assert math.isfinite(value), (suite, metric)
      assert scalars[f"{suite}/{metric}"][12] == pytest.approx(value, rel=1e-6)
      assert f"{suite}" in printed and metric in printed  # the table


# ------------------------------------------------------------------------------ heldout


def test_heldout_decoder_perplexity_is_exp_loss_and_matches_the_training_eval(decoder):
  _, workdir, records, _, _ = decoder
  r = records["heldout"]
  m = r["metrics"]
  assert m["perplexity"] == pytest.approx(math.exp(m["lm_loss"]), rel=1e-9)
  assert m["loss"] == m["lm_loss"] and 0 <= m["lm_accuracy"] <= 1
  assert r["weights"]["lm_loss"] == 8 * 32  # one batch of 8 rows x 32 target tokens
  row = _final_eval_row(workdir)  # the loop's eval at step 12, also batch 0 of validation
  assert row["step"] == 12
  for key in ("loss", "lm_loss", "lm_accuracy", "perplexity"):
    assert m[key] == pytest.approx(row[key], rel=1e-5), key


def test_heldout_encoder_reports_mlm_and_nsp_and_matches_the_training_eval(encoder):
  _, workdir, records, _, _ = encoder
  m = records["heldout"]["metrics"]
  assert m["loss"] == pytest.approx(m["mlm_loss"] + m["nsp_loss"], rel=1e-9)
  assert 0 <= m["mlm_accuracy"] <= 1 and 0 <= m["nsp_accuracy"] <= 1
  assert "perplexity" not in m
  row = _final_eval_row(workdir)
  for key in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"):
    assert m[key] == pytest.approx(row[key], rel=1e-5), key


def test_heldout_restores_onto_another_mesh_and_an_earlier_step(decoder, tmp_path):
  config, workdir, records, _, _ = decoder
  config = copy.deepcopy(config)
  clone = str(tmp_path / "run")
  shutil.copytree(workdir, clone)
  config.mesh.data, config.mesh.tensor = 2, 4  # trained on data=8: now params shard 4 ways
  latest = runner.run(config, clone, "heldout", echo=lambda _: None)["heldout"]
  assert latest["checkpoint_step"] == 12
  for key, value in records["heldout"]["metrics"].items():
    assert latest["metrics"][key] == pytest.approx(value, rel=1e-5), key
  earlier = runner.run(config, clone, "heldout", step=6, echo=lambda _: None)["heldout"]
  assert earlier["checkpoint_step"] == 6
  assert earlier["metrics"]["loss"] > latest["metrics"]["loss"]  # 6 more steps of training


# ------------------------------------------------------------------------------ cloze


def test_cloze_asks_both_families_the_same_items_and_reports_chance(decoder, encoder):
  dec, enc = decoder[2]["cloze"], encoder[2]["cloze"]
  assert dec["items_fingerprint"] == enc["items_fingerprint"]
  for r in (dec, enc):
    assert r["num_examples"] == 24 and r["num_candidates"] == 4
    m = r["metrics"]
    assert m["chance"] == 0.25 and 0 <= m["accuracy"] <= 1 and 0.25 <= m["mrr"] <= 1
    assert m["mrr"] >= m["accuracy"]  # a correct item has reciprocal rank 1
    for ex in r["examples"]:
      assert ex["sentence"].count("____") == 1 and ex["answer"] in ex["candidates"]
      assert len(set(ex["candidates"])) == 4
      assert ex["chosen"] == ex["candidates"][int(np.argmax(ex["scores"]))]
  assert dec["examples"][0]["candidates"] == enc["examples"][0]["candidates"]
  assert [e["answer"] for e in dec["examples"]] == [e["answer"] for e in enc["examples"]]


def test_cloze_items_are_deterministic_and_rows_blank_exactly_the_candidate(embedded_config):
  config = embedded_config("mlm_nsp")
  docs = cloze.held_out_documents(config)
  items = cloze_items.build_items(docs, 12, 4, seed=0)
  assert cloze_items.fingerprint(items) == cloze_items.fingerprint(
      cloze_items.build_items(docs, 12, 4, seed=0))
  assert cloze_items.fingerprint(items) != cloze_items.fingerprint(
      cloze_items.build_items(docs, 12, 4, seed=1))
  assert sorted({i.answer for i in items}) != [0]  # the answer's slot varies

  import objectives

  import pipeline
  wordpiece = objectives.get_tokenizer(config)
  rows = cloze.encoder_rows(wordpiece, items, 64)
  for r, (item, k) in enumerate((i, k) for i in items for k in range(4)):
    n = int(rows["masked_weights"][r].sum())
    blanked = rows["masked_ids"][r, :n]
    assert wordpiece.decode(blanked) == item.candidates[k].lower()
    masked = np.flatnonzero(rows["input_ids"][r] == wordpiece.mask_id)
    assert masked.tolist() == rows["masked_positions"][r, :n].tolist()
    assert rows["input_ids"][r, 0] == wordpiece.cls_id

  bpe = objectives.get_tokenizer(embedded_config("causal"))
  rows = cloze.decoder_rows(bpe, items, 256)  # long enough for no sentence to be cut
  for r, (item, k) in enumerate((i, k) for i in items for k in range(4)):
    length = rows["length"][r]
    assert rows["ids"][r, 0] == bpe.eot_id
    assert bpe.decode(rows["ids"][r, 1:1 + length]) == item.filled(k)[0]


# ------------------------------------------------------------------------------ finetune


def test_finetune_decoder_learns_its_training_examples(decoder):
  r = decoder[2]["finetune"]
  t = r["training"]
  assert r["task"] == "doc_order" and r["pooling"] == "last" and not r["freeze_backbone"]
  assert r["train_examples"] == 16 and len(t["loss_curve"]) == 24
  # Below the best constant guess: the classifier uses its inputs (it memorizes 16 pairs).
  assert t["loss_end"] < t["label_prior_loss"] - 0.05 < t["loss_start"]
  m = r["metrics"]
  assert 0 <= m["accuracy"] <= 1 and 0.5 <= m["chance"] <= 1 and m["loss"] > 0


def test_finetune_encoder_probe_reports_accuracy_and_chance(encoder, embedded_config):
  r = encoder[2]["finetune"]
  assert r["pooling"] == "pooler" and r["freeze_backbone"]
  assert r["training"]["loss_end"] < r["training"]["loss_start"]
  _, splits = finetune_tasks.open_splits(embedded_config("mlm_nsp"))
  test = splits["test"]
  labels = np.asarray([test[i]["label"] for i in range(len(test))])
  assert r["eval_examples"] == len(labels)
  assert r["metrics"]["chance"] == pytest.approx(np.bincount(labels).max() / len(labels))
  assert 0 <= r["metrics"]["accuracy"] <= 1


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_downstream_reports_the_chosen_cell_and_its_baselines(family, request):
  config, _, records, printed, _ = request.getfixturevalue(family)
  r = records["downstream"]
  task = r["tasks"]["word_order"]
  grid, chosen = task["grid"], task["chosen"]
  assert len(grid) == 2 * 2 * 2  # learning rates x seeds x evaluation steps
  assert {g["step"] for g in grid} == {12, 24} and {g["seed"] for g in grid} == {0, 1}
  dev = lambda lr, step: np.mean([g["dev"] for g in grid
                                  if g["learning_rate"] == lr and g["step"] == step])
  assert dev(chosen["learning_rate"], chosen["step"]) == max(
      dev(lr, st) for lr in (1e-3, 3e-3) for st in (12, 24))
  tests = [g["test"] for g in grid
           if g["learning_rate"] == chosen["learning_rate"] and g["step"] == chosen["step"]]
  m = r["metrics"]
  assert m["word_order_accuracy"] == pytest.approx(np.mean(tests))
  assert m["word_order_accuracy_seed_std"] == pytest.approx(np.std(tests, ddof=1))
  assert m["word_order_bow_accuracy"] == task["baselines"]["bag_of_words"]["test"]
  assert 0.4 < m["word_order_majority_accuracy"] < 0.6
  assert task["examples"]["test"] > 100 and "word_order: " in printed


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_long_suites_print_progress_with_an_eta(family, request):
  """finetune, heldout and cloze log training-style progress lines: done/total, rate, ETA (the
  first step, which compiles, starts the clock and prints nothing)."""
  config, _, _, _, logged = request.getfixturevalue(family)
  steps, batches = config.eval.finetune_steps, config.eval.num_batches
  finetune_lines = [l for l in logged if l.startswith("finetune doc_order step ")]
  assert finetune_lines[-1].startswith(f"finetune doc_order step {steps}/{steps} | ")
  assert len(finetune_lines) >= min(steps - 1, 10), finetune_lines
  assert all(re.fullmatch(r"finetune doc_order step \d+/\d+ \| [\d.]+ /s \| ETA (\d+m\d\ds|\?)",
                          l) for l in finetune_lines), finetune_lines
  assert finetune_lines[-1].endswith("ETA 0m00s")
  assert batches == 1 and not [l for l in logged if l.startswith("heldout ")]  # 1 batch: no rate
  # 24 items x 4 candidates = 96 rows: two calls of 64, the second reports
  cloze_lines = [l for l in logged if l.startswith("cloze batch ")]
  assert len(cloze_lines) == 1 and cloze_lines[0].startswith("cloze batch 2/2 | "), cloze_lines


def test_progress_eta_is_the_remaining_work_at_the_measured_rate(monkeypatch):
  from trainlib import metrics
  clock = iter([100.0, 110.0])
  monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
  lines = []
  monkeypatch.setattr(metrics.logging, "info", lambda fmt, *args: lines.append(fmt % args))
  progress = metrics.LoopProgress("task step", 1000, lines=10)
  assert [d for d in range(1, 1001) if progress.due(d)] == [1] + list(range(100, 1001, 100))
  progress.update(1)     # the first step (compiling) starts the clock, prints nothing
  progress.update(201)   # 200 steps in 10 s: 20 /s, 799 steps left = 40 s
  assert lines == ["task step 201/1000 | 20.00 /s | ETA 0m39s"]


def test_finetune_train_order_is_epochs_over_a_fixed_subset():
  order = finetune.train_order(seed=0, num_records=1000, subset=16, batch=8, steps=6)
  assert order.shape == (6, 8)
  epochs = order.reshape(3, 16)  # 48 draws = 3 epochs over the 16 chosen records
  assert all(sorted(e) == sorted(epochs[0]) for e in epochs) and len(set(epochs[0])) == 16
  assert epochs[0].tolist() != epochs[1].tolist()  # reshuffled every epoch
  assert np.array_equal(order, finetune.train_order(0, 1000, 16, 8, 6))
  assert not np.array_equal(order, finetune.train_order(1, 1000, 16, 8, 6))
  everything = finetune.train_order(seed=0, num_records=10, subset=0, batch=5, steps=2)
  assert sorted(everything.ravel()) == list(range(10))


def test_doc_order_task_is_glue_shaped_and_labels_say_the_true_order(embedded_config):
  config = embedded_config("causal")
  task, splits = finetune_tasks.open_splits(config)
  train, validation = splits["train"], splits["test"]
  assert task.text_keys == ("sentence1", "sentence2") and task.num_classes == 2
  assert set(validation[0]) == {"sentence1", "sentence2", "label", "idx"}  # as glue/mrpc
  assert len(train) > 10 * len(validation) > 0 and len(splits["dev"]) > 0
  labels = [validation[i]["label"] for i in range(len(validation))]
  assert 0.35 < np.mean(labels) < 0.65
  # doc_order's test split: consecutive sentences of the held-out documents
  from pipeline.token_cache import sentence_spans
  consecutive = set()
  for doc in cloze.held_out_documents(config):
    sentences = [doc[a:b].strip() for a, b in sentence_spans(doc)]
    consecutive.update(zip(sentences, sentences[1:]))
  for i in range(len(validation)):
    ex = validation[i]
    a, b = (ex[k].decode() for k in ("sentence1", "sentence2"))
    assert ((a, b) if ex["label"] == 1 else (b, a)) in consecutive


def test_glue_task_that_is_not_prepared_is_a_config_error(decoder):
  config, workdir, _, _, _ = decoder
  config = copy.deepcopy(config)
  config.eval.finetune_task = "glue/sst2"
  with pytest.raises(ConfigError, match=r"glue/sst2.*array_record"):
    runner.check(config, workdir, "finetune")


# ------------------------------------------------------------------------------ generate


def test_generate_beam_one_equals_greedy_and_sampling_is_reproducible(decoder):
  config, workdir, records, printed, _ = decoder
  r = records["generate"]
  assert [s["prompt"] for s in r["samples"]] == ["The module", "In the"]
  for s in r["samples"]:
    assert 1 <= len(s["greedy_tokens"]) <= 8 and 1 <= len(s["sample_tokens"]) <= 8
    assert s["beams"][0]["tokens"] == s["greedy_tokens"]  # beam_size = 1
    assert f"prompt: {s['prompt']!r}" in printed and repr(s["greedy"]) in printed
  assert r["metrics"]["greedy_logprob_per_token"] == r["metrics"]["beam_logprob_per_token"]
  assert r["metrics"]["sample_logprob_per_token"] < 0
  again = runner.run(config, workdir, "generate", echo=lambda _: None)["generate"]
  assert [s["sample_tokens"] for s in again["samples"]] == [
      s["sample_tokens"] for s in r["samples"]]


def test_generate_on_an_encoder_is_refused(encoder):
  config, workdir, _, _, _ = encoder
  with pytest.raises(ConfigError, match="suite 'generate' does not apply to model.family="):
    runner.check(config, workdir, "heldout,generate")


# ------------------------------------------------------------------------------ attention


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_attention_writes_figures_and_page_with_sane_statistics(family, request):
  import matplotlib.image
  config, workdir, records, _, _ = request.getfixturevalue(family)
  r = records["attention"]
  paths = [p for v in r["files"].values() for p in (v if isinstance(v, list) else [v])]
  assert {os.path.splitext(p)[1] for p in paths} == {".png", ".pdf", ".html"}
  for p in paths:
    assert os.path.getsize(os.path.join(workdir, p)) > 1000
  image = matplotlib.image.imread(os.path.join(workdir, r["files"]["head_view"][0]))
  assert image.shape[0] > 200 and image.std() > 0.05  # drawn, not blank
  with open(os.path.join(workdir, r["files"]["html"])) as f:
    assert '"numLayers":2' in f.read()
  tokens = r["tokens"]
  assert r["layer"] == 1 and r["num_layers"] == 2 and r["num_heads"] == 4
  for name, values in r["per_layer"].items():
    assert len(values) == 2, name
  assert all(0 <= e <= math.log(len(tokens)) for e in r["per_layer"]["entropy"])
  assert 0 <= r["metrics"]["first_token_mass"] <= 1
  # A pair: an encoder's [SEP] closes sentence A, a decoder's delimiter opens sentence B.
  sep = tokens.index("[SEP]" if family == "encoder" else "</s>")
  first_b = sep + 1 if family == "encoder" else sep
  assert r["segment_ids"] == [0] * first_b + [1] * (len(tokens) - first_b)
  assert tokens[0] == ("[CLS]" if family == "encoder" else "<|endoftext|>")
  if family == "encoder":
    assert 0 < r["metrics"]["sep_mass"] < 1
