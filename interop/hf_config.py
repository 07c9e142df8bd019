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

from configs.errors import ConfigError
from interop import names

CONFIG_FILE = "config.json"
GPT2_ARCHITECTURES = ("GPT2LMHeadModel",)
BERT_ARCHITECTURES = ("BertForPreTraining", "BertForMaskedLM", "BertModel")
MODEL_TYPES = {"gpt2": "decoder", "bert": "encoder"}


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
                      f"{', '.join(repr(t) for t in MODEL_TYPES)} (GPT-2 and BERT checkpoints)")
  return cfg


def _field(cfg, path, key, default=None, kind=int):
  value = cfg.get(key, default)
  if value is None or not isinstance(value, kind) or isinstance(value, bool):
    raise ConfigError(f"{path}: {key}={value!r} must be {'an integer' if kind is int else 'a number'}")
  return value


def _activation(cfg, path, key):
  hf = cfg.get(key)
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
  family = MODEL_TYPES[cfg["model_type"]]
  if family == "decoder":
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
        use_bias=True, tie_embeddings=bool(cfg.get("tie_word_embeddings", True)))
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
      use_bias=True, tie_embeddings=bool(cfg.get("tie_word_embeddings", True)))


def free_model_fields(cfg):
  """model.* defaults taken from config.json that an override may change (training settings)."""
  if cfg["model_type"] == "gpt2":
    return dict(dropout_rate=float(cfg.get("resid_pdrop", 0.1)),
                attention_dropout_rate=float(cfg.get("attn_pdrop", 0.1)),
                init_range=float(cfg.get("initializer_range", 0.02)), scale_residual_init=True,
                nsp_head=False)
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
  elif family == "decoder" and os.path.exists(path("vocab.json")):
    fields["vocab_file"], fields["merges_file"] = path("vocab.json"), path("merges.txt")
  elif family == "encoder" and os.path.exists(path("vocab.txt")):
    fields["vocab_file"] = path("vocab.txt")
  else:
    files = "vocab.json + merges.txt" if family == "decoder" else "vocab.txt"
    raise ConfigError(f"{hf_dir} holds no tokenizer: expected tokenizer.json or {files} "
                      "(a tokenizer's save_pretrained writes them)")
  return fields


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


def check_exportable(model_cfg, tokenizer_kind):
  """ConfigError naming the first model.* field that GPT-2 / BERT cannot represent exactly."""
  m = model_cfg
  target = "GPT-2" if m.family == "decoder" else "BERT"
  need = {"ln_placement": "pre" if m.family == "decoder" else "post", "use_bias": True,
          "position_embedding": "learned", "norm": "layernorm", "mlp": "dense", "qk_norm": False,
          "attention_window": 0}
  for key, value in need.items():
    if m[key] != value:
      raise ConfigError(f"model.{key}={m[key]!r} cannot be exported: {target} checkpoints have "
                        f"{key}={value!r}")
  if m.num_kv_heads not in (0, m.num_heads):
    raise ConfigError(f"model.num_kv_heads={m.num_kv_heads!r} cannot be exported: {target} "
                      "checkpoints have one key/value head per query head")
  d_head = m.d_head or m.d_model // m.num_heads
  if d_head * m.num_heads != m.d_model:
    raise ConfigError(f"model.d_head={m.d_head} x model.num_heads={m.num_heads} = "
                      f"{d_head * m.num_heads} != model.d_model={m.d_model} cannot be exported: "
                      f"{target} attention is d_model wide")
  if m.activation not in names.ACTIVATIONS:
    raise ConfigError(f"model.activation={m.activation!r} cannot be exported")
  if m.family == "encoder" and tokenizer_kind != "wordpiece":
    raise ConfigError(f"data.tokenizer={tokenizer_kind!r} cannot be exported with a BERT "
                      "checkpoint: BertTokenizer is WordPiece")


def hf_config(model_cfg, tokenizer):
  """config.json for a pancake model (after check_exportable)."""
  m = model_cfg
  act = names.ACTIVATIONS[m.activation][0]
  common = dict(vocab_size=m.vocab_size, initializer_range=m.init_range,
                tie_word_embeddings=m.tie_embeddings, dtype="float32")
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
      architectures=["BertForPreTraining" if m.nsp_head else "BertForMaskedLM"],
      model_type="bert", max_position_embeddings=m.max_len, type_vocab_size=m.type_vocab_size,
      hidden_size=m.d_model, num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads,
      intermediate_size=m.d_ff or 4 * m.d_model, hidden_act=act, layer_norm_eps=m.ln_epsilon,
      hidden_dropout_prob=m.dropout_rate, attention_probs_dropout_prob=m.attention_dropout_rate,
      position_embedding_type="absolute", pad_token_id=tokenizer.pad_id, **common)
