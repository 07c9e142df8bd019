"""launch/: TPU slice names, pod/SLURM scripts (dry runs), the local launcher, pod recipes."""

import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from configs import pod_recipes, presets
from configs.errors import ConfigError
from launch import local, topology

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- topology names

@pytest.mark.parametrize("name, libtpu_name, chips", [
    ("v5p-8", "v5p:2x2x1", 4),
    ("v5p-16", "v5p:2x2x2", 8),
    ("v5p-128", "v5p:4x4x4", 64),
    ("v5p-1024", "v5p:8x8x8", 512),
    ("v5p-2048", "v5p:8x8x16", 1024),
    ("v4-8", "v4:2x2x1", 4),
    ("v5e-8", "v5e:2x4", 8),
    ("v5litepod-256", "v5e:16x16", 256),
    ("v6e-64", "v6e:8x8", 64),
    ("v5p:4x4x8", "v5p:4x4x8", 128),
])
def test_slice_names_map_to_chip_grids(name, libtpu_name, chips):
  slice_ = topology.parse_topology(name)
  assert slice_.libtpu_name == libtpu_name
  assert slice_.num_chips == chips


def test_multislice_prefix_and_hbm():
  slice_ = topology.parse_topology("2xv5p-512")
  assert (slice_.num_slices, slice_.chips_per_slice, slice_.num_chips) == (2, 256, 512)
  assert slice_.generation.hbm_bytes == 95 * 2**30
  assert topology.parse_topology("v5e-16").generation.hbm_bytes == 16 * 2**30


@pytest.mark.parametrize("bad", ["v5p-7", "v5p-24", "v9-8", "tpu", "v5p:8x8", "v5e:2x2x2", ""])
def test_bad_slice_names_raise_config_error(bad):
  with pytest.raises(ConfigError, match="--topology"):
    topology.parse_topology(bad)


def test_compile_only_devices_match_the_chip_count():
  devices = topology.compile_only_devices(topology.parse_topology("v5p-16"))
  assert len(devices) == 8
  assert {d.platform for d in devices} == {"tpu"}
  two = topology.compile_only_devices(topology.parse_topology("2xv5p-8"))
  assert sorted({d.slice_index for d in two}) == [0, 1]


# ---------------------------------------------------------------- scripts, dry run

def _run_script(args, env):
  full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
  return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


def test_tpu_pod_dry_run_prints_setup_then_train_on_all_workers():
  env = dict(TPU="my-v5p", ZONE="us-east5-a", PROJECT="proj", WORKDIR="gs://b/run",
             CONFIG="configs/base.py", REPO_URL="https://example.com/pancake.git",
             COMMIT="0123abc", TRAIN_ENV="LIBTPU_INIT_ARGS=--xla_x=1")
  out = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run", "--",
                     "--config.train.num_steps=10", "--config.name=a b"], env)
  assert out.returncode == 0, out.stderr
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 2
  setup, train = (shlex.split(line) for line in lines)
  prefix = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-v5p", "--zone", "us-east5-a",
            "--worker=all", "--project", "proj", "--command"]
  assert setup[:-1] == prefix and train[:-1] == prefix
  # The remote commands are shell text too: parse them as the worker's shell would.
  assert "git clone https://example.com/pancake.git pancake" in setup[-1]
  assert "git checkout --quiet --detach 0123abc" in setup[-1]
  assert "pip install --quiet -r requirements.txt" in setup[-1]
  remote = shlex.split(train[-1])
  start = remote.index("train.py")
  assert remote[:4] == ["cd", "pancake", "&&", "LIBTPU_INIT_ARGS=--xla_x=1"]
  assert remote[start:start + 9] == [
      "train.py", "--config", "configs/base.py", "--workdir", "gs://b/run", "--multihost",
      "--config.train.num_steps=10", "--config.name=a b", "2>&1"]


def test_tpu_pod_skip_setup_and_missing_variables():
  env = dict(TPU="t", ZONE="z", WORKDIR="/w", CONFIG="configs/base.py", REPO_URL="u", COMMIT="c")
  out = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run", "--skip_setup"], env)
  assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 1
  assert "train.py" in out.stdout and "git clone" not in out.stdout
  missing = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run"], {"ZONE": "z"})
  assert missing.returncode == 2 and "TPU is not set" in missing.stderr
  bad_config = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run"],
                           {**env, "CONFIG": "configs/nope.py"})
  assert bad_config.returncode == 2 and "configs/nope.py" in bad_config.stderr


def test_slurm_dry_run_one_process_per_task_with_first_node_as_coordinator():
  env = dict(SLURM_JOB_NODELIST="gpu[07-08],gpu10", SLURM_NTASKS="3", SLURM_JOB_ID="4242",
             SLURM_SUBMIT_DIR=ROOT, WORKDIR="/shared/run", CONFIG="configs/base.py")
  out = _run_script(["bash", "launch/slurm.sbatch", "--config.train.num_steps=5"], {
      **env, "DRY_RUN": "1", "PATH": "/usr/bin:/bin"})  # no scontrol on PATH: bash fallback
  assert out.returncode == 0, out.stderr
  srun = shlex.split(out.stdout)
  assert srun[:2] == ["srun", "--kill-on-bad-exit=1"] and srun[-3:-1] == ["bash", "-c"]
  task = shlex.split(srun[-1])
  assert task[task.index("--coordinator_address") + 1] == "gpu07:12597"  # 12355 + 4242 % 1000
  assert task[task.index("--num_processes") + 1] == "3"
  # Left for each task's shell to expand, so every task gets its own id.
  assert task[task.index("--process_id") + 1] == "$SLURM_PROCID"
  assert task[-1] == "--config.train.num_steps=5" and "--multihost" in task
  missing = _run_script(["bash", "launch/slurm.sbatch"], {"DRY_RUN": "1", "WORKDIR": "/w"})
  assert missing.returncode == 2 and "SLURM_JOB_NODELIST" in missing.stderr


# ---------------------------------------------------------------- local multi-process launcher

_WORKER = textwrap.dedent("""
    import argparse
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    parser = argparse.ArgumentParser()
    parser.add_argument("--multihost", action="store_true")
    parser.add_argument("--coordinator_address")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)
    parser.add_argument("--fail_on", type=int, default=-1)
    args = parser.parse_args()
    if args.process_id == args.fail_on:  # e.g. a bad config on one host: the others would wait
      raise SystemExit(3)
    jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    local = np.arange(jax.local_device_count(), dtype=np.float32) + 100 * jax.process_index()
    x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local)
    total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(x)
    print("RESULT", jax.process_index(), jax.process_count(), jax.device_count(), float(total))
""")


@pytest.mark.slow
def test_local_launcher_joins_two_processes_in_one_collective(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text(_WORKER)
  results = local.run_local([str(script)], num_processes=2, devices_per_process=3,
                            timeout=120, echo=False)
  assert [r.returncode for r in results] == [0, 0], [r.output for r in results]
  # Each process holds 3 of the 6 devices; the sum runs across both over gloo:
  # (0+1+2) + (100+101+102) = 306.
  for i, r in enumerate(results):
    assert f"RESULT {i} 2 6 306.0" in r.output


@pytest.mark.slow
def test_local_launcher_stops_the_job_when_one_process_fails(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text(_WORKER)
  code = subprocess.run(
      [sys.executable, "-m", "launch.local", "--num_processes", "2", "--devices_per_process", "1",
       "--timeout", "120", "--", str(script), "--fail_on", "1"],
      cwd=ROOT, capture_output=True, text=True, timeout=180).returncode
  assert code == 3


# ---------------------------------------------------------------- pod recipes

def _preset_names():
  names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                 if f.startswith(("bert_", "gpt2_", "gpt3_", "ettin_", "llama")) and f.endswith(".py"))
  assert len(names) >= 27
  return names


def test_every_pod_preset_has_a_consistent_pod_recipe():
  import importlib

  import models
  from trainlib import mesh as mesh_lib

  assert set(_preset_names()) == {pod_recipes.preset(name) for name in pod_recipes.RECIPES}
  for name in pod_recipes.RECIPES:
    preset = importlib.import_module(f"configs.{pod_recipes.preset(name)}").get_config()
    config = pod_recipes.apply(preset, name)
    assert 7 <= config.model.num_layers <= 96
    assert config.model.dtype == "bfloat16"
    models.validate(config.model)
    # The mesh covers the slice exactly and the batch splits over it (what launch.aot checks
    # before compiling), using libtpu's compile-only devices for the slice.
    devices = topology.compile_only_devices(
        topology.parse_topology(pod_recipes.RECIPES[name]["topology"]))
    mesh = mesh_lib.make_mesh(config, devices)
    mesh_lib.validate_batch(config, mesh)
  # Every Ettin size at both of ModernBERT's stages, and the 8k stage's MLM budget is 30%.
  for family in ("encoder", "decoder"):
    for size in presets.ETTIN_TABLE:
      short, long = pod_recipes.overrides(f"ettin_{family}_{size}"), pod_recipes.overrides(
          f"ettin_{family}_{size}_8k")
      assert "data.seq_len" not in short and long["data.seq_len"] == 8192
  assert pod_recipes.overrides("ettin_encoder_1b_8k")[
      "objective.max_predictions_per_seq"] == -(-3 * 8192 // 10)


def test_recipe_flags_reach_the_pod_launcher():
  env = dict(TPU="t", ZONE="z", WORKDIR="gs://b/r", REPO_URL="u", COMMIT="c", RECIPE="gpt3_175b")
  out = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run", "--skip_setup", "--",
                     "--config.train.num_steps=10"], env)
  assert out.returncode == 0, out.stderr
  remote = shlex.split(shlex.split(out.stdout)[-1])
  args = remote[remote.index("train.py") + 1:]
  assert args[:2] == ["--config", "configs/gpt3_175b.py"]
  recipe_flags = pod_recipes.flags("gpt3_175b")
  assert "--config.train.global_batch_size=2048" in recipe_flags
  # Recipe flags first, the user's after them (absl: the last value of a flag wins).
  start = args.index(recipe_flags[0])
  assert args[start:start + len(recipe_flags) + 1] == recipe_flags + ["--config.train.num_steps=10"]
  bad = _run_script(["bash", "launch/tpu_pod.sh", "--dry_run"], {**env, "RECIPE": "gpt9"})
  assert bad.returncode == 2 and "RECIPE=gpt9" in bad.stderr


def test_the_splash_attention_page_quotes_its_aot_reports():
  """results/splash_attention/README.md's memory and step-time figures are its JSONs' (launch.aot
  --report_json), so a rerun that changes them fails here until the page is updated."""
  import json
  folder = os.path.join(ROOT, "results", "splash_attention")
  page = open(os.path.join(folder, "README.md")).read()
  for name in ("windowed", "global"):
    report = json.load(open(os.path.join(folder, f"ettin_encoder_1b_{name}.json")))
    assert report["fits"] and report["attention_kernel"] == "splash"
    assert (report["global_batch_size"], report["seq_len"]) == (64, 8192)
    for figure in (f"{report['total_bytes'] / 2**30:.2f} GiB",
                   f"{report['temporaries_bytes'] / 2**30:.2f} GiB",
                   f"{report['step_seconds_at_peak']:.3f}"):
      assert figure in page, (name, figure)
