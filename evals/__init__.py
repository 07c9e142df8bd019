"""Eval suites behind eval.py, plus the building blocks they use (generation, attention views).

    python eval.py --config configs/<name>.py --workdir DIR --suite heldout,cloze,finetune

The registry below is plain data, so eval.py can reject an unknown suite (or one that does not
apply to the model family) before importing JAX. A suite module has:

  validate(config, tokenizer)  raises ConfigError for a bad eval.* value; no devices, no arrays
  run(ctx) -> dict             ctx is an evals.context.EvalContext (restored params, mesh, ...);
                               returns {"metrics": {name: float}, ...suite-specific fields}

evals.runner writes each result to DIR/eval/<suite>.json (with suite, checkpoint_step,
config_hash and seed) and to TensorBoard (DIR/tb/eval).
"""
import importlib
from typing import NamedTuple

from configs.errors import ConfigError

FAMILIES = ("encoder", "decoder")


class SuiteInfo(NamedTuple):
  module: str
  families: tuple
  description: str


SUITES = {
    "heldout": SuiteInfo("evals.heldout", FAMILIES,
                         "held-out loss/perplexity (causal) or MLM/NSP loss and accuracy"),
    "cloze": SuiteInfo("evals.cloze", FAMILIES,
                       "pick the blanked word of a held-out sentence among candidates"),
    "finetune": SuiteInfo("evals.finetune", FAMILIES,
                          "sentence(-pair) classifier on the backbone: accuracy"),
    "downstream": SuiteInfo("evals.downstream", FAMILIES,
                            "fine-tuning tasks, learning rate and steps chosen on dev, test "
                            "accuracy over seeds, beside trivial baselines"),
    "generate": SuiteInfo("evals.generate", ("decoder",),
                          "greedy, sampled and beam-search continuations of prompts"),
    "attention": SuiteInfo("evals.attention", FAMILIES,
                           "attention figures and interactive page for one sentence"),
}
NAMES = tuple(SUITES)


def parse_suites(text: str, family: str) -> list[str]:
  """"a,b" -> ["a", "b"]; ConfigError for an empty list, an unknown suite or a family mismatch."""
  names = [s.strip() for s in str(text).split(",") if s.strip()]
  if not names:
    raise ConfigError(f"no eval suite given (--suite / eval.suites={text!r}); valid suites: "
                      f"{', '.join(NAMES)}")
  unknown = [n for n in names if n not in SUITES]
  if unknown:
    raise ConfigError(f"unknown eval suite {', '.join(map(repr, unknown))}; valid suites: "
                      f"{', '.join(NAMES)}")
  for n in names:
    if family not in SUITES[n].families:
      fitting = [s for s, info in SUITES.items() if family in info.families]
      raise ConfigError(
          f"suite {n!r} does not apply to model.family={family!r} (it needs "
          f"{' or '.join(SUITES[n].families)}); suites for {family}s: {', '.join(fitting)}")
  return list(dict.fromkeys(names))  # drop repeats, keep order


def get(name: str):
  """The suite's module (imported on first use: suites pull in JAX, TFDS, matplotlib)."""
  return importlib.import_module(SUITES[name].module)
