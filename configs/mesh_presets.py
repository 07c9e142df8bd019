r"""Mesh presets: the three standard layouts as config overrides.

  python train.py --config configs/gpt2_small.py --workdir DIR $(python -m configs.mesh_presets fsdp)

or in a config file: `mesh_presets.apply(c, "fsdp_tensor", tensor=8)`.

- data_parallel: every device holds a full replica; the batch is split over all of them.
  Parameters and optimizer state are replicated: fits models up to ~1B parameters per 16 GB.
- fsdp: parameters, gradients and optimizer state sharded over all devices along "embed"
  (ZeRO-3); the batch is split over all of them too. The default for large models.
- fsdp_tensor: FSDP over the rest plus Megatron tensor parallelism over `tensor` devices (heads,
  d_ff and the vocabulary split); for models whose layers no longer fit even sharded, or to keep
  the per-device batch from getting too small. Keep `tensor` within a host/ICI domain.
"""

import sys

PRESETS = {
    "data_parallel": {"data": -1, "fsdp": 1, "tensor": 1},
    "fsdp": {"data": 1, "fsdp": -1, "tensor": 1},
    "fsdp_tensor": {"data": 1, "fsdp": -1, "tensor": 4},
}


def _sizes(name, tensor=None):
  if name not in PRESETS:
    raise KeyError(f"mesh preset {name!r} is not one of {', '.join(PRESETS)}")
  sizes = dict(PRESETS[name])
  if tensor is not None:
    if name != "fsdp_tensor":
      raise ValueError(f"tensor= only applies to 'fsdp_tensor', not {name!r}")
    sizes["tensor"] = tensor
  return sizes


def apply(config, name, tensor=None):
  """Sets config.mesh.{data,fsdp,tensor} to preset `name`; returns the config."""
  for axis, size in _sizes(name, tensor).items():
    config.mesh[axis] = size
  return config


def overrides(name, tensor=None):
  """The same preset as train.py flags."""
  return [f"--config.mesh.{axis}={size}" for axis, size in _sizes(name, tensor).items()]


if __name__ == "__main__":
  if len(sys.argv) not in (2, 3) or sys.argv[1] not in PRESETS:
    print(f"usage: python -m configs.mesh_presets {{{'|'.join(PRESETS)}}} [tensor]", file=sys.stderr)
    sys.exit(2)
  print(" ".join(overrides(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else None)))
