"""TPU slice names -> compile-only devices for ahead-of-time (AOT) fit checks on a CPU machine.

Cloud TPU names count differently per generation: "v5p-N" and "v4-N" count TensorCores (2 per chip,
so v5p-1024 is 512 chips), "v5e-N" ("v5litepod-N") and "v6e-N" count chips. libtpu wants the chip
grid instead ("v5p:8x8x8"); `parse_topology` maps one onto the other, and also takes the grid form
directly and a "Kx" prefix for K slices joined over the data-centre network (DCN), e.g. "2xv5p-512".

`compile_only_devices` asks libtpu (through `jax.experimental.topologies`) for device objects that
can be compiled for but not run on: no TPU is needed, only `JAX_PLATFORMS=cpu` so JAX itself does
not try to open one.
"""

import dataclasses
import math
import os
import re

from configs.errors import ConfigError

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class Generation:
  name: str                   # libtpu's name in "name:XxYxZ"
  hbm_bytes: int              # HBM per chip (= per JAX device: v4 runs as one megacore device)
  peak_bf16_flops: float      # per chip, dense bf16 matmul
  dims: int                   # 3 = 3D torus (v4, v5p), 2 = 2D (v5e, v6e)
  cores_per_chip_in_name: int  # "v5p-8" counts TensorCores (2 per chip); "v5e-8" counts chips
  chip_config: str            # libtpu chip_config_name ("megacore": one device per v4 chip)


GENERATIONS = {
    "v5p": Generation("v5p", 95 * GIB, 459e12, 3, 2, "default"),
    "v4": Generation("v4", 32 * GIB, 275e12, 3, 2, "megacore"),
    "v5e": Generation("v5e", 16 * GIB, 197e12, 2, 1, "default"),
    "v6e": Generation("v6e", 32 * GIB, 918e12, 2, 1, "default"),
}
_ALIASES = {"v5litepod": "v5e", "v6litepod": "v6e"}

# Chips each host of a slice drives; a grid smaller than this is a single host.
_CHIPS_PER_HOST = (2, 2, 1)


@dataclasses.dataclass(frozen=True)
class Topology:
  name: str                   # as the user wrote it
  generation: Generation
  grid: tuple                 # chips per slice along each torus axis, e.g. (8, 8, 8)
  num_slices: int

  @property
  def chips_per_slice(self):
    return math.prod(self.grid)

  @property
  def num_chips(self):
    return self.chips_per_slice * self.num_slices

  @property
  def libtpu_name(self):
    return f"{self.generation.name}:{'x'.join(map(str, self.grid))}"


def _error(name, why):
  return ConfigError(
      f"--topology={name!r}: {why}. Valid: <gen>-<N> (v5p-1024, v4-128, v5e-256, v6e-64), "
      f"<gen>:<grid> (v5p:8x8x8, v5e:16x16), optionally prefixed by '<slices>x' (2xv5p-512); "
      f"generations {sorted(GENERATIONS)}")


def default_grid(generation, chips):
  """The grid Cloud TPU gives a power-of-two slice: double the smallest axis, the last on ties.

  v5p: 4 chips -> 2x2x1, 8 -> 2x2x2, 16 -> 2x2x4, 64 -> 4x4x4, 512 -> 8x8x8 (as documented for
  v5p/v4 slices); v5e/v6e: 4 -> 2x2, 8 -> 2x4, 256 -> 16x16.
  """
  if chips == 1:
    return (1,) * generation.dims
  if chips < 4 or chips & (chips - 1):
    raise ValueError(f"{chips} chips is not a power of two >= 4 (or 1)")
  grid = [2, 2] + [1] * (generation.dims - 2)
  while math.prod(grid) < chips:
    smallest = min(grid)
    last_smallest = max(i for i, g in enumerate(grid) if g == smallest)
    grid[last_smallest] *= 2
  return tuple(grid)


def parse_topology(name):
  """'v5p-1024' | 'v5p:8x8x8' | '2xv5p-512' -> Topology. Raises ConfigError for anything else."""
  match = re.fullmatch(r"(?:(\d+)x)?([a-z0-9]+?)(?:-(\d+)|:(\d+(?:x\d+)*))", name.strip().lower())
  if not match:
    raise _error(name, "not a TPU slice name")
  slices, gen_name, count, grid_text = match.groups()
  gen_name = _ALIASES.get(gen_name, gen_name)
  if gen_name not in GENERATIONS:
    raise _error(name, f"unknown TPU generation {gen_name!r}")
  generation = GENERATIONS[gen_name]
  num_slices = int(slices) if slices else 1
  if num_slices < 1:
    raise _error(name, "the slice count must be >= 1")
  if count is not None:
    cores = int(count)
    if cores % generation.cores_per_chip_in_name:
      raise _error(name, f"{gen_name}-N counts TensorCores, so N must be even")
    try:
      grid = default_grid(generation, cores // generation.cores_per_chip_in_name)
    except ValueError as e:
      raise _error(name, str(e)) from None
  else:
    grid = tuple(int(g) for g in grid_text.split("x"))
    if len(grid) != generation.dims or min(grid) < 1:
      raise _error(name, f"{gen_name} grids have {generation.dims} positive axes")
  return Topology(name=name, generation=generation, grid=grid, num_slices=num_slices)


def compile_only_devices(topology):
  """libtpu's compile-only devices for the slice(s): a list of num_chips devices."""
  # late: start-up time (parsing a name, and its errors, never starts a JAX backend)
  from jax.experimental import topologies

  # libtpu takes a machine-wide lock (/tmp/libtpu_lockfile) meant for processes that drive real
  # chips; compile-only devices drive none, so several fit checks (or one beside a TPU run) may
  # share the library.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

  grid3 = tuple(topology.grid) + (1,) * (3 - len(topology.grid))
  host_bounds = tuple(min(g, h) for g, h in zip(grid3, _CHIPS_PER_HOST))
  kwargs = dict(chip_config_name=topology.generation.chip_config, chips_per_host_bounds=host_bounds)
  if topology.num_slices > 1:
    kwargs["num_slices"] = topology.num_slices
  try:
    desc = topologies.get_topology_desc(
        topology_name=topology.libtpu_name, platform="tpu", **kwargs)
  except Exception as e:  # libtpu rejects grids it cannot wire (e.g. v5p:3x3x3)
    raise _error(topology.name, f"libtpu rejected {topology.libtpu_name}: "
                 f"{str(e).splitlines()[0]}") from None
  devices = list(desc.devices)
  if len(devices) != topology.num_chips:
    raise _error(topology.name, f"libtpu made {len(devices)} devices for "
                 f"{topology.num_chips} chips")
  return devices
