r"""Sweep throughput on this CPU: one run on every core against one run per core side by side.

  JAX_PLATFORMS=cpu .venv/bin/python -m bench.parallel_runs [--case scaling_cpu_smallest
      --rounds 3 --seconds 8 --json FILE]

What `launch.sweep --parallel N` buys. A round times, one after the other:
- "one run, all cores": one process with train.py's CPU devices (one per core, the batch split
  over them), stepping the case's real train step (bench/jax_trainer.py) for --seconds;
- "one run per core": as many processes as cores at once, each pinned to its own core (as
  --parallel pins them, so each has one CPU device), each stepping the same case.
Each process reports its median step after compiling and a warm-up; a setting's throughput is
the tokens/s of all its processes together, and its effective FLOP/s is that times the case's
analytic training FLOPs per token (train.py's count, bench/train_step.py's "effective"). The
rows are medians over rounds; the load average at start and end is in the JSON.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

from bench import machine
from launch.sweep import pinned

_CASE = flags.DEFINE_string("case", "scaling_cpu_smallest", "A case of bench/train_step.py.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds, each timing both settings.")
_SECONDS = flags.DEFINE_float("seconds", 8.0, "How long each process steps (after warm-up).")
_JSON = flags.DEFINE_string("json", "results/bench_parallel_runs.json", "Where to write it.")
_WORKER = flags.DEFINE_bool("worker", False, "Internal: be one timed process.")


def _worker(case, seconds):
  """Steps one case for `seconds`; prints {"median_step_seconds", "devices", ...} as JSON."""
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  import jax
  from bench import cases
  from bench.jax_trainer import JaxTrainer
  from trainlib import cpu_devices, xla_options
  jax.config.update("jax_num_cpu_devices", cpu_devices.usable_cores())
  xla_options.use_cpu_flags()  # as train.py's, before JAX starts
  trainer = JaxTrainer(cases.bench_config(case))
  for _ in range(3):
    trainer.step()
  times, end = [], time.perf_counter() + seconds
  while time.perf_counter() < end or len(times) < 5:
    start = time.perf_counter()
    trainer.step()
    times.append(time.perf_counter() - start)
  shape = cases.CASES[case]
  print(json.dumps({"median_step_seconds": statistics.median(times), "steps": len(times),
                    "devices": trainer.devices, "cores": sorted(os.sched_getaffinity(0)),
                    "tokens_per_step": shape["batch"] * shape["seq_len"],
                    "flops_per_token": trainer.flops_per_token}))


def _processes(case, seconds, pins):
  """Runs one worker per entry of `pins` (a core, or None = unpinned) at once -> their reports."""
  argv = [sys.executable, "-m", "bench.parallel_runs", "--worker", f"--case={case}",
          f"--seconds={seconds}"]
  procs = [subprocess.Popen(pinned(argv, None if core is None else (core,)),
                            stdout=subprocess.PIPE, text=True) for core in pins]
  reports = []
  for proc in procs:
    out, _ = proc.communicate()
    if proc.returncode:
      raise RuntimeError(f"worker exited {proc.returncode}")
    reports.append(json.loads(out.strip().splitlines()[-1]))
  return reports


def _setting(reports):
  tokens = sum(r["tokens_per_step"] / r["median_step_seconds"] for r in reports)
  return {"tokens_per_sec": tokens, "effective_flops": tokens * reports[0]["flops_per_token"],
          "processes": reports}


def main(argv):
  del argv
  if _WORKER.value:
    return _worker(_CASE.value, _SECONDS.value)
  cores = sorted(os.sched_getaffinity(0))
  record = machine.start()
  rounds = []
  for _ in range(_ROUNDS.value):
    rounds.append({"one run, all cores": _setting(_processes(_CASE.value, _SECONDS.value, [None])),
                   "one run per core": _setting(_processes(_CASE.value, _SECONDS.value, cores))})
  results = {"case": _CASE.value, "cores": cores, "rounds": rounds, "seconds": _SECONDS.value,
             "settings": {}}
  for name in rounds[0]:
    tokens = statistics.median(r[name]["tokens_per_sec"] for r in rounds)
    flops = statistics.median(r[name]["effective_flops"] for r in rounds)
    results["settings"][name] = {"tokens_per_sec": round(tokens), "effective_flops": round(flops)}
  results["per_core_over_all_cores"] = round(statistics.median(
      r["one run per core"]["tokens_per_sec"] / r["one run, all cores"]["tokens_per_sec"]
      for r in rounds), 3)
  machine.report(results, record, format_table, _JSON.value)


def format_table(results):
  load = results.get("machine", {})
  lines = [f"{results['case']} on cores {results['cores']}; median of {len(results['rounds'])} "
           f"rounds; load average {load.get('load_average_start', ['?'])[0]} at start, "
           f"{load.get('load_average_end', ['?'])[0]} at end", "",
           "| setting | tokens/s (all runs) | effective GFLOP/s |", "|---|---:|---:|"]
  for name, row in results["settings"].items():
    lines.append(f"| {name} | {row['tokens_per_sec']:,} | {row['effective_flops'] / 1e9:.1f} |")
  lines.append(f"\none run per core / one run on all cores: {results['per_core_over_all_cores']}x")
  return "\n".join(lines)


if __name__ == "__main__":
  app.run(main)
