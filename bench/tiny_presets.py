r"""Cost of one training step of the tiny presets (classic and modern pairs) on this CPU.

  JAX_PLATFORMS=cpu python -m bench.tiny_presets [--steps 10 --rounds 3]

Random tokens in the preset's batch layout, trainlib's real step (bench/jax_trainer.py: the
preset's optimizer, clipping, donated state; on CPU the devices train.py would use; no input
pipeline). Prints one JSON line per preset: wall and CPU seconds per step (CPU
time counts every thread, so on a shared machine it is the steadier figure) and the projected
time of the preset's num_steps. Medians over --rounds rounds of --steps steps; the load average
at start and end is printed last (bench/machine.py).
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax

from bench import machine
from bench.jax_trainer import JaxTrainer
from configs import tiny_decoder, tiny_encoder, tiny_modern_decoder, tiny_modern_encoder

_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per preset per round (after a compile step).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds; the figures are their medians.")


def measure(config, steps, rounds=1):
  """Wall and CPU seconds per step of trainlib's real step, on the devices train.py would use."""
  trainer = JaxTrainer(config)  # compiles
  walls, cpus = [], []
  for _ in range(rounds):
    wall, cpu = time.time(), time.process_time()
    for _ in range(steps):
      trainer.step()
    walls.append((time.time() - wall) / steps)
    cpus.append((time.process_time() - cpu) / steps)
  wall, cpu = statistics.median(walls), statistics.median(cpus)
  return {"preset": config.name, "devices": trainer.devices, "wall_s_per_step": round(wall, 3),
          "cpu_s_per_step": round(cpu, 3), "num_steps": config.train.num_steps,
          "projected_minutes": round(wall * config.train.num_steps / 60, 1)}


def main(argv):
  del argv
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  from trainlib import cpu_devices, xla_options
  jax.config.update("jax_num_cpu_devices", cpu_devices.usable_cores())  # before JAX starts
  xla_options.use_cpu_flags()  # as train.py's, before JAX starts
  record = machine.start()
  for preset in (tiny_encoder, tiny_decoder, tiny_modern_encoder, tiny_modern_decoder):
    print(json.dumps(measure(preset.get_config(), _STEPS.value, _ROUNDS.value)))
  print(json.dumps(machine.finish(record)))


if __name__ == "__main__":
  app.run(main)
