"""Pure Flax linen networks: BERT-style encoders and GPT-style decoders (no losses, data or mesh).

  model = models.build_model(config.model)           # validates first (ConfigError on a bad field)
  variables = model.init({"params": rng}, input_ids)  # or jax.eval_shape of it
  outputs = model.apply(variables, input_ids, ..., deterministic=False, rngs={"dropout": rng})

Call signatures and outputs: models/encoder.py, models/decoder.py; contract: docs/ARCHITECTURE.md.
"""

import jax
import jax.numpy as jnp

from models.decoder import Decoder
from models.encoder import Encoder
from models.spec import ModelSpec, resolve, validate

__all__ = ["build_model", "validate", "collect_attention", "reorder_cache", "param_counts",
           "train_flops_per_token", "Encoder", "Decoder", "ModelSpec"]


def build_model(model_cfg, capture_attention=False):
  """Encoder or Decoder module for a `model` ConfigDict (validated before anything is built).

  capture_attention=True makes every layer sow `attention_probs` [B, H, Lq, Lk], `queries` and
  `keys` [B, H, L, Dh] into the `intermediates` collection (read them with `collect_attention`).
  """
  spec = resolve(model_cfg, capture_attention)
  return Encoder(spec) if spec.family == "encoder" else Decoder(spec)


def collect_attention(intermediates):
  """Per-layer attention tensors from `apply(..., mutable=["intermediates"])`'s second output.

  Returns {"attention_probs": [N, B, H, Lq, Lk], "queries": [N, B, H, Lq, Dh],
  "keys": [N, B, H, Lk, Dh]} for N layers, whether the stack was scanned or unrolled.
  """
  stack = intermediates["stack"]
  if "layers" in stack:  # scanned: one entry, already stacked over layers
    per_layer = stack["layers"]["attention"]
    return {name: values[0] for name, values in per_layer.items()}
  names = sorted(stack, key=lambda n: int(n.rsplit("_", 1)[1]))
  return {name: jnp.stack([stack[layer]["attention"][name][0] for layer in names])
          for name in ("attention_probs", "queries", "keys")}


def reorder_cache(cache, batch_indices, scan_layers):
  """Gather the rows `batch_indices` [B'] of a decoder cache (beam search reordering).

  Per-layer arrays carry the batch on axis 0, or axis 1 under a scanned stack's layers axis;
  scalar and per-layer counters are left alone.
  """
  batch_axis = 1 if scan_layers else 0

  def gather(path, leaf):
    name = path[-1].key
    if name in ("cache_index", "position_index"):
      return leaf
    return jnp.take(leaf, batch_indices, axis=batch_axis)

  return jax.tree_util.tree_map_with_path(gather, cache)


def param_counts(model_cfg):
  from models import counting  # counting builds models through this package
  return counting.param_counts(model_cfg)


def train_flops_per_token(model_cfg, seq_len, objective_name, predictions_per_seq=None,
                          objective_cfg=None):
  from models import counting
  return counting.train_flops_per_token(model_cfg, seq_len, objective_name, predictions_per_seq,
                                        objective_cfg)


param_counts.__doc__ = "See models.counting.param_counts."
train_flops_per_token.__doc__ = "See models.counting.train_flops_per_token."
