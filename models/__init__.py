"""Pure Flax linen networks: BERT-style encoders and GPT-style decoders (no losses, data or mesh).

  model = models.build_model(config.model)           # validates first (ConfigError on a bad field)
  variables = model.init({"params": rng}, input_ids)  # or jax.eval_shape of it
  outputs = model.apply(variables, input_ids, ..., deterministic=False, rngs={"dropout": rng})

Call signatures and outputs: models/encoder.py, models/decoder.py; contract: docs/ARCHITECTURE.md.
"""

import jax
import jax.numpy as jnp

from models.build import build_model
from models.counting import param_counts
from models.decoder import Decoder
from models.encoder import Encoder
from models.spec import ModelSpec, validate

__all__ = ["build_model", "validate", "collect_attention", "reorder_cache", "param_counts",
           "Encoder", "Decoder", "ModelSpec"]


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
