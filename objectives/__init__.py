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
           "weighted_cross_entropy"]
