r"""Train-step speed on this CPU: tokens/s and MFU of pancake's step, against HF PyTorch.

  JAX_PLATFORMS=cpu .venv/bin/python -m bench.train_step [--steps 3 --rounds 3 --json FILE]

Shapes (both families): 6 layers, d_model 512, 8 heads, d_ff 2048, length 256, batch 8, vocab
8192, float32, dropout off. The decoder trains causal LM (as GPT-2); the encoder trains MLM+NSP
with 40 predictions per sequence (as BERT). pancake's step is trainlib's real jitted step (AdamW,
clipping, donated state) on one CPU device; the reference is HF transformers' GPT2LMHeadModel /
BertForPreTraining with torch.optim.AdamW (bench/torch_reference.py).

MFU = analytic training FLOPs per token (objective.flops_per_token, the formula train.py's MFU
uses) x tokens/s / peak, where the peak is the best float32 [2048, 2048] matmul rate of either
framework measured in this run. Both frameworks are charged the same useful FLOPs, so the ratio
of their MFUs is the ratio of their tokens/s.

Run it on an idle machine (bench/machine.py warns otherwise and records the load average at
start and end in the JSON). The frameworks alternate step by step, so a change of load hits both
alike; each reports the median over rounds of its per-round median step (the fastest step is in
the JSON too); the matmul peak is the best of every round. Figures are printed as a table and
written as JSON.
"""

import os
import statistics
import time

from absl import app, flags

from bench import machine
from bench.jax_trainer import JaxTrainer

_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps per framework per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds, each starting with a matmul-peak measurement.")
_FAMILIES = flags.DEFINE_list("families", ["decoder", "encoder"], "Model families to time.")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the HF PyTorch reference.")
_JSON = flags.DEFINE_string("json", "results/bench_train_step.json", "Where to write the figures.")

SHAPE = dict(num_layers=6, d_model=512, num_heads=8, d_ff=2048, seq_len=256, batch=8,
             vocab_size=8192, predictions_per_seq=40)


def bench_config(family):
  """pancake's config for the bench shape (BERT-base-like encoder / GPT-2-like decoder)."""
  from configs import base
  import objectives
  c = base.get_config()
  c.name = f"bench_{family}"
  m = c.model
  m.family = family
  m.num_layers, m.d_model, m.num_heads = SHAPE["num_layers"], SHAPE["d_model"], SHAPE["num_heads"]
  m.d_ff, m.vocab_size, m.max_len = SHAPE["d_ff"], SHAPE["vocab_size"], SHAPE["seq_len"]
  m.dropout_rate = m.attention_dropout_rate = 0.0
  if family == "encoder":
    m.activation, m.ln_placement, m.ln_epsilon, m.nsp_head = "gelu_exact", "post", 1e-12, True
    c.objective.name = objectives.default_for(family)  # BERT's MLM + NSP
    c.objective.max_predictions_per_seq = SHAPE["predictions_per_seq"]
  else:
    m.activation, m.ln_placement, m.ln_epsilon = "gelu_tanh", "pre", 1e-5
    c.objective.name = objectives.default_for(family)  # GPT's causal LM
  c.data.seq_len = SHAPE["seq_len"]
  c.train.global_batch_size = SHAPE["batch"]
  c.mesh.data = 1
  return c


def _seconds(step):
  """Wall time of one call of `step` (every trainer's step reads its result back)."""
  start = time.perf_counter()
  step()
  return time.perf_counter() - start


def jax_matmul_flops_per_second(n=2048, repeats=5):
  """Best float32 [n,n]x[n,n] rate of XLA:CPU, FLOP/s."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def run(families, steps, rounds, with_torch):
  """-> results dict: peak, and per family the step seconds, tokens/s and MFU of each framework."""
  from bench import torch_reference

  shape = torch_reference.Shape(**SHAPE)
  tokens_per_step = SHAPE["batch"] * SHAPE["seq_len"]
  trainers = {}
  for family in families:
    trainers[(family, "pancake (jax)")] = JaxTrainer(bench_config(family))
    if with_torch:
      trainers[(family, "hf (torch)")] = torch_reference.TorchTrainer(family, shape)
      trainers[(family, "hf (torch)")].step()  # warm-up (allocator, thread pool)
  timings = {key: [[] for _ in range(rounds)] for key in trainers}
  peaks = {"jax": [], "torch": []}
  for r in range(rounds):
    peaks["jax"].append(jax_matmul_flops_per_second())
    if with_torch:
      peaks["torch"].append(torch_reference.matmul_flops_per_second())
    for _ in range(steps):  # one step each in turn, so load changes hit every framework alike
      for key, trainer in trainers.items():
        timings[key][r].append(_seconds(trainer.step))
  peak = max(max(v) for v in peaks.values() if v)
  results = {"shape": SHAPE, "steps_per_round": steps, "rounds": rounds,
             "matmul_peak_flops": {k: max(v) for k, v in peaks.items() if v}, "peak_flops": peak,
             "threads": os.cpu_count(), "families": {}}
  for family in families:
    flops_per_token = trainers[(family, "pancake (jax)")].flops_per_token
    rows = {}
    for (fam, framework), trainer in trainers.items():
      if fam != family:
        continue
      per_round = timings[(fam, framework)]
      seconds = statistics.median(statistics.median(steps) for steps in per_round)
      tokens_per_sec = tokens_per_step / seconds
      rows[framework] = dict(step_seconds=round(seconds, 4),
                             fastest_step_seconds=round(min(min(t) for t in per_round), 4),
                             all_step_seconds=[[round(t, 4) for t in ts] for ts in per_round],
                             tokens_per_sec=round(tokens_per_sec, 1),
                             mfu=round(flops_per_token * tokens_per_sec / peak, 4),
                             params=int(trainer.params))
    entry = {"flops_per_token": flops_per_token, "frameworks": rows}
    if with_torch:
      entry["jax_over_torch_speed"] = round(
          rows["pancake (jax)"]["tokens_per_sec"] / rows["hf (torch)"]["tokens_per_sec"], 3)
    results["families"][family] = entry
  return results


def format_table(results):
  load = results.get("machine", {})
  lines = [f"matmul peak (float32 2048^3, best of run): {results['peak_flops'] / 1e9:.1f} GFLOP/s "
           f"({', '.join(f'{k} {v / 1e9:.1f}' for k, v in results['matmul_peak_flops'].items())})",
           f"median of {results['rounds']} rounds x {results['steps_per_round']} steps; load average "
           f"{load.get('load_average_start', ['?'])[0]} at start, "
           f"{load.get('load_average_end', ['?'])[0]} at end",
           "",
           "| family | framework | params | step s | tokens/s | MFU | jax/torch |",
           "|---|---|---:|---:|---:|---:|---:|"]
  for family, entry in results["families"].items():
    for framework, row in entry["frameworks"].items():
      ratio = entry.get("jax_over_torch_speed") if framework.startswith("pancake") else None
      lines.append(f"| {family} | {framework} | {row['params'] / 1e6:.1f}M | "
                   f"{row['step_seconds']:.3f} | {row['tokens_per_sec']:.0f} | "
                   f"{100 * row['mfu']:.1f}% | {'' if ratio is None else f'{ratio:.2f}x'} |")
  return "\n".join(lines)


def main(argv):
  del argv
  record = machine.start()
  results = run(_FAMILIES.value, _STEPS.value, _ROUNDS.value, _TORCH.value)
  machine.report(results, record, format_table, _JSON.value)


if __name__ == "__main__":
  app.run(main)
