"""Stand-in for train.py / eval.py in the sweep-runner tests (no JAX, milliseconds per run).

    python tests/fake_entry.py train|eval --config SPEC --workdir DIR [--suite a,b]
        [--config.section.field=value ...]

train writes a finished run whose final loss is 2 + 30 / N^0.3 (N = 12 L d^2 from the
overrides); eval writes eval/<suite>.json for the run's final step. Every call appends a line to
DIR/fake_calls.txt. FAKE_FAIL="name:seed,..." makes train fail for those runs (status "failed"
at a third of the steps, exit code 1), like a crash. FAKE_SECONDS=t makes every call take t
seconds and append "mode start end [cores]" to DIR/fake_cores.txt.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests import fake_runs  # noqa: E402


def main(argv):
  mode, args = argv[0], argv[1:]
  flags, overrides = {}, {}
  i = 0
  while i < len(args):
    if args[i].startswith("--config."):
      key, _, value = args[i][len("--config."):].partition("=")
      overrides[key] = value
    else:
      flags[args[i]] = args[i + 1]
      i += 1
    i += 1
  workdir = flags["--workdir"]
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "fake_calls.txt"), "a") as f:
    f.write(" ".join([mode, flags["--config"]] + [f"{k}={v}" for k, v in overrides.items()])
            + "\n")
  name, seed = overrides["name"], int(overrides["seed"])
  if os.environ.get("FAKE_SECONDS"):  # how long each call takes, and on which cores it ran
    import time
    start = time.time()
    time.sleep(float(os.environ["FAKE_SECONDS"]))
    with open(os.path.join(workdir, "fake_cores.txt"), "a") as f:
      f.write(f"{mode} {start} {time.time()} {sorted(os.sched_getaffinity(0))}\n")
  if mode == "train":
    layers = int(overrides.get("model.num_layers", 2))
    width = int(overrides.get("model.d_model", 64))
    num_steps = int(overrides.get("train.num_steps", 100))
    n = 12 * layers * width**2
    failing = f"{name}:{seed}" in os.environ.get("FAKE_FAIL", "").split(",")
    fake_runs.write_run(workdir, name=name, seed=seed, final_loss=2 + 30 / n**0.3 + 0.01 * seed,
                        num_steps=num_steps, step=num_steps // 3 if failing else num_steps,
                        state="failed" if failing else "finished", num_layers=layers,
                        d_model=width, log_every=1, eval_every=1)
    if failing:
      print("fake train: synthetic crash", file=sys.stderr)
      return 1
    return 0
  with open(os.path.join(workdir, "status.json")) as f:
    step = json.load(f)["step"]
  os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
  for suite in flags["--suite"].split(","):
    with open(os.path.join(workdir, "eval", f"{suite}.json"), "w") as f:
      json.dump({"suite": suite, "checkpoint_step": step, "config_hash": "f" * 16, "seed": seed,
                 "metrics": {"loss": 3.0 + 0.1 * seed, "accuracy": 0.5 + 0.01 * seed}}, f)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
