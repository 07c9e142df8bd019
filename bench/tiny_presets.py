r"""Cost of one training step of the tiny presets (classic and modern pairs) on this CPU.

  JAX_PLATFORMS=cpu python -m bench.tiny_presets [--steps 10 --rounds 3]

Random tokens, the preset's batch and sequence length, a plain AdamW step (forward + backward +
update, no input pipeline). Prints one JSON line per preset: wall and CPU seconds per step (CPU
time counts every thread, so on a shared machine it is the steadier figure) and the projected
time of the preset's num_steps. Medians over --rounds rounds of --steps steps; the load average
at start and end is printed last (bench/machine.py).
"""

import json
import statistics
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import models
from bench import machine
from configs import tiny_decoder, tiny_encoder, tiny_modern_decoder, tiny_modern_encoder

_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per preset per round (after a compile step).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds; the figures are their medians.")


def measure(config, steps, rounds=1):
  model = models.build_model(config.model)
  batch, length = config.train.global_batch_size, config.data.seq_len
  ids = jax.random.randint(jax.random.key(0), (batch, length), 0, config.model.vocab_size)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), ids))["params"]
  optimizer = optax.adamw(config.optim.learning_rate)
  predictions = config.objective.max_predictions_per_seq

  def loss(params):
    if config.model.family == "decoder":
      logits = model.apply({"params": params}, ids)["logits"]
      return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], ids[:, 1:]).mean()
    positions = jnp.tile(jnp.arange(predictions)[None], (batch, 1))
    logits = model.apply({"params": params}, ids, masked_positions=positions)["mlm_logits"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, ids[:, :predictions]).mean()

  @jax.jit
  def step(params, opt_state):
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  state = (params, optimizer.init(params))
  jax.block_until_ready(step(*state))  # compile
  walls, cpus = [], []
  for _ in range(rounds):
    wall, cpu = time.time(), time.process_time()
    for _ in range(steps):
      *state, value = step(*state)
    jax.block_until_ready(value)
    walls.append((time.time() - wall) / steps)
    cpus.append((time.process_time() - cpu) / steps)
  wall, cpu = statistics.median(walls), statistics.median(cpus)
  return {"preset": config.name, "wall_s_per_step": round(wall, 3),
          "cpu_s_per_step": round(cpu, 3), "num_steps": config.train.num_steps,
          "projected_cpu_minutes": round(cpu * config.train.num_steps / 60, 1)}


def main(argv):
  del argv
  record = machine.start()
  for preset in (tiny_encoder, tiny_decoder, tiny_modern_encoder, tiny_modern_decoder):
    print(json.dumps(measure(preset.get_config(), _STEPS.value, _ROUNDS.value)))
  print(json.dumps(machine.finish(record)))


if __name__ == "__main__":
  app.run(main)
