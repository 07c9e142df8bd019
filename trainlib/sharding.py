"""Logical axis names -> mesh shardings, through `config.logical_axis_rules`.

Models name their parameter and activation dimensions logically ("embed", "mlp", "activation_batch");
only this module and the rules in the config know which mesh axis each one lands on.
"""

import math

from flax import linen as nn
from jax.sharding import NamedSharding, PartitionSpec

from configs.base import MESH_AXES
from configs.errors import ConfigError


def rules(config):
  """The rules as flax wants them: ((logical, mesh axis | tuple of axes | None), ...)."""
  out = []
  for i, rule in enumerate(config.logical_axis_rules):
    if len(rule) != 2 or not isinstance(rule[0], str):
      raise ConfigError(f"logical_axis_rules[{i}]={rule!r} must be a pair (logical name, mesh axes)")
    name, target = rule
    targets = () if target is None else (target,) if isinstance(target, str) else tuple(target)
    unknown = [t for t in targets if t not in MESH_AXES]
    if unknown:
      raise ConfigError(f"logical_axis_rules[{i}]={list(rule)!r} names mesh axes {unknown}; "
                        f"valid mesh axes are {', '.join(MESH_AXES)}")
    out.append((name, target if target is None or isinstance(target, str) else tuple(target)))
  return tuple(out)


def logical_to_shardings(logical_specs, mesh, config):
  """A tree of logical PartitionSpecs -> a tree of NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules(config))


def replicated(mesh):
  return NamedSharding(mesh, PartitionSpec())


def batch_axes(config):
  """Mesh axes that shard the batch dimension (from the `activation_batch` rule), or None."""
  return nn.logical_to_mesh_axes(("activation_batch",), rules(config))[0]


def batch_sharding(config, mesh, ndim):
  """NamedSharding of a [B, ...] batch array: rows over the batch axes, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(batch_axes(config), *([None] * (ndim - 1))))


def batch_degree(config, mesh):
  """How many ways the batch dimension is split."""
  axes = batch_axes(config)
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return math.prod(mesh.shape[a] for a in axes)
