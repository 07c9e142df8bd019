r"""GPU train-step speed: gpt2_small and gpt2_medium shapes in bfloat16, pancake beside HF GPT-2,
and a modern preset at 8,192 tokens (ModernBERT/Ettin's second stage: windowed and global layers).

  JAX_PLATFORMS=cuda python -m bench.gpu_step [--presets gpt2_small,ettin_encoder_150m:8192:2]

A preset is `name` (at --batch x --seq_len) or `name:seq_len:batch`.
pancake: trainlib's real jitted step (AdamW, clipping, donated state) on one GPU, the preset's
shape at --seq_len, compute in bfloat16 (parameters float32), attention_impl="flash" (cuDNN
fused attention where models.attention.attention_backend allows). HF: GPT2LMHeadModel of the
same shape with attn_implementation="sdpa", bfloat16 autocast, fused AdamW, when torch with CUDA
is importable. MFU = analytic training FLOPs per token (the formula train.py uses, for both) x
tokens/s / the device's dense bf16 peak (trainlib.metrics.PEAK_FLOPS). Median of --steps timed
steps after --warmup. bench/gpu.sh runs this after the model tests; figures go to the JSON.
"""

import importlib
import math
import statistics
import time

from absl import app, flags

from bench import machine

_PRESETS = flags.DEFINE_list(
    "presets", ["gpt2_small", "gpt2_medium", "ettin_encoder_150m:8192:2"],
    "configs/<preset>.py names, each optionally :seq_len:batch.")
_BATCH = flags.DEFINE_integer("batch", 8, "Sequences per step.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 1024, "Tokens per sequence.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per framework.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps first (compile, autotuning).")
_TORCH = flags.DEFINE_bool("torch", True, "Also time HF GPT-2 (SDPA) when torch has CUDA.")
_JSON = flags.DEFINE_string("json", "results/bench_gpu.json", "Where to write the figures.")


def preset_config(preset, batch, seq_len):
  c = importlib.import_module(f"configs.{preset}").get_config()
  c.model.dtype = "bfloat16"
  c.model.attention_impl = "flash"
  c.model.max_len = max(c.model.max_len, seq_len)
  c.model.dropout_rate = c.model.attention_dropout_rate = 0.0
  c.data.seq_len = seq_len
  if c.model.family == "encoder":  # the preset's masking rate over the longer rows
    c.objective.max_predictions_per_seq = math.ceil(round(c.objective.mask_prob * seq_len, 6))
  c.train.global_batch_size = batch
  c.mesh.data = 1
  return c


def parse_preset(entry, batch, seq_len):
  """`name` or `name:seq_len:batch` -> (name, seq_len, batch)."""
  parts = entry.split(":")
  if len(parts) == 1:
    return entry, seq_len, batch
  if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
    raise ValueError(f"--presets entry {entry!r}: want name or name:seq_len:batch")
  return parts[0], int(parts[1]), int(parts[2])


def _median_seconds(step, warmup, steps):
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


class TorchGpt2:
  """HF GPT2LMHeadModel with SDPA on CUDA: bf16 autocast, fused AdamW, clipping at 1.0."""

  def __init__(self, config):
    # late: optional dependency (torch and transformers: requirements-bench.txt)
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    m = config.model
    hf = transformers.GPT2Config(
        vocab_size=m.vocab_size, n_positions=m.max_len, n_embd=m.d_model, n_layer=m.num_layers,
        n_head=m.num_heads, n_inner=m.d_ff or 4 * m.d_model, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    self.model = transformers.GPT2LMHeadModel(hf, attn_implementation="sdpa").cuda().train()
    self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, m.vocab_size, (config.train.global_batch_size, config.data.seq_len),
                        generator=g).cuda()
    self.batch = {"input_ids": ids, "labels": ids}

  def step(self):
    # late: optional dependency (torch and transformers: requirements-bench.txt)
    import torch
    with torch.autocast("cuda", dtype=torch.bfloat16):
      loss = self.model(**self.batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
    self.optimizer.step()
    self.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())  # waits for the step


def _torch_cuda():
  try:
    # late: optional dependency (torch and transformers: requirements-bench.txt)
    import torch
    return torch.cuda.is_available()
  except ImportError:
    return False


def run(presets, batch, seq_len, steps, warmup, with_torch):
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  import jax

  from bench.jax_trainer import JaxTrainer
  from trainlib import metrics as metrics_lib

  device = jax.devices()[0]
  kinds = [k for k in metrics_lib.PEAK_FLOPS if device.device_kind.startswith(k)]
  peak = metrics_lib.PEAK_FLOPS[max(kinds, key=len)] if kinds else None
  results = {"device": device.device_kind, "platform": device.platform, "peak_bf16_flops": peak,
             "batch": batch, "seq_len": seq_len, "steps": steps, "presets": {}}
  for entry in presets:
    preset, length, rows = parse_preset(entry, batch, seq_len)
    config = preset_config(preset, rows, length)
    trainer = JaxTrainer(config)
    tokens = rows * length
    seconds, times = _median_seconds(trainer.step, warmup, steps)
    # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
    from models.attention import attention_backend
    backend = attention_backend(device.platform, "bfloat16", length,
                                config.model.d_model // config.model.num_heads)
    row = {"params": int(trainer.params), "flops_per_token": trainer.flops_per_token,
           "attention_backend": backend, "batch": rows, "seq_len": length,
           "attention_window": config.model.attention_window, "frameworks": {}}
    row["frameworks"]["pancake (jax)"] = {"step_seconds": round(seconds, 4),
                                          "tokens_per_sec": round(tokens / seconds, 1),
                                          "all_step_seconds": [round(t, 4) for t in times]}
    del trainer
    if with_torch and preset.startswith("gpt2"):  # the torch model is HF's GPT-2
      torch_trainer = TorchGpt2(config)
      seconds, times = _median_seconds(torch_trainer.step, warmup, steps)
      row["frameworks"]["hf gpt2 sdpa (torch)"] = {
          "step_seconds": round(seconds, 4), "tokens_per_sec": round(tokens / seconds, 1),
          "all_step_seconds": [round(t, 4) for t in times]}
      del torch_trainer
    for r in row["frameworks"].values():
      r["mfu"] = round(row["flops_per_token"] * r["tokens_per_sec"] / peak, 4) if peak else None
    results["presets"][entry] = row
  return results


def format_table(results):
  lines = [f"{results['device']} ({results['platform']}), bf16 peak "
           f"{(results['peak_bf16_flops'] or 0) / 1e12:.0f} TFLOP/s; median of {results['steps']} "
           "steps", "| preset | batch x len | framework | attention | step s | tokens/s | MFU |",
           "|---|---|---|---|---:|---:|---:|"]
  for preset, row in results["presets"].items():
    for framework, r in row["frameworks"].items():
      attention = row["attention_backend"] if framework.startswith("pancake") else "sdpa"
      mfu = "?" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
      lines.append(f"| {preset} | {row['batch']} x {row['seq_len']} | {framework} | {attention} | "
                   f"{r['step_seconds']:.3f} | "
                   f"{r['tokens_per_sec']:,.0f} | {mfu} |")
  return "\n".join(lines)


def main(argv):
  del argv
  record = machine.start()
  results = run(_PRESETS.value, _BATCH.value, _SEQ_LEN.value, _STEPS.value, _WARMUP.value,
                _TORCH.value and _torch_cuda())
  machine.report(results, record, format_table, _JSON.value)


if __name__ == "__main__":
  app.run(main)
