"""What every benchmark records about the machine it ran on: load average at start and end, and
the CPU (model, vendor and vector ISA: AVX-512 and AVX2 machines of one kind rank differently).

A figure from a loaded machine is not a figure. Each bench calls `start()` first (it warns when
something else is running) and `finish(record)` last; both load averages go into its JSON, so a
reader can tell an idle measurement from a shared one.
"""

import datetime
import json
import os
import platform
import sys

IDLE_LOAD = 0.5  # 1-minute load average above which start() warns


def load_average():
  """(1, 5, 15)-minute load averages, rounded."""
  return [round(x, 2) for x in os.getloadavg()]


def _cpuinfo():
  """{field: value} of the first processor in /proc/cpuinfo ({} where there is none)."""
  fields = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if not line.strip():  # the end of the first processor's block
          break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
  except OSError:
    pass
  return fields


def cpu_kind():
  """The host CPU's vendor and widest vector ISA: what XLA:CPU's float rounding depends on (its
  code is generated for the host, so AVX-512 and AVX2 machines sum in different orders)."""
  info = _cpuinfo()
  flags = set(info.get("flags", "").split())
  isa = next((i for i in ("avx512f", "avx2", "avx") if i in flags), "other")
  return f"{info.get('vendor_id', 'unknown')} {isa}" + (" fma" if "fma" in flags else "")


def cpu_model():
  """The host CPU's model name, as /proc/cpuinfo gives it ("unknown" elsewhere)."""
  return _cpuinfo().get("model name", "unknown")


def start():
  """-> the machine record of this run; warns on stderr when the machine is not idle."""
  load = load_average()
  if load[0] > IDLE_LOAD:
    print(f"warning: load average {load[0]} at start (> {IDLE_LOAD}): something else is running "
          "or ran within the last minute; figures are idle-machine figures only if nothing else "
          "runs beside this bench", file=sys.stderr)
  return {"load_average_start": load, "cpu_count": os.cpu_count(), "machine": platform.machine(),
          "cpu_model": cpu_model(), "cpu_kind": cpu_kind(),
          "python": platform.python_version(),
          "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def finish(record):
  """Adds the load average at the end to `record`, and `idle`: whether nothing else ran at the
  start. (The end's figure includes the bench's own threads: ~2 on 2 cores after a busy minute.)"""
  record["load_average_end"] = load_average()
  record["idle"] = record["load_average_start"][0] <= IDLE_LOAD
  return record


def report(results, record, table, json_path):
  """The end of every bench: the machine record into `results`, `table` printed, the JSON
  written to `json_path` ("" = none)."""
  results["machine"] = finish(record)
  print(table(results))
  if json_path:
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as f:
      json.dump(results, f, indent=2)
    print(f"wrote {json_path}", file=sys.stderr)
