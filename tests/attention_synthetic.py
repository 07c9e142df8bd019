"""Synthetic attention data for the attention-view tests: random q/k and their exact softmax."""
import numpy as np

from evals.attention_view import AttentionData

PAIR_TOKENS = "[CLS] the quick brown fox jumps [SEP] over the lazy dog $5 [SEP]".split()
PAIR_SEGMENTS = [0] * 7 + [1] * 6


def synthetic_attention(tokens=PAIR_TOKENS, segments=PAIR_SEGMENTS, layers=3, heads=4, head_dim=16,
                        seed=0, causal=False) -> AttentionData:
  """Attention = softmax(q.k / sqrt(Dh)) of random q, k (causal: keys after the query masked)."""
  rng = np.random.default_rng(seed)
  length = len(tokens)
  q = rng.normal(size=[layers, heads, length, head_dim]) * 1.5
  k = rng.normal(size=[layers, heads, length, head_dim]) * 1.5
  scores = np.einsum("nhqd,nhkd->nhqk", q, k) * head_dim ** -0.5
  if causal:
    scores = np.where(np.tril(np.ones([length, length], bool)), scores, -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return AttentionData(list(tokens), probs, q, k, segments)
