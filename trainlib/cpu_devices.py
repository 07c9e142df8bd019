"""How many devices the CPU backend exposes: one per core, so a CPU trains data parallel.

Why: XLA:CPU once ran a one-device matmul on a single thread, so a one-device step left cores
idle while HF PyTorch used them all. Exposing one CPU device per core and splitting the batch
over them (the mesh's `data` axis, as on a pod) runs each device's share on its own core. With
jaxlib 0.10.2 one device uses every core for a large matmul, but whole steps still did as well
or better on one device per core on most shapes in alternating runs of
`bench.train_step --cpu_devices 1|2` (docs/benchmarks.md), so the default stays at one device per
core; `mesh.cpu_devices=1` gives the one-device step. A sweep of small models does better still with one run per core
(`launch.sweep --parallel`).

`mesh.cpu_devices`: 0 (auto) picks the largest count <= the usable cores that divides each
micro-batch, when the mesh is plain data parallel in one process (mesh.data=-1, every other degree
1, no --multihost); any other mesh keeps JAX's default of one CPU device per process, since its
degrees already say how many devices it wants. A positive value is taken as is. An
`--xla_force_host_platform_device_count` in XLA_FLAGS (the tests' 8 fake devices) wins over both.

Numerics: data parallelism sums the loss and gradients per device, then across devices, so a
run on 2 devices differs from one on 1 device in float32 rounding only (tested in
tests/test_train_sharded.py); the count is recorded in provenance.json's mesh, and runs with the
same count are bitwise reproducible.
"""

import os

from configs.errors import ConfigError

_FORCE_FLAG = "xla_force_host_platform_device_count"


def usable_cores() -> int:
  """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def device_count(config, cores: int, multiprocess: bool = False):
  """-> the CPU device count to request, or None to leave JAX's default (see module docstring)."""
  requested = config.mesh.cpu_devices
  if not isinstance(requested, int) or isinstance(requested, bool) or requested < 0:
    raise ConfigError(f"mesh.cpu_devices={requested!r} must be an integer >= 0 (0 = one per core)")
  if requested:
    return requested
  m = config.mesh
  plain_data_parallel = (m.data == -1 and m.fsdp == m.tensor == 1
                         and m.dcn_data == m.dcn_fsdp == m.dcn_tensor == 1)
  if multiprocess or not plain_data_parallel:
    return None
  b, k = config.train.global_batch_size, config.train.microbatches
  if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (b, k)) or b % k:
    return None  # mesh.validate_batch reports it with the full explanation
  return max(n for n in range(1, max(cores, 1) + 1) if (b // k) % n == 0)


def use_cpu_cores(config, multiprocess: bool = False):
  """Requests the CPU device count for `config` from JAX; call before anything touches a device.

  Returns the count requested, or None when JAX's default (or XLA_FLAGS) decides.
  """
  if _FORCE_FLAG in os.environ.get("XLA_FLAGS", ""):
    return None
  count = device_count(config, usable_cores(), multiprocess)
  if count is not None:
    import jax  # late: start-up time (train.py calls this before JAX starts: XLA reads the count then)
    jax.config.update("jax_num_cpu_devices", count)
  return count
