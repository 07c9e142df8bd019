r"""Run the AOT fit check on every pod recipe and write results/pod_recipes.md.

  JAX_PLATFORMS=cpu .venv/bin/python -m launch.recipes_table [--only gpt3_175b,gpt2_xl]

For each recipe in configs/pod_recipes.py: `python -m launch.aot --config configs/<preset>.py
--topology <slice> <recipe flags>` in its own process (a pod-sized compile holds gigabytes of
host memory; a fresh process returns them), and for a `compare_dense` recipe the same with
attention_impl="xla"; then results/pod_recipes.json (every report, merged with earlier runs for
recipes not re-run) and results/pod_recipes.md (the markdown table; `step s at peak` is the
step's analytic FLOPs over the slice's bf16 peak, the floor on a step's time).
Two compiles run at a time (--jobs); pod-sized ones take several minutes each on 2 cores.
"""

import concurrent.futures
import importlib
import json
import os
import subprocess
import sys
import time

from absl import app, flags

from configs import pod_recipes

_ONLY = flags.DEFINE_list("only", [], "Recipes to (re)check; default all.")
_OUT = flags.DEFINE_string("out", "results/pod_recipes", "Output path without extension.")
_TIMEOUT = flags.DEFINE_integer("timeout", 7200, "Seconds allowed per compile.")
_JOBS = flags.DEFINE_integer("jobs", 2, "Compiles run at once (each in its own process).")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


def check_recipe(name, timeout, extra_flags=()):
  """-> the AOT report of one recipe (with `recipe` and, on failure, `error`)."""
  recipe = pod_recipes.RECIPES[name]
  report = run_aot(pod_recipes.config_path(name), recipe["topology"],
                   [*pod_recipes.flags(name), *extra_flags], timeout)
  report.update(recipe=name)
  return report


def run_aot(config_path, topology_name, flags_list, timeout):
  """-> the report of `python -m launch.aot --config <config_path> --topology ... flags`, run in
  its own process, with `wall_seconds`, `command`, `commit` and `date`; on failure
  {fits: None, error}."""
  command = [sys.executable, "-m", "launch.aot", "--config", config_path,
             "--topology", topology_name, *flags_list]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  start = time.time()
  try:
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
  except subprocess.TimeoutExpired:
    return dict(fits=None, error=f"compile did not finish in {timeout} s")
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode != 0 or len(lines) != 1:
    errors = [l for l in out.stderr.splitlines() if l.strip()]
    return dict(fits=None, error=f"exit {out.returncode}: {errors[-1] if errors else 'no output'}")
  report = json.loads(lines[0])
  report.update(wall_seconds=round(time.time() - start, 1), command=" ".join(command[1:]),
                commit=_commit(), date=time.strftime("%Y-%m-%d", time.gmtime()))
  return report


def _gib(value):
  return "—" if value is None else f"{value / GIB:.1f}"


def _commit():
  """The tree the compile ran on: its git commit, "+changes" when the work tree differs."""
  git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout
  head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
  return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no").strip() else "")


def check_with_dense_attention(name, timeout):
  """The recipe's report; with `compare_dense`, plus `dense`: the same compile with
  attention_impl="xla" (dense scores in every layer), its fit and memory."""
  report = check_recipe(name, timeout)
  if pod_recipes.RECIPES[name].get("compare_dense") and report.get("fits") is not None:
    dense = check_recipe(name, timeout, ["--config.model.attention_impl=xla"])
    report["dense"] = {k: dense.get(k) for k in ("fits", "total_bytes", "temporaries_bytes",
                                                 "required_bytes", "error")}
  return report


def _layers(name):
  return importlib.import_module(f"configs.{pod_recipes.preset(name)}").get_config(
  ).model.num_layers


def _dense(report):
  dense = report.get("dense")
  if dense is None:
    return ""
  if dense.get("fits") is None:
    return f"({dense.get('error')})"
  need = _gib(dense["total_bytes"] if dense["fits"] else dense.get("required_bytes"))
  return need if dense["fits"] else f"{need} (no fit)"


def _attention(report):
  """The attention_impl and, for "flash", the kernel the compile used (reports from before splash
  attention carry no `attention_kernel`: the older Pallas flash kernel)."""
  if report["attention_impl"] != "flash":
    return report["attention_impl"]
  return f"flash ({report.get('attention_kernel', 'pallas flash, before splash')})"


PREAMBLE = """\
# Pod recipes: the real train step compiled for each TPU slice

Written by `python -m launch.recipes_table` from results/pod_recipes.json (recipes:
configs/pod_recipes.py). Per-chip memory is XLA's `memory_analysis()` of the step compiled against
libtpu's compile-only devices (arguments + temporaries + outputs - donated aliases), against the
chip's HBM. "dense attention GiB": the same recipe compiled with attention_impl="xla" (dense
[B, H, L, L] scores in every layer, what windowed layers fell back to before splash attention).
"step s at peak": the step's analytic training FLOPs over the slice's bf16 peak, the floor on
its time. "compile s": the compile's wall time on the 2-core machine that ran it, shared with
other jobs. Rows whose attention reads "pallas flash, before splash" were compiled with the
Pallas flash kernel that splash attention replaced and have not been recompiled since; "head":
model.head_loss, where "logits (before tiled)" marks a compile from before the vocabulary-tiled
head became the accelerators' default (results/tiled_loss_aot.md measures what it changes).

"""


def markdown(reports):
  rows = ["| preset | layers | params | slice (chips) | mesh data/fsdp/tensor | batch x len | "
          "remat | attention | args GiB | temps GiB | total GiB / HBM | fits | dense attention "
          "GiB | step s at peak | head | compile s |",
          "|---|---:|---:|---|---|---|---|---|---:|---:|---:|---|---:|---:|---|---:|"]
  for name, recipe in pod_recipes.RECIPES.items():
    r = reports.get(name)
    if r is None or r.get("fits") is None:
      why = "not run" if r is None else r["error"]
      rows.append(f"| {name} | {_layers(name)} | | {recipe['topology']} | | | {recipe['remat']} | "
                  f"{recipe['attention']} | | | | ({why}) | | | | |")
      continue
    mesh = r["mesh"]
    total = _gib(r["total_bytes"] if r["fits"] else r.get("required_bytes"))
    fits = "yes" if r["fits"] else "**no**"
    micro = f" ({r['microbatches']} micro)" if r["microbatches"] > 1 else ""
    rows.append(
        f"| {name} | {_layers(name)} | {r['params_total'] / 1e9:.2f}B | {r['topology']} "
        f"({r['num_chips']}) | {mesh['data']}/{mesh['fsdp']}/{mesh['tensor']} | "
        f"{r['global_batch_size']} x {r['seq_len']}{micro} | {r['remat_policy']} | "
        f"{_attention(r)} | {_gib(r['arguments_bytes'])} | {_gib(r['temporaries_bytes'])} | "
        f"{total} / {r['hbm_bytes'] / GIB:.0f} | {fits} | {_dense(r)} | "
        f"{r.get('step_seconds_at_peak', '—')} | {r.get('head_loss', 'logits (before tiled)')} | "
        f"{r['compile_seconds']:.0f} |")
  return PREAMBLE + "\n".join(rows) + "\n"


def main(argv):
  del argv
  names = _ONLY.value or list(pod_recipes.RECIPES)
  unknown = [n for n in names if n not in pod_recipes.RECIPES]
  if unknown:
    print(f"error: --only names unknown recipes {unknown}; recipes: "
          f"{', '.join(pod_recipes.RECIPES)}", file=sys.stderr)
    sys.exit(2)
  json_path, md_path = _OUT.value + ".json", _OUT.value + ".md"
  reports = {}
  if os.path.exists(json_path):
    with open(json_path) as f:
      reports = json.load(f)
  os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
  def check(name):
    # One write per line: two worker threads print at once.
    sys.stdout.write(f"{name}: compiling for {pod_recipes.RECIPES[name]['topology']} ...\n")
    sys.stdout.flush()
    return name, check_with_dense_attention(name, _TIMEOUT.value)

  # Compiles are single-threaded for most of their time, so two share a 2-core machine well.
  with concurrent.futures.ThreadPoolExecutor(max_workers=_JOBS.value) as pool:
    for done in concurrent.futures.as_completed([pool.submit(check, n) for n in names]):
      name, r = done.result()
      reports[name] = r
      print(f"{name}: fits={r.get('fits')} total={_gib(r.get('total_bytes'))} GiB "
            f"compile={r.get('compile_seconds')} s {r.get('error') or ''}", flush=True)
      with open(json_path, "w") as f:  # after every recipe: a long run keeps what it finished
        json.dump(reports, f, indent=1, sort_keys=True)
      with open(md_path, "w") as f:
        f.write(markdown(reports))
  print(markdown(reports))
  print(f"wrote {md_path} and {json_path}", file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
