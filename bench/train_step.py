r"""Train-step speed on this CPU: tokens/s and MFU of pancake's step against HF PyTorch, per shape.

  JAX_PLATFORMS=cpu .venv/bin/python -m bench.train_step [--cases a,b --rounds 3 --json FILE
      --cpu_devices N]

Cases (CASES, bench/cases.py), each timed for pancake and for HF transformers of the same shape in the
same run, float32, dropout off:
- bench_decoder / bench_encoder: 6 layers, d_model 512, 8 heads, length 256, batch 8, vocab 8192
  (GPT-2-like causal LM; BERT-like MLM+NSP with 40 predictions per sequence);
- nanogpt_decoder: nanoGPT's CPU recipe (4 layers, d_model 128, 4 heads, block 64, batch 12,
  character vocabulary 65), with biases, since GPT2LMHeadModel has them;
- cpu_ablation_{decoder,encoder}_v{2048,4096}: the CPU ablation / quickstart shape (2 layers,
  d_model 128, 4 heads, length 128, batch 16; MLM+NSP with 20 predictions per sequence);
- scaling_cpu_smallest: the smallest model of configs/sweeps/scaling_cpu.py (2 layers, d_model 32,
  one 32-wide head, length 128, batch 16, vocab 2048), whose effective FLOP/s the table reports.

pancake's step is trainlib's real jitted step (AdamW, clipping, donated state) on the devices
train.py would use (bench/jax_trainer.py: on CPU one device per core, the batch split over them,
trainlib/cpu_devices.py; --cpu_devices N sets the count instead); the reference is GPT2LMHeadModel / BertForPreTraining with
torch.optim.AdamW on torch's default threads (bench/torch_reference.py).

MFU = analytic training FLOPs per token (objective.flops_per_token, the formula train.py's MFU
uses) x tokens/s / peak, where the peak is the best float32 [2048, 2048] matmul rate of either
framework measured in this run; "effective FLOP/s" is the numerator. Both frameworks are charged
the same useful FLOPs, so the ratio of their MFUs is the ratio of their tokens/s.

Run it on an idle machine (bench/machine.py warns otherwise and records the load average at
start and end in the JSON). Every trainer of every case takes one step in turn, so a change of
load hits all alike; each round runs enough steps of each case to last ~0.5 s (at least 3), and
each row reports the median over rounds of its per-round median step (the fastest step is in the
JSON too); the matmul peak is the best of every round.
"""

import dataclasses
import math
import os
import statistics
import time

from absl import app, flags

from bench import machine
from bench.cases import CASES, bench_config
from bench.jax_trainer import JaxTrainer

_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds, each starting with a matmul-peak measurement.")
_CASES = flags.DEFINE_list("cases", [], "Cases to time (default: all of CASES).")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the HF PyTorch reference.")
ROUND_SECONDS = 0.5  # each case's steps per round last about this long

_JSON = flags.DEFINE_string("json", "results/bench_train_step.json", "Where to write the figures.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "CPU devices for pancake's step (mesh.cpu_devices): 0 = what train.py picks.")

def torch_shape(case):
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  from bench import torch_reference
  shape = CASES[case]
  return torch_reference.Shape(**{f.name: shape[f.name]
                                  for f in dataclasses.fields(torch_reference.Shape)})


def _seconds(step):
  """Wall time of one call of `step` (every trainer's step reads its result back)."""
  start = time.perf_counter()
  step()
  return time.perf_counter() - start


def jax_matmul_flops_per_second(n=2048, repeats=5):
  """Best float32 [n,n]x[n,n] rate of XLA:CPU, FLOP/s."""
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def run(cases, rounds, with_torch, cpu_devices=0):
  """-> results dict: peak, and per case the step seconds, tokens/s and MFU of each framework."""
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  from bench import torch_reference

  trainers = {}
  for case in cases:
    trainers[(case, "pancake (jax)")] = JaxTrainer(bench_config(case, cpu_devices))
    if with_torch:
      trainer = torch_reference.TorchTrainer(CASES[case]["family"], torch_shape(case))
      trainer.step()  # warm-up (allocator, thread pool)
      trainers[(case, "hf (torch)")] = trainer
  steps = {key: max(3, math.ceil(ROUND_SECONDS / _seconds(t.step))) for key, t in trainers.items()}
  timings = {key: [[] for _ in range(rounds)] for key in trainers}
  peaks = {"jax": [], "torch": []}
  for r in range(rounds):
    peaks["jax"].append(jax_matmul_flops_per_second())
    if with_torch:
      peaks["torch"].append(torch_reference.matmul_flops_per_second())
    for i in range(max(steps.values())):  # one step each in turn: load changes hit all alike
      for key, trainer in trainers.items():
        if i < steps[key]:
          timings[key][r].append(_seconds(trainer.step))
  peak = max(max(v) for v in peaks.values() if v)
  results = {"cases": {}, "rounds": rounds, "round_seconds": ROUND_SECONDS,
             "matmul_peak_flops": {k: max(v) for k, v in peaks.items() if v}, "peak_flops": peak,
             "threads": os.cpu_count()}
  for case in cases:
    jax_trainer = trainers[(case, "pancake (jax)")]
    flops_per_token = jax_trainer.flops_per_token
    tokens_per_step = CASES[case]["batch"] * CASES[case]["seq_len"]
    rows = {}
    for (name, framework), trainer in trainers.items():
      if name != case:
        continue
      per_round = timings[(name, framework)]
      seconds = statistics.median(statistics.median(ts) for ts in per_round)
      tokens_per_sec = tokens_per_step / seconds
      rows[framework] = dict(step_seconds=round(seconds, 5),
                             fastest_step_seconds=round(min(min(t) for t in per_round), 5),
                             all_step_seconds=[[round(t, 5) for t in ts] for ts in per_round],
                             tokens_per_sec=round(tokens_per_sec, 1),
                             effective_flops=round(flops_per_token * tokens_per_sec),
                             mfu=round(flops_per_token * tokens_per_sec / peak, 4),
                             params=int(trainer.params))
    rows["pancake (jax)"]["devices"] = jax_trainer.devices
    entry = {"shape": CASES[case], "flops_per_token": flops_per_token, "frameworks": rows}
    if with_torch:
      entry["jax_over_torch_speed"] = round(
          rows["pancake (jax)"]["tokens_per_sec"] / rows["hf (torch)"]["tokens_per_sec"], 3)
    results["cases"][case] = entry
  return results


def format_table(results):
  load = results.get("machine", {})
  lines = [f"matmul peak (float32 2048^3, best of run): {results['peak_flops'] / 1e9:.1f} GFLOP/s "
           f"({', '.join(f'{k} {v / 1e9:.1f}' for k, v in results['matmul_peak_flops'].items())})",
           f"median of {results['rounds']} rounds; load average "
           f"{load.get('load_average_start', ['?'])[0]} at start, "
           f"{load.get('load_average_end', ['?'])[0]} at end",
           "",
           "| case | framework | params | step ms | tokens/s | GFLOP/s | MFU | jax/torch |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
  for case, entry in results["cases"].items():
    for framework, row in entry["frameworks"].items():
      ratio = entry.get("jax_over_torch_speed") if framework.startswith("pancake") else None
      lines.append(f"| {case} | {framework} | {row['params'] / 1e6:.2f}M | "
                   f"{1e3 * row['step_seconds']:.1f} | {row['tokens_per_sec']:.0f} | "
                   f"{row['effective_flops'] / 1e9:.1f} | {100 * row['mfu']:.1f}% | "
                   f"{'' if ratio is None else f'{ratio:.2f}x'} |")
  return "\n".join(lines)


def main(argv):
  del argv
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  import jax
  from trainlib import cpu_devices, xla_options
  # As many CPU devices as cores, before JAX starts; each case uses what train.py would.
  jax.config.update("jax_num_cpu_devices", _CPU_DEVICES.value or cpu_devices.usable_cores())
  xla_options.use_cpu_flags()  # as train.py's, before JAX starts
  unknown = [c for c in _CASES.value if c not in CASES]
  if unknown:
    raise app.UsageError(f"--cases {unknown} unknown; cases are {', '.join(CASES)}")
  record = machine.start()
  results = run(_CASES.value or list(CASES), _ROUNDS.value, _TORCH.value, _CPU_DEVICES.value)
  machine.report(results, record, format_table, _JSON.value)


if __name__ == "__main__":
  app.run(main)
