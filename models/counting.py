"""Parameter counts and training FLOPs per token, from shapes only (`jax.eval_shape`: no memory).

Parameter groups are the top-level entries of the parameter tree: embeddings, stack (all blocks),
final_ln, lm_head (untied decoders), mlm_head (BERT's transform), mlm_decoder (untied encoders),
mlm_output_bias, pooler, nsp_classifier.

`params_non_embedding` (Kaplan et al. 2020's N) leaves out every parameter with a "vocab",
"positions" or "token_types" logical axis: the lookup tables, an untied vocabulary projection and
the MLM output bias.

Training FLOPs take the objective's part as data: `terms`, the objectives.base.FlopTerms an
objective declares (objectives.train_flops_per_token looks them up by name), so models never
look an objective up.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ConfigError
from models.build import build_model
from models.spec import resolve

EMBEDDING_AXES = ("vocab", "positions", "token_types")


def abstract_params(model_cfg):
  """The boxed (nn.Partitioned) parameter tree as ShapeDtypeStructs; nothing is allocated."""
  model = build_model(model_cfg)
  ids = jax.ShapeDtypeStruct((1, 2), jnp.int32)  # parameter shapes do not depend on B or L
  variables = jax.eval_shape(model.init, jax.random.key(0), ids)
  return variables["params"]


def _leaves_with_names(params):
  is_box = lambda x: isinstance(x, nn.Partitioned)
  for path, leaf in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_box)[0]:
    names = leaf.names if is_box(leaf) else ()
    shape = leaf.value.shape if is_box(leaf) else leaf.shape
    yield path[0].key, names, math.prod(shape)


def param_counts(model_cfg):
  """dict(params_total, params_non_embedding, params_by_group={group: count}) of the model."""
  total = non_embedding = 0
  by_group = {}
  for group, names, size in _leaves_with_names(abstract_params(model_cfg)):
    total += size
    by_group[group] = by_group.get(group, 0) + size
    if not any(axis in EMBEDDING_AXES for axis in names):
      non_embedding += size
  return {"params_total": total, "params_non_embedding": non_embedding,
          "params_by_group": by_group}


def train_flops(model_cfg, seq_len, terms, who="objective"):
  """Training FLOPs (forward + backward) per input token: `flops_breakdown` summed."""
  per_token, head, per_sequence, attention = _flop_parts(model_cfg, seq_len, terms, who)
  return 6 * (per_token + head + per_sequence) + attention


def flops_breakdown(model_cfg, seq_len, terms, who="objective"):
  """Training FLOPs (forward + backward) per input token, analytically, by part:
  {"6N": 6 * N_stack, "head": 6 * f * N_vocab_projection_and_mlm_head,
   "per_sequence": 6 * N_per_sequence / seq_len, "attention": attention}, where

      flops = 6 * N_eff + attention
      N_eff = N_stack                                   (all blocks + final LN: every token)
            + f * (N_vocab_projection + N_mlm_head)      (the vocabulary head)
            + N_per_sequence / seq_len                   (e.g. pooler + NSP: once per sequence)
      attention = 12 * d_attn * sum over layers of the keys each query sees:
                  seq_len in a global bidirectional layer, seq_len / 2 in a global causal one
                  (half the score matrix), and in a sliding-window layer the exact mean number
                  of keys within attention_window // 2 (causal: behind; the work a windowed
                  kernel does, not what the XLA reference spends on masks)

  `terms` (an objectives.base.FlopTerms) gives f (head_fraction), the per-sequence parameter
  groups and a (attention_fraction): the part of a global layer's score matrix the objective's
  mask computes, 1 bidirectional, 1/2 causal, in between for prefix masks. A mask in between
  counts as the mix w = 2a - 1 of bidirectional and 1 - w of causal in every layer.

  6 = 2 FLOPs per multiply-add in the forward pass + 4 in the backward pass (gradients with respect
  to activations and to weights). N_vocab_projection = d_model * vocab_size whether tied or not
  (a tied table is still a matmul in the head), plus the MLM output bias; embedding lookups cost no
  FLOPs. The attention term is q.k^T and probs.v: 2 * 2 * seq_len * d_attn per token per layer
  forward, times 3 for training.

  f is 1 for decoder objectives (logits at every position); MLM objectives gather
  max_predictions_per_seq positions per sequence before the head (padding slots included, since
  they are computed), so f = predictions_per_seq / seq_len.
  XLA's cost analysis cannot replace this: it counts a scanned layer once.
  """
  per_token, head, per_sequence, attention = _flop_parts(model_cfg, seq_len, terms, who)
  return {"6N": 6 * per_token, "head": 6 * head, "per_sequence": 6 * per_sequence,
          "attention": attention}


def _flop_parts(model_cfg, seq_len, terms, who):
  """(N_stack, f * N_head, N_per_sequence / seq_len, attention FLOPs) per token."""
  spec = resolve(model_cfg)
  if not isinstance(seq_len, int) or not 0 < seq_len <= spec.max_len:
    raise ConfigError(f"data.seq_len={seq_len!r} must be in [1, model.max_len={spec.max_len}]")

  groups = param_counts(model_cfg)["params_by_group"]
  per_token = groups["stack"] + groups.get("final_ln", 0)
  vocab_head = (spec.d_model * spec.vocab_size + groups.get("mlm_head", 0)
                + groups.get("mlm_output_bias", 0))
  missing = [g for g in terms.per_sequence_groups if g not in groups]
  if missing:
    raise ConfigError(f"{who} needs model.nsp_head=True (it runs {', '.join(missing)} once "
                      "per sequence)")
  per_sequence = sum(groups[g] for g in terms.per_sequence_groups)
  bidirectional = 2 * terms.attention_fraction - 1  # w: 1 encoders, 0 causal decoders
  attention = 12 * spec.d_attn * sum(
      bidirectional * _keys_per_query(spec, seq_len, layer, causal=False)
      + (1 - bidirectional) * _keys_per_query(spec, seq_len, layer, causal=True)
      for layer in range(spec.num_layers))
  return per_token, terms.head_fraction * vocab_head, per_sequence / seq_len, attention


def _keys_per_query(spec, seq_len, layer, causal):
  """Mean keys a query attends to: seq_len (seq_len / 2 causal) in a global layer; in a
  sliding-window layer the exact mean over positions of the keys within window // 2."""
  if spec.layer_is_global(layer):
    return seq_len / 2 if causal else seq_len
  half, i = spec.attention_window // 2, np.arange(seq_len)
  last = i if causal else np.minimum(i + half, seq_len - 1)
  return float(np.mean(last - np.maximum(i - half, 0) + 1))
