"""The one table of Hugging Face tensor names <-> pancake parameter paths, read both ways.

A `Rule` says which HF tensor holds a pancake parameter and how its axes line up:
`axes[j]` lists the pancake axes (of one layer's parameter) that HF axis j holds, row-major.
So a torch Linear weight [out, in] read into a pancake kernel [in, out] is ((1,), (0,)); BERT's
query weight [H*Dh, D] read into a kernel [D, H, Dh] is ((1, 2), (0,)); GPT-2's Conv1D weights
are already [in, out]. A fused tensor (GPT-2's c_attn: query, key, value side by side) gives each
of its `parts` equal slices of HF axis `split_axis` to one parameter (`part` = which slice).

Import reads, for every pancake shard, only the HF slices that shard needs (interop/hf.py);
export writes each HF tensor from the parameters the table points at it. Nothing else in the
project knows an HF tensor name.

Layer rules name the layer "{i}"; their pancake path is relative to one layer
(stack/layers with a leading [num_layers] axis when scanned, stack/layers_{i} when unrolled).
Each rule belongs to a group: "body" must be in every checkpoint; a head group a checkpoint
lacks is initialised (BertForMaskedLM has no pooler, BertModel no MLM or NSP head).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Rule:
  ours: str                # pancake path, "/"-separated
  theirs: str              # HF tensor name without the model prefix ("{i}" = layer)
  axes: tuple | None = None  # per HF axis, the pancake axes it holds; None = same axes
  part: int = 0            # which of `parts` equal slices of HF axis `split_axis`
  parts: int = 1
  split_axis: int = 0
  group: str = "body"      # "body" (required) or a head that may be missing
  prefixed: bool = True    # name carries the model prefix ("transformer." / "bert.")


_T = ((1,), (0,))  # torch Linear [out, in] <-> kernel [in, out]


def _ln(ours, theirs, **kw):
  return [Rule(f"{ours}/scale", f"{theirs}.weight", **kw), Rule(f"{ours}/bias", f"{theirs}.bias", **kw)]


# ------------------------------------------------------------------ GPT-2 (GPT2LMHeadModel)
GPT2_PREFIX = "transformer."
GPT2_GLOBAL = [
    Rule("embeddings/token/embedding", "wte.weight"),
    Rule("embeddings/position/embedding", "wpe.weight"),
    *_ln("final_ln", "ln_f"),
]
GPT2_UNTIED_HEAD = [Rule("lm_head/kernel", "lm_head.weight", _T, prefixed=False)]
GPT2_LAYER = [
    *_ln("ln_attention", "h.{i}.ln_1"),
    *[r for k, name in enumerate(("query", "key", "value")) for r in (
        Rule(f"attention/{name}/kernel", "h.{i}.attn.c_attn.weight", ((0,), (1, 2)),
             part=k, parts=3, split_axis=1),
        Rule(f"attention/{name}/bias", "h.{i}.attn.c_attn.bias", ((0, 1),),
             part=k, parts=3, split_axis=0))],
    Rule("attention/out/kernel", "h.{i}.attn.c_proj.weight", ((0, 1), (2,))),
    Rule("attention/out/bias", "h.{i}.attn.c_proj.bias"),
    *_ln("ln_mlp", "h.{i}.ln_2"),
    Rule("mlp/wi/kernel", "h.{i}.mlp.c_fc.weight"),
    Rule("mlp/wi/bias", "h.{i}.mlp.c_fc.bias"),
    Rule("mlp/wo/kernel", "h.{i}.mlp.c_proj.weight"),
    Rule("mlp/wo/bias", "h.{i}.mlp.c_proj.bias"),
]
# Buffers older GPT-2 checkpoints carry (causal-mask constants), not weights.
GPT2_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")

# ------------------------------------------------------------------ BERT (BertForPreTraining)
BERT_PREFIX = "bert."
BERT_GLOBAL = [
    Rule("embeddings/token/embedding", "embeddings.word_embeddings.weight"),
    Rule("embeddings/position/embedding", "embeddings.position_embeddings.weight"),
    Rule("embeddings/token_type/embedding", "embeddings.token_type_embeddings.weight"),
    *_ln("embeddings/ln", "embeddings.LayerNorm"),
    Rule("pooler/kernel", "pooler.dense.weight", _T, group="pooler"),
    Rule("pooler/bias", "pooler.dense.bias", group="pooler"),
    Rule("mlm_head/dense/kernel", "cls.predictions.transform.dense.weight", _T, group="mlm_head",
         prefixed=False),
    Rule("mlm_head/dense/bias", "cls.predictions.transform.dense.bias", group="mlm_head",
         prefixed=False),
    *_ln("mlm_head/ln", "cls.predictions.transform.LayerNorm", group="mlm_head", prefixed=False),
    Rule("mlm_output_bias", "cls.predictions.bias", group="mlm_head", prefixed=False),
    Rule("nsp_classifier/kernel", "cls.seq_relationship.weight", _T, group="nsp",
         prefixed=False),
    Rule("nsp_classifier/bias", "cls.seq_relationship.bias", group="nsp", prefixed=False),
]
BERT_UNTIED_HEAD = [Rule("mlm_decoder/kernel", "cls.predictions.decoder.weight", _T,
                         group="mlm_head", prefixed=False)]
BERT_LAYER = [
    *[r for name in ("query", "key", "value") for r in (
        Rule(f"attention/{name}/kernel", f"encoder.layer.{{i}}.attention.self.{name}.weight",
             ((1, 2), (0,))),
        Rule(f"attention/{name}/bias", f"encoder.layer.{{i}}.attention.self.{name}.bias",
             ((0, 1),)))],
    Rule("attention/out/kernel", "encoder.layer.{i}.attention.output.dense.weight", ((2,), (0, 1))),
    Rule("attention/out/bias", "encoder.layer.{i}.attention.output.dense.bias"),
    *_ln("ln_attention", "encoder.layer.{i}.attention.output.LayerNorm"),
    Rule("mlp/wi/kernel", "encoder.layer.{i}.intermediate.dense.weight", _T),
    Rule("mlp/wi/bias", "encoder.layer.{i}.intermediate.dense.bias"),
    Rule("mlp/wo/kernel", "encoder.layer.{i}.output.dense.weight", _T),
    Rule("mlp/wo/bias", "encoder.layer.{i}.output.dense.bias"),
    *_ln("ln_mlp", "encoder.layer.{i}.output.LayerNorm"),
]
BERT_IGNORED_SUFFIXES = ("embeddings.position_ids", "cls.predictions.decoder.bias")
# What each head group is, for the line that says which heads were initialised.
HEAD_GROUPS = {"pooler": "pooler (bert.pooler)", "mlm_head": "MLM head (cls.predictions)",
               "nsp": "NSP head (cls.seq_relationship)"}

# ------------------------------------------------------------------ activations
# pancake model.activation <-> HF activation_function (GPT-2) / hidden_act (BERT); the first HF
# name of each is the one export writes.
ACTIVATIONS = {
    "gelu_tanh": ("gelu_new", "gelu_pytorch_tanh"),
    "gelu_exact": ("gelu",),
    "relu": ("relu",),
}


def family_rules(family, tie_embeddings):
  """(prefix, global rules, layer rules, ignored name suffixes) of a model family."""
  if family == "decoder":
    return (GPT2_PREFIX, GPT2_GLOBAL + ([] if tie_embeddings else GPT2_UNTIED_HEAD), GPT2_LAYER,
            GPT2_IGNORED_SUFFIXES)
  return (BERT_PREFIX, BERT_GLOBAL + ([] if tie_embeddings else BERT_UNTIED_HEAD), BERT_LAYER,
          BERT_IGNORED_SUFFIXES)


def hf_name(rule, prefix, layer=None):
  name = rule.theirs.format(i=layer) if layer is not None else rule.theirs
  return prefix + name if rule.prefixed else name


def hf_shape(rule, ours_shape):
  """Shape of the HF tensor that `rule` reads from, for one layer's pancake shape."""
  axes = rule.axes or tuple((a,) for a in range(len(ours_shape)))
  shape = []
  for j, group in enumerate(axes):
    size = 1
    for a in group:
      size *= ours_shape[a]
    shape.append(size * rule.parts if j == rule.split_axis else size)
  return tuple(shape)
