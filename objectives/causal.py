"""Decoder objective: next-token prediction (GPT).

The pipeline packs documents into rows and writes `targets[B,L]` (the next token) and
`target_weights[B,L]` (0 on padding and wherever no next token exists); `doc_ids[B,L]` keeps
attention inside each packed document and `positions[B,L]` restarts at each document. The loss
is the mean over weighted target tokens of the whole global batch.
"""

import jax.numpy as jnp

from objectives.base import Objective, weighted_cross_entropy


def _batch_spec(config):
  b, l = config.train.global_batch_size, config.data.seq_len
  return {
      "input_ids": ((b, l), jnp.int32),
      "targets": ((b, l), jnp.int32),
      "positions": ((b, l), jnp.int32),
      "doc_ids": ((b, l), jnp.int32),
      "target_weights": ((b, l), jnp.float32),
  }


def _model_inputs(batch):
  return {"input_ids": batch["input_ids"], "positions": batch["positions"],
          "doc_ids": batch["doc_ids"]}


def _metrics(outputs, batch):
  # logits[B,L,V] against targets[B,L].
  loss, correct, weight = weighted_cross_entropy(
      outputs["logits"], batch["targets"], batch["target_weights"])
  return {"lm_loss": (loss, weight), "lm_accuracy": (correct, weight)}


def _term_weights(batch):
  return {"lm_loss": jnp.sum(batch["target_weights"].astype(jnp.float32))}


def make():
  return Objective(
      name="causal",
      family="decoder",
      loss_terms=("lm_loss",),
      batch_spec=_batch_spec,
      model_inputs=_model_inputs,
      metrics=_metrics,
      term_weights=_term_weights,
      special_ids=(),  # packing separators are the pipeline's business
  )
