r"""The golden record of every existing preset's parameter tree, initial values and logits.

  JAX_PLATFORMS=cpu python -m tests.golden_models --write   # rewrites tests/golden_models.json
  JAX_PLATFORMS=cpu python -m tests.golden_models --write-this-cpu   # adds this CPU's logits

Logits are bitwise only on one kind of CPU (`cpu_kind`): "logits_sha" is that of the machine
the golden was written on, "logits_sha_by_cpu" adds other kinds, each added by --write-this-cpu
only when the tree, the init and the logits statistics (to 1e-6) match the golden.

tests/test_models_golden.py compares the models of the tree it runs in against the JSON, so a
change to models/ that should leave existing presets alone (a new block option with its default)
is checked to change nothing: same parameter names and shapes, bitwise the same init (model.init
at key 0) and bitwise the same logits on fixed inputs. Presets of more than a few million
parameters are scaled down (CASES) keeping every other field, dtype included; the tiny presets and
the quickstart are built as they are. A few variants of tiny configs cover options the presets do
not use (unrolled stack, untied head, no biases, the flash path, remat).
"""

import hashlib
import importlib
import json
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import models
from bench.machine import cpu_kind  # the CPU kind a digest belongs to (bench JSONs record it too)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_models.json")
B, L = 2, 16
_SMALL = dict(vocab_size=97, max_len=32, num_layers=2, d_model=32, num_heads=4, d_ff=0)
# name: (config module, overrides). d_head is kept nonzero (8) where the preset sets it.
CASES = {
    **{name: (name, _SMALL) for name in (
        "bert_base", "bert_large", "gpt2_small", "gpt2_medium", "gpt2_large", "gpt2_xl")},
    **{name: (name, {**_SMALL, "d_head": 8}) for name in (
        "gpt3_small", "gpt3_medium", "gpt3_large", "gpt3_xl", "gpt3_2_7b", "gpt3_6_7b",
        "gpt3_13b", "gpt3_175b")},
    "tiny_encoder": ("tiny_encoder", {}),
    "tiny_decoder": ("tiny_decoder", {}),
    "quickstart": ("quickstart", {}),
    "tiny_encoder_unrolled_untied": ("tiny_encoder", {**_SMALL, "scan_layers": False,
                                                       "tie_embeddings": False}),
    "tiny_decoder_unrolled_untied": ("tiny_decoder", {**_SMALL, "scan_layers": False,
                                                       "tie_embeddings": False}),
    "tiny_decoder_no_bias_flash": ("tiny_decoder", {**_SMALL, "use_bias": False,
                                                     "attention_impl": "flash"}),
    "tiny_encoder_no_bias_flash_remat": ("tiny_encoder", {**_SMALL, "use_bias": False,
                                                          "attention_impl": "flash",
                                                          "remat_policy": "full"}),
}
# Unoptimised compiles (as the model tests use): the same on every run, and much faster on 2 cores.
_JIT = dict(compiler_options={"xla_backend_optimization_level": 0,
                              "xla_llvm_disable_expensive_passes": True})


def model_config(name):
  module, overrides = CASES[name]
  m = importlib.import_module(f"configs.{module}").get_config().model
  for key, value in overrides.items():
    m[key] = value
  # The golden was recorded with the rolled scan (one layer per loop iteration). scan_unroll only
  # regroups the same computation (tests/test_models_behavior.py checks the unrolled scan against
  # it), but XLA fuses the unrolled program differently, which moves bfloat16 logits by ~1e-3.
  m.scan_unroll = 1
  return m


def inputs(m):
  """Fixed inputs exercising the masks: packed documents (decoder), padding + segments (encoder)."""
  rng = np.random.default_rng(0)
  ids = jnp.asarray(rng.integers(1, m.vocab_size, (B, L)), jnp.int32)
  if m.family == "decoder":
    doc_ids = jnp.asarray([[1] * 10 + [2] * 6, [1] * 16], jnp.int32)
    return dict(input_ids=ids, doc_ids=doc_ids)
  token_types = jnp.asarray([[0] * 8 + [1] * 8] * B, jnp.int32)
  input_mask = jnp.asarray([[1] * 16, [1] * 12 + [0] * 4], jnp.int32)
  return dict(input_ids=ids, token_type_ids=token_types, input_mask=input_mask)


def _digest(arrays):
  h = hashlib.sha256()
  for a in arrays:
    a = np.asarray(a)
    h.update(str((a.shape, a.dtype.name)).encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()[:16]


def record(name):
  """{params: {path: "AxB"}, params_sha, logits_sha, logits_stats} for one case."""
  m = model_config(name)
  model = models.build_model(m)
  kwargs = inputs(m)
  params = jax.jit(lambda: nn.unbox(model.init(jax.random.key(0), **kwargs))["params"],
                   **_JIT)()
  outputs = jax.jit(lambda p: model.apply({"params": p}, **kwargs), **_JIT)(params)
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  paths = ["/".join(k.key for k in path) for path, _ in flat]
  logits = outputs["logits" if m.family == "decoder" else "mlm_logits"]
  heads = [logits] + ([outputs["nsp_logits"]] if "nsp_logits" in outputs else [])
  values = np.asarray(logits, np.float64)
  return {
      "params": {p: "x".join(map(str, leaf.shape)) for p, (_, leaf) in zip(paths, flat)},
      "params_sha": _digest(leaf for _, leaf in flat),
      "logits_sha": _digest(heads),
      "logits_stats": [float(values.sum()), float((values ** 2).sum()),
                       *map(float, values.reshape(-1)[:4])],
  }


def write_this_cpu():
  """Adds this CPU kind's logits digests to the golden, after checking that everything else
  (parameter tree, init, logits statistics to 1e-6) matches it: for a machine whose rounding
  differs, never for a model change."""
  with open(GOLDEN) as f:
    golden = json.load(f)
  for name in CASES:
    got, want = record(name), golden[name]
    same_stats = np.allclose(got["logits_stats"], want["logits_stats"], rtol=1e-6, atol=1e-6)
    if got["params"] != want["params"] or got["params_sha"] != want["params_sha"] or not same_stats:
      sys.exit(f"{name}: the model differs from the golden, not just its rounding")
    want.setdefault("logits_sha_by_cpu", {})[cpu_kind()] = got["logits_sha"]
  with open(GOLDEN, "w") as f:
    json.dump(golden, f, indent=1, sort_keys=True)
    f.write("\n")
  print(f"added the logits digests of CPU kind {cpu_kind()!r} to {GOLDEN}")


def main(argv):
  if argv[1:] == ["--write-this-cpu"]:
    return write_this_cpu()
  if argv[1:] != ["--write"]:
    sys.exit(__doc__)
  golden = {name: record(name) for name in CASES}
  with open(GOLDEN, "w") as f:
    json.dump(golden, f, indent=1, sort_keys=True)
    f.write("\n")
  print(f"wrote {len(golden)} cases to {GOLDEN}")


if __name__ == "__main__":
  main(sys.argv)
