"""Suite `attention`: every layer's and head's attention on eval.attention_text, drawn.

The model is rebuilt with capture_attention=True (same parameters) and run on the text as in
training: encoders see [CLS] A [SEP] (B [SEP]) with segment ids, decoders <bos> A (<delim> B);
"A ||| B" in eval.attention_text makes a sentence pair. evals.attention_view renders, into
DIR/eval/attention/: the head view of layer eval.attention_layer (PNG + PDF), the layers x heads
grid of heatmaps, that layer's heads, and the interactive page attention.html.

Metrics, averaged over layers, heads and queries: entropy of the attention distribution (nats),
and the attention mass on the first token ([CLS] / <bos>) and, for encoders, on [SEP] (the
"no-op" heads of Clark et al. 2019). Per-layer values are in the JSON.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np

import models
from configs.errors import ConfigError
from evals import attention_view
from evals.context import bos_id, display_tokens, pad_rows
from trainlib import fs

PAIR_SEPARATOR = "|||"


def token_ids(tokenizer, config):
  """-> (ids, segment ids, is_pair) of eval.attention_text."""
  parts = [p.strip() for p in str(config.eval.attention_text).split(PAIR_SEPARATOR)]
  encoded = [tokenizer.encode(p) for p in parts]
  if config.model.family == "encoder":
    ids, segments = [tokenizer.cls_id], [0]
    for s, part in enumerate(encoded):
      ids += part + [tokenizer.sep_id]
      segments += [s] * (len(part) + 1)
  else:
    bos = bos_id(tokenizer)
    delim = tokenizer.sep_id if tokenizer.sep_id is not None else bos
    ids, segments = [bos] + encoded[0], [0] * (len(encoded[0]) + 1)
    if len(encoded) == 2:
      ids += [delim] + encoded[1]
      segments += [1] * (len(encoded[1]) + 1)
  return ids, segments, len(encoded) == 2


def validate(config, tokenizer):
  e = config.eval
  parts = [p.strip() for p in str(e.attention_text).split(PAIR_SEPARATOR)]
  if len(parts) > 2 or not all(parts):
    raise ConfigError(f"eval.attention_text={e.attention_text!r} must be a sentence or a pair "
                      f"'A {PAIR_SEPARATOR} B' with text on both sides")
  length = len(token_ids(tokenizer, config)[0])
  if length > config.model.max_len:
    raise ConfigError(f"eval.attention_text is {length} tokens, longer than model.max_len="
                      f"{config.model.max_len}; use a shorter text")
  layer = e.attention_layer
  n = config.model.num_layers
  if not isinstance(layer, int) or isinstance(layer, bool) or not -n <= layer < n:
    raise ConfigError(f"eval.attention_layer={layer!r} must be an integer in [{-n}, {n}) "
                      f"(model.num_layers={n}; -1 = last)")


def summary(data, special_positions):
  """Per-layer entropy and attention mass on given key positions, from AttentionData."""
  probs = data.attention                                           # [N, H, L, L]
  entropy = -np.sum(np.where(probs > 0, probs * np.log(np.maximum(probs, 1e-30)), 0.0), -1)
  out = {"entropy": entropy.mean(axis=(1, 2)).tolist(),
         "first_token_mass": probs[..., 0].mean(axis=(1, 2)).tolist()}
  if special_positions:
    out["sep_mass"] = probs[..., special_positions].sum(-1).mean(axis=(1, 2)).tolist()
  return out


def run(ctx):
  config, tok = ctx.config, ctx.tokenizer
  ids, segments, is_pair = token_ids(tok, config)
  capture = models.build_model(config.model, capture_attention=True)
  host = {"ids": np.asarray([ids], np.int32), "segments": np.asarray([segments], np.int32)}
  rows = ctx.put_rows(pad_rows(host, ctx.round_rows(1)))

  @jax.jit
  def attend(params, rows):
    if ctx.family == "encoder":
      b = rows["ids"].shape[0]
      _, state = capture.apply({"params": params}, rows["ids"], rows["segments"],
                               masked_positions=jnp.zeros((b, 1), jnp.int32), deterministic=True,
                               mutable=["intermediates"])
    else:
      _, state = capture.apply({"params": params}, rows["ids"], deterministic=True,
                               mutable=["intermediates"])
    return models.collect_attention(state["intermediates"])

  with ctx.mesh_context():
    captured = ctx.fetch(attend(ctx.params, rows))
  tokens = display_tokens(tok, ids)
  data = attention_view.from_intermediates(captured, tokens, example=0,
                                           segment_ids=segments if is_pair else None)
  layer = config.eval.attention_layer % data.num_layers
  out_dir = os.path.join(ctx.out_dir, "attention")
  title = f"{config.name}, step {ctx.step}"
  paths = {}
  if ctx.is_primary:
    with fs.local_dir(out_dir) as local:  # matplotlib writes local files; uploaded if gs://
      paths = attention_view.render_all(data, local, layer=layer, title=title)
      # as relative to the run directory (DIR/eval/attention/...), wherever they were drawn
      paths = _map_paths(paths, lambda p: os.path.join(
          os.path.relpath(out_dir, ctx.workdir), os.path.relpath(p, local)))
  sep = [i for i, t in enumerate(ids) if t == tok.sep_id] if ctx.family == "encoder" else []
  per_layer = summary(data, sep)
  metrics = {"entropy": float(np.mean(per_layer["entropy"])),
             "first_token_mass": float(np.mean(per_layer["first_token_mass"]))}
  if "sep_mass" in per_layer:
    metrics["sep_mass"] = float(np.mean(per_layer["sep_mass"]))
  return {"metrics": metrics, "tokens": tokens, "segment_ids": segments if is_pair else None,
          "layer": layer, "num_layers": data.num_layers, "num_heads": data.num_heads,
          "per_layer": per_layer, "files": paths}


def _map_paths(paths, fn):
  return {k: [fn(p) for p in v] if isinstance(v, list) else fn(v) for k, v in paths.items()}
