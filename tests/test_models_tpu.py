"""attention_impl="flash" lowers to the Pallas TPU kernel: AOT for a v5p topology on this CPU host.

libtpu compiles for a TPU topology without TPU hardware (jax.experimental.topologies). One block
(forward + backward, sharded over a 2x2 data x fsdp mesh) is enough to show that the kernel is
used under shard_map, that no [L, L] score matrix exists, and that the TPU compiler accepts it.
"""

import os

# Compile-only use of libtpu; without this, concurrent test processes contend for its lockfile.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from configs import base  # noqa: E402
from models.attention import PrefixSegments  # noqa: E402
from models.block import Block  # noqa: E402
from models.spec import resolve  # noqa: E402
from models.stack import layer_data  # noqa: E402

B, L, D = 4, 384, 128  # 384 = 3 tiles of 128: a length the kernel tiles but no block size equals


@pytest.fixture(scope="module")
def mesh():
  from jax.experimental import topologies
  try:
    topology = topologies.get_topology_desc(topology_name="v5p:2x2x1", platform="tpu")
  except Exception as e:  # pragma: no cover - libtpu is pinned in requirements.txt
    pytest.fail(f"cannot build a TPU topology with libtpu: {e}")
  return topologies.make_mesh(topology, (2, 2, 1), ("data", "fsdp", "tensor"))


def lower_block_grad(mesh, attention_impl, layer=0, prefix=False, **overrides):
  config = base.get_config()
  config.model.update(d_model=D, num_heads=2, attention_impl=attention_impl, dtype="bfloat16",
                      remat_policy="save_qkv_out", **overrides)
  spec = resolve(config.model)
  block = Block(spec)
  layer = jax.tree.map(lambda a: a[layer], layer_data(spec))
  positions = jnp.broadcast_to(jnp.arange(L), (B, L))
  x = jax.ShapeDtypeStruct((B, L, D), jnp.bfloat16)
  segments = jax.ShapeDtypeStruct((B, L), jnp.int32)
  abstract = jax.eval_shape(block.init, jax.random.key(0), x, segments, positions, layer)
  rules = config.logical_axis_rules
  unboxed = nn.unbox(abstract)  # outside the mesh: inside, unboxing adds sharding constraints

  def loss(variables, x, segments):
    if prefix:  # a decoder's prefix-LM rows: keys before prefix_len seen by every query
      segments = PrefixSegments(segments, jnp.full((B,), L // 3, jnp.int32))
    return block.apply(variables, x, segments, positions, layer)[0].astype(jnp.float32).sum()

  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract), mesh, rules)
    variables = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                             unboxed, shardings)
    rows = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
    x = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rows)
    segments = jax.ShapeDtypeStruct(segments.shape, segments.dtype, sharding=rows)
    return jax.jit(jax.grad(loss)).lower(variables, x, segments)


def test_flash_lowers_to_the_pallas_kernel_without_a_score_matrix(mesh):
  score_matrix = f"x{L}x{L}x"  # StableHLO spelling of a [..., L, L] tensor
  reference = lower_block_grad(mesh, "xla").as_text()
  assert score_matrix in reference and "tpu_custom_call" not in reference
  flash = lower_block_grad(mesh, "flash")
  text = flash.as_text()
  assert text.count("tpu_custom_call") == 3  # forward, dK/dV and dQ kernels
  assert score_matrix not in text
  compiled = flash.compile()  # the TPU compiler accepts the sharded kernels
  assert f"{L},{L}]" not in compiled.as_text()


def test_flash_with_grouped_kv_heads_rope_and_qk_norm_still_uses_the_kernel(mesh):
  text = lower_block_grad(mesh, "flash", num_kv_heads=1, position_embedding="rope",
                          qk_norm=True).as_text()
  assert text.count("tpu_custom_call") == 3 and f"x{L}x{L}x" not in text


@pytest.mark.parametrize("layer", [0, 1])  # global_every=3: layer 0 global, layer 1 windowed
def test_windowed_layers_lower_to_splash_without_a_score_matrix(mesh, layer):
  # Both kernels (window 64 and global) are in the program under lax.cond on the layer's window,
  # so a scanned stack keeps one body: forward, dK/dV and dQ kernels of each.
  lowered = lower_block_grad(mesh, "flash", attention_window=64, global_every=3, layer=layer)
  text = lowered.as_text()
  assert text.count("tpu_custom_call") == 6 and f"x{L}x{L}x" not in text
  assert f"{L},{L}]" not in lowered.compile().as_text()


def test_prefix_rows_lower_to_splash_without_a_score_matrix(mesh):
  lowered = lower_block_grad(mesh, "flash", family="decoder", num_kv_heads=1, prefix=True)
  text = lowered.as_text()
  assert text.count("tpu_custom_call") == 3 and f"x{L}x{L}x" not in text
  assert f"{L},{L}]" not in lowered.compile().as_text()
