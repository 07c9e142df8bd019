"""Config file for the train.py subprocess tests (pass --config.data.data_dir=<embedded dir>)."""

from tests.train_testlib import loop_config


def get_config():
  return loop_config()
