"""Every weight matmul of the models: x[..., *K] @ w[*K, *M], with a CPU-friendly backward.

The weight gradient of y = x @ w is dw = x^T @ dy, contracted over all tokens N. XLA:CPU's layout
assignment fed that matmul a transposed copy of dy, and fused the copy into the elementwise op that
produces dy (the GELU backward, the softmax backward of the LM head): a loop writing [M, N] with
strided stores, the slowest fusion of the tiny steps (~15% of the nanoGPT-shaped step's op time in
a jax.profiler trace, 6 ms for one [768, 512] GELU gradient). On CPU `contract` therefore has its
own VJP that transposes the narrower of x [N, K] and dy [N, M] itself, behind an optimization
barrier so XLA cannot fuse it back, and runs a plain row-major matmul: 4 MLP layers fwd+bwd at
d_model 128 ran 1.5x faster (these figures: single runs on a shared machine, load ~5, at
real-time priority; bench/train_step.py has the idle whole-step figures). The arithmetic is the same dot products, so the
gradients equal autodiff's to float32 rounding (tests/test_models_behavior.py).

Elsewhere (TPU, GPU, and every forward pass) it is jnp.tensordot, exactly as before.
"""

import math

import jax
import jax.numpy as jnp

from models.platform import target_platform


def _transposed(a):
  return jax.lax.optimization_barrier(a.T)


@jax.custom_vjp
def _matmul_2d(x, w):  # x [N, K], w [K, M] -> [N, M]
  return x @ w


def _matmul_2d_fwd(x, w):
  return x @ w, (x, w)


def _matmul_2d_bwd(residuals, dy):  # dy [N, M]
  x, w = residuals
  dx = dy @ w.T  # [N, K]
  if x.shape[1] <= dy.shape[1]:
    dw = _transposed(x) @ dy          # [K, N] @ [N, M]
  else:
    dw = (_transposed(dy) @ x).T      # ([M, N] @ [N, K])^T, a small [M, K] transpose
  return dx, dw


_matmul_2d.defvjp(_matmul_2d_fwd, _matmul_2d_bwd)


def contract(x, w, num_in=1):
  """x[..., *K] (the last num_in axes) against w[*K, *M] -> [..., *M]; same dtypes as given."""
  if target_platform() != "cpu":
    return jnp.tensordot(x, w, axes=num_in)
  k_shape, m_shape = w.shape[:num_in], w.shape[num_in:]
  batch_shape = x.shape[:x.ndim - num_in]
  y = _matmul_2d(x.reshape(-1, math.prod(k_shape)), w.reshape(math.prod(k_shape), -1))
  return y.reshape(batch_shape + m_shape)


def dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """nn.Dense's dot_general (x[..., K] . w[K, M]) through `contract`; other forms as lax."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  if (tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,) and rhs.ndim == 2
      and not lhs_batch and not rhs_batch and precision is None
      and preferred_element_type is None):
    return contract(lhs, rhs)
  return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                             preferred_element_type=preferred_element_type)
