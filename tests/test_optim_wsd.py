"""optim.schedule="wsd" (trainlib/optim.py): warmup, constant, decay over the final decay_frac in
each decay_shape; cooldown branches decay from cooldown_from_step over cooldown_steps."""

import numpy as np
import pytest

from configs import base
from configs.errors import ConfigError
from trainlib import optim


def _config(**optim_fields):
  c = base.get_config()
  c.train.num_steps = 100
  fields = dict(learning_rate=1.0, warmup_steps=10, schedule="wsd", decay_frac=0.2,
                end_lr_frac=0.0)
  c.optim.update({**fields, **optim_fields})
  return c


@pytest.mark.parametrize("shape,mid", [("linear", 0.5), ("cosine", 0.5), ("1-sqrt", 1 - 0.5 ** 0.5)])
def test_wsd_phases(shape, mid):
  lr = optim.make_schedule(_config(decay_shape=shape))
  assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5)
  assert all(float(lr(s)) == 1.0 for s in (10, 50, 80))  # constant until 100 * (1 - 0.2)
  assert float(lr(90)) == pytest.approx(mid, abs=1e-6)
  assert float(lr(100)) == pytest.approx(0.0, abs=1e-7)


def test_cooldown_branch_decays_from_its_step():
  c = _config(decay_shape="linear", cooldown_from_run="/runs/stable", cooldown_from_step=40,
              cooldown_steps=20)
  c.train.num_steps = 60
  lr = optim.make_schedule(c)
  stable = optim.make_schedule(_config(decay_frac=0.0))  # the stable run, never decaying
  assert [float(lr(s)) for s in range(41)] == [float(stable(s)) for s in range(41)]
  assert float(lr(50)) == pytest.approx(0.5) and float(lr(60)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("fields,message", [
    (dict(decay_shape="exp"), "optim.decay_shape='exp' is not one of 'linear', 'cosine', '1-sqrt'"),
    (dict(decay_frac=1.5), r"optim.decay_frac=1.5 must be in \[0, 1\]"),
    (dict(cooldown_steps=5), "need optim.cooldown_from_run"),
    (dict(cooldown_from_run="/r", cooldown_from_step=40, cooldown_steps=20),
     "train.num_steps=100 must be optim.cooldown_from_step \\+ cooldown_steps = 60"),
])
def test_bad_wsd_fields(fields, message):
  with pytest.raises(ConfigError, match=message):
    optim.validate(_config(**fields))
