"""Encoder objectives: masked language modelling, with or without next-sentence prediction.

The pipeline has already chosen the masked positions (static or dynamic masking, whole-word or not)
and written `masked_positions[B,P]`, `masked_ids[B,P]` and `masked_weights[B,P]` (0 on padding
slots, so a sequence with fewer than P predictions costs nothing). The model gathers its MLM logits
at `masked_positions`, so the loss only sees `[B,P,V]`, never `[B,L,V]`.

- mlm_nsp (BERT): total = mean MLM loss over predicted tokens + mean NSP loss over sequences.
- mlm (BERT without NSP) and mlm_full_sentences (RoBERTa's FULL-SENTENCES packing): MLM only; they
  differ in how the pipeline builds examples (pipeline/encoder_examples.py), not in the loss.
"""

import functools

import jax.numpy as jnp

from configs.errors import ConfigError
from configs import fields
from objectives.base import FlopTerms, Objective, weighted_cross_entropy
from objectives.head_loss import head_cross_entropy
from pipeline import encoder_examples
from pipeline import stats
from pipeline import views

# Optional keys the pipeline may add (packing); passed to the model when present.
_OPTIONAL_INPUTS = ("doc_ids", "positions")
# objective.* fields the encoder examples read (masking and text); they key the data fingerprint.
EXAMPLE_FIELDS = ("mask_prob", "mask_token_frac", "random_token_frac", "max_predictions_per_seq",
                  "whole_word_masking", "dynamic_masking", "static_masking_dupes",
                  "short_seq_prob", "nsp_random_prob")
# Fraction of positions that reach the MLM head when the caller does not say (BERT's mask_prob).
DEFAULT_PREDICTED_FRACTION = 0.15


def layout(config, nsp):
  """Per-row layout: ids/segments/mask [L], the P predicted slots, and the NSP label."""
  l, p = config.data.seq_len, config.objective.max_predictions_per_seq
  spec = {
      "input_ids": ((l,), jnp.int32),
      "token_type_ids": ((l,), jnp.int32),
      "input_mask": ((l,), jnp.int32),
      "masked_positions": ((p,), jnp.int32),
      "masked_ids": ((p,), jnp.int32),
      "masked_weights": ((p,), jnp.float32),
  }
  if nsp:
    spec["nsp_labels"] = ((), jnp.int32)
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
  # mlm_logits[B,P,V] against masked_ids[B,P]; padding slots have weight 0. On TPU/GPU the
  # logits are never built whole (objectives/head_loss.py).
  loss, correct, weight = head_cross_entropy(
      outputs["mlm_logits"], outputs.get("mlm_readout"), batch["masked_ids"],
      batch["masked_weights"])
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


def flop_terms(seq_len, objective_cfg, predictions_per_seq, nsp):
  """The head runs on the P gathered slots per sequence; pooler + NSP once per sequence."""
  if predictions_per_seq is None and objective_cfg is not None:
    predictions_per_seq = objective_cfg.max_predictions_per_seq
  fraction = (DEFAULT_PREDICTED_FRACTION if predictions_per_seq is None
              else predictions_per_seq / seq_len)
  return FlopTerms(head_fraction=fraction,
                   per_sequence_groups=("pooler", "nsp_classifier") if nsp else (),
                   attention_fraction=1.0)


def validate_fields(config):
  """The masking fields (every MLM-style objective reads them)."""
  o = config.objective
  fields.in_range("objective.mask_prob", o.mask_prob, 0, 1, lo_open=True)
  fields.in_range("objective.mask_token_frac", o.mask_token_frac, 0, 1)
  fields.in_range("objective.random_token_frac", o.random_token_frac, 0, 1)
  if o.mask_token_frac + o.random_token_frac > 1:
    raise ConfigError(f"objective.mask_token_frac + objective.random_token_frac = "
                      f"{o.mask_token_frac + o.random_token_frac!r} must be <= 1")
  fields.int_at_least("objective.max_predictions_per_seq", o.max_predictions_per_seq, 1)
  fields.int_at_least("objective.static_masking_dupes", o.static_masking_dupes, 1)
  fields.in_range("objective.short_seq_prob", o.short_seq_prob, 0, 1)
  fields.in_range("objective.nsp_random_prob", o.nsp_random_prob, 0, 1)


def _validate_model(config, name, nsp):
  if nsp and not config.model.nsp_head:
    raise ConfigError(f"objective.name={name!r} needs model.nsp_head=True (the NSP classifier)")
  p = config.objective.max_predictions_per_seq
  if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= config.data.seq_len:
    raise ConfigError(f"objective.max_predictions_per_seq={p!r} must be an integer in "
                      f"[1, data.seq_len={config.data.seq_len}]")


def _examples(data, tokenizer, config, split, text, nsp):
  return encoder_examples.EncoderExamples(
      data, tokenizer, config.objective, config.data.seq_len, config.data.seed, split,
      text=text, row_layout=layout(config, nsp))


def _stats(batches, tokenizer):
  return stats.encoder_stats(batches, tokenizer)


def _format_row(batch, row, tokenizer):
  return views.format_encoder_row(batch, row, tokenizer)


# text: "pair" (BERT: [CLS] A [SEP] B [SEP], NSP), "document" (one document, short inputs),
# "full_sentences" (RoBERTa: crossing documents, never short). See pipeline/encoder_examples.py.
_LAYOUTS = {"pair": ("[CLS] A [SEP] B [SEP]", 5), "document": ("[CLS] X [SEP]", 3),
            "full_sentences": ("[CLS] X [SEP]", 3)}


def make(name, text):
  nsp = text == "pair"
  layout_text, min_len = _LAYOUTS[text]
  return Objective(
      name=name,
      family="encoder",
      attention="bidirectional",
      loss_terms=("mlm_loss", "nsp_loss") if nsp else ("mlm_loss",),
      layout=functools.partial(layout, nsp=nsp),
      model_inputs=_model_inputs,
      metrics=functools.partial(_metrics, nsp=nsp),
      term_weights=functools.partial(_term_weights, nsp=nsp),
      special_ids=("pad_id", "cls_id", "sep_id", "mask_id"),
      min_seq_len=min_len,
      layout_text=layout_text,
      flop_terms=functools.partial(flop_terms, nsp=nsp),
      examples=functools.partial(_examples, text=text, nsp=nsp),
      stats=_stats,
      format_row=_format_row,
      example_fields=EXAMPLE_FIELDS,
      validate_fields=validate_fields,
      validate_model=functools.partial(_validate_model, name=name, nsp=nsp),
  )
