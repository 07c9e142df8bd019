"""The stack of blocks: `nn.scan` over layers (default) or unrolled, with named remat policies.

Scanned: one block is traced and compiled once whatever the depth; parameters (and the `cache` and
`intermediates` collections) gain a leading [num_layers] axis with logical name "layers", under
`stack/layers`. Unrolled: `stack/layers_0 ... layers_{N-1}`, same per-layer shapes.

What differs between layers (sliding window or global attention, the RoPE base) is data, not
Python: `layer_data` holds one value per layer, scanned along with the parameters (so the scan body
is one compiled block) and indexed per layer when unrolled.

remat_policy (what the backward pass may keep instead of recomputing, per block):
  "none":          keep everything (no rematerialisation).
  "full":          keep only the block input; recompute the whole block.
  "save_dots":     keep outputs of matmuls without batch dimensions (every dense projection);
                   recompute attention scores/softmax, activations and LayerNorms.
  "save_qkv_out":  keep only the tensors named query_proj, key_proj, value_proj, out_proj
                   (jax.ad_checkpoint.checkpoint_name in models/attention.py).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.block import Block
from models.spec import ModelSpec

_POLICIES = {
    "full": None,  # jax.checkpoint without a policy saves nothing but the inputs
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_qkv_out": jax.checkpoint_policies.save_only_these_names(
        "query_proj", "key_proj", "value_proj", "out_proj"),
}


def _block_class(spec: ModelSpec, decode: bool):
  # Decoding never differentiates, so remat would only add recompute there.
  if spec.remat_policy == "none" or decode:
    return Block
  # Under scan, jax.checkpoint's CSE barrier is unnecessary (the loop already prevents it) and
  # blocks optimisations.
  return nn.remat(Block, policy=_POLICIES[spec.remat_policy], prevent_cse=not spec.scan_layers)


def layer_data(spec: ModelSpec):
  """{"window": [N] int32 (0 = global), "rope_base": [N] float32}, one entry per layer."""
  is_global = [spec.layer_is_global(i) for i in range(spec.num_layers)]
  return {
      "window": jnp.asarray([0 if g else spec.attention_window for g in is_global], jnp.int32),
      "rope_base": jnp.asarray([spec.rope_base if g else spec.rope_local_base for g in is_global],
                               jnp.float32),
  }


class Stack(nn.Module):
  spec: ModelSpec

  @nn.compact
  def __call__(self, x, segments, deterministic=True, decode=False, positions=None):
    # x: [B, L, D], segments/positions: [B, L] -> [B, L, D]
    spec = self.spec
    block = _block_class(spec, decode)
    per_layer = layer_data(spec)
    if spec.scan_layers:
      scanned = nn.scan(
          block,
          variable_axes={"params": 0, "cache": 0, "intermediates": 0},
          split_rngs={"params": True, "dropout": True},
          in_axes=(nn.broadcast, nn.broadcast, 0),  # segments, positions, per_layer
          length=spec.num_layers,
          metadata_params={nn.PARTITION_NAME: "layers"})
      x, _ = scanned(spec, deterministic, decode, name="layers")(x, segments, positions, per_layer)
      return x
    for i in range(spec.num_layers):
      layer = jax.tree.map(lambda a, i=i: a[i], per_layer)
      x, _ = block(spec, deterministic, decode, name=f"layers_{i}")(x, segments, positions, layer)
    return x
