"""Peak host memory of a sharded HF import: a GPT-2 XL-shaped checkpoint onto 8 fake CPU devices.

  python -m bench.hf_import_memory --dir /tmp/gpt2_xl_random [--size xl] [--fsdp 8]

Writes (once, if DIR has no config.json) a random GPT-2 checkpoint of the preset's shape in HF's
sharded layout (model.safetensors.index.json + one safetensors file per layer, float32, N(0,
0.02)), then, in a fresh process with 8 fake CPU devices and mesh fsdp=8, imports it with
interop.hf.load_params and prints one JSON line: parameters and bytes, the bytes one device
holds, seconds, peak resident memory of the process (ru_maxrss, which also counts the pages of
the memory-mapped safetensors files that were read), the peaks of its anonymous and file-backed
parts (sampled every 20 ms from /proc/self/status), resident memory after the files are closed,
and a spot check of imported values against the file. Figures are printed, never asserted.
"""
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np
from absl import app, flags
from safetensors import safe_open

_DIR = flags.DEFINE_string("dir", "/tmp/pancake_gpt2_xl_random", "checkpoint directory")
_SIZE = flags.DEFINE_string("size", "xl", "GPT-2 size: small, medium, large, xl")
_FSDP = flags.DEFINE_integer("fsdp", 8, "fake CPU devices = FSDP degree")
_MEASURE = flags.DEFINE_bool("measure", False, "internal: run the import in this process")


def _status_kb(field):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return -1


def write_checkpoint(out_dir, size):
  """A random GPT-2 of `size`'s shape, one safetensors file per layer (bounded memory)."""
  # late: start-up time (only the measured child process, with its device count set, loads these)
  from safetensors.numpy import save_file

  from configs import presets
  from interop import hf, hf_config, names
  from pipeline import tokenization
  os.makedirs(out_dir, exist_ok=True)
  m = presets.gpt2(size).model
  d, f, h, v, p = m.d_model, 4 * m.d_model, m.num_heads, m.vocab_size, m.max_len
  dh = d // h
  ours = {"embeddings/token/embedding": (v, d), "embeddings/position/embedding": (p, d),
          "final_ln/scale": (d,), "final_ln/bias": (d,), "ln_attention/scale": (d,),
          "ln_attention/bias": (d,), "ln_mlp/scale": (d,), "ln_mlp/bias": (d,),
          "attention/query/kernel": (d, h, dh), "attention/query/bias": (h, dh),
          "attention/key/kernel": (d, h, dh), "attention/key/bias": (h, dh),
          "attention/value/kernel": (d, h, dh), "attention/value/bias": (h, dh),
          "attention/out/kernel": (h, dh, d), "attention/out/bias": (d,),
          "mlp/wi/kernel": (d, f), "mlp/wi/bias": (f,), "mlp/wo/kernel": (f, d),
          "mlp/wo/bias": (d,)}
  rng = np.random.default_rng(0)
  shapes = lambda rules, layer: {names.hf_name(r, names.GPT2_PREFIX, layer): names.hf_shape(
      r, ours[r.ours]) for r in rules}
  weight_map = {}
  groups = [("global", shapes(names.GPT2_GLOBAL, None))]
  groups += [(f"layer{i:03d}", shapes(names.GPT2_LAYER, i)) for i in range(m.num_layers)]
  for tag, tensors in groups:
    file = f"model-{tag}.safetensors"
    save_file({n: (rng.standard_normal(s, dtype=np.float32) * 0.02) for n, s in tensors.items()},
              os.path.join(out_dir, file), metadata={"format": "pt"})
    weight_map.update({n: file for n in tensors})
  with open(os.path.join(out_dir, hf.INDEX_FILE), "w") as fh:
    json.dump({"metadata": {}, "weight_map": weight_map}, fh)
  tok = tokenization.byte_tokenizer()  # only the tokenizer files' presence matters here
  tok.kind = "bpe"
  m.dropout_rate = m.attention_dropout_rate = 0.0
  with open(os.path.join(out_dir, "config.json"), "w") as fh:
    json.dump(hf_config.hf_config(m, tok), fh)
  hf.write_tokenizer(tok, m.max_len, out_dir)


def measure(hf_dir, fsdp):
  # late: start-up time (only the measured child process, with its device count set, loads these)
  import jax

  from configs import from_hf
  from interop import hf
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  config = from_hf.get_config(hf_dir)
  config.mesh.data, config.mesh.fsdp = 1, fsdp
  config.train.global_batch_size = fsdp
  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  before = _status_kb("VmRSS")
  peaks, done = {"RssAnon": 0, "RssFile": 0}, threading.Event()

  def sample():  # anonymous (heap) vs file-backed (mmapped safetensors) resident memory
    while not done.is_set():
      for field in peaks:
        peaks[field] = max(peaks[field], _status_kb(field))
      time.sleep(0.02)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  start = time.perf_counter()
  params = hf.load_params(config, setup.abstract_state.params)
  jax.block_until_ready(params)
  seconds = time.perf_counter() - start
  done.set()
  sampler.join()
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
  leaves = jax.tree.leaves(params)
  total = sum(x.size * x.dtype.itemsize for x in leaves)
  per_device = sum(x.addressable_shards[0].data.nbytes for x in leaves)
  # spot check: layer 7's c_fc weight, first rows, against the file
  index = json.load(open(os.path.join(hf_dir, hf.INDEX_FILE)))["weight_map"]
  name = "transformer.h.7.mlp.c_fc.weight"
  with safe_open(os.path.join(hf_dir, index[name]), "numpy") as f:
    want = f.get_slice(name)[:4]
  got = np.asarray(params["stack"]["layers"]["mlp"]["wi"]["kernel"][7, :4])
  gc.collect()
  after = _status_kb("VmRSS")
  print(json.dumps({
      "preset": f"gpt2_{_SIZE.value}", "devices": jax.device_count(), "mesh_fsdp": fsdp,
      "params": int(sum(x.size for x in leaves)), "param_gib": round(total / 2**30, 3),
      "per_device_gib": round(per_device / 2**30, 3), "import_seconds": round(seconds, 1),
      "rss_before_import_gib": round(before / 2**20, 3),
      "peak_rss_gib": round(peak / 2**20, 3),
      "peak_rss_anon_gib": round(peaks["RssAnon"] / 2**20, 3),
      "peak_rss_file_gib": round(peaks["RssFile"] / 2**20, 3),
      "rss_after_import_gib": round(after / 2**20, 3),
      "spot_check_equal": bool(np.array_equal(got, want))}))


def main(argv):
  del argv
  if _MEASURE.value:
    return measure(_DIR.value, _FSDP.value)
  if not os.path.exists(os.path.join(_DIR.value, "config.json")):
    start = time.perf_counter()
    write_checkpoint(_DIR.value, _SIZE.value)
    print(f"wrote {_DIR.value} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={_FSDP.value}")
  subprocess.run([sys.executable, "-m", "bench.hf_import_memory", "--measure",
                  f"--dir={_DIR.value}", f"--size={_SIZE.value}", f"--fsdp={_FSDP.value}"],
                 env=env, check=True)


if __name__ == "__main__":
  app.run(main)
