"""Input pipeline throughput on one core, next to what a training step consumes.

  python -m bench.input_throughput [--seconds 5] [--data_dir DIR] [--workers N]

Measures Pipeline.batch(step) (example construction from the cached token stream: sampling,
segment assembly, masking, packing) pinned to one CPU core, for MLM+NSP at length 128 (WordPiece)
and causal LM at length 1024 (byte-level BPE), both on the embedded corpus with 8192-entry
vocabularies. Corpus preparation, tokenizer training and corpus tokenization happen once, before
timing (they are cached in data_dir). Then the same stream through data.num_workers worker
processes (pipeline/prefetch.py, one per available core by default), on all cores, side by side.

Consumption is estimated analytically for a 6-layer, d_model 512, d_ff 2048 model:
  train FLOPs/token = 6 * (12 * layers * d^2)            dense weights, forward + backward
                    + 12 * layers * seq_len * d          attention scores and values (fwd + bwd)
                    + 6 * d * vocab * head_fraction      output head (MLM: only predicted
                                                         positions, 20/128; causal: every token)
  tokens/s per chip = peak bf16 FLOP/s * MFU / FLOPs/token, at 50% MFU on a TPU v4 chip
  (275 TFLOP/s; 4 chips per host) and an A100 (312 TFLOP/s; 8 per host).
The input pipeline keeps up when (host cores used for input) x (measured seqs/s per core) exceeds
the seqs/s per host printed here.
"""
import os
import time

from absl import app, flags

from bench import machine

_SECONDS = flags.DEFINE_float("seconds", 5.0, "timing budget per objective")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data_dir ('' = ~/.cache/pancake/tfds)")
_WORKERS = flags.DEFINE_integer("workers", -1, "worker processes to time next to one core "
                                "(-1 = one per available core, 0 = skip)")

LAYERS, D_MODEL = 6, 512
ACCELERATORS = (("TPU v4 chip", 275e12, 4), ("A100", 312e12, 8))
MFU = 0.5


def _config(objective: str, tokenizer: str, seq_len: int):
  # late: start-up time (the flags parse before the pipeline loads)
  from configs.base import get_config
  c = get_config()
  c.data.data_dir = _DATA_DIR.value
  c.data.tokenizer, c.data.train_vocab_size, c.data.seq_len = tokenizer, 8192, seq_len
  c.objective.name, c.objective.max_predictions_per_seq = objective, 20
  c.model.vocab_size = 8192
  c.train.global_batch_size = 32
  return c


def flops_per_token(seq_len: int, vocab: int, head_fraction: float) -> float:
  dense = 6 * 12 * LAYERS * D_MODEL ** 2
  attention = 12 * LAYERS * seq_len * D_MODEL
  return dense + attention + 6 * D_MODEL * vocab * head_fraction


def measure(get_batch, seconds: float) -> float:
  get_batch(0)  # warm caches (and, for worker processes, start them)
  rows, step, start = 0, 1, time.perf_counter()
  while time.perf_counter() - start < seconds:
    rows += len(get_batch(step)["input_ids"])
    step += 1
  return rows / (time.perf_counter() - start)


def measure_workers(pipe, num_workers: int, seconds: float) -> float:
  """Throughput of pipeline.prefetch.BatchPrefetcher, consumed in step order as train.py does."""
  # late: start-up time (the flags parse before the pipeline loads)
  from pipeline import prefetch
  with prefetch.BatchPrefetcher(pipe, num_workers) as batches:
    return measure(batches.get, seconds)


def main(argv):
  del argv
  record = machine.start()
  _report()
  record = machine.finish(record)
  print(f"load average {record['load_average_start'][0]} at start, "
        f"{record['load_average_end'][0]} at end ({'idle' if record['idle'] else 'NOT idle'})")


def _report():
  # late: start-up time (the flags parse before the pipeline loads)
  import objectives
  # BERT's MLM + NSP and GPT's causal LM: each family's default objective.
  cases = ((objectives.default_for("encoder"), "wordpiece", 128, 20 / 128),
           (objectives.default_for("decoder"), "bpe", 1024, 1.0))
  pipes = [(name, seq_len, frac, objectives.make_pipeline(_config(name, tok, seq_len), "train"))
           for name, tok, seq_len, frac in cases]  # build caches before pinning to one core
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  workers = max(1, len(cores)) if _WORKERS.value < 0 else _WORKERS.value
  for name, seq_len, frac, pipe in pipes:
    if cores:  # pinned: what one core builds
      os.sched_setaffinity(0, {cores[0]})
    seqs = measure(pipe.batch, _SECONDS.value)
    if cores:
      os.sched_setaffinity(0, set(cores))
    parallel = measure_workers(pipe, workers, _SECONDS.value) if workers else None
    fpt = flops_per_token(seq_len, pipe.tokenizer.vocab_size, frac)
    print(f"{name} L={seq_len}: {seqs:,.0f} seqs/s = {seqs * seq_len:,.0f} tokens/s on one core")
    if parallel:
      print(f"  data.num_workers={workers} on {len(cores) or '?'} cores: {parallel:,.0f} seqs/s "
            f"= {parallel / seqs:.2f}x one core")
    for accel, peak, per_host in ACCELERATORS:
      tokens = peak * MFU / fpt
      print(f"  6-layer d{D_MODEL} step at {MFU:.0%} MFU on {accel}: {fpt / 1e6:.1f} MFLOP/token"
            f" -> {tokens:,.0f} tokens/s = {tokens / seq_len:,.0f} seqs/s per chip, "
            f"{per_host * tokens / seq_len:,.0f} seqs/s per {per_host}-chip host "
            f"(needs {per_host * tokens / seq_len / seqs:.1f} input cores)")


if __name__ == "__main__":
  app.run(main)
