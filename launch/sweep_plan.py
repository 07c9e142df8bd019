"""Loads a sweep file, checks every run's config and overrides, and turns it into commands.

A sweep file (configs/sweeps/*.py) returns plain data from `get_sweep()` (format in
configs/sweeps/__init__.py). Before anything runs, each run's config file is loaded and its
overrides applied here, in-process, so a misspelt field or a wrongly typed value stops the whole
sweep with a ConfigError naming the run, instead of failing run 7 of 20 an hour later.
"""

import ast
import importlib.util
import os
import re
import shlex
import sys

from configs import paths
from configs.errors import ConfigError

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("ablation", "scaling", "lr_transfer", "branches")
BUDGETS = ("tokens", "compute", None)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

# Command templates: {python}, {config}, {workdir} and {suites} are filled in; the run's
# overrides follow as --config.a.b=value. Tests swap in a fake entry point.
TRAIN_COMMAND = "{python} train.py --config {config} --workdir {workdir}"
EVAL_COMMAND = "{python} eval.py --config {config} --workdir {workdir} --suite {suites}"


def _load_module(path, module_name):
  """Imports a .py file by path (config files import `configs.*`, so the repo is on sys.path)."""
  if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)
  resolved = path if os.path.exists(path) else os.path.join(REPO_DIR, path)
  if not os.path.isfile(resolved):
    raise ConfigError(f"{module_name}={path!r}: no such file (relative paths are tried from the "
                      f"current directory and from {REPO_DIR})")
  spec = importlib.util.spec_from_file_location(module_name, resolved)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(spec):
  """`path.py[:arg]` -> the ConfigDict its get_config(arg) returns (as config_flags does)."""
  path, *arg = spec.split(":", 1)
  module = _load_module(path, "config")
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config={spec!r}: {path} defines no get_config()")
  return module.get_config(*arg)


def _check_name(field, name):
  if not isinstance(name, str) or not _SAFE_NAME.match(name):
    raise ConfigError(f"{field}={name!r} must be a non-empty name of letters, digits, '_', "
                      f"'.' or '-' (it becomes a directory name)")


def load_sweep(path):
  """The validated sweep dict of a sweep file, `path.py[:arg]` (get_sweep(arg), as configs take
  `:arg`), with "source" set to that spec."""
  file, *arg = path.split(":", 1)
  module = _load_module(file, "sweep")
  if not hasattr(module, "get_sweep"):
    raise ConfigError(f"--sweep={path!r} defines no get_sweep()")
  sweep = dict(module.get_sweep(*arg))
  _check_name("sweep name", sweep.get("name"))
  where = f"sweep {sweep['name']!r}"
  if sweep.get("kind") not in KINDS:
    raise ConfigError(f"{where}: kind={sweep.get('kind')!r} is not one of {KINDS}")
  if sweep.get("budget") not in BUDGETS:
    raise ConfigError(f"{where}: budget={sweep.get('budget')!r} is not one of {BUDGETS}")
  if not isinstance(sweep.get("budget_note", ""), str):
    raise ConfigError(f"{where}: budget_note={sweep['budget_note']!r} must be a string")
  runs = sweep.get("runs")
  if not isinstance(runs, list) or not runs:
    raise ConfigError(f"{where}: runs={runs!r} must be a non-empty list")
  seen = set()
  for run in runs:
    if not isinstance(run, dict) or not isinstance(run.get("config"), str):
      raise ConfigError(f"{where}: run {run!r} needs a name and a config path")
    _check_name(f"{where}: run name", run.get("name"))
    if run["name"] in seen:
      raise ConfigError(f"{where}: run name {run['name']!r} appears twice")
    if not isinstance(run.get("overrides", {}), dict):
      raise ConfigError(f"{where}, run {run['name']!r}: overrides must be a dict")
    _check_from_runs(where, run, seen)
    seen.add(run["name"])
  sweep.setdefault("seeds", [0])
  sweep.setdefault("eval_suites", "")
  sweep.setdefault("description", "")
  sweep["source"] = path
  return sweep


def _check_from_runs(where, run, earlier):
  """A run's "from_runs" ({config field: run name}) may only name runs listed before it: those
  finish (local, tpu) or are submitted (slurm, as a dependency) first."""
  from_runs = run.get("from_runs", {})
  if not isinstance(from_runs, dict):
    raise ConfigError(f"{where}, run {run['name']!r}: from_runs={from_runs!r} must be a dict "
                      "{config field: earlier run name}")
  for field, source in from_runs.items():
    if source not in earlier:
      raise ConfigError(f"{where}, run {run['name']!r}: from_runs {field}={source!r} is not a run "
                        f"listed before it (earlier runs: {', '.join(sorted(earlier)) or 'none'})")


def _coerce(key, value, current):
  """`value` as the type of the field it replaces; strings (from the command line) are parsed."""
  kind = type(current)
  if isinstance(value, str) and kind is not str:
    text = value.strip()
    if kind is bool and text.lower() in ("true", "false"):
      return text.lower() == "true"
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      pass
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if type(value) is not kind:
    raise ConfigError(f"override {key}={value!r} has type {type(value).__name__}, but the "
                      f"field holds {kind.__name__} (currently {current!r})")
  return value


def apply_overrides(config, overrides, where="override"):
  """Sets dotted `overrides` on `config` in place; unknown fields and wrong types raise."""
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for i, part in enumerate(parents):
      if part not in node or not hasattr(node[part], "keys"):
        raise ConfigError(f"{where}: override {key}={value!r}: no section "
                          f"{'.'.join(parents[:i + 1])!r} in the config")
      node = node[part]
    if leaf not in node:
      raise ConfigError(f"{where}: override {key}={value!r}: no field {key!r}; fields here are "
                        f"{', '.join(sorted(node.keys()))}")
    try:
      node[leaf] = _coerce(key, value, node[leaf])
    except ConfigError as e:
      raise ConfigError(f"{where}: {e}") from None
  return config


def parse_assignments(items):
  """["a.b=1", ...] from the command line -> {"a.b": "1"} (typed later against the config)."""
  out = {}
  for item in items or ():
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ConfigError(f"--override={item!r} is not of the form section.field=value")
    out[key.strip()] = value
  return out


def _validate(config, where):
  """train.py's own checks that need neither devices nor data (models, objective, data,
  optimizer, sharding rules), so a bad grid point fails here rather than hours into a sweep."""
  from trainlib import loop  # late: start-up time (JAX loads only when a sweep is planned)
  try:
    loop.validate(config)
  except ConfigError as e:
    raise ConfigError(f"{where}: {e}") from None


def plan(sweep, root, seeds=None, extra_overrides=None, eval_suites=None, validate=True):
  """One entry per (run, seed), in sweep order, each checked against its config.

  Each seed sets config.seed and config.data.seed (init, dropout, data order and masks), and
  config.name is the run name, so config.json says which row of the table a run is. A run's
  from_runs fields are set to the workdir of the named run with the same seed (e.g. init.from_run
  of a continued-training run), and "after" lists those runs' (name, seed).
  """
  seeds = list(sweep["seeds"] if seeds is None else seeds)
  if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
    raise ConfigError(f"seeds={seeds!r} must be a non-empty list of non-negative integers")
  suites = sweep["eval_suites"] if eval_suites is None else eval_suites
  root = paths.absolute(root)
  planned = []
  for run in sweep["runs"]:
    for seed in seeds:
      sources = {field: os.path.join(root, rel_workdir(source, seed))
                 for field, source in run.get("from_runs", {}).items()}
      overrides = {"name": run["name"], "seed": seed, "data.seed": seed,
                   **run.get("overrides", {}), **sources, **(extra_overrides or {})}
      where = f"sweep {sweep['name']!r}, run {run['name']!r}"
      config = load_config(run["config"])
      apply_overrides(config, overrides, where)
      if validate:
        _validate(config, where)
      # The typed values, so commands print 0.001 rather than the command line's "1e-3".
      typed = {k: _get(config, k) for k in overrides}
      rel = rel_workdir(run["name"], seed)
      planned.append({"name": run["name"], "seed": seed, "workdir": os.path.join(root, rel),
                      "rel_workdir": rel, "config": run["config"], "overrides": typed,
                      # figures/ read from_runs here (a continued run's budget includes its source's)
                      "meta": {**run.get("meta", {}),
                               **({"from_runs": run["from_runs"]} if run.get("from_runs") else {})},
                      "eval_suites": suites,
                      "after": [(source, seed) for source in run.get("from_runs", {}).values()]})
  return planned


def rel_workdir(name, seed):
  """A run's directory under the sweep root: <run>/seed<k>."""
  return os.path.join(name, f"seed{seed}")


def _get(config, key):
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def _flag_value(value):
  if isinstance(value, bool):
    return "true" if value else "false"
  return repr(value) if isinstance(value, float) else str(value)


def override_flags(run):
  """The run's overrides as train.py/eval.py flags: ["--config.a.b=value", ...]."""
  return [f"--config.{k}={_flag_value(v)}" for k, v in run["overrides"].items()]


def command(template, run, python):
  """argv of a template for one planned run, its overrides appended as --config.k=v flags."""
  fields = {"python": python, "config": run["config"], "workdir": run["workdir"],
            "suites": run["eval_suites"]}
  return [part.format(**fields) for part in shlex.split(template)] + override_flags(run)
