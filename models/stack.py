"""The stack of blocks: `nn.scan` over layers (default) or unrolled, with named remat policies.

Scanned: one block is traced and compiled once whatever the depth; parameters (and the `cache` and
`intermediates` collections) gain a leading [num_layers] axis with logical name "layers", under
`stack/layers`. Unrolled: `stack/layers_0 ... layers_{N-1}`, same per-layer shapes.

scan_unroll (scanned stacks only): how many layers one loop iteration runs; the parameter layout
is the same whatever it is, so it is a speed setting, not a model change. 0 = `auto_unroll`: the
whole stack on CPU up to CPU_UNROLL_MAX_LAYERS layers, 1 elsewhere. XLA:CPU fuses nothing across
a loop iteration's boundary and copies the carried activations and stacked gradients each
iteration; at the depths a CPU trains, a fully unrolled scan ran the nanoGPT-shaped step
(4L d128 T64 B12) 2.3x faster (144 -> 63 ms) and as fast as the unrolled stack (one run each on
a shared machine, load ~5, the timer at real-time priority; bench/train_step.py has the idle
whole-step figures). Unrolling grows compile time linearly in depth, hence the cap.

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
from models.platform import target_platform
from models.spec import ModelSpec

CPU_UNROLL_MAX_LAYERS = 12

_POLICIES = {
    "full": None,  # jax.checkpoint without a policy saves nothing but the inputs
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_qkv_out": jax.checkpoint_policies.save_only_these_names(
        "query_proj", "key_proj", "value_proj", "out_proj"),
}


def auto_unroll(spec: ModelSpec, platform: str) -> int:
  """Layers per scan iteration: spec.scan_unroll, or for 0 the rule in the module docstring."""
  if spec.scan_unroll:
    return min(spec.scan_unroll, spec.num_layers)
  if platform == "cpu" and spec.num_layers <= CPU_UNROLL_MAX_LAYERS:
    return spec.num_layers
  return 1


def _block_class(spec: ModelSpec, decode: bool, unroll: int):
  # Decoding never differentiates, so remat would only add recompute there.
  if spec.remat_policy == "none" or decode:
    return Block
  # Inside a rolled scan (one layer per iteration), jax.checkpoint's CSE barrier is unnecessary
  # (the loop already prevents it) and blocks optimisations; unrolled layers need it, or XLA
  # merges the recomputation back into the forward pass and remat saves nothing.
  rolled_scan = spec.scan_layers and unroll == 1
  return nn.remat(Block, policy=_POLICIES[spec.remat_policy], prevent_cse=not rolled_scan)


def layer_data(spec: ModelSpec):
  """{"window": [N] int32 (0 = global), "rope_base": [N] float32}, one entry per layer; with
  first_attention_norm=False also "attention_norm": [N] bool (False in block 0 only)."""
  is_global = [spec.layer_is_global(i) for i in range(spec.num_layers)]
  data = {
      "window": jnp.asarray([0 if g else spec.attention_window for g in is_global], jnp.int32),
      "rope_base": jnp.asarray([spec.rope_base if g else spec.rope_local_base for g in is_global],
                               jnp.float32),
  }
  if not spec.first_attention_norm:  # only then: every other model scans exactly what it did
    data["attention_norm"] = jnp.arange(spec.num_layers) > 0
  return data


class Stack(nn.Module):
  spec: ModelSpec

  @nn.compact
  def __call__(self, x, segments, deterministic=True, decode=False, positions=None):
    # x: [B, L, D], segments/positions: [B, L] -> [B, L, D]
    spec = self.spec
    unroll = auto_unroll(spec, target_platform()) if spec.scan_layers else 1
    block = _block_class(spec, decode, unroll)
    per_layer = layer_data(spec)
    if spec.scan_layers:
      scanned = nn.scan(
          block,
          variable_axes={"params": 0, "cache": 0, "intermediates": 0},
          split_rngs={"params": True, "dropout": True},
          in_axes=(nn.broadcast, nn.broadcast, 0),  # segments, positions, per_layer
          length=spec.num_layers,
          unroll=unroll,
          metadata_params={nn.PARTITION_NAME: "layers"})
      x, _ = scanned(spec, deterministic, decode, name="layers")(x, segments, positions, per_layer)
      return x
    for i in range(spec.num_layers):
      layer = jax.tree.map(lambda a, i=i: a[i], per_layer)
      x, _ = block(spec, deterministic, decode, name=f"layers_{i}")(x, segments, positions, layer)
    return x
