"""Compile a lowered computation for TPU and read its per-chip memory: the fit check behind
`launch.aot`, usable on any `jax.jit(...).lower(...)` result.

A TPU compile that needs more HBM than the chip has fails with RESOURCE_EXHAUSTED; that is an
answer ("does not fit"), not a crash, so it is caught here and reported with the bytes that XLA
says it needed when the message carries them.
"""

import re
import time

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# XLA TPU OOM messages, e.g. "the total memory required for HLO temporaries (352.10G) exceeds
# available HBM (95.74G)" or "Used 120.5G of 95.74G hbm. Exceeded hbm capacity by 24.8G."
_REQUIRED = (
    re.compile(r"required for [^(]*\(([\d.]+)([KMGT]?)\)"),
    re.compile(r"Used ([\d.]+)([KMGT]?) of [\d.]+[KMGT]? hbm"),
)


def _required_bytes(message):
  for pattern in _REQUIRED:
    match = pattern.search(message)
    if match:
      return int(float(match.group(1)) * _UNITS[match.group(2)])
  return None


def is_out_of_memory(error):
  text = str(error)
  return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


def compile_and_measure(lowered, hbm_bytes):
  """Compile `lowered` (a jax `Lowered`) and report per-chip memory against `hbm_bytes`.

  Returns a dict: fits, arguments_bytes, output_bytes, aliased_bytes (donated inputs reused as
  outputs), temporaries_bytes, total_bytes (= arguments + output - aliased + temporaries: what
  the step holds at its peak, the sum XLA checks against HBM), hbm_bytes, hbm_fraction,
  compile_seconds, and on an out-of-memory compile `error` and `required_bytes` (XLA's figure
  for what it needed, if its message says). Errors other than out-of-memory are raised.
  """
  start = time.perf_counter()
  try:
    compiled = lowered.compile()
  except Exception as e:  # XlaRuntimeError; its class moved between jax versions
    if not is_out_of_memory(e):
      raise
    message = str(e).strip().splitlines()[0]
    return dict(fits=False, arguments_bytes=None, output_bytes=None, aliased_bytes=None,
                temporaries_bytes=None, total_bytes=None, required_bytes=_required_bytes(message),
                hbm_bytes=hbm_bytes, hbm_fraction=None,
                compile_seconds=round(time.perf_counter() - start, 2), error=message)
  seconds = time.perf_counter() - start
  stats = compiled.memory_analysis()
  arguments = int(stats.argument_size_in_bytes)
  output = int(stats.output_size_in_bytes)
  aliased = int(stats.alias_size_in_bytes)
  temporaries = int(stats.temp_size_in_bytes)
  total = arguments + output - aliased + temporaries
  return dict(fits=total <= hbm_bytes, arguments_bytes=arguments, output_bytes=output,
              aliased_bytes=aliased, temporaries_bytes=temporaries, total_bytes=total,
              required_bytes=None, hbm_bytes=hbm_bytes, hbm_fraction=round(total / hbm_bytes, 4),
              compile_seconds=round(seconds, 2), error=None)
