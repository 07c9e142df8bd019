"""Config file for the eval.py subprocess tests: `--config tests/eval_cli_config.py:<objective>`
plus `--config.data.data_dir=<embedded dir>`."""

from tests.eval_testlib import eval_config


def get_config(objective="causal"):
  return eval_config(objective)
