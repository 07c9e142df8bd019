"""Runs a sweep or an ablation set: locally one run after another, or one job per run.

    python -m launch.sweep --sweep configs/sweeps/ablation_cpu.py --root runs/ablation_cpu \
        [--seeds 0,1] [--backend local|tpu|slurm] [--dry_run] [--override train.num_steps=50]

Each run (a sweep entry x a seed) lives in ROOT/<run>/seed<k>/ and is trained with
`train.py --config <file>[:arg] --workdir DIR --config.name=<run> --config.seed=<k> ...`, then
evaluated with `eval.py ... --suite <the sweep's suites>`; train.py writes the run's provenance
(git commit, config hash, data fingerprint, mesh). ROOT/sweep.json records which runs belong to
which sweep and what the launcher last saw of each; figures/ reads it.

Backends:
- local: one run after another in this process's environment. A run already finished (status.json
  "finished" at num_steps, and every eval suite written for that step) is skipped; an unfinished
  one is resumed by train.py; a failure is recorded and the sweep goes on. Logs:
  ROOT/sweep_logs/<run>.seed<k>.{train,eval}.log. Exit code 1 if any run failed.
- tpu: writes ROOT/sweep_jobs/<sweep>/<run>.seed<k>.sh and runs these one after another (each
  run takes the whole slice): training through launch/tpu_pod.sh (setup, then `train.py
  --multihost` on every worker), then eval.py on every worker (`gcloud compute tpus tpu-vm ssh
  --worker=all`). ROOT must be a path this machine and every worker share (e.g. the same
  gcsfuse mount), so finished runs are seen and figures/ can read them.
- slurm: writes the same kind of script, which submits training through launch/slurm.sbatch
  (one train.py per node) and evaluation as a one-node job that runs only if training succeeded
  (`--dependency=afterok`). A run submitted before and not finished is not submitted twice
  unless --resubmit is given.
--dry_run prints every command (and job script) and writes nothing.

--parallel N (local): N runs at a time, each in its own processes pinned to its own share of this
process's cores (train.py then gives each run one CPU device per core it has). On the 2-core
reference machine, two one-core runs of the smallest scaling_cpu model trained 1.71x the
tokens/s of one run on both cores (bench/parallel_runs.py; docs/benchmarks.md), because a run
that small cannot keep two cores busy. A run waits for the runs it starts from (from_runs), as in sequence. A run's device count
is in its provenance.json: runs on 1 and 2 devices differ in float rounding only.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

from configs import paths
from configs.errors import ConfigError
from launch import sweep_plan
from launch.sweep_plan import EVAL_COMMAND, TRAIN_COMMAND, REPO_DIR
from trainlib import fs, rundir
from trainlib.rundir import training_status

BACKENDS = ("local", "tpu", "slurm")
# SLURM options not given: one 8-GPU node per run, for at most a day.
BACKEND_DEFAULTS = {"nodes": 1, "gpus_per_node": 8, "time": "24:00:00"}
LOG_DIR, JOB_DIR = "sweep_logs", "sweep_jobs"


def _now():
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _key(entry):
  return entry["name"], entry["seed"]


class Record:
  """ROOT/sweep.json: every sweep launched into ROOT and the launcher's view of each run.

  Rewritten atomically after every stage, so a launcher killed mid-sweep leaves it valid.
  Launching the same sweep again (e.g. with more seeds) merges into its entry.
  """

  def __init__(self, root, sweep, backend, planned):
    self.path = rundir.sweep_record_path(root)
    self.data = rundir.read_record(self.path) or {"sweeps": {}}
    claimed = {r["workdir"]: name for name, s in self.data["sweeps"].items()
               if name != sweep["name"] for r in s.get("runs", [])}
    for run in planned:
      if run["rel_workdir"] in claimed:
        raise ConfigError(f"run directory {run['workdir']} already belongs to sweep "
                          f"{claimed[run['rel_workdir']]!r} in {self.path}: use another --root")
    entry = self.data["sweeps"].setdefault(sweep["name"], {"runs": []})
    entry.update({k: sweep.get(k)
                  for k in ("kind", "budget", "budget_note", "description", "source")})
    entry.update(eval_suites=planned[0]["eval_suites"], backend=backend)
    old = {_key(r): r for r in entry["runs"]}
    for run in planned:
      old.setdefault(_key(run), {}).update(
          name=run["name"], seed=run["seed"], workdir=run["rel_workdir"], config=run["config"],
          overrides=run["overrides"], meta=run["meta"])
    order = [_key(r) for r in entry["runs"]] + [_key(r) for r in planned]
    entry["runs"] = [old[k] for k in dict.fromkeys(order)]
    self.runs = {_key(r): r for r in entry["runs"]}
    self.save()

  def update(self, run, **fields):
    self.runs[_key(run)].update(fields, updated=_now())
    self.save()

  def save(self):
    fs.write_text(self.path, json.dumps(self.data, indent=2))  # atomic


def evals_done(run):
  """True if every eval suite of the run has a result for the run's final step."""
  _, _, step, _ = training_status(run["workdir"])
  for suite in filter(None, run["eval_suites"].split(",")):
    result = rundir.read_record(rundir.eval_result_path(run["workdir"], suite))
    if not isinstance(result, dict) or result.get("checkpoint_step") != step:
      return False
  return True


def core_slots(parallel, cores=None):
  """This process's cores split into `parallel` disjoint, equal, contiguous sets (leftovers unused).

  Raises ConfigError when there are fewer cores than runs (or no CPU affinity on this OS)."""
  if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
    raise ConfigError(f"--parallel={parallel!r} must be an integer >= 1")
  if parallel == 1:
    return [None]  # one run at a time keeps this process's own affinity
  if cores is None:
    if not hasattr(os, "sched_getaffinity"):
      raise ConfigError(f"--parallel={parallel} needs CPU affinity (Linux); use --parallel=1")
    cores = sorted(os.sched_getaffinity(0))
  if parallel > len(cores):
    raise ConfigError(f"--parallel={parallel} is more runs than the {len(cores)} cores this "
                      f"process may use; use --parallel between 1 and {len(cores)}")
  each = len(cores) // parallel
  return [tuple(cores[i * each:(i + 1) * each]) for i in range(parallel)]


def pinned(argv, cores):
  """argv run with its CPU affinity set to `cores` (inherited by everything it starts)."""
  if cores is None:
    return argv
  pin = "import os, sys; os.sched_setaffinity(0, {%s}); os.execvp(sys.argv[1], sys.argv[1:])" % (
      ", ".join(map(str, cores)))
  return [sys.executable, "-c", pin] + list(argv)


def _execute(argv, log_path, cwd, timeout):
  """Runs argv with output to log_path; returns (returncode, seconds)."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  start = time.time()
  with open(log_path, "a") as log_file:
    log_file.write(f"\n# {_now()} $ {shlex.join(argv)}\n")
    log_file.flush()
    try:
      code = subprocess.run(argv, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                            timeout=timeout).returncode
    except subprocess.TimeoutExpired:
      log_file.write(f"\n# killed after {timeout} s (--timeout_minutes)\n")
      code = "timeout"
  return code, time.time() - start


def _tail(path, lines=15):
  try:
    with open(path) as f:
      return "".join(f.readlines()[-lines:])
  except OSError:
    return ""


def _stages(run, backend, opts):
  """[(stage, argv)] still needed for this run under the backend."""
  complete = training_status(run["workdir"])[0]
  if complete and evals_done(run):
    return []
  if backend == "local":
    stages = [] if complete else [("train", sweep_plan.command(opts["train_command"], run,
                                                               opts["python"]))]
    if run["eval_suites"]:
      stages.append(("eval", sweep_plan.command(opts["eval_command"], run, opts["python"])))
    return stages
  return [("job" if backend == "tpu" else "submit", ["bash", _job_path(run, opts)])]


def _env(**pairs):
  return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in pairs.items() if v)


def job_script(run, backend, opts):
  """Text of the bash script that runs (tpu) or submits (slurm) one run.

  Training goes through the project's launchers, launch/tpu_pod.sh (setup + `train.py
  --multihost` on every worker) and launch/slurm.sbatch (one train.py per node, coordinator
  from SLURM); evaluation follows on the same workers, or as a one-node SLURM job that starts
  only if training succeeded.
  """
  flags = " ".join(shlex.quote(f) for f in sweep_plan.override_flags(run))
  # The launchers' own default python: the checkout's venv (tpu_pod.sh makes it on each worker).
  python = opts.get("remote_python") or ".venv/bin/python"
  evaluate = shlex.join(sweep_plan.command(opts["eval_command"], run, python))
  lines = ["#!/usr/bin/env bash",
           f"# pancake sweep {opts['sweep_name']}: run {run['name']}, seed {run['seed']}.",
           "set -euo pipefail", f"cd {shlex.quote(REPO_DIR)}"]
  if backend == "tpu":
    ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", opts["tpu"], "--zone", opts["zone"],
           "--worker=all"] + (["--project", opts["project"]] if opts.get("project") else [])
    lines.append(_env(TPU=opts["tpu"], ZONE=opts["zone"], PROJECT=opts.get("project"),
                      REMOTE_DIR=opts.get("remote_repo"), CONFIG=run["config"],
                      WORKDIR=run["workdir"]) + f" bash launch/tpu_pod.sh -- {flags}")
    if run["eval_suites"]:
      remote = f"cd {opts.get('remote_repo') or 'pancake'} && {evaluate}"
      lines.append(shlex.join(ssh + ["--command", remote]))
    return "\n".join(lines + [""])
  name = f"{opts['sweep_name']}.{run['name']}.s{run['seed']}"
  log = os.path.join(opts["root"], LOG_DIR, f"{run['name']}.seed{run['seed']}")
  common = [f"--time={opts['time']}"] + [
      f"--{k}={opts[k]}" for k in ("partition", "account") if opts.get(k)]
  # A run started from another run's checkpoint (from_runs) waits for that run's training job.
  after = [f"--dependency=afterok:{':'.join(run['after_jobs'])}"] if run.get("after_jobs") else []
  train = ["sbatch", "--parsable", f"--job-name={name}", f"--nodes={opts['nodes']}",
           f"--gpus-per-node={opts['gpus_per_node']}", f"--output={log}.train-%j.log"
           ] + common + after + ["launch/slurm.sbatch"]
  lines.append("train_job=$(" + _env(CONFIG=run["config"], WORKDIR=run["workdir"],
                                      PYTHON=opts.get("remote_python")) +
               f" {shlex.join(train)} {flags})")
  if run["eval_suites"]:
    wrap = f"cd {shlex.quote(REPO_DIR)} && {evaluate}"
    evaluation = [f"--job-name={name}.eval", "--nodes=1",
                  f"--gpus-per-node={opts['gpus_per_node']}", f"--output={log}.eval-%j.log"
                  ] + common + ["--wrap", wrap]
    # The dependency stays unquoted: the shell fills in the training job's id.
    lines.append("eval_job=$(sbatch --parsable --dependency=afterok:${train_job%%;*} "
                 f"{shlex.join(evaluation)})")
  lines.append('echo "Submitted batch job ${train_job%%;*}' +
               (' (eval: ${eval_job%%;*}, after it succeeds)"' if run["eval_suites"] else '"'))
  return "\n".join(lines + [""])


def _job_path(run, opts):
  return os.path.join(opts["root"], JOB_DIR, opts["sweep_name"],
                      f"{run['name']}.seed{run['seed']}.sh")


def _print_plan(planned, backend, opts, log):
  for run in planned:
    log(f"\n# {run['name']} seed {run['seed']} -> {run['workdir']}")
    if backend == "local":
      log(shlex.join(sweep_plan.command(opts["train_command"], run, opts["python"])))
      if run["eval_suites"]:
        log(shlex.join(sweep_plan.command(opts["eval_command"], run, opts["python"])))
    else:
      log(f"# {_job_path(run, opts)}:\n{job_script(run, backend, opts)}")
      log("bash " + _job_path(run, opts))


def _waits_on(run, done, record):
  """(SLURM job ids this run must start after, its first source whose training is missing)."""
  jobs = []
  for source in run.get("after", ()):  # sweep_plan ordered every source before this run
    result = done[source]
    if result["state"] == "submitted":
      jobs.append(result.get("job_id") or record.runs[source].get("job_id", ""))
    elif not training_status(result["workdir"])[0]:
      return jobs, source
  return [j for j in jobs if j], None


def _run_one(run, backend, opts, record, timeout, log, head, done, cores=None):
  """Runs (or submits) the stages one run still needs; returns its result dict. `done`: the
  results so far, for runs whose from_runs name an earlier run; `cores`: the CPU affinity of
  its processes (None: this process's)."""
  result = {"name": run["name"], "seed": run["seed"], "workdir": run["workdir"]}
  previous = record.runs[_key(run)]
  jobs, missing = _waits_on(run, done, record)
  if missing and not training_status(run["workdir"])[0]:
    log(f"{head}: not started: it starts from {missing[0]} seed {missing[1]}, whose training "
        "did not finish")
    record.update(run, state="failed", stage="waiting", log="")
    return {**result, "state": "failed", "stage": "waiting"}
  run = {**run, "after_jobs": jobs}
  if backend != "local":
    os.makedirs(os.path.dirname(_job_path(run, opts)), exist_ok=True)
    with open(_job_path(run, opts), "w") as f:
      f.write(job_script(run, backend, opts))
  stages = _stages(run, backend, opts)
  if not stages:
    log(f"{head}: already finished, skipped")
    record.update(run, state="skipped")
    return {**result, "state": "skipped"}
  if backend == "slurm" and previous.get("state") == "submitted" and not opts.get("resubmit"):
    log(f"{head}: already submitted as job {previous.get('job_id')} and not finished; "
        f"--resubmit submits it again")
    return {**result, "state": "submitted", "job_id": previous.get("job_id")}
  result["state"] = "finished"
  for stage, argv in stages:
    log_path = os.path.join(opts["root"], LOG_DIR,
                            f"{run['name']}.seed{run['seed']}.{stage}.log")
    record.update(run, state="running", stage=stage, log=log_path)
    code, seconds = _execute(pinned(argv, cores), log_path, REPO_DIR, timeout)
    result.update(stage=stage, returncode=code, seconds=round(seconds, 1), log=log_path)
    if code != 0:
      result["state"] = "failed"
      log(f"{head}: {stage} FAILED (exit {code}, {seconds:.0f} s), log {log_path}:\n"
          + _tail(log_path))
      break
    if stage == "submit":  # the job script ends with "Submitted batch job <id> ..."
      found = re.search(r"Submitted batch job (\S+)", _tail(log_path, 1))
      result.update(state="submitted", job_id=found.group(1) if found else "")
    log(f"{head}: {stage} ok ({seconds:.0f} s)")
  if result["state"] == "finished" and not training_status(run["workdir"])[0]:
    result["state"] = "failed"
    log(f"{head}: exited 0 but {rundir.STATUS} says {training_status(run['workdir'])[1]}")
  record.update(run, **{k: v for k, v in result.items() if k not in ("name", "seed", "workdir")})
  return result


class _Locked:
  """Wraps a Record (or log function) so that parallel runs update it one at a time."""

  def __init__(self, target, lock):
    self._target, self._lock = target, lock

  def __call__(self, *args, **kwargs):
    with self._lock:
      return self._target(*args, **kwargs)

  def __getattr__(self, name):
    value = getattr(self._target, name)
    if not callable(value):
      return value
    def locked(*args, **kwargs):
      with self._lock:
        return value(*args, **kwargs)
    return locked


def _run_all(planned, slots, run_one, done):
  """Runs run_one(i, run, cores) for every planned run, len(slots) at a time, in plan order;
  a run starts only after every run it starts from (run["after"]) has ended. Fills `done`
  ({key: result}, which run_one may read) as runs end."""
  if len(slots) == 1:  # in sequence, in this thread
    for i, run in enumerate(planned, 1):
      done[_key(run)] = run_one(i, run, slots[0])
    return
  lock = threading.Condition()
  free, waiting, errors = list(slots), list(enumerate(planned, 1)), []

  def work(i, run, cores):
    try:
      result = run_one(i, run, cores)
    except BaseException as e:  # surfaced in the main thread below
      errors.append(e)
      result = {"name": run["name"], "seed": run["seed"], "workdir": run["workdir"],
                "state": "failed", "stage": "launcher"}
    with lock:
      done[_key(run)] = result
      free.append(cores)
      lock.notify_all()

  threads = []
  with lock:
    while waiting and not errors:
      ready = next((w for w in waiting if all(tuple(a) in done for a in w[1].get("after", ()))),
                   None)
      if ready is None and len(free) == len(slots):  # nothing runs, nothing can start
        raise RuntimeError(f"runs {[w[1]['name'] for w in waiting]} wait on runs not planned")
      if ready is None or not free:
        lock.wait()
        continue
      waiting.remove(ready)
      thread = threading.Thread(target=work, args=(*ready, free.pop(0)), daemon=True)
      thread.start()
      threads.append(thread)
  for thread in threads:
    thread.join()
  if errors:
    raise errors[0]


def run_sweep(sweep_path, root, *, seeds=None, backend="local", dry_run=False, overrides=None,
              eval_suites=None, train_command=TRAIN_COMMAND, eval_command=EVAL_COMMAND,
              python=None, timeout=None, log=print, parallel=1, **backend_opts):
  """Plans and runs (or submits, or prints) a sweep; returns one result dict per (run, seed).

  `overrides` ({"train.num_steps": 5} or strings from the command line) apply to every run
  after the sweep's own. `train_command`/`eval_command` are templates (see sweep_plan).
  `backend_opts`: tpu, zone, project, remote_repo (tpu); nodes, gpus_per_node, time, partition,
  account, resubmit (slurm); remote_python (both). Result dicts: name, seed, workdir, state
  ("finished" | "skipped" | "failed" | "submitted" | "planned"), stage, returncode, seconds, log.
  """
  if backend not in BACKENDS:
    raise ConfigError(f"--backend={backend!r} is not one of {BACKENDS}")
  if parallel != 1 and backend != "local":
    raise ConfigError(f"--parallel={parallel} is for --backend=local; {backend} runs one job "
                      "per run already")
  slots = core_slots(parallel)
  root = paths.absolute(root)  # local roots absolute for the subprocesses; gs:// unchanged
  sweep = sweep_plan.load_sweep(sweep_path)
  planned = sweep_plan.plan(sweep, root, seeds, overrides, eval_suites)
  opts = {"train_command": train_command, "eval_command": eval_command,
          "python": python or sys.executable, "sweep_name": sweep["name"],
          "root": root, **backend_opts}
  if backend != "local":
    missing = [k for k in (("tpu", "zone") if backend == "tpu" else ()) if not opts.get(k)]
    if missing:
      raise ConfigError(f"--backend=tpu needs --{' and --'.join(missing)}")
    for key, value in BACKEND_DEFAULTS.items():
      opts.setdefault(key, value)
  log(f"# sweep {sweep['name']} ({sweep['kind']}, {len(sweep['runs'])} runs x "
      f"{len(planned) // len(sweep['runs'])} seeds) -> {opts['root']}, backend {backend}"
      + (f", {parallel} runs at a time on cores {', '.join(map(str, slots))}" if parallel > 1
         else ""))
  if dry_run:
    _print_plan(planned, backend, opts, log)
    return [{"name": r["name"], "seed": r["seed"], "workdir": r["workdir"], "state": "planned"}
            for r in planned]
  lock = threading.Lock()
  record, log = _Locked(Record(opts["root"], sweep, backend, planned), lock), _Locked(log, lock)
  done = {}
  _run_all(planned, slots, lambda i, run, cores: _run_one(
      run, backend, opts, record, timeout, log,
      f"[{i}/{len(planned)}] {run['name']} seed {run['seed']}", done, cores), done)
  results = [done[_key(run)] for run in planned]
  failed = [f"{r['name']}/seed{r['seed']}" for r in results if r["state"] == "failed"]
  log(f"# sweep {sweep['name']}: {len(results) - len(failed)} of {len(results)} ok"
      + (f"; failed: {', '.join(failed)}" if failed else ""))
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sweep", required=True, help="configs/sweeps/<name>.py")
  parser.add_argument("--root", required=True, help="runs directory (ROOT/<run>/seed<k>)")
  parser.add_argument("--seeds", help="comma-separated seeds (default: the sweep's)")
  parser.add_argument("--backend", default="local", choices=BACKENDS)
  parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
  parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE",
                      help="set a config field for every run, e.g. train.num_steps=50")
  parser.add_argument("--eval_suites", help="replace the sweep's eval suites ('' = no eval)")
  parser.add_argument("--train_command", default=TRAIN_COMMAND,
                      help="local: command template ({python} {config} {workdir})")
  parser.add_argument("--eval_command", default=EVAL_COMMAND,
                      help="command template ({python} {config} {workdir} {suites})")
  parser.add_argument("--python", help="python for local runs (default: this one)")
  parser.add_argument("--timeout_minutes", type=float, help="local: kill a stage after this")
  parser.add_argument("--parallel", type=int, default=1,
                      help="local: runs at a time, each pinned to its own share of the cores")
  tpu = parser.add_argument_group("tpu backend")
  tpu.add_argument("--tpu", help="TPU VM name")
  tpu.add_argument("--zone")
  tpu.add_argument("--project")
  tpu.add_argument("--remote_repo",
                   help="checkout dir on the workers, tpu_pod.sh's REMOTE_DIR (default pancake)")
  parser.add_argument("--remote_python",
                      help="tpu/slurm: python of the jobs (default: the checkout's .venv)")
  slurm = parser.add_argument_group("slurm backend")
  slurm.add_argument("--nodes", type=int, help="nodes per run (default 1)")
  slurm.add_argument("--gpus_per_node", type=int, help="default 8")
  slurm.add_argument("--time", help="wall-clock limit per run (default 24:00:00)")
  slurm.add_argument("--partition")
  slurm.add_argument("--account")
  slurm.add_argument("--resubmit", action="store_true",
                     help="submit runs already submitted (and not finished) again")
  args = parser.parse_args(argv)
  backend_opts = {k: getattr(args, k) for k in ("tpu", "zone", "project", "remote_repo",
                                                "remote_python", "nodes", "gpus_per_node",
                                                "time", "partition", "account", "resubmit")
                  if getattr(args, k) not in (None, False)}
  try:
    seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",") if s.strip()]
  except ValueError:
    print(f"error: --seeds={args.seeds!r} must be comma-separated integers", file=sys.stderr)
    return 2
  try:
    results = run_sweep(args.sweep, args.root, seeds=seeds, backend=args.backend,
                        dry_run=args.dry_run,
                        overrides=sweep_plan.parse_assignments(args.override),
                        eval_suites=args.eval_suites, train_command=args.train_command,
                        eval_command=args.eval_command, python=args.python,
                        timeout=args.timeout_minutes and 60 * args.timeout_minutes,
                        parallel=args.parallel, **backend_opts)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 1 if any(r["state"] == "failed" for r in results) else 0


if __name__ == "__main__":
  sys.exit(main())
