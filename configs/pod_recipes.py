r"""Pod recipes: for every preset from 12 to 96 layers, a TPU slice and the overrides that fit it.

Each recipe was checked by compiling the real train step for its slice on a CPU machine
(`python -m launch.aot`); `python -m launch.recipes_table` re-runs every check and rewrites
results/pod_recipes.md (the README's table) with the measured per-chip memory.

  python -m configs.pod_recipes gpt3_175b        # prints: <topology> <config file> <flags...>
  python -m launch.aot --config configs/gpt3_175b.py --topology v5p-1024 \
      $(python -m configs.pod_recipes gpt3_175b --flags_only)

Fields: `topology` (Cloud TPU slice name), `mesh` (data, fsdp, tensor degrees), `batch` (global
batch in sequences, at the preset's data.seq_len), `microbatches` (gradient accumulation),
`remat` (model.remat_policy), `attention` (model.attention_impl), and compute dtype bfloat16 with
float32 parameters and optimizer state throughout.

Why these choices:
- Up to ~1.5B parameters the state is small next to 95 GiB, so the mesh is pure FSDP over the
  slice (parameters, gradients and Adam moments sharded; ZeRO-3 costs one all-gather per layer,
  cheap on ICI) and the batch is the preset's published one.
- BERT and GPT-2 keep their attention dropout (0.1), which the fused kernel cannot apply, so they
  use the einsum attention ("xla"); short BERT sequences (128) make its [L, L] scores cheap.
  GPT-3 presets have no dropout and use the Pallas flash-attention kernel ("flash"), which never
  stores [B, H, L, L] scores: at L=2048 that is what makes long sequences fit.
- Remat: "none" when activations fit; "save_dots" (keep the matmul outputs, recompute the
  element-wise work) next; "full" (keep each layer's input only) for the largest models, where
  the stored activations of 96 layers would not fit otherwise.

GPT-3 175B on v5p-1024 (512 chips x 95 GiB), batch 2048 x 2048 tokens, bf16 compute. Measured with
launch.aot (per chip; results/pod_recipes.json has the recipe's full report):
- Sharding: FSDP over all 512 chips (data=1, fsdp=512, tensor=1). float32 parameters and both Adam
  moments are 12 bytes x 174.6B / 512 = 3.9 GiB per chip; no tensor parallelism is needed to fit.
- Activations decide it: each chip holds 4 sequences x 2048 tokens. Needed per chip, by remat
  policy (flash attention): "none" 788 GiB, "save_dots" 175 GiB, "save_qkv_out" 104 GiB (all
  out of memory); "full" fits at 45.2 GiB (41.3 GiB temporaries). So full remat is what it takes.
- Flash attention is not what makes it fit (full remat with "xla" attention also fits, at 60.5 GiB)
  but saves the 15 GiB of [B, H, L, L] scores and their HBM traffic; it is the recipe's choice.
- Less recompute: "save_qkv_out" with train.microbatches=2 (2 sequences per chip per micro-batch)
  fits at 67.6 GiB; it trades full remat's extra forward pass for twice the FSDP all-gathers.
- 4.45e18 FLOPs per step (1.06e12 per token): 19.0 s per step at 100% of the chips' bf16 peak.
"""

import sys

# Every value below is plain data; `overrides()` turns a recipe into --config flags.
RECIPES = {
    "bert_base": dict(
        topology="v5p-8", mesh=(1, -1, 1), batch=256, microbatches=1, remat="none",
        attention="xla", note="BERT phase 1 (L=128); 4 chips, FSDP"),
    "bert_large": dict(
        topology="v5p-8", mesh=(1, -1, 1), batch=256, microbatches=1, remat="none",
        attention="xla", note="BERT phase 1 (L=128); 4 chips, FSDP"),
    "gpt2_small": dict(
        topology="v5p-32", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="xla", note="batch 512 x 1024 (GPT-2 paper); attention dropout needs xla"),
    "gpt2_medium": dict(
        topology="v5p-32", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="xla", note="batch 512 x 1024"),
    "gpt2_large": dict(
        topology="v5p-64", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="xla", note="batch 512 x 1024"),
    "gpt2_xl": dict(
        topology="v5p-64", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="xla", note="batch 512 x 1024"),
    "gpt3_small": dict(
        topology="v5p-32", mesh=(1, -1, 1), batch=256, microbatches=1, remat="none",
        attention="flash", note="batch 0.5M tokens (Table 2.1)"),
    "gpt3_medium": dict(
        topology="v5p-32", mesh=(1, -1, 1), batch=256, microbatches=1, remat="save_dots",
        attention="flash", note="batch 0.5M tokens"),
    "gpt3_large": dict(
        topology="v5p-32", mesh=(1, -1, 1), batch=256, microbatches=1, remat="save_dots",
        attention="flash", note="batch 0.5M tokens"),
    "gpt3_xl": dict(
        topology="v5p-64", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="flash", note="batch 1M tokens"),
    "gpt3_2_7b": dict(
        topology="v5p-64", mesh=(1, -1, 1), batch=512, microbatches=1, remat="save_dots",
        attention="flash", note="batch 1M tokens"),
    "gpt3_6_7b": dict(
        topology="v5p-128", mesh=(1, -1, 1), batch=1024, microbatches=1, remat="full",
        attention="flash", note="batch 2M tokens"),
    "gpt3_13b": dict(
        topology="v5p-256", mesh=(1, -1, 1), batch=1024, microbatches=1, remat="full",
        attention="flash", note="batch 2M tokens"),
    "gpt3_175b": dict(
        topology="v5p-1024", mesh=(1, -1, 1), batch=2048, microbatches=1, remat="full",
        attention="flash",
        note="the target: 512 chips, batch 2048 x 2048 = 4.2M tokens (see above)"),
}


def overrides(name):
  """The recipe as a {config path: value} dict (applied on top of configs/<name>.py)."""
  if name not in RECIPES:
    raise KeyError(f"no pod recipe {name!r}; recipes: {', '.join(RECIPES)}")
  r = RECIPES[name]
  data, fsdp, tensor = r["mesh"]
  return {"mesh.data": data, "mesh.fsdp": fsdp, "mesh.tensor": tensor,
          "train.global_batch_size": r["batch"], "train.microbatches": r["microbatches"],
          "model.remat_policy": r["remat"], "model.attention_impl": r["attention"],
          "model.dtype": "bfloat16", "model.param_dtype": "float32"}


def flags(name):
  """The recipe as train.py / launch.aot flags."""
  return [f"--config.{path}={value}" for path, value in overrides(name).items()]


def apply(config, name):
  """Sets the recipe's fields on `config` (a preset's ConfigDict); returns it."""
  for path, value in overrides(name).items():
    section, field = path.split(".")
    config[section][field] = value
  return config


if __name__ == "__main__":
  args = [a for a in sys.argv[1:] if a != "--flags_only"]
  if len(args) != 1 or args[0] not in RECIPES:
    print(f"usage: python -m configs.pod_recipes {{{'|'.join(RECIPES)}}} [--flags_only]",
          file=sys.stderr)
    sys.exit(2)
  words = flags(args[0])
  if "--flags_only" not in sys.argv:
    words = [RECIPES[args[0]]["topology"], f"configs/{args[0]}.py"] + words
  print(" ".join(words))
