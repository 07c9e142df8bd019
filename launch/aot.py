r"""Ahead-of-time fit check: compile the real train step for a TPU slice on this CPU machine.

  JAX_PLATFORMS=cpu python -m launch.aot --config configs/gpt3_175b.py --topology v5p-1024 \
      [--config.train.global_batch_size=2048 ...]

prints one JSON line: `fits`, per-chip `arguments_bytes`, `temporaries_bytes`, `output_bytes`,
`aliased_bytes` (donated state reused for the new state), `total_bytes`, `hbm_bytes`,
`compile_seconds`, the `mesh` used, and analytic `flops_per_step` (XLA's cost analysis counts a
scanned layer once, so FLOPs come from the objective's formula, as in MFU). A compile that runs
out of HBM is an answer, `fits: false` (exit 0); a bad topology or config value is exit code 2
with one line `error: ...` on stderr, before anything is compiled. `--report_json PATH` also writes the
report, with the command and the date, to a file (how results/ keeps a measured fit).

The devices are libtpu's compile-only devices for the slice (launch/topology.py), the mesh,
state shardings and step come from trainlib exactly as train.py builds them, and the state is
never allocated: the step is lowered against ShapeDtypeStructs that carry shardings.
"""

import json
import sys
import time

from absl import flags
from ml_collections import config_flags

import cli
from configs.errors import ConfigError
from launch import memory, topology

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<preset>.py).")
_TOPOLOGY = flags.DEFINE_string(
    "topology", None, "TPU slice: v5p-1024, v4-128, v5e-256, v6e-64, v5p:8x8x8 or 2xv5p-512.")
_JSON = flags.DEFINE_string(
    "report_json", None, "Also write the report, with the command and date, to this JSON file.")
flags.mark_flags_as_required(["config", "topology"])


def _model_summary(config):
  """Parameter count and analytic train FLOPs per token."""
  # late: start-up time (a bad topology name or flag fails before JAX loads)
  import models
  import objectives

  objective = objectives.get(config.objective.name)
  counts = models.param_counts(config.model)
  flops_per_token = objective.flops_per_token(config.model, config.data, config.objective)
  return counts, flops_per_token


def check(config, topology_name):
  """-> the report dict for `config` compiled on `topology_name`. Raises ConfigError first.

  Validation runs before any compile: the topology name, every config check train.py makes
  (trainlib.loop.validate: model, objective, data, optimizer, rules, position table), the mesh
  degrees against the chip count and the batch against the data-parallel degree.
  """
  slice_ = topology.parse_topology(topology_name)  # before importing jax: a bad name fails fast
  # late: start-up time (a bad topology name fails before JAX loads)
  from trainlib import loop
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  from trainlib import step as step_lib

  loop.validate(config)
  counts, flops_per_token = _model_summary(config)
  devices = topology.compile_only_devices(slice_)
  mesh = mesh_lib.make_mesh(config, devices)
  mesh_lib.validate_batch(config, mesh)

  setup = state_lib.build_setup(config, mesh)
  train_step = step_lib.make_train_step(setup)
  lowered = train_step.lower(setup.abstract_state, step_lib.abstract_batch(setup))
  fit = memory.compile_and_measure(lowered, slice_.generation.hbm_bytes)

  tokens_per_step = config.train.global_batch_size * config.data.seq_len
  flops_per_step = flops_per_token * tokens_per_step
  peak = slice_.generation.peak_bf16_flops * slice_.num_chips
  return dict(
      config=config.name, topology=topology_name, libtpu_topology=slice_.libtpu_name,
      num_slices=slice_.num_slices, num_chips=slice_.num_chips,
      mesh=mesh_lib.mesh_dict(mesh), **fit,
      params_total=counts["params_total"],
      global_batch_size=config.train.global_batch_size, seq_len=config.data.seq_len,
      microbatches=config.train.microbatches, remat_policy=config.model.remat_policy,
      dtype=config.model.dtype, attention_impl=config.model.attention_impl,
      attention_kernel=_attention_kernel(config), head_loss=config.model.head_loss,
      flops_per_token=flops_per_token, flops_per_step=flops_per_step,
      # Lower bound on the step time: every chip at its bf16 peak (MFU = this / measured time).
      step_seconds_at_peak=round(flops_per_step / peak, 4))


def _attention_kernel(config):
  """What attention_impl="flash" runs on a TPU at this shape (models.attention.attention_backend)."""
  from models.attention import attention_backend  # late: start-up time (as _model_summary)
  from models.spec import resolve

  if config.model.attention_impl != "flash":
    return None
  spec = resolve(config.model)
  return attention_backend("tpu", spec.dtype, config.data.seq_len, spec.d_head)


def _human(num_bytes):
  return "n/a" if num_bytes is None else f"{num_bytes / 2**30:.2f} GiB"


def main(argv=None):
  extra = cli.parse_flags(sys.argv if argv is None else argv)  # bad flag/override: exit 2
  if len(extra) > 1:
    cli.fail(f"unexpected arguments {extra[1:]}")
  try:
    report = check(_CONFIG.value, _TOPOLOGY.value)
  except ConfigError as e:
    cli.fail(e)
  print(json.dumps(report), flush=True)
  if _JSON.value:
    record = dict(report, command=" ".join(["python -m launch.aot"] + sys.argv[1:]),
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    with open(_JSON.value, "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
  print(f"{report['config']} on {report['topology']} mesh {report['mesh']}: "
        f"{'fits' if report['fits'] else 'does NOT fit'} "
        f"({_human(report['total_bytes'])} of {_human(report['hbm_bytes'])} per chip, "
        f"compiled in {report['compile_seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
  main()
