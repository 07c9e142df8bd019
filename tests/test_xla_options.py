"""trainlib/xla_options.py: the XLA CPU flags pancake sets, that the entry points set them, and
that they change the compiled schedule but not one bit of a train step's results."""

import os
import subprocess
import sys

from trainlib import xla_options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"

# A fresh process with 2 CPU devices runs 3 train steps of the tiny decoder on a 2-way data mesh,
# then prints a hash of the compiled step's HLO text and one of its parameters' bytes.
_STEPS = """
import hashlib
import jax, numpy as np
from tests.train_testlib import tiny_config, random_batch
from trainlib import mesh as mesh_lib, state as state_lib, step as step_lib
c = tiny_config(); c.mesh.data = 2
mesh = mesh_lib.make_mesh(c, jax.devices()[:2])
state, setup = state_lib.init_state_sharded(c, mesh)
step = step_lib.make_train_step(setup)
batch = step_lib.global_batch(setup, random_batch(c, setup.objective, 0))
hlo = step.lower(state, batch).compile().as_text()
for _ in range(3):
  state, _ = step(state, batch)
h = hashlib.sha256()
for leaf in jax.tree.leaves(jax.device_get(state.params)):
  h.update(np.ascontiguousarray(leaf).tobytes())
print(hashlib.sha256(hlo.encode()).hexdigest(), h.hexdigest())
"""


def _run(code, xla_flags, use_cpu_flags=False):
  env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu")
  prefix = "from trainlib import xla_options; xla_options.use_cpu_flags()\n" if use_cpu_flags else ""
  out = subprocess.run([sys.executable, "-c", prefix + code], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout.split()


def test_flags_are_added_and_a_users_own_value_wins():
  assert xla_options.with_cpu_flags("") == f"{FLAG}=false"
  assert xla_options.with_cpu_flags("--xla_force_host_platform_device_count=8") == (
      f"--xla_force_host_platform_device_count=8 {FLAG}=false")
  assert xla_options.with_cpu_flags(f"{FLAG}=true") == f"{FLAG}=true"
  environ = {"XLA_FLAGS": "--a=1"}
  xla_options.use_cpu_flags(environ)
  xla_options.use_cpu_flags(environ)  # idempotent
  assert environ["XLA_FLAGS"] == f"--a=1 {FLAG}=false"


def test_entry_points_set_the_flags_before_jax_starts():
  code = ("import os, jax\nimport cli\n"
          "def main(argv):\n"
          "  jax.devices()\n"
          "  print(os.environ['XLA_FLAGS'])\n"
          "cli.run(main)\n")
  out = _run(code, "--xla_force_host_platform_device_count=2")
  assert " ".join(out) == f"--xla_force_host_platform_device_count=2 {FLAG}=false"


def test_the_schedule_changes_and_the_results_are_bitwise_the_same():
  devices = "--xla_force_host_platform_device_count=2"
  hlo_default, params_default = _run(_STEPS, f"{devices} {FLAG}=true")
  hlo_flagged, params_flagged = _run(_STEPS, devices, use_cpu_flags=True)
  assert hlo_flagged != hlo_default  # the flag took effect: another compiled schedule
  assert params_flagged == params_default
