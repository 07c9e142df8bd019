"""What attention_impl="flash" hands each GPU kernel, per mask kind, checked on this CPU by recording
the calls (cuDNN itself needs a GPU: bench/gpu.sh runs the model tests there)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import gpu_step
from models import attention
from models.attention import attention_mask, fused_attention, segment_ids_from

B, L, H, D = 2, 16, 4, 8


@pytest.fixture
def cudnn_calls(monkeypatch):
  """Lower fused_attention as if for a GPU; record every dot_product_attention call's options."""
  calls = []

  def record(q, k, v, *, mask=None, is_causal=False, scale=None, implementation=None,
             local_window_size=None):
    calls.append(dict(implementation=implementation, is_causal=is_causal, mask=mask,
                      local_window_size=local_window_size))
    return q

  monkeypatch.setattr(attention, "target_platform", lambda: "gpu")
  monkeypatch.setattr(jax.nn, "dot_product_attention", record)
  return calls


def run(causal, window=None, max_window=0, prefix_len=None):
  q = jnp.ones((B, L, H, D), jnp.bfloat16)
  kv = jnp.ones((B, L, 2, D), jnp.bfloat16)  # grouped: cuDNN takes key/value heads as they are
  segments = segment_ids_from((B, L))
  fused_attention(q, kv, kv, segments, causal, window, max_window, prefix_len)
  return segments


def test_causal_and_global_layers_use_cudnns_own_masks(cudnn_calls):
  run(causal=True)
  run(causal=False)
  assert [c["implementation"] for c in cudnn_calls] == ["cudnn", "cudnn"]
  assert [c["is_causal"] for c in cudnn_calls] == [True, False]
  assert all(c["local_window_size"] is None and c["mask"].shape == (B, 1, L, L)
             for c in cudnn_calls)


def test_a_causal_window_is_cudnns_sliding_window_under_a_cond(cudnn_calls):
  run(causal=True, window=jnp.asarray(8), max_window=8)  # both branches are traced
  windows = sorted(str(c["local_window_size"]) for c in cudnn_calls)
  assert windows == ["(4, 0)", "None"] and all(c["is_causal"] for c in cudnn_calls)


@pytest.mark.parametrize("kind", ["bidirectional window", "prefix rows"])
def test_masks_cudnn_cannot_express_go_in_whole(cudnn_calls, kind):
  # jax raises for a right-hand window without is_causal; cuDNN has no prefix mask.
  if kind == "prefix rows":
    prefix = jnp.asarray([5, 0])
    segments = run(causal=True, prefix_len=prefix)
    want = attention_mask(segments, segments, True, prefix_len=prefix)
  else:
    window = jnp.asarray(8)
    segments = run(causal=False, window=window, max_window=8)
    want = attention_mask(segments, segments, False, window=window)
  (call,) = cudnn_calls
  assert call["implementation"] == "cudnn" and not call["is_causal"]
  assert call["local_window_size"] is None
  np.testing.assert_array_equal(call["mask"], want)


def test_the_gpu_bench_runs_a_modern_preset_at_8192_tokens():
  assert gpu_step.parse_preset("ettin_encoder_150m:8192:2", 8, 1024) == (
      "ettin_encoder_150m", 8192, 2)
  assert gpu_step.parse_preset("gpt2_small", 8, 1024) == ("gpt2_small", 1024, 8)
  with pytest.raises(ValueError, match="name:seq_len:batch"):
    gpu_step.parse_preset("gpt2_small:1024", 8, 1024)
  assert any(p.startswith("ettin_") and ":8192:" in p for p in gpu_step._PRESETS.default)
  config = gpu_step.preset_config("ettin_encoder_150m", 2, 8192)
  assert config.objective.max_predictions_per_seq == 2458  # 30% of 8,192
  assert config.model.attention_impl == "flash" and config.model.attention_window == 128
