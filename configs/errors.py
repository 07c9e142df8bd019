"""The one exception type for a bad config value (entry points turn it into exit code 2)."""


class ConfigError(ValueError):
  """A config field holds a value that cannot work.

  The message names the field, the bad value and what would be valid, e.g.
  `model.activation='swish' is not one of 'gelu_exact', 'gelu_tanh', 'relu'`.
  """
