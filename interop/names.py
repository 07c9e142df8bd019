"""The tables of Hugging Face tensor names <-> pancake parameter paths, read both ways.

One table per architecture: GPT2LMHeadModel, BERT (BertForPreTraining / BertForMaskedLM /
BertModel), LlamaForCausalLM and ModernBertForMaskedLM; `architecture(model_cfg)` says which one
a pancake model is (RoPE decoders are Llama, RoPE encoders ModernBERT).

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
  prefixed: bool = True    # name carries the model prefix ("transformer." / "bert." / "model.")
  from_layer: int = 0      # layer rules: HF has the tensor from this layer on; below it pancake's
                           # parameter is unused (ModernBERT's block 0 attention norm): import
                           # fills it with the identity init (ones / zeros), export skips it


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

# ------------------------------------------------------------------ Llama (LlamaForCausalLM)
# Both use HF's rotate_half RoPE layout (dims i and i + Dh/2 rotate together), which is
# models/rope.py's, so q/k weights are copied as they are (no interleave permutation).
LLAMA_PREFIX = "model."
LLAMA_GLOBAL = [
    Rule("embeddings/token/embedding", "embed_tokens.weight"),
    Rule("final_ln/scale", "norm.weight"),
]
LLAMA_UNTIED_HEAD = GPT2_UNTIED_HEAD  # lm_head.weight, unprefixed
LLAMA_LAYER = [
    Rule("ln_attention/scale", "layers.{i}.input_layernorm.weight"),
    *[Rule(f"attention/{name}/kernel", f"layers.{{i}}.self_attn.{p}_proj.weight", ((1, 2), (0,)))
      for name, p in (("query", "q"), ("key", "k"), ("value", "v"))],
    Rule("attention/out/kernel", "layers.{i}.self_attn.o_proj.weight", ((2,), (0, 1))),
    Rule("ln_mlp/scale", "layers.{i}.post_attention_layernorm.weight"),
    Rule("mlp/wi_gate/kernel", "layers.{i}.mlp.gate_proj.weight", _T),  # silu(gate) * up
    Rule("mlp/wi/kernel", "layers.{i}.mlp.up_proj.weight", _T),
    Rule("mlp/wo/kernel", "layers.{i}.mlp.down_proj.weight", _T),
]
LLAMA_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)  # a buffer older checkpoints carry

# ------------------------------------------------------------------ ModernBERT (ModernBertForMaskedLM)
# Bias rules only match when model.use_bias is on (rules serve the parameters a model has).
MODERNBERT_PREFIX = "model."
MODERNBERT_GLOBAL = [
    Rule("embeddings/token/embedding", "embeddings.tok_embeddings.weight"),
    *_ln("embeddings/ln", "embeddings.norm"),
    *_ln("final_ln", "final_norm"),
    # pancake's encoder always builds a pooler; ModernBertForMaskedLM has none (never exported)
    Rule("pooler/kernel", "pooler.dense.weight", _T, group="pooler"),
    Rule("pooler/bias", "pooler.dense.bias", group="pooler"),
    Rule("mlm_head/dense/kernel", "head.dense.weight", _T, group="mlm_head", prefixed=False),
    Rule("mlm_head/dense/bias", "head.dense.bias", group="mlm_head", prefixed=False),
    *_ln("mlm_head/ln", "head.norm", group="mlm_head", prefixed=False),
    Rule("mlm_output_bias", "decoder.bias", group="mlm_head", prefixed=False),
]
MODERNBERT_UNTIED_HEAD = [Rule("mlm_decoder/kernel", "decoder.weight", _T, group="mlm_head",
                               prefixed=False)]
MODERNBERT_LAYER = [
    *_ln("ln_attention", "layers.{i}.attn_norm", from_layer=1),  # block 0: Identity in HF
    # Wqkv [3 * H * Dh, D]: query, key, value stacked along the output axis
    *[r for k, name in enumerate(("query", "key", "value")) for r in (
        Rule(f"attention/{name}/kernel", "layers.{i}.attn.Wqkv.weight", ((1, 2), (0,)),
             part=k, parts=3, split_axis=0),
        Rule(f"attention/{name}/bias", "layers.{i}.attn.Wqkv.bias", ((0, 1),),
             part=k, parts=3, split_axis=0))],
    Rule("attention/out/kernel", "layers.{i}.attn.Wo.weight", ((2,), (0, 1))),
    Rule("attention/out/bias", "layers.{i}.attn.Wo.bias"),
    *_ln("ln_mlp", "layers.{i}.mlp_norm"),
    # Wi [2F, D]: HF computes act(first half) * second half, so the first half is the gate
    *[r for k, name in enumerate(("wi_gate", "wi")) for r in (
        Rule(f"mlp/{name}/kernel", "layers.{i}.mlp.Wi.weight", _T, part=k, parts=2, split_axis=0),
        Rule(f"mlp/{name}/bias", "layers.{i}.mlp.Wi.bias", part=k, parts=2, split_axis=0))],
    Rule("mlp/wo/kernel", "layers.{i}.mlp.Wo.weight", _T),
    Rule("mlp/wo/bias", "layers.{i}.mlp.Wo.bias"),
]
MODERNBERT_HEAD_GROUPS = {"pooler": "pooler (ModernBertForMaskedLM has none)",
                          "mlm_head": "MLM head (head, decoder)"}
# The loss term (objectives' `loss_terms`) whose gradient trains each head group: a head that
# came in untrained (initialised at import) and whose term the run never optimised is still
# random at export. The pooler only feeds BERT's NSP classifier.
HEAD_TRAINED_BY = {"mlm_head": "mlm_loss", "nsp": "nsp_loss", "pooler": "nsp_loss"}

# ------------------------------------------------------------------ activations
# pancake model.activation <-> HF activation_function (GPT-2) / hidden_act (BERT); the first HF
# name of each is the one export writes.
ACTIVATIONS = {
    "gelu_tanh": ("gelu_new", "gelu_pytorch_tanh"),
    "gelu_exact": ("gelu",),
    "relu": ("relu",),
    "silu": ("silu", "swish"),
}


def architecture(model_cfg):
  """The HF architecture a pancake model maps to: "gpt2" | "bert" | "llama" | "modernbert"."""
  if model_cfg.position_embedding == "rope":
    return "llama" if model_cfg.family == "decoder" else "modernbert"
  return "gpt2" if model_cfg.family == "decoder" else "bert"


_TABLES = {  # architecture -> (prefix, global, untied head, layer, ignored suffixes, head groups)
    "gpt2": (GPT2_PREFIX, GPT2_GLOBAL, GPT2_UNTIED_HEAD, GPT2_LAYER, GPT2_IGNORED_SUFFIXES,
             HEAD_GROUPS),
    "bert": (BERT_PREFIX, BERT_GLOBAL, BERT_UNTIED_HEAD, BERT_LAYER, BERT_IGNORED_SUFFIXES,
             HEAD_GROUPS),
    "llama": (LLAMA_PREFIX, LLAMA_GLOBAL, LLAMA_UNTIED_HEAD, LLAMA_LAYER,
              LLAMA_IGNORED_SUFFIXES, {}),
    "modernbert": (MODERNBERT_PREFIX, MODERNBERT_GLOBAL, MODERNBERT_UNTIED_HEAD, MODERNBERT_LAYER,
                   (), MODERNBERT_HEAD_GROUPS),
}


def family_rules(model_cfg):
  """(prefix, global rules, layer rules, ignored name suffixes) of a model's architecture."""
  prefix, global_rules, untied, layer, ignored, _ = _TABLES[architecture(model_cfg)]
  return prefix, global_rules + ([] if model_cfg.tie_embeddings else untied), layer, ignored


def head_groups(model_cfg):
  """{head group: what it is}, for the line that says which heads were initialised."""
  return _TABLES[architecture(model_cfg)][5]


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
