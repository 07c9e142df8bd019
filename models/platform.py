"""The platform a model is being lowered for, asked at trace time by layers that pick an
implementation per target (attention kernels, scan unrolling, the CPU matmul backward)."""

import jax


def target_platform():
  """Platform being lowered for: the context mesh's devices (AOT for a TPU topology on a CPU
  host sets a TPU mesh), else the default backend."""
  mesh = jax.sharding.get_abstract_mesh()
  device = None if mesh.empty else mesh.abstract_device
  return device.platform if device is not None else jax.default_backend()
