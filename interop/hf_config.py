"""HF config.json <-> pancake model fields, and the tokenizer files of an HF model directory.

Pure Python (no JAX): configs/from_hf.py calls it while a config file loads, and every check here
runs before anything touches a device or the workdir. Each failure is one ConfigError naming the
path and field, and what would be valid.

What the checkpoint fixes (`fixed_model_fields`) may not be overridden: an override that
contradicts config.json is an error (`check_against_config`). Dropout, dtype, scan/remat and the
attention kernel change how, not what, is computed and stay free.
"""

import json
import os

from absl import logging

from configs.errors import ConfigError
from interop import names

CONFIG_FILE = "config.json"
GPT2_ARCHITECTURES = ("GPT2LMHeadModel",)
BERT_ARCHITECTURES = ("BertForPreTraining", "BertForMaskedLM", "BertModel")
LLAMA_ARCHITECTURES = ("LlamaForCausalLM",)
MODERNBERT_ARCHITECTURES = ("ModernBertForMaskedLM",)
MODEL_TYPES = {"gpt2": "decoder", "bert": "encoder", "llama": "decoder", "modernbert": "encoder"}
# Block options of GPT-2 and BERT checkpoints (base.py's defaults): config.json fixes them too.
_CLASSIC_BLOCK = dict(position_embedding="learned", norm="layernorm", mlp="dense", num_kv_heads=0,
                      qk_norm=False, attention_window=0, global_every=0, first_attention_norm=True)


def read_json(path, what):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise ConfigError(f"{path} does not exist; {what}") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ConfigError(f"{path} is not valid JSON ({e})") from None


def read_config(hf_dir):
  """config.json of an HF model directory, with model_type checked."""
  if not hf_dir or not os.path.isdir(hf_dir):
    raise ConfigError(f"init.from_hf={hf_dir!r} is not a directory; give a Hugging Face model "
                      "directory (config.json, model.safetensors and tokenizer files)")
  path = os.path.join(hf_dir, CONFIG_FILE)
  cfg = read_json(path, "an HF model directory holds config.json (save_pretrained writes it)")
  if cfg.get("model_type") not in MODEL_TYPES:
    raise ConfigError(f"{path}: model_type={cfg.get('model_type')!r} is not one of "
                      f"{', '.join(repr(t) for t in MODEL_TYPES)} (GPT-2, BERT, Llama and ModernBERT "
                      "checkpoints)")
  return cfg


def _field(cfg, path, key, default=None, kind=int):
  value = cfg.get(key, default)
  if value is None or not isinstance(value, kind) or isinstance(value, bool):
    raise ConfigError(f"{path}: {key}={value!r} must be {'an integer' if kind is int else 'a number'}")
  return value


def _activation(cfg, path, key, default=None):
  hf = cfg.get(key, default)
  for ours, theirs in names.ACTIVATIONS.items():
    if hf in theirs:
      return ours
  valid = ", ".join(repr(n) for theirs in names.ACTIVATIONS.values() for n in theirs)
  raise ConfigError(f"{path}: {key}={hf!r} has no pancake equivalent; one of {valid}")


def _unsupported(cfg, path, key, expected):
  if key in cfg and cfg[key] != expected and cfg[key] is not None:
    raise ConfigError(f"{path}: {key}={cfg[key]!r} is not supported (pancake computes the "
                      f"{expected!r} case)")


def fixed_model_fields(cfg, hf_dir):
  """model.* fields that config.json fixes (the weights only fit this architecture)."""
  path = os.path.join(hf_dir, CONFIG_FILE)
  if cfg["model_type"] == "llama":
    return _llama_fields(cfg, path)
  if cfg["model_type"] == "modernbert":
    return _modernbert_fields(cfg, path)
  if cfg["model_type"] == "gpt2":
    _unsupported(cfg, path, "add_cross_attention", False)
    _unsupported(cfg, path, "scale_attn_weights", True)
    _unsupported(cfg, path, "scale_attn_by_inverse_layer_idx", False)
    d_model, heads = _field(cfg, path, "n_embd"), _field(cfg, path, "n_head")
    if d_model % heads:
      raise ConfigError(f"{path}: n_embd={d_model} is not divisible by n_head={heads}")
    inner = cfg.get("n_inner")
    return dict(
        family="decoder", vocab_size=_field(cfg, path, "vocab_size"),
        max_len=_field(cfg, path, "n_positions"), num_layers=_field(cfg, path, "n_layer"),
        d_model=d_model, num_heads=heads, d_head=0,
        d_ff=0 if inner is None else _field(cfg, path, "n_inner"),
        activation=_activation(cfg, path, "activation_function"), ln_placement="pre",
        ln_epsilon=float(_field(cfg, path, "layer_norm_epsilon", 1e-5, (int, float))),
        use_bias=True, tie_embeddings=bool(cfg.get("tie_word_embeddings", True)), **_CLASSIC_BLOCK)
  _unsupported(cfg, path, "is_decoder", False)
  _unsupported(cfg, path, "add_cross_attention", False)
  _unsupported(cfg, path, "position_embedding_type", "absolute")
  d_model, heads = _field(cfg, path, "hidden_size"), _field(cfg, path, "num_attention_heads")
  if d_model % heads:
    raise ConfigError(f"{path}: hidden_size={d_model} is not divisible by "
                      f"num_attention_heads={heads}")
  return dict(
      family="encoder", vocab_size=_field(cfg, path, "vocab_size"),
      max_len=_field(cfg, path, "max_position_embeddings"),
      type_vocab_size=_field(cfg, path, "type_vocab_size", 2),
      num_layers=_field(cfg, path, "num_hidden_layers"), d_model=d_model, num_heads=heads,
      d_head=0, d_ff=_field(cfg, path, "intermediate_size"),
      activation=_activation(cfg, path, "hidden_act"), ln_placement="post",
      ln_epsilon=float(_field(cfg, path, "layer_norm_eps", 1e-12, (int, float))),
      use_bias=True, tie_embeddings=bool(cfg.get("tie_word_embeddings", True)), **_CLASSIC_BLOCK)


def _rope_theta(cfg, path, layer_type=None):
  """RoPE theta from rope_parameters (transformers >= 5; per layer type for ModernBERT) or the
  older top-level keys; any rope_type but "default" (scaled RoPE) is refused."""
  legacy = {None: "rope_theta", "full_attention": "global_rope_theta",
            "sliding_attention": "local_rope_theta"}[layer_type]
  params = cfg.get("rope_parameters") or {}
  if layer_type is not None:
    params = params.get(layer_type) or {}
  scaling = cfg.get("rope_scaling")
  rope_type = params.get("rope_type", (scaling or {}).get("rope_type", "default"))
  if rope_type != "default":
    raise ConfigError(f"{path}: rope_type={rope_type!r} is not supported (pancake computes "
                      "unscaled RoPE, rope_type 'default')")
  theta = params.get("rope_theta", cfg.get(legacy, 10000.0))
  if not isinstance(theta, (int, float)) or isinstance(theta, bool) or theta <= 0:
    raise ConfigError(f"{path}: rope_theta={theta!r} must be a positive number")
  return float(theta)


def _heads(cfg, path, d_model):
  heads = _field(cfg, path, "num_attention_heads")
  d_head = cfg.get("head_dim") or (d_model // heads if d_model % heads == 0 else None)
  if d_head is None:
    raise ConfigError(f"{path}: hidden_size={d_model} is not divisible by "
                      f"num_attention_heads={heads} and head_dim is not given")
  return heads, (0 if d_head * heads == d_model else _field(cfg, path, "head_dim"))


def _llama_fields(cfg, path):
  for key in ("attention_bias", "mlp_bias"):
    _unsupported(cfg, path, key, False)
  _unsupported(cfg, path, "pretraining_tp", 1)
  d_model = _field(cfg, path, "hidden_size")
  heads, d_head = _heads(cfg, path, d_model)
  kv = cfg.get("num_key_value_heads") or heads
  if not isinstance(kv, int) or heads % kv:
    raise ConfigError(f"{path}: num_key_value_heads={kv!r} must divide num_attention_heads={heads}")
  return dict(
      family="decoder", vocab_size=_field(cfg, path, "vocab_size"),
      max_len=_field(cfg, path, "max_position_embeddings"),
      num_layers=_field(cfg, path, "num_hidden_layers"), d_model=d_model, num_heads=heads,
      num_kv_heads=0 if kv == heads else kv, d_head=d_head,
      d_ff=_field(cfg, path, "intermediate_size"), mlp="glu",
      activation=_activation(cfg, path, "hidden_act", "silu"), norm="rmsnorm", ln_placement="pre",
      ln_epsilon=float(_field(cfg, path, "rms_norm_eps", 1e-6, (int, float))),
      position_embedding="rope", rope_base=_rope_theta(cfg, path), rope_local_base=0.0,
      rope_fraction=1.0, qk_norm=False, attention_window=0, global_every=0,
      first_attention_norm=True, use_bias=False,
      tie_embeddings=bool(cfg.get("tie_word_embeddings", False)))


def _global_every(layer_types, path):
  """layer_types (full_attention | sliding_attention per layer) -> model.global_every: the n
  with layer i global iff i % n == 0 (0: every layer sliding), else ConfigError."""
  n = len(layer_types)
  is_global = [t == "full_attention" for t in layer_types]
  bad = [t for t in layer_types if t not in ("full_attention", "sliding_attention")]
  if bad:
    raise ConfigError(f"{path}: layer_types holds {bad[0]!r}; pancake reads 'full_attention' "
                      "and 'sliding_attention'")
  if not any(is_global):
    return 0
  for every in range(1, n + 1):
    if is_global == [i % every == 0 for i in range(n)]:
      return every
  raise ConfigError(f"{path}: layer_types={layer_types} is not 'layer i global iff i % n == 0' "
                    "for any n (the pattern model.global_every expresses)")


def _modernbert_fields(cfg, path):
  _unsupported(cfg, path, "decoder_bias", True)  # pancake's MLM head always has the output bias
  biases = {k: bool(cfg.get(k, False))
            for k in ("norm_bias", "attention_bias", "mlp_bias", "classifier_bias")}
  if len(set(biases.values())) > 1:
    raise ConfigError(f"{path}: {biases} must all be equal (pancake's model.use_bias sets every "
                      "bias at once)")
  if cfg.get("classifier_activation", "gelu") != cfg.get("hidden_activation", "gelu"):
    raise ConfigError(f"{path}: classifier_activation={cfg.get('classifier_activation')!r} must "
                      f"equal hidden_activation={cfg.get('hidden_activation')!r} (pancake's MLM "
                      "head uses model.activation)")
  d_model = _field(cfg, path, "hidden_size")
  heads = _field(cfg, path, "num_attention_heads")
  if d_model % heads:
    raise ConfigError(f"{path}: hidden_size={d_model} is not divisible by "
                      f"num_attention_heads={heads}")
  layers = _field(cfg, path, "num_hidden_layers")
  every_n = cfg.get("global_attn_every_n_layers", 3)
  types = cfg.get("layer_types") or ["full_attention" if i % every_n == 0 else
                                     "sliding_attention" for i in range(layers)]
  if len(types) != layers:
    raise ConfigError(f"{path}: layer_types has {len(types)} entries for num_hidden_layers={layers}")
  global_every = _global_every(types, path)
  windowed = global_every != 1
  return dict(
      family="encoder", vocab_size=_field(cfg, path, "vocab_size"),
      max_len=_field(cfg, path, "max_position_embeddings"), type_vocab_size=0,
      num_layers=layers, d_model=d_model, num_heads=heads, num_kv_heads=0, d_head=0,
      d_ff=_field(cfg, path, "intermediate_size"), mlp="glu",
      activation=_activation(cfg, path, "hidden_activation", "gelu"), norm="layernorm",
      ln_placement="pre", first_attention_norm=False,
      ln_epsilon=float(_field(cfg, path, "norm_eps", 1e-5, (int, float))),
      position_embedding="rope", rope_base=_rope_theta(cfg, path, "full_attention"),
      rope_local_base=_rope_theta(cfg, path, "sliding_attention"), rope_fraction=1.0,
      qk_norm=False, attention_window=_field(cfg, path, "local_attention", 128) if windowed else 0,
      global_every=global_every if windowed else 0, use_bias=biases["norm_bias"],
      tie_embeddings=bool(cfg.get("tie_word_embeddings", True)), nsp_head=False)


def free_model_fields(cfg):
  """model.* defaults taken from config.json that an override may change (training settings)."""
  if cfg["model_type"] == "gpt2":
    return dict(dropout_rate=float(cfg.get("resid_pdrop", 0.1)),
                attention_dropout_rate=float(cfg.get("attn_pdrop", 0.1)),
                init_range=float(cfg.get("initializer_range", 0.02)), scale_residual_init=True,
                nsp_head=False)
  if cfg["model_type"] == "llama":
    return dict(dropout_rate=0.0, attention_dropout_rate=float(cfg.get("attention_dropout", 0.0)),
                init_range=float(cfg.get("initializer_range", 0.02)), scale_residual_init=False,
                nsp_head=False)
  if cfg["model_type"] == "modernbert":
    return dict(dropout_rate=float(cfg.get("mlp_dropout", 0.0)),
                attention_dropout_rate=float(cfg.get("attention_dropout", 0.0)),
                init_range=float(cfg.get("initializer_range", 0.02)), scale_residual_init=False)
  architectures = cfg.get("architectures") or ["BertForPreTraining"]
  return dict(dropout_rate=float(cfg.get("hidden_dropout_prob", 0.1)),
              attention_dropout_rate=float(cfg.get("attention_probs_dropout_prob", 0.1)),
              init_range=float(cfg.get("initializer_range", 0.02)), scale_residual_init=False,
              nsp_head="BertForPreTraining" in architectures)


def tokenizer_fields(hf_dir, family):
  """data.* fields for the tokenizer files in `hf_dir`: tokenizer.json, else vocab.json +
  merges.txt (GPT-2) or vocab.txt (BERT; lowercasing from tokenizer_config.json)."""
  kind = "bpe" if family == "decoder" else "wordpiece"
  fields = dict(tokenizer=kind, tokenizer_file="", vocab_file="", merges_file="")
  config_path = os.path.join(hf_dir, "tokenizer_config.json")
  tok_cfg = read_json(config_path, "") if os.path.exists(config_path) else {}
  if family == "encoder":
    fields["lowercase"] = bool(tok_cfg.get("do_lower_case", True))
  path = lambda name: os.path.join(hf_dir, name)
  if os.path.exists(path("tokenizer.json")):
    fields["tokenizer_file"] = path("tokenizer.json")
    if family == "encoder":
      fields["lowercase"] = _file_lowercase(path("tokenizer.json"), tok_cfg, fields["lowercase"])
  elif family == "decoder" and os.path.exists(path("vocab.json")):
    fields["vocab_file"], fields["merges_file"] = path("vocab.json"), path("merges.txt")
  elif family == "encoder" and os.path.exists(path("vocab.txt")):
    fields["vocab_file"] = path("vocab.txt")
  else:
    files = "vocab.json + merges.txt" if family == "decoder" else "vocab.txt"
    raise ConfigError(f"{hf_dir} holds no tokenizer: expected tokenizer.json or {files} "
                      "(a tokenizer's save_pretrained writes them)")
  return fields


def _lowercases(spec):
  """Whether a tokenizer.json's normalizer lowercases."""
  norm = spec.get("normalizer") or {}
  parts = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
  return any(n.get("type") == "Lowercase" or (n.get("type") == "BertNormalizer"
                                               and n.get("lowercase")) for n in parts)


def _file_lowercase(tokenizer_json, tok_cfg, do_lower_case):
  """Whether the tokenizer.json pancake reads lowercases (data.lowercase records it). transformers'
  BertTokenizer (the class of a BERT directory unless tokenizer_config.json names another)
  rebuilds the normalizer from do_lower_case (default True) instead: one warning line where
  the two disagree, since the ids then differ on upper-case text."""
  lowercases = _lowercases(read_json(tokenizer_json, ""))
  cls = tok_cfg.get("tokenizer_class") or "BertTokenizer"
  if lowercases != do_lower_case and cls.startswith("BertTokenizer"):
    said = ("tokenizer_config.json's do_lower_case" if "do_lower_case" in tok_cfg
            else "do_lower_case (no tokenizer_config.json gives it: True)")
    logging.warning("%s %s, but %s=%s: transformers' %s follows do_lower_case, pancake follows "
                    "tokenizer.json, so ids differ on upper-case text", tokenizer_json,
                    "lowercases" if lowercases else "does not lowercase", said, do_lower_case, cls)
  return lowercases


def check_against_config(config):
  """ConfigError if a model.* field contradicts init.from_hf's config.json."""
  hf_dir = config.init.from_hf
  cfg = read_config(hf_dir)
  for key, value in fixed_model_fields(cfg, hf_dir).items():
    ours = config.model[key]
    if ours != value and not (isinstance(value, float) and float(ours) == value):
      raise ConfigError(
          f"model.{key}={ours!r} contradicts {os.path.join(hf_dir, CONFIG_FILE)} (which gives "
          f"{value!r}); the weights of init.from_hf only fit {value!r}: drop the override")
  return cfg


# ------------------------------------------------------------------ export: pancake -> config.json


_TARGETS = {"gpt2": "GPT-2", "bert": "BERT", "llama": "Llama", "modernbert": "ModernBERT"}
# model.* values each architecture's checkpoints have (names.architecture picks the target).
_EXPORT_NEEDS = {
    "gpt2": dict(_CLASSIC_BLOCK, ln_placement="pre", use_bias=True),
    "bert": dict(_CLASSIC_BLOCK, ln_placement="post", use_bias=True),
    "llama": dict(ln_placement="pre", use_bias=False, norm="rmsnorm", mlp="glu", qk_norm=False,
                  attention_window=0, rope_fraction=1.0, first_attention_norm=True),
    "modernbert": dict(ln_placement="pre", norm="layernorm", mlp="glu", qk_norm=False,
                       rope_fraction=1.0, first_attention_norm=False, type_vocab_size=0,
                       nsp_head=False),
}


# Head groups (interop/names.py) of each class an export writes: (required, optional). A
# required head is written even if untrained (and named so); an optional one only when it holds
# imported or trained weights. BertForMaskedLM's optional pooler is written as
# bert.pooler.* (BertModel / AutoModel load it, BertForMaskedLM leaves it aside).
CLASS_HEADS = {
    "BertForPreTraining": ({"pooler", "mlm_head", "nsp"}, set()),
    "BertForMaskedLM": ({"mlm_head"}, {"pooler"}),
    "BertModel": (set(), {"pooler"}),
    "ModernBertForMaskedLM": ({"mlm_head"}, set()),
}
# Classes whose tensor names carry no model prefix ("bert."): the bare encoders.
UNPREFIXED_CLASSES = ("BertModel",)


def architecture_class(model_cfg, heads=None):
  """The transformers class an exported model loads as. `heads`: the head groups that hold
  imported or trained weights (None: every head the model has, the class of a model trained
  with all its heads)."""
  arch = names.architecture(model_cfg)
  if arch == "gpt2":
    return GPT2_ARCHITECTURES[0]
  if arch == "bert":
    if heads is not None and "mlm_head" not in heads:
      return "BertModel"
    has_nsp = model_cfg.nsp_head and (heads is None or "nsp" in heads)
    return "BertForPreTraining" if has_nsp else "BertForMaskedLM"
  return (LLAMA_ARCHITECTURES if arch == "llama" else MODERNBERT_ARCHITECTURES)[0]


def check_exportable(model_cfg, tokenizer_kind):
  """ConfigError naming the first model.* field that GPT-2 / BERT / Llama / ModernBERT (the
  architecture names.architecture picks) cannot represent exactly."""
  m = model_cfg
  arch = names.architecture(m)
  target = _TARGETS[arch]
  for key, value in _EXPORT_NEEDS[arch].items():
    if m[key] != value:
      raise ConfigError(f"model.{key}={m[key]!r} cannot be exported: {target} checkpoints have "
                        f"{key}={value!r}")
  if arch != "llama" and m.num_kv_heads not in (0, m.num_heads):
    raise ConfigError(f"model.num_kv_heads={m.num_kv_heads!r} cannot be exported: {target} "
                      "checkpoints have one key/value head per query head")
  d_head = m.d_head or m.d_model // m.num_heads
  if arch != "llama" and d_head * m.num_heads != m.d_model:
    raise ConfigError(f"model.d_head={m.d_head} x model.num_heads={m.num_heads} = "
                      f"{d_head * m.num_heads} != model.d_model={m.d_model} cannot be exported: "
                      f"{target} attention is d_model wide")
  if arch == "llama" and m.rope_local_base not in (0, m.rope_base):
    raise ConfigError(f"model.rope_local_base={m.rope_local_base!r} cannot be exported: Llama "
                      "checkpoints have one RoPE theta (rope_base)")
  if m.activation not in names.ACTIVATIONS:
    raise ConfigError(f"model.activation={m.activation!r} cannot be exported")
  if m.family == "encoder" and tokenizer_kind != "wordpiece":
    raise ConfigError(f"data.tokenizer={tokenizer_kind!r} cannot be exported with a {target} "
                      "checkpoint: pancake writes encoder tokenizers as BertTokenizer (WordPiece)")


def hf_config(model_cfg, tokenizer, architecture=None):
  """config.json for a pancake model (after check_exportable); `architecture`: the class it is
  written as (default `architecture_class(model_cfg)`)."""
  m = model_cfg
  act = names.ACTIVATIONS[m.activation][0]
  common = dict(vocab_size=m.vocab_size, initializer_range=m.init_range,
                tie_word_embeddings=m.tie_embeddings, dtype="float32")
  arch = names.architecture(m)
  if arch == "llama":
    eos = tokenizer.eot_id
    return dict(
        architectures=list(LLAMA_ARCHITECTURES), model_type="llama",
        max_position_embeddings=m.max_len, hidden_size=m.d_model, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, num_key_value_heads=m.num_kv_heads or m.num_heads,
        head_dim=m.d_head or m.d_model // m.num_heads, intermediate_size=m.d_ff or 4 * m.d_model,
        hidden_act=act, rms_norm_eps=m.ln_epsilon,
        rope_parameters=dict(rope_type="default", rope_theta=m.rope_base),
        attention_bias=False, mlp_bias=False, attention_dropout=m.attention_dropout_rate,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_id, **common)
  if arch == "modernbert":
    global_every = m.global_every if m.attention_window else 1
    layer_types = ["full_attention" if m.attention_window == 0 or (
        global_every and i % global_every == 0) else "sliding_attention"
                   for i in range(m.num_layers)]
    return dict(
        architectures=list(MODERNBERT_ARCHITECTURES), model_type="modernbert",
        max_position_embeddings=m.max_len, hidden_size=m.d_model, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.d_ff or 4 * m.d_model,
        hidden_activation=act, classifier_activation=act, norm_eps=m.ln_epsilon,
        norm_bias=m.use_bias, attention_bias=m.use_bias, mlp_bias=m.use_bias,
        classifier_bias=m.use_bias, decoder_bias=True, layer_types=layer_types,
        local_attention=m.attention_window or 128,
        rope_parameters={"full_attention": dict(rope_type="default", rope_theta=m.rope_base),
                         "sliding_attention": dict(rope_type="default",
                                                   rope_theta=m.rope_local_base or m.rope_base)},
        embedding_dropout=m.dropout_rate, mlp_dropout=m.dropout_rate,
        attention_dropout=m.attention_dropout_rate, pad_token_id=tokenizer.pad_id,
        cls_token_id=tokenizer.cls_id, sep_token_id=tokenizer.sep_id,
        bos_token_id=tokenizer.cls_id, eos_token_id=tokenizer.sep_id, **common)
  if m.family == "decoder":
    eos = tokenizer.eot_id
    return dict(
        architectures=list(GPT2_ARCHITECTURES), model_type="gpt2", n_positions=m.max_len,
        n_embd=m.d_model, n_layer=m.num_layers, n_head=m.num_heads,
        n_inner=None if m.d_ff in (0, 4 * m.d_model) else m.d_ff, activation_function=act,
        layer_norm_epsilon=m.ln_epsilon, resid_pdrop=m.dropout_rate, embd_pdrop=m.dropout_rate,
        attn_pdrop=m.attention_dropout_rate, scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_id, **common)
  return dict(
      architectures=[architecture or architecture_class(m)], model_type="bert",
      max_position_embeddings=m.max_len, type_vocab_size=m.type_vocab_size,
      hidden_size=m.d_model, num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads,
      intermediate_size=m.d_ff or 4 * m.d_model, hidden_act=act, layer_norm_eps=m.ln_epsilon,
      hidden_dropout_prob=m.dropout_rate, attention_probs_dropout_prob=m.attention_dropout_rate,
      position_embedding_type="absolute", pad_token_id=tokenizer.pad_id, **common)
