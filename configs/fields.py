"""Checks of single config values (ConfigError naming the field, the value and what is valid),
shared by pipeline.validate and the objectives' own checks."""

from configs.errors import ConfigError


def one_of(field: str, value, valid) -> None:
  if value not in valid:
    raise ConfigError(f"{field}={value!r} is not one of {', '.join(repr(v) for v in valid)}")


def in_range(field: str, value, lo, hi, lo_open=False, hi_open=False) -> None:
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
  if not ok:
    lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
    raise ConfigError(f"{field}={value!r} must be a number in {lo_s}{lo}, {hi}{hi_s}")


def int_at_least(field: str, value, lo: int, why: str = "") -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < lo:
    raise ConfigError(f"{field}={value!r} must be an integer >= {lo}{why}")
