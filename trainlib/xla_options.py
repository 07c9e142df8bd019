"""XLA flags pancake sets for the CPU backend: the one place they are set, each with the
measurement that chose it. `use_cpu_flags()` adds them to XLA_FLAGS; train.py, eval.py and the
benches call it before JAX starts its backend (XLA reads XLA_FLAGS once, when the first backend
is created; later changes do nothing). A flag already in XLA_FLAGS keeps the user's value.

`--xla_cpu_enable_concurrency_optimized_scheduler=false`.
XLA:CPU's default schedule orders a step's ops so that as many independent ops as possible can
run at once on its thread pool. Where the cores are already split into one device each
(trainlib/cpu_devices.py), that concurrency lets one device's ops take both cores while the other
device's ops wait, and the two then wait on each other at every gradient all-reduce: in a
jax.profiler trace of the CPU-ablation decoder (2L d128, vocabulary 2,048, 2 devices) each device
spent 23-47 ms of a ~100 ms step in the all-reduce rendezvous. The plain schedule (XLA's
memory-minimising order, one op after another) keeps each device on its own core: on a 2-core
AVX-512 machine that decoder's train step was faster with the flag in every one of 7 pairs of
processes run in turn (about 1.25x, median to median). docs/benchmarks.md has the whole-bench
figures.

The schedule only orders the same ops, so every value is bitwise the same as under the default
schedule (tests/test_xla_options.py). It is an XLA_FLAGS flag, not a per-jit compiler option:
passed as `jax.jit(..., compiler_options=...)` it did not change the step time.
"""

import os

CPU_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)


def with_cpu_flags(xla_flags: str) -> str:
  """`xla_flags` (an XLA_FLAGS value) with CPU_FLAGS added, except flags it already sets."""
  flags = xla_flags.split()
  names = {f.split("=")[0] for f in flags}
  return " ".join(flags + [f for f in CPU_FLAGS if f.split("=")[0] not in names])


def use_cpu_flags(environ=os.environ) -> None:
  """Adds CPU_FLAGS to environ["XLA_FLAGS"]; before JAX creates a backend, or it does nothing.
  (The flags are XLA:CPU's own; TPU and GPU compilers ignore them.)"""
  environ["XLA_FLAGS"] = with_cpu_flags(environ.get("XLA_FLAGS", ""))
