"""Objectives: targets, loss masks, losses and FLOP accounting (see docs/ARCHITECTURE.md).

    objective = objectives.get(config.objective.name)
    outputs = model.apply(variables, **objective.model_inputs(batch), deterministic=True)
    loss_sum, weight_sum, metrics = objective.loss(outputs, batch)

Objectives are pure functions of (outputs, batch): the network stays apart from the loss (t5x).
"""

from configs.errors import ConfigError
from objectives import causal, mlm
from objectives.base import Objective, weighted_cross_entropy

_REGISTRY = {
    "mlm_nsp": mlm.make("mlm_nsp", nsp=True),
    "mlm": mlm.make("mlm", nsp=False),
    "mlm_full_sentences": mlm.make("mlm_full_sentences", nsp=False),
    "causal": causal.make(),
}
NAMES = tuple(_REGISTRY)


def get(name) -> Objective:
  if name not in _REGISTRY:
    raise ConfigError(f"objective.name={name!r} is not one of {', '.join(map(repr, NAMES))}")
  return _REGISTRY[name]


def validate(config):
  """Cross-checks objective, model and data fields; raises ConfigError before any array exists."""
  objective = get(config.objective.name)
  if config.model.family != objective.family:
    raise ConfigError(
        f"objective.name={objective.name!r} trains family {objective.family!r} but "
        f"model.family={config.model.family!r}; use " +
        ("'causal'" if config.model.family == "decoder" else "'mlm_nsp', 'mlm' or 'mlm_full_sentences'"))
  if objective.name == "mlm_nsp" and not config.model.nsp_head:
    raise ConfigError("objective.name='mlm_nsp' needs model.nsp_head=True (the NSP classifier)")
  if objective.family == "encoder":
    p = config.objective.max_predictions_per_seq
    if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= config.data.seq_len:
      raise ConfigError(f"objective.max_predictions_per_seq={p!r} must be an integer in "
                        f"[1, data.seq_len={config.data.seq_len}]")
  return objective


def check_tokenizer(config, tokenizer):
  """The examples of this objective need these special tokens, and the model needs the rows."""
  objective = get(config.objective.name)
  missing = [name for name in objective.special_ids if getattr(tokenizer, name, None) is None]
  if missing:
    raise ConfigError(
        f"objective.name={objective.name!r} needs tokenizer ids {', '.join(missing)} but "
        f"data.tokenizer={config.data.tokenizer!r} has none; use data.tokenizer='wordpiece'")
  if tokenizer.vocab_size > config.model.vocab_size:
    raise ConfigError(
        f"model.vocab_size={config.model.vocab_size} is smaller than the tokenizer's vocabulary "
        f"({tokenizer.vocab_size}); set model.vocab_size >= {tokenizer.vocab_size}")


__all__ = ["Objective", "NAMES", "get", "validate", "check_tokenizer", "weighted_cross_entropy"]
