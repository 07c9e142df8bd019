"""`python -m launch.aot`: the real train step compiled for a TPU slice on this CPU machine.

Shapes are tiny because TPU compile time grows with them (seconds here, minutes for a pod preset).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from configs import presets
from configs.errors import ConfigError
from launch import aot, memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 1 layer, d_model 64, 32-token sequences, vocabulary 256: compiles for TPU in seconds.
TINY = ["--config", "configs/tiny_decoder.py", "--config.model.num_layers=1",
        "--config.model.d_model=64", "--config.model.vocab_size=256", "--config.model.max_len=32",
        "--config.data.seq_len=32", "--config.train.global_batch_size=8"]


def _aot(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)  # the fake CPU device count of conftest plays no part here
  return subprocess.run([sys.executable, "-m", "launch.aot", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def _report(out):
  assert out.returncode == 0, out.stderr[-2000:]
  lines = [line for line in out.stdout.splitlines() if line.strip()]
  assert len(lines) == 1, out.stdout  # exactly one JSON line on stdout
  return json.loads(lines[0])


@pytest.mark.slow
def test_tiny_decoder_fits_a_v5p_8_and_reports_per_chip_memory():
  report = _report(_aot(*TINY, "--topology", "v5p-8", "--config.mesh.data=2",
                        "--config.mesh.fsdp=2"))
  assert report["fits"] is True and report["error"] is None
  assert (report["libtpu_topology"], report["num_chips"]) == ("v5p:2x2x1", 4)
  assert report["mesh"] == {"data": 2, "fsdp": 2, "tensor": 1}
  assert report["hbm_bytes"] == 95 * 2**30
  parts = [report[k] for k in ("arguments_bytes", "output_bytes", "temporaries_bytes")]
  assert all(isinstance(p, int) and p > 0 for p in parts)
  assert report["total_bytes"] == (report["arguments_bytes"] + report["output_bytes"]
                                   - report["aliased_bytes"] + report["temporaries_bytes"])
  # The donated state is reused for the new state, so most of the output aliases the input.
  assert report["aliased_bytes"] > 0.9 * report["output_bytes"]
  # float32 params + two Adam moments, sharded 2 ways over fsdp, are a floor for the arguments.
  assert report["arguments_bytes"] >= 3 * 4 * report["params_total"] / 2
  assert report["flops_per_step"] == report["flops_per_token"] * 8 * 32
  assert report["compile_seconds"] > 0


@pytest.mark.slow
def test_v4_compiles_for_megacore_chips():
  """v4-8 counts 8 TensorCores: 4 chips, each one JAX device (megacore) with 32 GiB."""
  report = _report(_aot(*TINY, "--topology", "v4-8", "--config.mesh.fsdp=4"))
  assert report["fits"] is True and report["error"] is None
  assert (report["libtpu_topology"], report["num_chips"]) == ("v4:2x2x1", 4)
  assert report["mesh"] == {"data": 1, "fsdp": 4, "tensor": 1}
  assert report["hbm_bytes"] == 32 * 2**30


@pytest.mark.slow
def test_a_model_too_big_for_hbm_reports_fits_false_not_a_crash():
  # A 2^24-row embedding and its [8, 32, 2^24] logits need ~24 GiB of temporaries on a 16 GiB v5e
  # (the logits path: the tiled head would not build them).
  out = _aot(*TINY, "--config.model.vocab_size=16777216", "--config.model.head_loss=logits",
             "--topology", "v5e-4")
  report = _report(out)
  assert report["fits"] is False
  assert "RESOURCE_EXHAUSTED" in report["error"]
  assert report["required_bytes"] > report["hbm_bytes"] == 16 * 2**30
  assert report["total_bytes"] is None


@pytest.mark.parametrize("args, message", [
    (["--topology", "v5p-7"], "--topology='v5p-7'"),
    (["--topology", "v5p-8", "--config.model.nope=1"], "nope"),
])
def test_bad_topology_or_config_key_exits_2_with_one_line(args, message):
  out = _aot(*TINY, *args)
  assert out.returncode == 2, out.stderr[-2000:]
  errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and message in errors[0], out.stderr[-2000:]
  assert out.stdout == ""


def _tiny_config(**overrides):
  config = presets.tiny_decoder()
  config.model.update(num_layers=1, d_model=64, vocab_size=256, max_len=32)
  config.data.seq_len = 32
  config.train.global_batch_size = 8
  for key, value in overrides.items():
    section, field = key.split("__")
    config[section][field] = value
  return config


@pytest.mark.parametrize("overrides, topology_name, message", [
    ({}, "v9-8", "unknown TPU generation"),
    ({"mesh__data": 8}, "v5p-8", "needs 8 devices but 4 exist"),
    ({"train__global_batch_size": 6}, "v5p-8", "global_batch_size=6"),
    ({"model__num_heads": 3}, "v5p-8", "model.d_model=64 is not divisible"),
    ({"data__seq_len": 64}, "v5p-8", "longer than the position table"),
])
def test_bad_inputs_raise_config_error_before_compiling(overrides, topology_name, message):
  with pytest.raises(ConfigError, match=re.escape(message)):
    aot.check(_tiny_config(**overrides), topology_name)


def test_out_of_memory_messages_give_the_required_bytes():
  xla = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
         "temporaries (352.10G) exceeds available HBM (95.74G).")
  assert memory.is_out_of_memory(xla)
  assert memory._required_bytes(xla) == int(352.10 * 2**30)
  assert memory._required_bytes("Used 120.5G of 95.74G hbm. Exceeded hbm capacity") == int(
      120.5 * 2**30)
  assert memory._required_bytes("RESOURCE_EXHAUSTED: something else") is None
  assert not memory.is_out_of_memory("INVALID_ARGUMENT: bad sharding")
