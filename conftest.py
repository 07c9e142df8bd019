"""pytest set-up shared by every test: CPU only, 8 fake devices, train.py's XLA CPU flags, a
persistent compile cache.

libtpu is installed (for AOT compiles against TPU topologies), so JAX must be told to stay on the
CPU; 8 host devices let the sharding tests build real meshes. Both must happen before jax starts.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from trainlib import xla_options  # noqa: E402  (nothing of JAX)
xla_options.use_cpu_flags()  # the XLA CPU flags train.py sets, so tests compile what it compiles

import jax  # noqa: E402

_cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "jax")
jax.config.update("jax_compilation_cache_dir", _cache)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
