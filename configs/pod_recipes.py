r"""Pod recipes: for every preset from 12 to 96 layers and every modern preset (Ettin, Llama 2),
a TPU slice and the overrides that fit it.

Each recipe was checked by compiling the real train step for its slice on a CPU machine
(`python -m launch.aot`); `python -m launch.recipes_table` re-runs every check and rewrites
results/pod_recipes.md (docs/pods.md links it) with the measured per-chip memory.

  python -m configs.pod_recipes gpt3_175b        # prints: <topology> <config file> <flags...>
  python -m launch.aot --config configs/gpt3_175b.py --topology v5p-1024 \
      $(python -m configs.pod_recipes gpt3_175b --flags_only)

Fields: `topology` (Cloud TPU slice name), `mesh` (data, fsdp, tensor degrees), `batch` (global
batch in sequences), `microbatches` (gradient accumulation), `remat` (model.remat_policy),
`attention` (model.attention_impl), optionally `preset` (configs/<preset>.py; default the recipe's
name), `seq_len` (data.seq_len; default the preset's) and `overrides` (more config fields), and
compute dtype bfloat16 with float32 parameters and optimizer state throughout. `compare_dense`:
recipes_table also compiles the recipe with attention_impl="xla" (dense [B, H, L, L] scores in
every layer, what windowed layers fell back to before splash attention) and shows its memory.

Ettin (and ModernBERT) train in two stages: 1,024 tokens, then 8,192 (context extension). Stage 1
uses ModernBERT's global batch after its batch-size warmup as this file's author recalls it from
Warner et al. 2024 (4,608 sequences for base-shaped models, 4,928 for large; the paper was not
at hand to re-check), for every Ettin size, since Weller et al. 2025 train the suite with
ModernBERT's recipe. The stage-2 recipes (`*_8k`) keep stage 1's tokens per step, 576 x 8,192 =
4.7M; that batch is this file's choice, not a published one. Both stages split each chip's rows
into micro-batches of a few 8k-token-equivalents and use splash attention, whose windowed layers
cost ~window keys per query (results/splash_attention/README.md: the windowed 1B encoder at 64 x
8,192 on v5p-32 fell from 65.1 GiB per chip with dense fallback attention to 12.6 GiB).

Why these choices:
- Up to ~1.5B parameters the state is small next to 95 GiB, so the mesh is pure FSDP over the
  slice (parameters, gradients and Adam moments sharded; ZeRO-3 costs one all-gather per layer,
  cheap on ICI) and the batch is the preset's published one.
- BERT and GPT-2 keep their attention dropout (0.1), which the fused kernel cannot apply, so they
  use the einsum attention ("xla"); short BERT sequences (128) make its [L, L] scores cheap.
  GPT-3, Ettin and Llama presets have no dropout and use splash attention ("flash"), which never
  stores [B, H, L, L] scores: at L=2048 and longer that is what makes long sequences fit.
- Remat: "none" when activations fit; "save_dots" (keep the matmul outputs, recompute the
  element-wise work) next; "full" (keep each layer's input only) for the largest models, where
  the stored activations of 96 layers would not fit otherwise.

GPT-3 175B on v5p-1024 (512 chips x 95 GiB), batch 2048 x 2048 tokens, bf16 compute. Measured with
launch.aot (per chip; results/pod_recipes.json has the recipe's full report):
- Sharding: FSDP over all 512 chips (data=1, fsdp=512, tensor=1). float32 parameters and both Adam
  moments are 12 bytes x 174.6B / 512 = 3.9 GiB per chip; no tensor parallelism is needed to fit.
- Activations decide it: each chip holds 4 sequences x 2048 tokens. With full remat, splash
  attention and the vocabulary-tiled head it fits at 42.6 GiB (38.7 GiB temporaries). Measured
  with the older Pallas flash kernel and the logits head, by remat policy: "none" 788 GiB,
  "save_dots" 175 GiB, "save_qkv_out" 104 GiB (all out of memory), "full" 45.2 GiB; so full
  remat is what it takes. Full remat with "xla" attention also fit (60.5 GiB): fused attention
  saves the 15 GiB of [B, H, L, L] scores and their HBM traffic rather than making it fit.
- Less recompute: "save_qkv_out" with train.microbatches=2 (2 sequences per chip per micro-batch)
  fit at 67.6 GiB (older kernel); it trades full remat's extra forward pass for twice the FSDP
  all-gathers.
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


# Ettin, both families, both stages (see the docstring). name: (slice, stage-1 micro-batches,
# stage-1 remat, stage-2 micro-batches, stage-2 remat)
_ETTIN_PODS = {
    "17m": ("v5p-32", 8, "save_dots", 9, "full"),
    "32m": ("v5p-32", 8, "save_dots", 9, "full"),
    "68m": ("v5p-32", 8, "save_dots", 9, "full"),
    "150m": ("v5p-32", 8, "save_dots", 9, "full"),
    "400m": ("v5p-64", 7, "save_dots", 6, "full"),
    "1b": ("v5p-128", 4, "full", 3, "full"),
}
ETTIN_STAGE1_BATCH = {"400m": 4928}  # ModernBERT-large's; the others ModernBERT-base's 4,608
ETTIN_STAGE2 = dict(seq_len=8192, batch=576)
DENSE_COMPARED = ("150m", "400m", "1b")  # 8k recipes also compiled with dense attention
ETTIN_MLM_PREDICTIONS_8K = 2458  # 30% of 8,192, rounded up (the presets' 308 is 30% of 1,024)


def _ettin_recipes():
  recipes = {}
  for family in ("encoder", "decoder"):
    for size, (topology, micro1, remat1, micro2, remat2) in _ETTIN_PODS.items():
      name = f"ettin_{family}_{size}"
      recipes[name] = dict(
          topology=topology, mesh=(1, -1, 1), batch=ETTIN_STAGE1_BATCH.get(size, 4608),
          microbatches=micro1, remat=remat1, attention="flash",
          note="stage 1: 1,024 tokens, ModernBERT's batch")
      mlm = {"objective.max_predictions_per_seq": ETTIN_MLM_PREDICTIONS_8K}
      recipes[f"{name}_8k"] = dict(
          preset=name, topology=topology, mesh=(1, -1, 1), batch=ETTIN_STAGE2["batch"],
          seq_len=ETTIN_STAGE2["seq_len"], microbatches=micro2, remat=remat2, attention="flash",
          overrides=mlm if family == "encoder" else {}, compare_dense=size in DENSE_COMPARED,
          note="stage 2: 8,192 tokens, stage 1's 4.7M tokens per step")
  return recipes


RECIPES.update(_ettin_recipes())
RECIPES["llama2_7b"] = dict(
    topology="v5p-128", mesh=(1, -1, 1), batch=1024, microbatches=2, remat="full",
    attention="flash", note="batch 1024 x 4096 = 4M tokens (Llama 2, sec. 2.2)")


def preset(name):
  """The preset the recipe applies to: configs/<preset>.py."""
  if name not in RECIPES:
    raise KeyError(f"no pod recipe {name!r}; recipes: {', '.join(RECIPES)}")
  return RECIPES[name].get("preset", name)


def config_path(name):
  return f"configs/{preset(name)}.py"


def overrides(name):
  """The recipe as a {config path: value} dict (applied on top of configs/<preset>.py)."""
  preset(name)  # the one "no such recipe" error
  r = RECIPES[name]
  data, fsdp, tensor = r["mesh"]
  fields = {"mesh.data": data, "mesh.fsdp": fsdp, "mesh.tensor": tensor,
            "train.global_batch_size": r["batch"], "train.microbatches": r["microbatches"],
            "model.remat_policy": r["remat"], "model.attention_impl": r["attention"],
            "model.dtype": "bfloat16", "model.param_dtype": "float32"}
  if "seq_len" in r:
    fields["data.seq_len"] = r["seq_len"]
  return {**fields, **r.get("overrides", {})}


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
  options = ("--flags_only", "--config_only")
  args = [a for a in sys.argv[1:] if a not in options]
  if len(args) != 1 or args[0] not in RECIPES:
    print(f"usage: python -m configs.pod_recipes {{{'|'.join(RECIPES)}}} "
          "[--flags_only | --config_only]", file=sys.stderr)
    sys.exit(2)
  if "--config_only" in sys.argv:
    words = [config_path(args[0])]
  else:
    words = flags(args[0])
    if "--flags_only" not in sys.argv:
      words = [RECIPES[args[0]]["topology"], config_path(args[0])] + words
  print(" ".join(words))
