"""Metrics out of the loop: metrics.jsonl, TensorBoard, the progress line, and MFU.

Only process 0 writes files. MFU = analytic training FLOPs per token (models.counting, via the
objective) x tokens/s / peak FLOP/s of all devices. XLA's cost analysis is not used: it counts a
scanned layer body once.

The peak comes from, in order: `train.peak_tflops_per_device` if set; a table of dense bf16 peaks
for TPU/GPU device kinds; on CPU (or an unknown device) a float32 matmul timed at start-up on this
host. `peak_flops(...)` returns which one it used, and provenance.json records it.
"""

import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from trainlib import fs, rundir

# Dense bf16 peak FLOP/s per JAX device, by device_kind prefix (longest prefix wins).
PEAK_FLOPS = {
    "TPU v2": 45e12 / 2,   # per core (each v2/v3 core is one device)
    "TPU v3": 123e12 / 2,
    "TPU v4": 275e12,      # megacore: one device per chip
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,       # v5p reports "TPU v5"
    "TPU v6 lite": 918e12,  # v6e (Trillium)
    "TPU v6e": 918e12,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100": 312e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10G": 70e12,
}


def measure_matmul_flops(n=1024, repeats=5, device=None):
  """Best observed float32 matmul FLOP/s of one device (on CPU: all of this host's cores)."""
  device = device or jax.local_devices()[0]
  a = jax.device_put(jnp.ones((n, n), jnp.float32), device)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = math.inf
  for _ in range(repeats):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best


def peak_flops(config, devices=None):
  """-> (peak FLOP/s of the whole run, "where the number came from")."""
  devices = list(devices or jax.devices())
  configured = float(config.train.peak_tflops_per_device)
  if configured > 0:
    return configured * 1e12 * len(devices), f"train.peak_tflops_per_device={configured:g}"
  kind = devices[0].device_kind
  matches = [k for k in PEAK_FLOPS if kind.startswith(k)]
  if matches:
    per_device = PEAK_FLOPS[max(matches, key=len)]
    return per_device * len(devices), f"table: {kind} {per_device / 1e12:g} TFLOP/s bf16 per device"
  # CPU: fake devices share the host's cores, so the host (one process) is the unit.
  per_host = measure_matmul_flops()
  return (per_host * jax.process_count(),
          f"measured: {devices[0].platform} float32 matmul {per_host / 1e9:.1f} GFLOP/s per host")


class MetricsWriter:
  """Appends rows to <workdir>/metrics.jsonl and TensorBoard (<workdir>/tb) on process 0."""

  def __init__(self, workdir, enabled=None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self.path = rundir.metrics_path(workdir)
    self._file = fs.GrowingFile(self.path)
    self._tb = None
    if self.enabled:
      from tensorboardX import SummaryWriter  # late: start-up time (only process 0 writes it)
      self._tb = SummaryWriter(rundir.tensorboard_dir(workdir))

  def drop_after(self, step, keep_eval_at_step=True):
    """On resume: forget rows past the restored step (they will be produced again), and its
    eval row unless `keep_eval_at_step` (the checkpoint was saved after that eval). A torn last
    line (a kill or a full disk mid-write) is dropped with a warning (rundir.read_metric_lines)."""
    if not self.enabled or not fs.exists(self.path):
      return
    kept = [line + "\n" for line, row in rundir.read_metric_lines(self.path)
            if row["step"] < step or (row["step"] == step and (keep_eval_at_step
                                                               or row.get("split") != "eval"))]
    with rundir.writing(self.path):
      self._file.replace("".join(kept))

  def write(self, row):
    if not self.enabled:
      return
    with rundir.writing(self.path):
      self._file.append(json.dumps(_plain(row), sort_keys=True) + "\n")
    split = row.get("split", "train")
    for key, value in row.items():
      if key not in ("split", "step", "time") and isinstance(value, (int, float)):
        self._tb.add_scalar(f"{split}/{key}", value, row["step"])
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def _plain(row):
  """numpy scalars -> Python numbers (NaN stays NaN, which Python's json reads back)."""
  return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def format_duration(seconds):
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def eta(remaining, per_sec):
  """'ETA 4m10s': the time `remaining` units take at `per_sec` units per second."""
  return f"ETA {format_duration(remaining / per_sec if per_sec > 0 else math.inf)}"


def progress_line(row, num_steps, steps_per_sec):
  return (f"step {row['step']}/{num_steps} | loss {row['loss']:.4f} | "
          f"{steps_per_sec:.2f} steps/s | {row['tokens_per_sec']:,.0f} tok/s | "
          f"MFU {100 * row['mfu']:.2f}% | lr {row['learning_rate']:.3g} | "
          f"{eta(num_steps - row['step'], steps_per_sec)}")


def log_progress(row, num_steps, steps_per_sec):
  if jax.process_index() == 0:
    logging.info(progress_line(row, num_steps, steps_per_sec))


class LoopProgress:
  """Progress lines of a loop of known length outside training (eval suites), in the training
  line's terms: "<what> 120/2000 | 3.10 /s | ETA 10m06s", about `lines` of them (process 0).

  The rate is timed from the first `update` (the first step, which includes compiling), so
  the ETA is that of the steady state. Callers call `update(done)` after step `done` when
  `due(done)`, having waited for that step's result (the time is wall time to that point).
  """

  def __init__(self, what, total, lines=20):
    self.what, self.total = what, total
    self.every = max(1, total // lines)
    self._start = None

  def due(self, done):
    return done == 1 or done == self.total or done % self.every == 0

  def update(self, done):
    now = time.perf_counter()
    if self._start is None:
      self._start = (now, done)
      return
    rate = (done - self._start[1]) / max(now - self._start[0], 1e-9)
    if jax.process_index() == 0:
      logging.info("%s %d/%d | %.2f /s | %s", self.what, done, self.total, rate,
                   eta(self.total - done, rate))
