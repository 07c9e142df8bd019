"""Sweeps: each file's `get_sweep()` returns a dict of plain data that `launch/sweep.py` runs.

    {"name": str, "kind": "ablation" | "scaling", "budget": "tokens" | "compute" | None,
     "description": str, "seeds": [int, ...], "eval_suites": "heldout,...",
     "runs": [{"name": str, "config": "path.py[:arg]", "overrides": {"a.b": value},
               "meta": {...}}, ...]}

A run is a config file (with its `:arg`) plus dotted overrides, passed to train.py and eval.py as
`--config.a.b=value`. `meta` is free-form (table labels, planned sizes, isoFLOP budget); it is
copied into RUNS_DIR/sweep.json for figures/.
"""
