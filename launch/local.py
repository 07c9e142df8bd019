r"""Run N local processes x M CPU devices as one multi-host JAX job (gloo collectives).

  .venv/bin/python -m launch.local --num_processes 2 --devices_per_process 4 -- \
      train.py --config configs/quickstart.py --workdir /tmp/run

Each process gets JAX_PLATFORMS=cpu, M host devices (XLA_FLAGS), and the multi-host flags of
train.py (`--multihost --coordinator_address 127.0.0.1:PORT --num_processes N --process_id i`), so
`jax.distributed.initialize` joins them exactly as on a pod; JAX's CPU collectives default to
gloo. Their output is interleaved line by line with a `[pI]` prefix. If one process fails the
others are stopped (they would otherwise wait in a collective forever) and its exit code is
returned.

`run_local(...)` is the same from Python (tests use it) and also returns each process's output.
"""

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time


@dataclasses.dataclass
class ProcessResult:
  process_id: int
  returncode: int
  output: str          # stdout and stderr, merged


def free_port():
  """A TCP port nothing listens on now (the coordinator binds it moments later)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def multihost_flags(coordinator_address, num_processes, process_id):
  """train.py's flags that make process `process_id` join the job."""
  return ["--multihost", "--coordinator_address", coordinator_address,
          "--num_processes", str(num_processes), "--process_id", str(process_id)]


def process_env(devices_per_process, base_env=None):
  """The environment of one process: CPU only, `devices_per_process` host devices."""
  env = dict(os.environ if base_env is None else base_env)
  env["JAX_PLATFORMS"] = "cpu"
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags + [
      f"--xla_force_host_platform_device_count={devices_per_process}"])
  return env


def _forward(stream, process_id, sink, echo):
  for line in iter(stream.readline, ""):
    sink.append(line)
    if echo:
      sys.stdout.write(f"[p{process_id}] {line}")
      sys.stdout.flush()


def run_local(command, num_processes, devices_per_process, *, port=None, env=None, cwd=None,
              timeout=None, echo=True):
  """Start `command` (a list; a leading *.py runs under this Python) as `num_processes` processes.

  Returns [ProcessResult] in process order once all have exited. When one exits non-zero the
  rest are terminated; on `timeout` seconds all are killed and get returncode -9.
  """
  if num_processes < 1 or devices_per_process < 1:
    raise ValueError(f"num_processes={num_processes} and devices_per_process="
                     f"{devices_per_process} must be >= 1")
  command = list(command)
  if command and command[0].endswith(".py"):
    command = [sys.executable] + command
  address = f"127.0.0.1:{port or free_port()}"
  procs, outputs, readers = [], [], []
  for i in range(num_processes):
    proc = subprocess.Popen(
        command + multihost_flags(address, num_processes, i), cwd=cwd,
        env=process_env(devices_per_process, env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1)
    sink = []
    reader = threading.Thread(target=_forward, args=(proc.stdout, i, sink, echo), daemon=True)
    reader.start()
    procs.append(proc)
    outputs.append(sink)
    readers.append(reader)

  deadline = None if timeout is None else time.monotonic() + timeout
  try:
    while any(p.poll() is None for p in procs):
      failed = [p for p in procs if p.poll() not in (None, 0)]
      if failed or (deadline is not None and time.monotonic() > deadline):
        for p in procs:  # only the processes started here, by their handles
          if p.poll() is None:
            if failed:
              p.terminate()  # let the survivors exit cleanly
            else:
              p.kill()
        break
      time.sleep(0.1)
    for p in procs:
      try:
        p.wait(timeout=30)
      except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for reader in readers:
    reader.join(timeout=10)
  return [ProcessResult(i, p.returncode, "".join(out))
          for i, (p, out) in enumerate(zip(procs, outputs))]


def first_failure(results):
  """The job's exit code: the first process that failed by itself (exit code > 0), else 1 if
  any was killed by a signal (returncode < 0: stopped here, or e.g. by the OOM killer), else 0."""
  for result in results:
    if result.returncode > 0:
      return result.returncode
  return 1 if any(r.returncode < 0 for r in results) else 0


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m launch.local", description=__doc__.split("\n\n")[0],
      usage="%(prog)s [--num_processes N] [--devices_per_process M] [--port P] -- COMMAND ...")
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=4)
  parser.add_argument("--port", type=int, default=None, help="coordinator port (default: free)")
  parser.add_argument("--timeout", type=float, default=None, help="seconds before all are killed")
  parser.add_argument("command", nargs=argparse.REMAINDER)
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("no command given (put it after --)")
  try:
    results = run_local(command, args.num_processes, args.devices_per_process, port=args.port,
                        timeout=args.timeout)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return first_failure(results)


if __name__ == "__main__":
  sys.exit(main())
