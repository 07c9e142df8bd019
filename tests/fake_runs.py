"""Synthetic run directories in the documented format (docs/ARCHITECTURE.md), for the tests of
figures/ and launch/sweep.py. No training: losses follow known curves so tests can check fits.
"""

import json
import os


def _dump(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f)


def loss_curve(step, num_steps, final_loss):
  """A decreasing curve that ends at final_loss when step == num_steps."""
  return final_loss + 2.0 * ((1 + step) ** -0.5 - (1 + num_steps) ** -0.5)


def write_run(workdir, *, name, seed=0, final_loss=3.0, num_steps=100, step=None,
              state="finished", num_layers=2, d_model=64, params=None, objective="causal",
              family="decoder", tokens_per_step=2048, flops_per_token=None, log_every=10,
              eval_every=20, evals=None, eval_step=None):
  """Writes config.json, provenance.json, metrics.jsonl, status.json and eval/<suite>.json.

  `step` is how far the run got (default num_steps); `evals` maps suite -> metrics dict, written
  with checkpoint_step `eval_step` (default `step`).
  """
  step = num_steps if step is None else step
  params = params or 12 * num_layers * d_model**2
  flops_per_token = flops_per_token or 6 * params
  batch, seq_len = tokens_per_step // 128, 128
  config = {"name": name, "seed": seed,
            "model": {"family": family, "num_layers": num_layers, "d_model": d_model},
            "objective": {"name": objective}, "data": {"seq_len": seq_len, "seed": seed},
            "train": {"num_steps": num_steps, "global_batch_size": batch}}
  _dump(os.path.join(workdir, "config.json"), config)
  _dump(os.path.join(workdir, "provenance.json"), {
      "git_commit": "0" * 40, "git_dirty": False, "config_hash": "f" * 16,
      "data_fingerprint": "synthetic", "mesh": {"data": 1, "fsdp": 1, "tensor": 1},
      "jax_version": "0", "num_devices": 1, "process_count": 1, "params_total": params + 1000,
      "params_non_embedding": params, "train_flops_per_token": flops_per_token,
      "command": "tests/fake_runs.py"})
  rows = []
  for s in range(log_every, step + 1, log_every):
    tokens = s * tokens_per_step
    rows.append({"split": "train", "step": s, "loss": loss_curve(s, num_steps, final_loss) + 0.02,
                 "learning_rate": 1e-3, "grad_norm": 1.0, "tokens_per_sec": 1e4, "mfu": 0.1,
                 "tokens_seen": tokens, "flops_seen": tokens * flops_per_token, "time": s})
    if s % eval_every == 0:
      rows.append({"split": "eval", "step": s, "loss": loss_curve(s, num_steps, final_loss)})
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  _dump(os.path.join(workdir, "status.json"), {
      "state": state, "step": step, "num_steps": num_steps,
      "error": "synthetic failure" if state == "failed" else None, "updated": "2025-01-01"})
  for suite, metrics in (evals or {}).items():
    _dump(os.path.join(workdir, "eval", f"{suite}.json"), {
        "suite": suite, "checkpoint_step": step if eval_step is None else eval_step,
        "config_hash": "f" * 16, "seed": seed, "metrics": metrics})


def write_sweep_json(root, name, kind, runs, budget="tokens", eval_suites=""):
  """ROOT/sweep.json as launch/sweep.py writes it; runs: [(run name, seed, meta)]."""
  _dump(os.path.join(root, "sweep.json"), {"sweeps": {name: {
      "kind": kind, "budget": budget, "description": f"synthetic {kind} sweep",
      "eval_suites": eval_suites,
      "runs": [{"name": n, "seed": s, "workdir": os.path.join(n, f"seed{s}"), "meta": m}
               for n, s, m in runs]}}})
