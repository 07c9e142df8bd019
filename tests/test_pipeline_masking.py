"""Statistics of BERT-style example construction over thousands of generated examples."""
import numpy as np
import pytest

import objectives
import pipeline
from pipeline import stats as stats_lib


def _batches(pipe, n_examples):
  steps = -(-n_examples // pipe.host_batch_size)
  return [pipe.batch(s) for s in range(steps)]


@pytest.fixture(scope="module")
def nsp_run(embedded_config):
  config = embedded_config("mlm_nsp", data__seq_len=128, objective__max_predictions_per_seq=20,
                           train__global_batch_size=64)
  pipe = objectives.make_pipeline(config, "train")
  return pipe, _batches(pipe, 6400)


def test_mask_fraction_and_80_10_10_split(nsp_run):
  pipe, batches = nsp_run
  tok = pipe.tokenizer
  special = {tok.cls_id, tok.sep_id, tok.pad_id}
  maskable = selected = masked = same = 0
  for b in batches:
    original = b["input_ids"].copy()
    for r in range(len(original)):
      w = b["masked_weights"][r] > 0
      pos = b["masked_positions"][r][w]
      assert np.all(np.diff(pos) > 0), "masked positions sorted and distinct"
      assert np.all(b["input_mask"][r][pos] == 1), "predictions only on real tokens"
      original[r, pos] = b["masked_ids"][r][w]
      seen = b["input_ids"][r][pos]
      masked += int((seen == tok.mask_id).sum())
      same += int((seen == b["masked_ids"][r][w]).sum())
      selected += len(pos)
    real = b["input_mask"] > 0
    maskable += int((real & ~np.isin(original, list(special))).sum())
  assert abs(selected / maskable - 0.15) <= 0.005, selected / maskable
  assert abs(masked / selected - 0.80) <= 0.01
  assert abs(same / selected - 0.10) <= 0.01
  assert abs((selected - masked - same) / selected - 0.10) <= 0.01


def test_no_special_token_ever_selected(nsp_run):
  pipe, batches = nsp_run
  tok = pipe.tokenizer
  for b in batches:
    chosen = b["masked_ids"][b["masked_weights"] > 0]
    assert not np.isin(chosen, [tok.cls_id, tok.sep_id, tok.pad_id, tok.mask_id]).any()
    # and the [CLS]/[SEP] layout tokens are still in place
    assert np.all(b["input_ids"][:, 0] == tok.cls_id)


def test_nsp_positive_rate_and_layout(nsp_run):
  pipe, batches = nsp_run
  tok = pipe.tokenizer
  labels = np.concatenate([b["nsp_labels"] for b in batches])
  assert set(np.unique(labels)) <= {0, 1}
  assert abs((labels == 0).mean() - 0.5) <= 0.02, (labels == 0).mean()
  for b in batches[:20]:
    for r in range(len(b["input_ids"])):
      n = int(b["input_mask"][r].sum())
      ids, types = b["input_ids"][r, :n], b["token_type_ids"][r]
      # restore originals so a masked [SEP] could not hide (it never is, checked above)
      seps = np.flatnonzero(ids == tok.sep_id)
      assert len(seps) == 2 and seps[-1] == n - 1, "[CLS] A [SEP] B [SEP]"
      assert seps[0] >= 2 and seps[1] - seps[0] >= 2, "A and B are non-empty"
      assert np.all(types[:seps[0] + 1] == 0) and np.all(types[seps[0] + 1:n] == 1)
      assert np.all(types[n:] == 0) and np.all(b["input_ids"][r, n:] == tok.pad_id)


def test_stats_function_matches(nsp_run):
  pipe, batches = nsp_run
  s = objectives.get("mlm_nsp").stats(batches, pipe.tokenizer)
  assert s["special_tokens_selected"] == 0
  assert abs(s["masked_fraction"] - 0.15) <= 0.005
  assert abs(s["nsp_positive_rate"] - 0.5) <= 0.02
  assert 0 < s["padding_fraction"] < 0.5


def test_short_seq_prob_controls_lengths(embedded_config):
  lengths = {}
  for prob in (0.0, 1.0):
    config = embedded_config("mlm", data__seq_len=64, objective__short_seq_prob=prob)
    pipe = objectives.make_pipeline(config, "train")
    lengths[prob] = np.mean([pipe.batch(s)["input_mask"].sum(1).mean() for s in range(5)])
  assert lengths[0.0] > 60  # nearly every row is filled to seq_len
  assert lengths[1.0] < 40  # uniform target lengths in [2, 62]: mean ~34 with [CLS] [SEP]


def test_mlm_single_segment_and_full_sentences(embedded_config):
  for name in ("mlm", "mlm_full_sentences"):
    config = embedded_config(name, data__seq_len=96, train__global_batch_size=64)
    pipe = objectives.make_pipeline(config, "train")
    b = pipe.batch(0)
    tok = pipe.tokenizer
    assert "nsp_labels" not in b
    assert np.all(b["token_type_ids"] == 0)
    n = b["input_mask"].sum(1)
    assert np.all(b["input_ids"][np.arange(len(n)), n - 1] == tok.sep_id)
    inner_seps = (b["input_ids"][:, 1:] == tok.sep_id).sum(1) - 1
    if name == "mlm":
      assert np.all(inner_seps == 0), "No-NSP rows come from one document"
    else:
      assert inner_seps.max() >= 1, "FULL-SENTENCES crosses documents with a separator"
      assert n.mean() > 80, "FULL-SENTENCES packs rows close to seq_len"


def test_whole_word_masking_masks_all_pieces(embedded_config):
  config = embedded_config("mlm", data__seq_len=128, objective__whole_word_masking=True)
  pipe = objectives.make_pipeline(config, "train")
  tok = pipe.tokenizer
  selected = maskable = 0
  for step in range(40):
    b = pipe.batch(step)
    for r in range(len(b["input_ids"])):
      w = b["masked_weights"][r] > 0
      pos = set(b["masked_positions"][r][w].tolist())
      original = b["input_ids"][r].copy()
      original[b["masked_positions"][r][w]] = b["masked_ids"][r][w]
      n = int(b["input_mask"][r].sum())
      for i in range(1, n - 1):
        starts_word = not tok.id_to_token(int(original[i])).startswith("##")
        if not starts_word:  # a "##" piece is chosen exactly when the piece before it is
          assert (i in pos) == (i - 1 in pos), (r, i)
      selected += len(pos)
      maskable += n - 2
  assert abs(selected / maskable - 0.15) < 0.02  # whole words overshoot less evenly


def test_static_vs_dynamic_masking(embedded_config):
  static = objectives.make_pipeline(
      embedded_config("mlm", objective__dynamic_masking=False, objective__static_masking_dupes=2),
      "train").builder
  dynamic = objectives.make_pipeline(embedded_config("mlm"), "train").builder
  for slot in (0, 7, 11):
    e0, e1, e2 = (static.example(e, slot) for e in (0, 1, 2))
    assert np.array_equal(e0["positions"], e2["positions"]), "dupes repeat every 2 epochs"
    assert np.array_equal(e0["ids"], e2["ids"])
    assert not np.array_equal(e0["positions"], e1["positions"])
    d0, d2 = dynamic.example(0, slot), dynamic.example(2, slot)
    assert not np.array_equal(d0["positions"], d2["positions"]), "dynamic: new mask per epoch"
    assert np.array_equal(d0["originals"].size > 0, True)
    # The text of a slot is fixed; only the mask changes.
    restored = [x["ids"].copy() for x in (d0, d2)]
    for ex, ids in zip((d0, d2), restored):
      ids[ex["positions"]] = ex["originals"]
    assert np.array_equal(restored[0], restored[1])
