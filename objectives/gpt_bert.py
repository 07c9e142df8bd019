"""Decoder objective: GPT-BERT's hybrid (Charpentier and Samuel 2024, "GPT or BERT: why not
both?"): one decoder trained on causal LM and masked next-token prediction (MNTP) together.

Both modes read the output at position i as a prediction of token i + 1 (the MLM head shifted by
one), so one model and one head serve both; a mode is only inputs, targets and attention:
- causal rows: the causal objective's packed windows, causal attention (prefix_len = 0).
- MNTP rows: the same windows, BERT-masked (pipeline/masking.py: objective.mask_prob,
  mask_token_frac, random_token_frac, whole_word_masking; no per-row cap) over positions
  1..L-1, fully bidirectional attention within each packed document (prefix_len = L); a token
  selected at position j is the target of position j - 1, and only those targets count.
In every global batch the first round(objective.causal_fraction * B) rows are causal, the rest
MNTP (the paper's 1:15 causal:masked is causal_fraction = 1/16), so the ratio is exact per batch
and the batch is still a pure function of (seed, step). Loss: mean MNTP loss over predicted
tokens + mean causal loss over target tokens (each a mean, as mlm_nsp's two terms).
"""

import jax.numpy as jnp

from configs.errors import ConfigError
from objectives import mlm, prefix_lm
from objectives.base import FlopTerms, Objective
from objectives.head_loss import weighted_cross_entropies
from pipeline import decoder_examples
from pipeline import stats
from pipeline import views

# objective.* fields the rows read (the data fingerprint).
EXAMPLE_FIELDS = ("causal_fraction", "mask_prob", "mask_token_frac", "random_token_frac",
                  "whole_word_masking", "dynamic_masking", "static_masking_dupes")


def num_causal_rows(objective_cfg, global_batch_size) -> int:
  return int(round(objective_cfg.causal_fraction * global_batch_size))


def _masked_rows(batch):
  return (batch["prefix_len"] > 0).astype(jnp.float32)[:, None]  # [B, 1]: MNTP rows


def _metrics(outputs, batch):
  # logits[B,L,V] against targets[B,L]; each row's weights count towards its own mode.
  masked = _masked_rows(batch)
  weights = batch["target_weights"].astype(jnp.float32)
  groups = (("mntp", masked), ("lm", 1 - masked))
  sums = weighted_cross_entropies(outputs["logits"], outputs.get("readout"), batch["targets"],
                                  [weights * rows for _, rows in groups])
  out = {}
  for (prefix, _), (loss, correct, weight) in zip(groups, sums):
    out[f"{prefix}_loss"], out[f"{prefix}_accuracy"] = (loss, weight), (correct, weight)
  return out


def _term_weights(batch):
  masked = _masked_rows(batch)
  weights = batch["target_weights"].astype(jnp.float32)
  return {"mntp_loss": jnp.sum(weights * masked), "lm_loss": jnp.sum(weights * (1 - masked))}


def flop_terms(seq_len, objective_cfg, predictions_per_seq):
  """Logits at every position; causal rows compute half the score matrix, MNTP rows all of it."""
  del seq_len, predictions_per_seq
  causal_fraction = 1 / 16 if objective_cfg is None else objective_cfg.causal_fraction
  return FlopTerms(head_fraction=1.0, attention_fraction=1 - causal_fraction / 2)


def validate_fields(config):
  mlm.validate_fields(config)
  o, b = config.objective, config.train.global_batch_size
  f = o.causal_fraction
  if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 < f < 1:
    raise ConfigError(f"objective.causal_fraction={f!r} must be a number in (0, 1) (GPT-BERT: "
                      "1/16, one causal row in 16)")
  if isinstance(b, int) and not 1 <= num_causal_rows(o, b) <= b - 1:
    raise ConfigError(f"objective.causal_fraction={f!r} gives {num_causal_rows(o, b)} causal "
                      f"rows of train.global_batch_size={b}; each batch needs both kinds")


def _examples(data, tokenizer, config, split):
  return decoder_examples.GptBertExamples(data, tokenizer, config, split)


def _stats(batches, tokenizer):
  return stats.gpt_bert_stats(batches, tokenizer)


def _format_row(batch, row, tokenizer):
  return views.format_gpt_bert_row(batch, row, tokenizer)


def make():
  return Objective(
      name="gpt_bert",
      family="decoder",
      attention="mixed",
      loss_terms=("mntp_loss", "lm_loss"),
      layout=prefix_lm.layout,
      model_inputs=prefix_lm.model_inputs,
      metrics=_metrics,
      term_weights=_term_weights,
      special_ids=("eot_id", "mask_id"),
      min_seq_len=2,
      layout_text="causal rows and masked rows of at least 2 tokens",
      flop_terms=flop_terms,
      examples=_examples,
      stats=_stats,
      format_row=_format_row,
      example_fields=EXAMPLE_FIELDS,
      validate_fields=validate_fields,
  )
