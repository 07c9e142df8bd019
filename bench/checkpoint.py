r"""What checkpoint integrity costs: save and restore of a gpt2_small-sized train state.

  JAX_PLATFORMS=cpu .venv/bin/python -m bench.checkpoint [--rounds 3 --preset gpt2_small]

The state is the real TrainState of configs/<preset>.py (parameters + AdamW moments + step + rng,
float32: 124M parameters, 1.49 GB for gpt2_small) on one CPU device. Each round saves it
synchronously (orbax, the format train.py writes) with and without the per-array checksums
(trainlib/checksum.py), and restores it with and without verifying them (checksums + the
finiteness check). Prints medians over the rounds; writes every time and both load averages to
the JSON.
"""

import importlib
import os
import shutil
import statistics
import tempfile
import time

from absl import app, flags

from bench import machine
from trainlib import rundir

_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed rounds (each: 2 saves, 2 restores).")
_PRESET = flags.DEFINE_string("preset", "gpt2_small", "configs/<preset>.py whose state is saved.")
_DIR = flags.DEFINE_string("dir", "", "Where to write the checkpoints (default: a temp dir).")
_JSON = flags.DEFINE_string("json", "results/bench_checkpoint.json", "Where to write the figures.")


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  return time.perf_counter() - start, out


def run(preset, rounds, directory):

  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  import jax

  from trainlib import checksum
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  from trainlib.checkpoint import Checkpointer

  config = importlib.import_module(f"configs.{preset}").get_config()
  config.mesh.data = 1
  mesh = mesh_lib.make_mesh(config, jax.devices()[:1])
  state, setup = state_lib.init_state_sharded(config, mesh)
  leaves = jax.tree.leaves(state)
  nbytes = sum(x.size * x.dtype.itemsize for x in leaves)
  summer = checksum.Checksummer()
  summer(state)  # compile once, outside the timings
  times = {"checksums_only": [], "save_plain": [], "save_with_checksums": [],
           "restore_plain": [], "restore_verified": []}
  with Checkpointer(directory, keep=2, async_save=False) as ckpt:
    ckpt.compile_checks(state)
    for r in range(rounds):
      times["checksums_only"].append(_timed(lambda: summer(state))[0])
      for key, step, with_sums in (("save_plain", 2 * r, False),
                                   ("save_with_checksums", 2 * r + 1, True)):
        times[key].append(_timed(lambda: ckpt.save(step, state, {}, checksums=with_sums))[0])
      ckpt.wait()
      for key, step, verify in (("restore_plain", 2 * r + 1, False),
                                ("restore_verified", 2 * r + 1, True)):
        seconds, (restored, _) = _timed(
            lambda: ckpt.restore(setup.abstract_state, step=step, verify_checksums=verify))
        jax.block_until_ready(restored)
        times[key].append(seconds)
        del restored
  medians = {k: round(statistics.median(v), 3) for k, v in times.items()}
  return {"preset": preset, "leaves": len(leaves), "state_bytes": int(nbytes), "rounds": rounds,
          "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
          "median_seconds": medians,
          "save_overhead": round(medians["save_with_checksums"] / medians["save_plain"] - 1, 3),
          "restore_overhead": round(medians["restore_verified"] / medians["restore_plain"] - 1, 3)}


def format_table(r):
  m = r["median_seconds"]
  return "\n".join([
      f"{r['preset']} train state: {r['leaves']} arrays, {r['state_bytes'] / 1e9:.2f} GB; median of "
      f"{r['rounds']} rounds; load average {r['machine']['load_average_start'][0]} at start, "
      f"{r['machine']['load_average_end'][0]} at end",
      "| operation | plain s | with integrity s | overhead |", "|---|---:|---:|---:|",
      f"| save (sync) | {m['save_plain']:.2f} | {m['save_with_checksums']:.2f} | "
      f"{100 * r['save_overhead']:+.0f}% |",
      f"| restore | {m['restore_plain']:.2f} | {m['restore_verified']:.2f} | "
      f"{100 * r['restore_overhead']:+.0f}% |",
      f"checksums alone: {m['checksums_only']:.2f} s "
      f"({r['state_bytes'] / 1e9 / m['checksums_only']:.2f} GB/s)"])


def main(argv):
  del argv
  record = machine.start()
  directory = _DIR.value or tempfile.mkdtemp(prefix="pancake-bench-ckpt-")
  try:
    results = run(_PRESET.value, _ROUNDS.value, rundir.checkpoints_dir(directory))
  finally:
    if not _DIR.value:
      shutil.rmtree(directory, ignore_errors=True)
  machine.report(results, record, format_table, _JSON.value)


if __name__ == "__main__":
  app.run(main)
