"""batch(step) = f(seed, step): resume, host sharding, causal packing, the epoch permutation."""
import numpy as np
import pytest

import objectives
import pipeline
from pipeline import sampling


def _equal(a, b):
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("objective", ["mlm_nsp", "causal"])
def test_resume_equals_uninterrupted_run(embedded_config, objective):
  config = embedded_config(objective, data__seq_len=64, train__global_batch_size=8)
  run = objectives.make_pipeline(config, "train")
  batches = [run.batch(s) for s in range(12)]
  saved = run.state_dict(step=5)
  restored = objectives.make_pipeline(config, "train")
  start = restored.restore(saved, strict=True)
  assert start == 5
  for s in range(start, 12):
    assert _equal(restored.batch(s), batches[s])
  assert not _equal(batches[0], batches[1])
  other_seed = embedded_config(objective, data__seq_len=64, train__global_batch_size=8,
                               data__seed=1)
  assert not _equal(objectives.make_pipeline(other_seed, "train").batch(0), batches[0])


@pytest.mark.parametrize("objective", ["mlm", "causal"])
def test_hosts_split_the_global_batch(embedded_config, objective):
  config = embedded_config(objective, data__seq_len=32, train__global_batch_size=8)
  one = objectives.make_pipeline(config, "train").batch(3)
  halves = [objectives.make_pipeline(config, "train", process_index=p, process_count=2).batch(3)
            for p in range(2)]
  assert halves[0]["input_ids"].shape[0] == 4
  for key in one:
    assert np.array_equal(one[key], np.concatenate([h[key] for h in halves]))


def test_restore_flags_a_different_data_stream(embedded_config):
  pipe = objectives.make_pipeline(embedded_config("mlm", data__seq_len=32), "train")
  state = pipe.state_dict(step=3)
  changed = objectives.make_pipeline(embedded_config("mlm", data__seq_len=48), "train")
  assert changed.fingerprint != pipe.fingerprint
  with pytest.raises(pipeline.ConfigError, match="fingerprint"):
    changed.restore(state, strict=True)
  assert changed.restore(state) == 3  # not strict: warns and resumes


def test_causal_rows_are_packed_shifted_windows(embedded_config):
  config = embedded_config("causal", data__seq_len=128, train__global_batch_size=16)
  pipe = objectives.make_pipeline(config, "validation")
  eot = pipe.tokenizer.eot_id
  stream = np.asarray(pipe.data.tokens)
  for step in range(4):
    b = pipe.batch(step)
    assert np.array_equal(b["targets"][:, :-1], b["input_ids"][:, 1:])
    assert np.all(b["target_weights"] == 1.0)  # packing: no padding
    for r in range(len(b["input_ids"])):
      ids, pos, doc = b["input_ids"][r], b["positions"][r], b["doc_ids"][r]
      starts = np.flatnonzero(ids == eot)
      expected_doc = 1 + np.cumsum(np.isin(np.arange(len(ids)), starts[starts > 0]))
      assert np.array_equal(doc, expected_doc)
      assert pos[0] == 0 and np.all(pos[starts] == 0)
      assert np.all(np.diff(pos)[np.diff(doc) == 0] == 1)  # +1 inside a document
      # the row is a contiguous window of the token stream
      first = np.flatnonzero(stream == ids[0])
      assert any(np.array_equal(np.take(stream, np.arange(f, f + 8), mode="wrap"), ids[:8])
                 for f in first)
  assert stream[0] != eot and np.sum(stream == eot) == pipe.data.num_docs


def test_causal_epoch_visits_every_window_once(embedded_config):
  config = embedded_config("causal", data__seq_len=256, train__global_batch_size=4)
  pipe = objectives.make_pipeline(config, "validation")
  n = pipe.builder.num_slots
  g = np.arange(n)
  epochs, slots = sampling.epoch_slots(g, n, config.data.seed, "validation")
  assert np.all(epochs == 0) and np.array_equal(np.sort(slots), g)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000, 4097])
def test_permutation_is_a_bijection(n):
  out = sampling.permute(np.arange(n), n, 0, 1, 2)
  assert np.array_equal(np.sort(out), np.arange(n))
  if n > 16:
    assert not np.array_equal(out, np.arange(n))
    assert not np.array_equal(out, sampling.permute(np.arange(n), n, 0, 1, 3))


def test_worker_processes_build_exactly_the_serial_stream(embedded_config):
  from pipeline import prefetch
  config = embedded_config("mlm_nsp", data__seq_len=64, train__global_batch_size=8)
  config.lock()  # as train.py's --config flag gives it: must still reach the workers
  pipe = objectives.make_pipeline(config, "train", process_index=1, process_count=2)
  with prefetch.BatchPrefetcher(pipe, num_workers=2) as workers, \
       prefetch.BatchPrefetcher(pipe, num_workers=0) as thread:
    assert workers.ahead == 4 and thread.ahead == 1
    for step in (0, 1, 2, 3, 7, 2):  # in order, then a jump ahead and one back (a resume)
      expected = pipe.batch(step)
      assert _equal(workers.get(step, last=7), expected), step
      assert _equal(thread.get(step, last=7), expected), step
    assert sorted(workers._futures) == [3, 4, 5, 6]  # steps 3..6 in flight, none past last
