"""Decoder objective: next-token prediction (GPT).

The pipeline packs documents into rows and writes `targets[B,L]` (the next token) and
`target_weights[B,L]` (0 on padding and wherever no next token exists); `doc_ids[B,L]` keeps
attention inside each packed document and `positions[B,L]` restarts at each document. The loss
is the mean over weighted target tokens of the whole global batch.

The layout, metrics and views here are shared by the other decoder objectives (prefix_lm,
gpt_bert), which add to them.
"""

import jax.numpy as jnp

from objectives.base import FlopTerms, Objective
from objectives.head_loss import lm_cross_entropy
from pipeline import causal_examples
from pipeline import stats as stats_lib
from pipeline import views


def layout(config):
  """Per-row layout of packed decoder rows: every array is [L]."""
  l = config.data.seq_len
  return {
      "input_ids": ((l,), jnp.int32),
      "targets": ((l,), jnp.int32),
      "positions": ((l,), jnp.int32),
      "doc_ids": ((l,), jnp.int32),
      "target_weights": ((l,), jnp.float32),
  }


def model_inputs(batch):
  return {"input_ids": batch["input_ids"], "positions": batch["positions"],
          "doc_ids": batch["doc_ids"]}


def metrics(outputs, batch):
  # logits[B,L,V] against targets[B,L] (on CPU chunk by chunk: objectives/head_loss.py).
  loss, correct, weight = lm_cross_entropy(outputs, batch["targets"], batch["target_weights"])
  return {"lm_loss": (loss, weight), "lm_accuracy": (correct, weight)}


def term_weights(batch):
  return {"lm_loss": jnp.sum(batch["target_weights"].astype(jnp.float32))}


def flop_terms(seq_len, objective_cfg, predictions_per_seq):
  del seq_len, objective_cfg, predictions_per_seq  # logits at every position, half the scores
  return FlopTerms(head_fraction=1.0, attention_fraction=0.5)


def _examples(data, tokenizer, config, split):
  return causal_examples.CausalExamples(data, tokenizer, config.data.seq_len, config.data.seed,
                                        split)


def stats(batches, tokenizer):
  return stats_lib.causal_stats(batches, tokenizer)


def format_row(batch, row, tokenizer):
  return views.format_causal_row(batch, row, tokenizer)


def make():
  return Objective(
      name="causal",
      family="decoder",
      attention="causal",
      loss_terms=("lm_loss",),
      layout=layout,
      model_inputs=model_inputs,
      metrics=metrics,
      term_weights=term_weights,
      special_ids=("eot_id",),  # separates packed documents
      min_seq_len=1,
      layout_text="one token",
      flop_terms=flop_terms,
      examples=_examples,
      stats=stats,
      format_row=format_row,
  )
