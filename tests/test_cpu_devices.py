"""trainlib/cpu_devices.py: how many CPU devices a run asks for, and that JAX gives them."""

import os
import subprocess
import sys

import pytest

from configs.errors import ConfigError
from tests.train_testlib import tiny_config
from trainlib import cpu_devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(batch=16, microbatches=1, **mesh):
  c = tiny_config()
  c.train.global_batch_size, c.train.microbatches = batch, microbatches
  for key, value in mesh.items():
    c.mesh[key] = value
  return c


def test_auto_takes_the_most_cores_that_divide_each_micro_batch():
  assert cpu_devices.device_count(_config(16), cores=2) == 2
  assert cpu_devices.device_count(_config(16), cores=8) == 8
  assert cpu_devices.device_count(_config(12), cores=8) == 6
  assert cpu_devices.device_count(_config(7), cores=4) == 1
  assert cpu_devices.device_count(_config(16, microbatches=8), cores=4) == 2  # micro-batch of 2
  assert cpu_devices.device_count(_config(16), cores=1) == 1


def test_explicit_meshes_multihost_and_explicit_counts_are_left_alone():
  assert cpu_devices.device_count(_config(16, data=1), cores=2) is None
  assert cpu_devices.device_count(_config(16, fsdp=2), cores=4) is None
  assert cpu_devices.device_count(_config(16, dcn_data=2), cores=4) is None
  assert cpu_devices.device_count(_config(16), cores=2, multiprocess=True) is None
  assert cpu_devices.device_count(_config(16, cpu_devices=3), cores=2) == 3


@pytest.mark.parametrize("bad", [-1, -8])  # (ConfigDict itself refuses non-ints)
def test_bad_counts_are_config_errors(bad):
  with pytest.raises(ConfigError, match=r"mesh.cpu_devices=.* must be an integer >= 0"):
    cpu_devices.device_count(_config(16, cpu_devices=bad), cores=2)


def test_the_tests_fake_device_flag_wins():
  assert "xla_force_host_platform_device_count" in os.environ["XLA_FLAGS"]  # conftest.py
  assert cpu_devices.use_cpu_cores(_config(16)) is None


def test_jax_starts_with_the_requested_devices():
  # A fresh process without the tests' flag, as train.py starts: batch 12 on 8 "cores" -> 6.
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  code = ("from tests.train_testlib import tiny_config\n"
          "from trainlib import cpu_devices\n"
          "c = tiny_config(); c.train.global_batch_size = 12; c.mesh.cpu_devices = 6\n"
          "assert cpu_devices.use_cpu_cores(c) == 6\n"
          "import jax; print(jax.device_count(), jax.default_backend())\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split() == ["6", "cpu"]
