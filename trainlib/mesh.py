"""The device mesh (data, fsdp, tensor) from `config.mesh`, and how batches map onto it.

Each axis has a within-slice (ICI) degree and an across-slice (DCN) degree; the mesh axis size is
their product. One ICI degree may be -1 ("fill the rest"), and likewise one DCN degree. Slices are
TPU slices (devices carry `slice_index`); elsewhere the processes are the granules, so on GPU
clusters the DCN degrees span hosts.

Batch rows are sharded over ("data", "fsdp") through the `activation_batch` logical rule, so the
global batch must divide by data * fsdp (times the micro-batch count under accumulation).
"""

import math

import jax
import numpy as np
from absl import logging
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh

from configs.base import MESH_AXES
from configs.errors import ConfigError
from trainlib.sharding import batch_axes, batch_degree, batch_sharding


def _fill(sizes, prefix, total, what):
  """Replaces a single -1 in `sizes` so that their product is `total`."""
  for axis, size in zip(MESH_AXES, sizes):
    if not isinstance(size, int) or isinstance(size, bool) or (size < 1 and size != -1):
      raise ConfigError(f"mesh.{prefix}{axis}={size!r} must be a positive integer or -1 (fill)")
  holes = [i for i, s in enumerate(sizes) if s == -1]
  if len(holes) > 1:
    names = ", ".join(f"mesh.{prefix}{MESH_AXES[i]}" for i in holes)
    raise ConfigError(f"{names} are all -1; at most one {what} degree may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if not holes:
    return tuple(sizes)
  if total % known:
    raise ConfigError(
        f"mesh.{prefix}{MESH_AXES[holes[0]]}=-1 cannot fill {total} {what} devices: the other "
        f"{what} degrees multiply to {known}, which does not divide {total}")
  filled = list(sizes)
  filled[holes[0]] = total // known
  return tuple(filled)


def _has_slices(devices):
  return all(getattr(d, "slice_index", None) is not None for d in devices)


def _num_granules(devices):
  """Units joined over DCN: TPU slices, or else processes (hosts)."""
  if _has_slices(devices):
    return len({d.slice_index for d in devices})
  return len({d.process_index for d in devices})


def mesh_shape(config, devices):
  """-> (ici_shape, dcn_shape), each (data, fsdp, tensor), with -1 filled. Validates only."""
  m = config.mesh
  dcn = [m.dcn_data, m.dcn_fsdp, m.dcn_tensor]
  num_devices = len(devices)
  granules = _num_granules(devices)
  dcn = _fill(dcn, "dcn_", granules, "across-slice")
  num_slices = math.prod(dcn)
  if num_slices > 1 and num_slices != granules:
    raise ConfigError(
        f"mesh.dcn_data*dcn_fsdp*dcn_tensor={num_slices} but there are {granules} "
        f"{'slices' if _has_slices(devices) else 'processes'} to join over DCN; make them equal")
  if num_devices % num_slices:
    raise ConfigError(f"mesh: {num_devices} devices cannot form {num_slices} equal slices "
                      f"(dcn_data*dcn_fsdp*dcn_tensor={num_slices})")
  ici = _fill([m.data, m.fsdp, m.tensor], "", num_devices // num_slices, "within-slice")
  needed = math.prod(ici) * num_slices
  if needed != num_devices:
    sizes = ", ".join(f"{a}={s}" for a, s in zip(MESH_AXES, ici))
    more = "needs" if needed > num_devices else "uses only"
    raise ConfigError(
        f"mesh ({sizes}, dcn {'x'.join(map(str, dcn))}) {more} {needed} devices but "
        f"{num_devices} exist; make the degrees multiply to {num_devices} or set one to -1")
  return ici, tuple(dcn)


def make_mesh(config, devices=None) -> Mesh:
  """The (data, fsdp, tensor) mesh over `devices` (default: every device of every process)."""
  devices = list(jax.devices() if devices is None else devices)
  ici, dcn = mesh_shape(config, devices)
  if math.prod(dcn) > 1:
    granule_is_process = not _has_slices(devices)
    grid = mesh_utils.create_hybrid_device_mesh(
        ici, dcn, devices, process_is_granule=granule_is_process, allow_split_physical_axes=True)
  else:
    try:
      grid = mesh_utils.create_device_mesh(ici, devices, allow_split_physical_axes=True)
    except (ValueError, NotImplementedError, AssertionError) as e:
      # Topology-aware layout failed for an unusual shape: plain order still works, but slower
      # collectives may follow, so say so.
      logging.warning("mesh: topology-aware layout of %s failed (%s); using device order", ici, e)
      grid = np.asarray(devices).reshape([i * d for i, d in zip(ici, dcn)])
  return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def mesh_dict(mesh):
  """{axis: size}, as written to provenance.json."""
  return {name: int(size) for name, size in mesh.shape.items()}


def validate_batch(config, mesh):
  """The global batch (and each micro-batch) must split evenly over the batch-sharding axes."""
  b, k = config.train.global_batch_size, config.train.microbatches
  degree = batch_degree(config, mesh)
  if not isinstance(k, int) or isinstance(k, bool) or k < 1:
    raise ConfigError(f"train.microbatches={k!r} must be a positive integer")
  if not isinstance(b, int) or isinstance(b, bool) or b < 1:
    raise ConfigError(f"train.global_batch_size={b!r} must be a positive integer")
  if b % k:
    raise ConfigError(f"train.global_batch_size={b} is not divisible by train.microbatches={k}")
  if (b // k) % degree:
    axes = batch_axes(config)
    raise ConfigError(
        f"train.global_batch_size={b} (micro-batch {b // k} with train.microbatches={k}) is not "
        f"divisible by the data-parallel degree {degree} (mesh axes {axes}: "
        f"{', '.join(f'{a}={mesh.shape[a]}' for a in MESH_AXES)}); use a multiple of {degree * k}")


def host_batch_rows(config, mesh, global_batch=None):
  """-> (index, count): this process feeds rows [index*B/count, (index+1)*B/count).

  Derived from the batch sharding, so it is right for any mesh: with the batch split over all
  processes each feeds its own block; with the batch replicated across processes (pure tensor
  parallelism over hosts) every process feeds the whole batch (count = 1).
  """
  b = config.train.global_batch_size if global_batch is None else global_batch
  sharding = batch_sharding(config, mesh, 1)
  rows = set()
  for device, index in sharding.devices_indices_map((b,)).items():
    if device.process_index == jax.process_index():
      rows.add((index[0].start or 0, b if index[0].stop is None else index[0].stop))
  start, stop = min(r[0] for r in rows), max(r[1] for r in rows)
  size = stop - start
  covered = sum(r[1] - r[0] for r in rows)
  if covered < size or b % size or start % size:
    raise ConfigError(
        f"mesh {mesh_dict(mesh)} gives process {jax.process_index()} batch rows that are not one "
        "aligned block; put the multi-host axis outermost (mesh.dcn_* or mesh.data)")
  return start // size, b // size
