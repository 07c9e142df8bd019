"""The Objective record and the loss helpers shared by every objective.

An objective turns a batch into model inputs, and model outputs plus the batch into weighted loss
sums. Everything is summed over the batch, never averaged: the train step divides once, by the
weights of the whole global batch, so padding, packing, sharding and gradient accumulation cannot
change what a "mean" means.

A total loss may be a sum of several means (BERT: mean MLM loss + mean NSP loss), so an objective
names its `loss_terms`: metrics whose (sum, weight) pairs are divided separately and then added.
`term_weights(batch)` gives each term's weight from the batch alone (no model), which is what lets
the train step normalise every micro-batch by the weights of the full batch and get exactly the
big-batch gradient.

Everything else the library needs to know about an objective is declared on the record too (one
module per objective, one registry line in objectives/__init__.py): its family and attention
mask, the shortest sequence its layout fits, the tokenizer ids its examples need, its FLOP
accounting, its example builder, and the statistics and row view `pipeline.inspect` prints. The
pipeline, counting, validation and inspect read these fields and never name an objective.
"""

import dataclasses
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from configs.errors import ConfigError
from models import counting
from models.spec import resolve

Batch = Mapping[str, jax.Array]
# name -> (sum over the batch, weight over the batch); divided once on the host.
Metrics = dict[str, tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class FlopTerms:
  """What an objective adds to models.counting's formula (see models.counting.train_flops)."""
  head_fraction: float                     # fraction of positions that reach the vocabulary head
  per_sequence_groups: tuple[str, ...] = ()  # parameter groups run once per sequence (NSP)
  attention_fraction: float = 1.0          # of the [L, L] score matrix: 1 bidirectional, 1/2 causal


def _nothing_to_check(config) -> None:
  """The default of an objective's own checks (a module-level function, so that an Objective
  pickles by value: the pipeline's worker processes receive it)."""
  del config


@dataclasses.dataclass(frozen=True)
class Objective:
  """One training objective (see objectives/__init__.py for the registry)."""
  name: str
  family: str                              # "encoder" | "decoder": the model family it trains
  attention: str                           # "bidirectional" | "causal" | "prefix" | "mixed"
  loss_terms: tuple[str, ...]              # metrics whose means add up to the total loss
  layout: Callable[[Any], dict]            # config -> {key: (per-row shape, dtype)}: the one layout
  model_inputs: Callable[[Batch], dict]    # batch -> kwargs for model.apply (no `deterministic`)
  metrics: Callable[[Mapping, Batch], Metrics]     # outputs, batch -> {name: (sum, weight)}
  term_weights: Callable[[Batch], dict]    # batch -> {term: weight}, model-free
  special_ids: tuple[str, ...]             # tokenizer ids the examples need (e.g. "mask_id")
  min_seq_len: int                         # shortest data.seq_len holding `layout_text`
  layout_text: str                         # the row layout in words, for errors and docs
  flop_terms: Callable[..., FlopTerms]     # (seq_len, objective config | None, predictions_per_seq | None)
  examples: Callable[..., Any]             # (data, tokenizer, config, split) -> builder.rows(g)
  stats: Callable[[list, Any], dict]       # (batches, tokenizer) -> inspect --stats JSON
  format_row: Callable[[dict, int, Any], str]  # (batch, row, tokenizer) -> inspect's text
  example_fields: tuple[str, ...] = ()     # objective.* fields the examples read (fingerprint)
  validate_fields: Callable[[Any], None] = _nothing_to_check  # objective.* values (no model)
  validate_model: Callable[[Any], None] = _nothing_to_check    # objective x model cross-checks

  def batch_spec(self, config):
    """config -> {key: (global shape, dtype)}: `layout` with the global batch in front."""
    b = config.train.global_batch_size
    return {k: ((b,) + shape, dtype) for k, (shape, dtype) in self.layout(config).items()}

  def loss(self, outputs, batch):
    """-> (loss_sum, weight_sum, metrics): loss_sum / weight_sum is this batch's total loss.

    For a single-term objective these are the term's own sums. For a multi-term one (mlm_nsp)
    every term is rescaled to the first term's weight, so the ratio is still the sum of means.
    """
    metrics = self.metrics(outputs, batch)
    first_sum, first_weight = metrics[self.loss_terms[0]]
    loss_sum = first_sum
    for term in self.loss_terms[1:]:
      term_sum, term_weight = metrics[term]
      loss_sum = loss_sum + term_sum * first_weight / _safe(term_weight)
    return loss_sum, first_weight, metrics

  def normalized_loss(self, metrics: Metrics, weights: Mapping[str, jax.Array]):
    """Sum over loss terms of term_sum / weight, with weights of a (possibly larger) batch."""
    return sum(metrics[t][0] / _safe(weights[t]) for t in self.loss_terms)

  def dummy_batch(self, config, batch_size=1):
    """Zeros with this objective's batch layout (for init and shape inference)."""
    return {k: jnp.zeros((batch_size,) + shape, dtype)
            for k, (shape, dtype) in self.layout(config).items()}

  def summarize(self, sums: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Host side: (sum, weight) pairs -> means, plus `loss` (sum of term means) and extras."""
    out = {name: float(s) / float(w) if float(w) > 0 else float("nan")
           for name, (s, w) in sums.items()}
    out["loss"] = sum(out[t] for t in self.loss_terms)
    if "lm_loss" in out:
      out["perplexity"] = math.exp(min(out["lm_loss"], 700.0))
    return out

  def flops_per_token(self, model_cfg, data_cfg, objective_cfg):
    """Training FLOPs per token (forward + backward): models.counting's formula with this
    objective's FlopTerms."""
    return self.train_flops(model_cfg, data_cfg.seq_len, objective_cfg=objective_cfg)

  def train_flops(self, model_cfg, seq_len, predictions_per_seq=None, objective_cfg=None,
                  breakdown=False):
    """models.counting.train_flops (or, with `breakdown`, its flops_breakdown) with this
    objective's FlopTerms, after checking that the objective suits the model's family.
    predictions_per_seq overrides an MLM objective's objective_cfg.max_predictions_per_seq; with
    neither, 0.15 of the positions reach the head."""
    family = resolve(model_cfg).family
    if family != self.family:
      raise ConfigError(f"objective.name={self.name!r} needs model.family={self.family!r}, "
                        f"got {family!r}")
    terms = self.flop_terms(seq_len, objective_cfg, predictions_per_seq)
    count = counting.flops_breakdown if breakdown else counting.train_flops
    return count(model_cfg, seq_len, terms, f"objective.name={self.name!r}")

  def data_settings(self, objective_cfg):
    """What of objective.* decides the rows (the pipeline's fingerprint): the name alone, or
    the name and `example_fields`."""
    if not self.example_fields:
      return self.name
    return {k: objective_cfg[k] for k in ("name",) + self.example_fields}


def _safe(weight):
  """A zero weight means an empty term (sum is 0 too): divide by 1 instead of 0."""
  return jnp.where(weight > 0, weight, 1)


def is_argmax(logits, labels):
  """logits[..., V], labels[...] -> bool[...]: labels == argmax(logits, -1), ties to the first index
  as jnp.argmax breaks them.

  Written as a max, a gather and an any-reduce because XLA:CPU runs argmax's variadic reduction
  5x slower than these three (11.5 vs 2.3 ms on [16, 128, 2048] logits, medians of 30 calls in one
  run on a shared machine, load ~5, at real-time priority): at the quickstart's vocabulary the
  argmax was ~10% of the step's op time in a jax.profiler trace.
  """
  top = jnp.max(logits, axis=-1)
  label_logit = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  earlier = jnp.arange(logits.shape[-1]) < labels[..., None]
  tied_earlier = jnp.any((logits == top[..., None]) & earlier, axis=-1)
  return (label_logit == top) & ~tied_earlier


def weighted_cross_entropy(logits, labels, weights):
  """logits[..., V], labels[...] int, weights[...] -> (loss_sum, correct_sum, weight_sum).

  Computed in float32 whatever the compute dtype: a bf16 log-softmax over a large vocabulary
  loses the small probabilities the loss is made of.
  """
  logits = logits.astype(jnp.float32)
  weights = weights.astype(jnp.float32)
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = is_argmax(logits, labels).astype(jnp.float32)
  return jnp.sum(nll * weights), jnp.sum(correct * weights), jnp.sum(weights)
