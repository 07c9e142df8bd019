"""trainlib.checksum: one value per array whatever its sharding; any changed, swapped or moved
element changes it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from trainlib import checksum


def _tree(seed=0):
  rs = np.random.RandomState(seed)
  return {"w": rs.randn(16, 24).astype(np.float32), "b": rs.randn(24).astype(np.float32),
          "h": jnp.asarray(rs.randn(8, 6), jnp.bfloat16), "step": np.int32(7),
          "ids": rs.randint(0, 100, (4, 8)).astype(np.int32)}


def test_the_same_sums_on_one_device_and_sharded_over_eight():
  tree = _tree()
  one = checksum.Checksummer()(jax.device_put(tree, jax.devices()[0]))
  mesh = jax.make_mesh((2, 4), ("data", "fsdp"))
  specs = {"w": P("data", "fsdp"), "b": P("fsdp"), "h": P("fsdp", None), "step": P(),
           "ids": P(None, "data")}
  sharded = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in tree.items()}
  assert checksum.Checksummer()(sharded) == one
  assert sorted(one) == ["b", "h", "ids", "step", "w"] and all(len(v) == 8 for v in one.values())


@pytest.mark.parametrize("change", ["one bit", "sign bits of two elements", "swap two elements",
                                    "roll by one", "transpose a square block"])
def test_any_change_changes_the_sum(change):
  w = _tree()["w"]
  words = w.view(np.uint32).copy()
  if change == "one bit":
    words[3, 5] ^= 1
  elif change == "sign bits of two elements":  # cancels in a plain sum mod 2^32
    words[0, 0] ^= 0x80000000
    words[9, 17] ^= 0x80000000
  elif change == "swap two elements":
    words[1, 2], words[2, 1] = words[2, 1].copy(), words[1, 2].copy()
  elif change == "roll by one":
    words = np.roll(words, 1)
  else:
    words[:8, :8] = words[:8, :8].T.copy()
  summer = checksum.Checksummer()
  before = summer({"w": w})
  after = summer({"w": words.view(np.float32)})
  assert checksum.mismatches(before, after) == ["w"]


def test_prng_keys_and_names():
  key = jax.random.key(3)
  summer = checksum.Checksummer()
  a = summer({"rng": key, "params": {"dense": {"kernel": np.ones((2, 2), np.float32)}}})
  b = summer({"rng": jax.random.key(4), "params": {"dense": {"kernel": np.ones((2, 2), np.float32)}}})
  assert set(a) == {"rng", "params/dense/kernel"}
  assert checksum.mismatches(a, b) == ["rng"]
  assert checksum.mismatches(a, a) == []
