"""Decoder objective: prefix language modelling (Raffel et al. 2020's prefix LM; UL2's S-mode).

Rows are the causal objective's packed windows plus `prefix_len[B]`, drawn per (epoch, slot)
uniform in [1, L - 1]: the first prefix_len positions attend to each other bidirectionally
(within their packed document), the rest causally (models/attention.py), and the loss is the
next-token loss on the suffix only. Position i predicts token i + 1, so the targets of
positions i >= prefix_len - 1 count (the suffix tokens); earlier targets sit inside the prefix,
which the prefix positions can see, and get weight 0.
"""

import functools

import jax.numpy as jnp

from objectives import causal
from objectives.base import FlopTerms, Objective
from pipeline import decoder_examples
from pipeline import stats
from pipeline import views


def layout(config):
  """The causal layout plus prefix_len: a scalar per row."""
  return {**causal.layout(config), "prefix_len": ((), jnp.int32)}


def model_inputs(batch):
  return {**causal.model_inputs(batch), "prefix_len": batch["prefix_len"]}


def flop_terms(seq_len, objective_cfg, predictions_per_seq):
  """Logits at every position; of the score matrix, the prefix block is whole and the rest
  causal: E[1 + (P / L)^2] / 2 for P uniform in [1, L - 1] (2/3 for long rows)."""
  del objective_cfg, predictions_per_seq
  if seq_len < 2:
    return FlopTerms(head_fraction=1.0, attention_fraction=0.5)
  mean_square = (seq_len - 1) * (2 * seq_len - 1) / 6 / seq_len ** 2  # E[P^2] / L^2
  return FlopTerms(head_fraction=1.0, attention_fraction=(1 + mean_square) / 2)


def _examples(data, tokenizer, config, split):
  return decoder_examples.PrefixLMExamples(data, tokenizer, config, split)


def _stats(batches, tokenizer):
  return stats.prefix_lm_stats(batches, tokenizer)


def _format_row(batch, row, tokenizer):
  return views.format_prefix_row(batch, row, tokenizer)


def make():
  return Objective(
      name="prefix_lm",
      family="decoder",
      attention="prefix",
      loss_terms=("lm_loss",),
      layout=layout,
      model_inputs=model_inputs,
      metrics=causal.metrics,  # the suffix-only weights are in target_weights
      term_weights=causal.term_weights,
      special_ids=("eot_id",),
      min_seq_len=2,
      layout_text="a prefix of 1..L-1 tokens, then the predicted suffix",
      flop_terms=flop_terms,
      examples=_examples,
      stats=_stats,
      format_row=_format_row,
  )
