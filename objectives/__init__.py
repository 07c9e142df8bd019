"""Objectives: targets, loss masks, losses and FLOP accounting (see docs/ARCHITECTURE.md).

    objective = objectives.get(config.objective.name)
    outputs = model.apply(variables, **objective.model_inputs(batch), deterministic=True)
    loss_sum, weight_sum, metrics = objective.loss(outputs, batch)

Objectives are pure functions of (outputs, batch): the network stays apart from the loss (t5x).
Each objective is one module here that declares everything about it on its `Objective` record
(objectives/base.py); the registry below is the only list of them. Adding one is a module plus
a line here; nothing outside objectives/ and configs/ names an objective
(tests/test_objective_names.py checks it).
"""

import pipeline
from configs.errors import ConfigError
from objectives import causal, gpt_bert, mlm, prefix_lm
from objectives.base import FlopTerms, Objective, weighted_cross_entropy

_REGISTRY = {o.name: o for o in (
    mlm.make("mlm_nsp", text="pair"),
    mlm.make("mlm", text="document"),
    mlm.make("mlm_full_sentences", text="full_sentences"),
    causal.make(),
    prefix_lm.make(),
    gpt_bert.make(),
)}
NAMES = tuple(_REGISTRY)
# The objective a family trains when nothing else is asked for (benchmarks, summaries).
FAMILY_DEFAULTS = {"encoder": "mlm_nsp", "decoder": "causal"}


def get(name) -> Objective:
  if name not in _REGISTRY:
    raise ConfigError(f"objective.name={name!r} is not one of {', '.join(map(repr, NAMES))}")
  return _REGISTRY[name]


def for_family(family) -> tuple[str, ...]:
  """Names of the objectives that train `family`."""
  return tuple(n for n, o in _REGISTRY.items() if o.family == family)


def default_for(family) -> str:
  """The name of `family`'s default objective (FAMILY_DEFAULTS)."""
  return FAMILY_DEFAULTS[family]


def validate(config):
  """Cross-checks objective, model and data fields; raises ConfigError before any array exists."""
  objective = get(config.objective.name)
  if config.model.family != objective.family:
    names = for_family(config.model.family)
    raise ConfigError(
        f"objective.name={objective.name!r} trains family {objective.family!r} but "
        f"model.family={config.model.family!r}; use one of {', '.join(map(repr, names))}")
  objective.validate_model(config)
  return objective


def train_flops_per_token(model_cfg, seq_len, objective_name, predictions_per_seq=None,
                          objective_cfg=None):
  """Training FLOPs per input token of `objective_name` on this model: models.counting's
  formula with the FlopTerms the objective declares (Objective.train_flops)."""
  return get(objective_name).train_flops(model_cfg, seq_len, predictions_per_seq, objective_cfg)


def flops_breakdown(model_cfg, seq_len, objective_name, objective_cfg=None):
  """models.counting.flops_breakdown with the FlopTerms of `objective_name`."""
  return get(objective_name).train_flops(model_cfg, seq_len, objective_cfg=objective_cfg,
                                         breakdown=True)


def make_pipeline(config, split, *, process_index=0, process_count=1):
  """pipeline.make_pipeline with the examples of config.objective.name."""
  return pipeline.make_pipeline(config, split, get(config.objective.name),
                                process_index=process_index, process_count=process_count)


def get_tokenizer(config):
  """pipeline.get_tokenizer, checked for the tokens config.objective.name needs."""
  return pipeline.get_tokenizer(config, get(config.objective.name))


def check_tokenizer(config, tokenizer):
  """The examples of this objective need these special tokens, and the model needs the rows."""
  objective = get(config.objective.name)
  missing = [name for name in objective.special_ids if getattr(tokenizer, name, None) is None]
  if missing:
    raise ConfigError(
        f"objective.name={objective.name!r} needs tokenizer ids {', '.join(missing)} but "
        f"data.tokenizer={config.data.tokenizer!r} has none; trained 'wordpiece' and 'bpe' tokenizers have every one")
  if tokenizer.vocab_size > config.model.vocab_size:
    raise ConfigError(
        f"model.vocab_size={config.model.vocab_size} is smaller than the tokenizer's vocabulary "
        f"({tokenizer.vocab_size}); set model.vocab_size >= {tokenizer.vocab_size}")


__all__ = ["Objective", "FlopTerms", "NAMES", "FAMILY_DEFAULTS", "get", "for_family", "default_for", "validate", "check_tokenizer",
           "train_flops_per_token", "flops_breakdown", "make_pipeline", "get_tokenizer",
           "weighted_cross_entropy"]
