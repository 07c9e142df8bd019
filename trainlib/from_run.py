"""init.from_run: step 0 of a run is another run's checkpointed parameters, under any family,
mask or objective (Ettin's encoder-from-decoder and decoder-from-encoder continued training).

A parameter is carried when the source checkpoint has one of the same path and shape; the rest
of the new model is initialised as a fresh run would be (config.seed), and source parameters the
new model has no place for are dropped. Same name, different shape is an error: such a model
is not the same network. Encoders and decoders of one shape share their embeddings and blocks
(models/), so an encoder from a decoder carries those and gets a new embedding LayerNorm,
segment table, MLM head and pooler/NSP head; a decoder from an encoder drops those and gets a
new final LayerNorm (pre-LN) or untied lm_head.

`plan(config)` runs before anything is built (shapes come from jax.eval_shape; a ConfigError
names init.from_run or init.from_step); `carried_params(setup, plan)` restores only the carried
arrays, straight onto the new run's shardings, verified against the source checksums. The plan is
printed and written to `<workdir>/init_from_run.json` (`record`) by trainlib/step0.py, the
loop's one seam for step 0.
"""

import dataclasses

import jax
from absl import logging
from flax import linen as nn

import models
from configs import base
from configs.errors import ConfigError
from models import counting
from trainlib import checkpoint, fs, rundir
from trainlib import state as state_lib


@dataclasses.dataclass(frozen=True)
class Plan:
  from_run: str
  step: int
  carried: tuple[str, ...]   # parameter paths ("stack/layers/mlp/wi/kernel") taken from the source
  new: tuple[str, ...]       # initialised fresh (the source has no such parameter)
  dropped: tuple[str, ...]   # in the source, not in the new model

  def record(self) -> dict:
    return dataclasses.asdict(self)

  def summary(self) -> str:
    return (f"init.from_run={self.from_run} step {self.step}: carried {len(self.carried)} "
            f"parameters; new {len(self.new)}: {', '.join(self.new) or '-'}; dropped "
            f"{len(self.dropped)}: {', '.join(self.dropped) or '-'}")


def _shapes(model_cfg) -> dict[str, tuple]:
  params = nn.unbox(counting.abstract_params(model_cfg))
  return {"/".join(k.key for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def _source_model(source, field):
  """The source run's model section over today's defaults (runs of older code lack new fields)."""
  trained = (rundir.read_config(source) or {}).get("model")
  if not isinstance(trained, dict):
    raise ConfigError(f"{field}={source!r} has no readable {rundir.CONFIG} with a model "
                      "section; give the workdir of a pancake run")
  model = base.get_config().model
  unknown = sorted(set(trained) - set(model))
  if unknown:
    raise ConfigError(f"{field}={source!r}: its {rundir.CONFIG} has model fields this code "
                      f"does not know ({', '.join(unknown)})")
  model.update(trained)
  models.validate(model)
  return model


def validate(config) -> None:
  """The init.from_run / from_step values alone (the source is read by `plan`)."""
  source, wanted = config.init.from_run, config.init.from_step
  if source and config.init.from_hf:
    raise ConfigError(f"init.from_run={source!r} and init.from_hf={config.init.from_hf!r} are "
                      "both set; give one source of step-0 weights")
  if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < -1:
    raise ConfigError(f"init.from_step={wanted!r} must be a checkpoint step, or -1 for the latest")
  if wanted != -1 and not source:
    raise ConfigError(f"init.from_step={wanted} is set but init.from_run is empty")


def plan(config) -> Plan:
  """What init.from_run would carry, from config.json files and shapes alone (ConfigError)."""
  validate(config)
  source, wanted = config.init.from_run, config.init.from_step
  field = "init.from_run"
  if not fs.isdir(source):
    raise ConfigError(f"{field}={source!r} is not a directory; give the workdir of a pancake run")
  steps = rundir.checkpoint_steps(source)
  if not steps:
    raise ConfigError(f"{field}={source!r} holds no checkpoint (no "
                      f"{rundir.checkpoints_dir(source)}/<step>)")
  if wanted != -1 and wanted not in steps:
    raise ConfigError(f"init.from_step={wanted} is not a checkpoint of {field}={source!r}; it "
                      f"has steps {', '.join(map(str, steps))}")
  step = steps[-1] if wanted == -1 else wanted
  theirs, ours = _shapes(_source_model(source, field)), _shapes(config.model)
  clash = [f"{p} {theirs[p]} -> {ours[p]}" for p in sorted(ours) if p in theirs
           and theirs[p] != ours[p]]
  if clash:
    raise ConfigError(f"{field}={source!r}: {len(clash)} parameter(s) have other shapes in this "
                      f"model: {'; '.join(clash[:3])}{' ...' if len(clash) > 3 else ''}")
  carried = tuple(sorted(p for p in ours if p in theirs))
  if not carried:
    raise ConfigError(f"{field}={source!r} shares no parameter with this model "
                      "(model.scan_layers must match, for one)")
  return Plan(from_run=source, step=step, carried=carried,
              new=tuple(sorted(p for p in ours if p not in theirs)),
              dropped=tuple(sorted(p for p in theirs if p not in ours)))


def _nest(flat: dict) -> dict:
  out = {}
  for path, value in flat.items():
    node = out
    *parents, last = path.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[last] = value
  return out


def carried_params(setup, run_plan: Plan):
  """Step 0's parameters: the fresh ones of `setup` with the carried ones replaced by the
  source's."""
  flat_abstract = {"/".join(k.key for k in path): leaf for path, leaf in
                   jax.tree_util.tree_flatten_with_path(setup.abstract_state.params)[0]}
  wanted = _nest({p: flat_abstract[p] for p in run_plan.carried})
  restored, _ = checkpoint.restore_params(rundir.checkpoints_dir(run_plan.from_run),
                                          wanted, run_plan.step)
  carried = {"/".join(k.key for k in path): leaf for path, leaf in
             jax.tree_util.tree_flatten_with_path(restored)[0]}
  fresh = state_lib.init_params(setup)
  params = jax.tree_util.tree_map_with_path(
      lambda path, leaf: carried.get("/".join(k.key for k in path), leaf), fresh)
  logging.info("%s", run_plan.summary())
  return params
