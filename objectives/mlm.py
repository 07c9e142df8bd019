"""Encoder objectives: masked language modelling, with or without next-sentence prediction.

The pipeline has already chosen the masked positions (static or dynamic masking, whole-word or not)
and written `masked_positions[B,P]`, `masked_ids[B,P]` and `masked_weights[B,P]` (0 on padding
slots, so a sequence with fewer than P predictions costs nothing). The model gathers its MLM logits
at `masked_positions`, so the loss only sees `[B,P,V]`, never `[B,L,V]`.

- mlm_nsp (BERT): total = mean MLM loss over predicted tokens + mean NSP loss over sequences.
- mlm (BERT without NSP) and mlm_full_sentences (RoBERTa's FULL-SENTENCES packing): MLM only; they
  differ in how the pipeline builds examples, not in the loss.
"""

import functools

import jax.numpy as jnp

from objectives.base import Objective, weighted_cross_entropy

# Optional keys the pipeline may add (packing); passed to the model when present.
_OPTIONAL_INPUTS = ("doc_ids", "positions")


def _batch_spec(config, nsp):
  b, l = config.train.global_batch_size, config.data.seq_len
  p = config.objective.max_predictions_per_seq
  spec = {
      "input_ids": ((b, l), jnp.int32),
      "token_type_ids": ((b, l), jnp.int32),
      "input_mask": ((b, l), jnp.int32),
      "masked_positions": ((b, p), jnp.int32),
      "masked_ids": ((b, p), jnp.int32),
      "masked_weights": ((b, p), jnp.float32),
  }
  if nsp:
    spec["nsp_labels"] = ((b,), jnp.int32)
  return spec


def _model_inputs(batch):
  inputs = {
      "input_ids": batch["input_ids"],
      "token_type_ids": batch["token_type_ids"],
      "input_mask": batch["input_mask"],
      "masked_positions": batch["masked_positions"],
  }
  inputs.update({k: batch[k] for k in _OPTIONAL_INPUTS if k in batch})
  return inputs


def _metrics(outputs, batch, nsp):
  # mlm_logits[B,P,V] against masked_ids[B,P]; padding slots have weight 0.
  loss, correct, weight = weighted_cross_entropy(
      outputs["mlm_logits"], batch["masked_ids"], batch["masked_weights"])
  metrics = {"mlm_loss": (loss, weight), "mlm_accuracy": (correct, weight)}
  if nsp:
    # nsp_logits[B,2] against nsp_labels[B]; every sequence counts once.
    labels = batch["nsp_labels"]
    n_loss, n_correct, n_weight = weighted_cross_entropy(
        outputs["nsp_logits"], labels, jnp.ones(labels.shape, jnp.float32))
    metrics["nsp_loss"] = (n_loss, n_weight)
    metrics["nsp_accuracy"] = (n_correct, n_weight)
  return metrics


def _term_weights(batch, nsp):
  weights = {"mlm_loss": jnp.sum(batch["masked_weights"].astype(jnp.float32))}
  if nsp:
    weights["nsp_loss"] = jnp.asarray(batch["nsp_labels"].shape[0], jnp.float32)
  return weights


def make(name, nsp):
  return Objective(
      name=name,
      family="encoder",
      loss_terms=("mlm_loss", "nsp_loss") if nsp else ("mlm_loss",),
      batch_spec=functools.partial(_batch_spec, nsp=nsp),
      model_inputs=_model_inputs,
      metrics=functools.partial(_metrics, nsp=nsp),
      term_weights=functools.partial(_term_weights, nsp=nsp),
      special_ids=("cls_id", "sep_id", "mask_id"),
  )
