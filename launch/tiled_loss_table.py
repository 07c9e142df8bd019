r"""Per-chip TPU memory of large-vocabulary presets with the tiled LM/MLM head and loss against
the logits path (objectives/head_loss.py): results/tiled_loss_aot.json, and the markdown table
of results/tiled_loss_aot.md on stdout.

  JAX_PLATFORMS=cpu .venv/bin/python -m launch.tiled_loss_table [--cases llama2_7b]

Each case is compiled twice by `python -m launch.aot` (launch.recipes_table.run_aot: one process
per compile), with `--config.model.head_loss=tiled` and `=logits`, one compile at a time (each
takes minutes on 2 cores). Cases and paths not re-run (--cases, --paths) keep their earlier
reports in the JSON.
"""

import importlib
import json
import os
import sys

from absl import app, flags

from launch import recipes_table

# Named apart from launch.recipes_table's flags (--only, --out, --timeout), which importing it
# defines.
_CASES = flags.DEFINE_list("cases", [], "Cases to (re)check; default all.")
_JSON = flags.DEFINE_string("table_json", "results/tiled_loss_aot.json", "Reports, merged with earlier.")
_COMPILE_TIMEOUT = flags.DEFINE_integer("compile_timeout", 3600, "Seconds allowed per compile.")
_PATHS = flags.DEFINE_list("paths", ["tiled", "logits"],
                           "Head paths to (re)compile; the others keep their earlier reports.")

# The pod-recipe style (configs/pod_recipes.py): FSDP over the slice, bf16 compute, full remat,
# flash attention. Ettin's windowed layers take XLA's dense attention on TPU until splash lands,
# so its cases are all-global (attention_window=0): the numbers isolate the head.
_POD = ("--config.mesh.data=1", "--config.mesh.fsdp=-1", "--config.model.remat_policy=full",
        "--config.model.attention_impl=flash", "--config.model.dtype=bfloat16")
CASES = {
    "llama2_7b": dict(topology="v5p-128", flags=_POD + (
        "--config.train.global_batch_size=512", "--config.data.seq_len=4096")),
    "ettin_decoder_1b": dict(topology="v5p-32", flags=_POD + (
        "--config.train.global_batch_size=64", "--config.data.seq_len=8192",
        "--config.model.attention_window=0")),
    "ettin_encoder_1b": dict(topology="v5p-32", flags=_POD + (
        "--config.train.global_batch_size=64", "--config.data.seq_len=8192",
        "--config.objective.max_predictions_per_seq=2458",  # Ettin's 30% of 8,192
        "--config.model.attention_window=0")),
}
PATHS = ("tiled", "logits")
GIB = 2**30


def check_case(name, paths, timeout):
  """-> {path: AOT report} for one case, compiled once per head path in `paths`."""
  case = CASES[name]
  reports = {}
  for path in paths:
    print(f"{name}: compiling for {case['topology']} with model.head_loss={path} ...", flush=True)
    report = recipes_table.run_aot(f"configs/{name}.py", case["topology"],
                                   [*case["flags"], f"--config.model.head_loss={path}"], timeout)
    print(f"{name} {path}: fits={report.get('fits')} total={_gib(report.get('total_bytes'))} GiB "
          f"{report.get('error') or ''}", flush=True)
    reports[path] = report
  return reports


def _gib(value):
  return "—" if value is None else f"{value / GIB:.2f}"


def markdown(results):
  rows = ["| preset | slice (chips) | batch x len | vocab | head | per-chip total GiB | "
          "temporaries GiB | saved GiB | compile s |",
          "|---|---|---|---:|---|---:|---:|---:|---:|"]
  for name in CASES:
    reports = results.get(name)
    if reports is None:
      continue
    logits_total = reports.get("logits", {}).get("total_bytes")
    for path in [p for p in PATHS if p in reports]:
      r = reports[path]
      if r.get("fits") is None:
        rows.append(f"| {name} | | | | {path} | ({r['error']}) | | | |")
        continue
      saved = ("" if path == "logits" or logits_total is None or r["total_bytes"] is None
               else f"{(logits_total - r['total_bytes']) / GIB:.2f}")
      total = r["total_bytes"] if r["fits"] else r.get("required_bytes")
      rows.append(f"| {name} | {r['topology']} ({r['num_chips']}) | {r['global_batch_size']} x "
                  f"{r['seq_len']} | {r['vocab_size']:,} | {path} | {_gib(total)}"
                  f"{'' if r['fits'] else ' (does not fit)'} | {_gib(r['temporaries_bytes'])} | "
                  f"{saved} | {r['compile_seconds']:.0f} |")
  return "\n".join(rows) + "\n"


def _with_vocab(reports, name):
  vocab = importlib.import_module(f"configs.{name}").get_config().model.vocab_size
  for r in reports.values():
    r["vocab_size"] = vocab
  return reports


def main(argv):
  del argv
  names = _CASES.value or list(CASES)
  unknown = [n for n in names if n not in CASES] + [p for p in _PATHS.value if p not in PATHS]
  if unknown:
    print(f"error: --cases/--paths name unknown values {unknown}; cases: {', '.join(CASES)}; "
          f"paths: {', '.join(PATHS)}", file=sys.stderr)
    sys.exit(2)
  json_path = _JSON.value
  results = {}
  if os.path.exists(json_path):
    with open(json_path) as f:
      results = json.load(f)
  os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
  for name in names:
    fresh = _with_vocab(check_case(name, _PATHS.value, _COMPILE_TIMEOUT.value), name)
    results[name] = {**results.get(name, {}), **fresh}
    with open(json_path, "w") as f:  # after every case: a long run keeps what it finished
      json.dump(results, f, indent=1, sort_keys=True)
  table = markdown(results)
  print(table)
  print(f"wrote {json_path}; the table above is results/tiled_loss_aot.md's", file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
