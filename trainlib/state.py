"""Train state, and how it comes to exist already sharded.

Nothing is allocated before its sharding is known: `jax.eval_shape` traces the initialiser to get
shapes and the models' logical axis names, the rules turn those into NamedShardings, and then
`jax.jit(init, out_shardings=...)` creates every array directly in its shard (a 175B model never
exists on one device). The same abstract state (ShapeDtypeStructs carrying shardings) is what the
AOT fit check lowers against and what checkpoints restore into.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct
from jax.sharding import Mesh, PartitionSpec

import models
import objectives
from trainlib import optim, sharding


class TrainState(struct.PyTreeNode):
  step: jax.Array        # int32 scalar: optimizer steps completed (= index of the next batch)
  params: Any            # float32 parameters (param_dtype), unboxed
  opt_state: Any         # optax state
  rng: jax.Array         # uint32[2] base key; step s uses fold_in(rng, s) for dropout


@dataclasses.dataclass(frozen=True)
class TrainSetup:
  """Everything a step needs, built once from (config, mesh)."""
  config: Any
  mesh: Mesh
  model: nn.Module
  objective: objectives.Objective
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  shardings: TrainState          # NamedSharding per leaf
  abstract_state: TrainState     # jax.ShapeDtypeStruct per leaf, with .sharding set
  logical_specs: TrainState      # logical PartitionSpec per leaf (for reports)


def _init_variables(model, objective, config, rng):
  """Boxed variables (parameters carry their logical axis names)."""
  dummy = objective.dummy_batch(config, batch_size=1)
  params_rng, dropout_rng = jax.random.split(rng)
  return model.init({"params": params_rng, "dropout": dropout_rng},
                    **objective.model_inputs(dummy), deterministic=True)


def _seed_keys(config):
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  return init_rng, train_rng


def build_setup(config, mesh, model=None) -> TrainSetup:
  """Model, optimizer, objective and the sharded abstract state for `mesh`.

  `model` defaults to `models.build_model(config.model)`; tests pass a small module instead.
  """
  objective = objectives.get(config.objective.name)
  if model is None:
    model = models.build_model(config.model)
  tx, schedule = optim.make_optimizer(config)
  init_rng, train_rng = _seed_keys(config)

  boxed = jax.eval_shape(lambda r: _init_variables(model, objective, config, r), init_rng)
  param_logical = nn.get_partition_spec(boxed)["params"]
  abstract_params = nn.unbox(boxed)["params"]
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  # Optimizer moments shard like their parameters; counters and other scalars are replicated.
  opt_logical = optax.tree_map_params(
      tx, lambda _, spec: spec, abstract_opt, param_logical,
      transform_non_params=lambda _: PartitionSpec(),
      is_leaf=lambda x: isinstance(x, PartitionSpec))
  logical = TrainState(step=PartitionSpec(), params=param_logical, opt_state=opt_logical,
                       rng=PartitionSpec())
  shardings = sharding.logical_to_shardings(logical, mesh, config)
  shapes = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_params,
                      opt_state=abstract_opt, rng=jax.eval_shape(lambda: train_rng))
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          shapes, shardings)
  return TrainSetup(config=config, mesh=mesh, model=model, objective=objective, tx=tx,
                    schedule=schedule, shardings=shardings, abstract_state=abstract,
                    logical_specs=logical)


def init_state(setup: TrainSetup) -> TrainState:
  """A fresh state from config.seed, each array created directly in its shard."""
  init_rng, train_rng = _seed_keys(setup.config)

  def init(init_rng, train_rng):
    params = nn.unbox(_init_variables(setup.model, setup.objective, setup.config, init_rng))["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=setup.tx.init(params), rng=train_rng)

  return jax.jit(init, out_shardings=setup.shardings)(init_rng, train_rng)


def init_params(setup: TrainSetup):
  """The parameters of `init_state(setup)` alone (the same values), each made in its shard."""
  init_rng, _ = _seed_keys(setup.config)

  def init(init_rng):
    return nn.unbox(_init_variables(setup.model, setup.objective, setup.config, init_rng))["params"]

  return jax.jit(init, out_shardings=setup.shardings.params)(init_rng)


def state_from_params(setup: TrainSetup, params) -> TrainState:
  """A step-0 state around given sharded parameters (e.g. imported weights): fresh optimizer
  state and config.seed's train rng, as `init_state` would make them."""
  _, train_rng = _seed_keys(setup.config)

  def build(params, train_rng):
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=setup.tx.init(params), rng=train_rng)

  return jax.jit(build, out_shardings=setup.shardings)(params, train_rng)


def init_state_sharded(config, mesh, model=None) -> tuple[TrainState, TrainSetup]:
  """eval_shape -> shardings via config.logical_axis_rules -> jax.jit(init, out_shardings)."""
  setup = build_setup(config, mesh, model)
  return init_state(setup), setup


def param_count(abstract_params) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(abstract_params))
