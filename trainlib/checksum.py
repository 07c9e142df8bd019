"""Checksums of sharded arrays, computed where the shards live: no host copy of the state.

    sums = Checksummer()(state)  # {"params/decoder/...": "0123abcd", ...}, one per leaf

Orbax and tensorstore verify the structure of a checkpoint (OCDBT manifests, zarr3 shard
indices) but not the array bytes: a flipped bit in a data file restores without a word. So the
checkpoint stores these sums in its meta item and `trainlib.checkpoint` recomputes them on
restore.

The sum of an array is a function of its global contents alone, whatever the sharding: each
element's 32-bit words are combined with their global flat index, passed through a bijective
integer finalizer (murmur3's fmix32) and added up modulo 2^32. Addition mod 2^32 is associative
and commutative, so every device sums its own shard and XLA adds the partial sums: the same value
for a state saved on fsdp=8 and restored on data=2 x tensor=4, one jitted program for the whole
tree, and 4 bytes per array back to the host. A changed, swapped or moved element goes unnoticed
with probability ~2^-32 per array (the strength of the crc32c tensorstore puts on shard indices).
One lane, not two: a second doubled the cost (bench/checkpoint.py). It detects corruption; it is
not a cryptographic hash.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: spreads consecutive indices over all 32 bits


def _fmix32(h):
  """murmur3's 32-bit finalizer: a bijection of uint32 in which every input bit moves every
  output bit (so two changed words cannot cancel the way they can in a plain sum)."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _words(x):
  """The array's bits as uint32 words: [*shape] for 1/2/4-byte types, [*shape, k] for wider."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  size = x.dtype.itemsize
  if size == 4:
    return lax.bitcast_convert_type(x, jnp.uint32)
  if size in (1, 2):
    return lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * size}")).astype(jnp.uint32)
  return lax.bitcast_convert_type(x, jnp.uint32)  # 8 bytes -> [..., 2]


def _flat_index(shape):
  """uint32 global row-major index of every element (wraps past 2^32: still position-dependent)."""
  index = jnp.zeros(shape, jnp.uint32)
  stride = 1
  for axis in reversed(range(len(shape))):
    index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride % 2 ** 32)
    stride *= shape[axis]
  return index


def _array_sum(x) -> jax.Array:
  words = _words(x)
  index = _flat_index(words.shape)
  return jnp.sum(_fmix32(words ^ (index * jnp.uint32(_GOLDEN))), dtype=jnp.uint32)


def leaf_name(path) -> str:
  """'params/decoder/layers/attention/query/kernel' from a tree path (attribute, key or index)."""
  parts = []
  for key in path:
    for attr in ("name", "key", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def _replicated_outputs(tree):
  """Replicated out_shardings on the arrays' mesh, so every process can read the sums."""
  for leaf in jax.tree.leaves(tree):
    sharding = getattr(leaf, "sharding", None)
    if isinstance(sharding, jax.sharding.NamedSharding):
      return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
  return None


class Checksummer:
  """`checksums(tree)` with the jitted program kept per tree structure (compiled once per run)."""

  def __init__(self):
    self._compiled = {}

  def compile(self, tree):
    """Compiles for `tree` (arrays or ShapeDtypeStructs with shardings) now; see
    loop._Trainer._compile_and_line_up for why multi-process runs compile ahead."""
    key = jax.tree.structure(tree)
    if key not in self._compiled:
      fn = jax.jit(lambda t: jax.tree.map(_array_sum, t),
                   out_shardings=_replicated_outputs(tree))
      self._compiled[key] = fn.lower(tree).compile()
    return self._compiled[key]

  def __call__(self, tree) -> dict:
    """{leaf name: 8 hex digits} for every array of `tree`."""
    sums = jax.device_get(self.compile(tree)(tree))
    flat, _ = jax.tree_util.tree_flatten_with_path(sums)
    return {leaf_name(path): f"{int(np.asarray(value)):08x}" for path, value in flat}


def mismatches(expected: dict, actual: dict) -> list[str]:
  """Names of the arrays whose sums differ from (or are missing in) `expected`'s."""
  return sorted(name for name, value in actual.items()
                if name in expected and expected[name] != value) + sorted(
      name for name in actual if name not in expected)
