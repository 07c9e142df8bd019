"""The jitted train and eval steps, and global batches built from each host's rows.

Train step: gradients of the objective's loss, accumulated over `train.microbatches` slices of the
batch with `lax.scan`. Every micro-batch loss is divided by the weights of the *whole* batch (the
objective's `term_weights`), so the summed gradient is exactly the big-batch gradient, not a mean
of micro-batch means. Metrics leave the step as (sum, weight) pairs; the host divides.

A non-finite loss or gradient skips the update (params and optimizer state keep their old values,
the step counter still advances so the data stream stays aligned) and raises the `finite` flag;
the loop stops on it, so a NaN never reaches a checkpoint.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import NamedSharding, PartitionSpec

from trainlib import sharding
from trainlib.state import TrainSetup, TrainState


def batch_shardings(setup: TrainSetup) -> dict:
  """{key: NamedSharding} for the global batch of this objective."""
  spec = setup.objective.batch_spec(setup.config)
  return {k: sharding.batch_sharding(setup.config, setup.mesh, len(shape))
          for k, (shape, _) in spec.items()}


def abstract_batch(setup: TrainSetup) -> dict:
  """{key: ShapeDtypeStruct with sharding}: the global batch, for lowering without data."""
  spec = setup.objective.batch_spec(setup.config)
  shardings = batch_shardings(setup)
  return {k: jax.ShapeDtypeStruct(shape, dtype, sharding=shardings[k])
          for k, (shape, dtype) in spec.items()}


def global_batch(setup: TrainSetup, host_batch: dict) -> dict:
  """This process's rows (numpy) -> global jax.Arrays sharded over the batch axes."""
  spec = setup.objective.batch_spec(setup.config)
  shardings = batch_shardings(setup)
  out = {}
  for key, (shape, dtype) in spec.items():
    local = np.asarray(host_batch[key], dtype=dtype)
    out[key] = jax.make_array_from_process_local_data(shardings[key], local, shape)
  return out


@contextlib.contextmanager
def mesh_context(setup: TrainSetup):
  """The mesh and logical rules the models' `with_logical_constraint` calls resolve against."""
  with jax.set_mesh(setup.mesh), nn.logical_axis_rules(sharding.rules(setup.config)):
    yield


class CompiledStep:
  """A jitted step that always traces inside the run's mesh context.

  Call it like the function; `.lower(*abstract_args)` gives the AOT lowering (launch/aot.py).
  """

  def __init__(self, setup, jitted):
    self._setup, self._jitted = setup, jitted

  def __call__(self, *args):
    with mesh_context(self._setup):
      return self._jitted(*args)

  def lower(self, *args):
    with mesh_context(self._setup):
      return self._jitted.lower(*args)


def _apply_fn(setup, deterministic):
  model, objective = setup.model, setup.objective

  def apply(params, batch, rng):
    outputs = model.apply({"params": params}, **objective.model_inputs(batch),
                          deterministic=deterministic, rngs={"dropout": rng})
    return objective.metrics(outputs, batch)

  return apply


def _dropout_active(config):
  return config.model.dropout_rate > 0 or config.model.attention_dropout_rate > 0


def _split_microbatches(setup, batch, k):
  """[B, ...] -> [k, B/k, ...]; micro-batch j holds rows j, j+k, j+2k, ...

  Strided rather than contiguous so that each device's rows are spread over all micro-batches:
  every micro-batch is then sharded like the full batch and no data moves between devices.
  """
  def split(x):
    x = x.reshape((x.shape[0] // k, k) + x.shape[1:]).swapaxes(0, 1)
    spec = PartitionSpec(None, sharding.batch_axes(setup.config), *([None] * (x.ndim - 2)))
    return jax.lax.with_sharding_constraint(x, NamedSharding(setup.mesh, spec))
  return jax.tree.map(split, batch)


def make_train_step(setup: TrainSetup, donate: bool = True) -> CompiledStep:
  """(state, batch) -> (state, metrics), jitted with the state's and batch's shardings.

  metrics: {"sums": {name: (sum, weight)}, "grad_norm", "learning_rate", "finite"}.
  """
  config, objective = setup.config, setup.objective
  k = config.train.microbatches
  apply = _apply_fn(setup, deterministic=not _dropout_active(config))
  param_shardings = setup.shardings.params

  def train_step(state: TrainState, batch):
    weights = objective.term_weights(batch)  # of the whole global batch
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params, micro, micro_rng):
      metrics = apply(params, micro, micro_rng)
      return objective.normalized_loss(metrics, weights), metrics

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if k == 1:
      (_, sums), grads = grad_fn(state.params, batch, rng)
    else:
      micros = _split_microbatches(setup, batch, k)

      def body(carry, xs):
        grad_acc, sums_acc = carry
        micro, index = xs
        (_, sums), grads = grad_fn(state.params, micro, jax.random.fold_in(rng, index))
        grads = jax.lax.with_sharding_constraint(grads, param_shardings)
        return (jax.tree.map(jnp.add, grad_acc, grads), jax.tree.map(jnp.add, sums_acc, sums)), None

      zero_grads = jax.tree.map(jnp.zeros_like, state.params)
      sums_shape = jax.eval_shape(apply, state.params, jax.tree.map(lambda x: x[0], micros), rng)
      zero_sums = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), sums_shape)
      (grads, sums), _ = jax.lax.scan(body, (zero_grads, zero_sums), (micros, jnp.arange(k)))

    grad_norm = optax.global_norm(grads)
    updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    loss = objective.normalized_loss(sums, weights)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state))
    metrics = {"sums": sums, "grad_norm": grad_norm,
               "learning_rate": jnp.asarray(setup.schedule(state.step), jnp.float32),
               "finite": finite}
    return new_state, metrics

  jitted = jax.jit(
      train_step,
      in_shardings=(setup.shardings, batch_shardings(setup)),
      out_shardings=(setup.shardings, sharding.replicated(setup.mesh)),
      donate_argnums=(0,) if donate else ())
  return CompiledStep(setup, jitted)


def make_eval_step(setup: TrainSetup) -> CompiledStep:
  """(params, batch) -> {name: (sum, weight)} on held-out data, deterministic."""
  apply = _apply_fn(setup, deterministic=True)

  def eval_step(params, batch):
    return apply(params, batch, jax.random.PRNGKey(0))

  jitted = jax.jit(eval_step, in_shardings=(setup.shardings.params, batch_shardings(setup)),
                   out_shardings=sharding.replicated(setup.mesh))
  return CompiledStep(setup, jitted)


def all_finite(tree) -> jax.Array:
  """True when every float leaf of `tree` is finite (checked before any checkpoint is written)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)
