"""Rotary position embeddings (Su et al. 2021, RoFormer), applied to queries and keys.

The first `spec.rope_dims` dims of each head are rotated in pairs (i, i + rope_dims / 2), the
"rotate half" layout of GPT-NeoX and Llama (Hugging Face), by angle position * base^(-2i/rope_dims);
the remaining dims pass through (partial rotary, GPT-NeoX's rotary_pct). Angles are computed in
float32 from absolute positions, so cached decoding rotates each new key once, at its own
position, and cached keys are stored rotated. `base` may be traced (a per-layer scanned value:
ModernBERT's global and sliding-window layers use different bases) without recompiling.
"""

import jax.numpy as jnp


def apply_rope(x, positions, base, rope_dims):
  """x: [B, L, H, Dh], positions: [B, L] int, base: scalar -> x rotated, same shape and dtype."""
  half = rope_dims // 2
  exponent = jnp.arange(half, dtype=jnp.float32) * (2.0 / rope_dims)
  inv_freq = jnp.asarray(base, jnp.float32) ** -exponent                       # [half]
  angles = positions.astype(jnp.float32)[..., None] * inv_freq                 # [B, L, half]
  sin, cos = jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :]    # [B, L, 1, half]
  rotated, passed = x[..., :rope_dims].astype(jnp.float32), x[..., rope_dims:]
  x1, x2 = rotated[..., :half], rotated[..., half:]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)
  return jnp.concatenate([out, passed], axis=-1) if passed.shape[-1] else out
