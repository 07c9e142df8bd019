"""Every existing preset builds the model it built before the block options of issue 14.

tests/golden_models.json was written by `python -m tests.golden_models --write` at commit 2d691ec
(before models/ changed for issue 14), on this repository's CPU (jax 0.10, flax 0.12). Each case
(tests/golden_models.py: the presets, scaled down where large, plus tiny variants) must give the
same parameter paths and shapes, bitwise the same init at key 0 and bitwise the same logits on
fixed inputs (bitwise per kind of CPU: tests/golden_models.py's cpu_kind). Regenerate it only
for a change that is meant to alter existing models, saying so.
"""

import json

import pytest

from tests import golden_models

with open(golden_models.GOLDEN) as f:
  GOLDEN = json.load(f)


def test_the_golden_covers_every_case():
  assert sorted(GOLDEN) == sorted(golden_models.CASES)


@pytest.mark.parametrize("name", sorted(golden_models.CASES))
def test_preset_model_is_unchanged(name):
  got, want = golden_models.record(name), GOLDEN[name]
  assert got["params"] == want["params"]
  assert got["params_sha"] == want["params_sha"], "initial parameter values changed"
  assert got["logits_stats"] == pytest.approx(want["logits_stats"], rel=1e-6, abs=1e-6)
  if got["logits_sha"] == want["logits_sha"]:
    return  # bitwise as on the machine the golden was written on
  kind = golden_models.cpu_kind()
  by_cpu = want.get("logits_sha_by_cpu", {})
  if kind not in by_cpu:
    pytest.skip(f"logits match the golden's statistics to 1e-6 but are not bitwise those of the "
                f"golden's CPU, and none are recorded for CPU kind {kind!r} (known: "
                f"{sorted(by_cpu)}): python -m tests.golden_models --write-this-cpu adds them")
  assert got["logits_sha"] == by_cpu[kind], f"logits changed (not bitwise, CPU kind {kind!r})"
