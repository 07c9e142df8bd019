"""Sweeps: each file's `get_sweep()` returns a dict of plain data that `launch/sweep.py` runs.

    {"name": str, "kind": "ablation" | "scaling", "budget": "tokens" | "compute" | None,
     "description": str, "budget_note": str (optional: the budget rule, for the table's notes),
     "seeds": [int, ...], "eval_suites": "heldout,...",
     "runs": [{"name": str, "config": "path.py[:arg]", "overrides": {"a.b": value},
               "meta": {...}, "from_runs": {"a.b": "earlier run name"}}, ...]}

A run is a config file (with its `:arg`) plus dotted overrides, passed to train.py and eval.py as
`--config.a.b=value`. `meta` is free-form (table labels, planned sizes, isoFLOP budget); it is
copied into RUNS_DIR/sweep.json for figures/.

`from_runs` (optional) sets config fields to another run's workdir, the one of the same seed:
`{"init.from_run": "modern_decoder"}` starts each seed of this run from that seed of
modern_decoder (continued training), `{"optim.cooldown_from_run": "stable"}` branches a cooldown.
The named run must be listed earlier; the launcher runs it first (local, tpu), or submits this
run as a SLURM job that starts after it succeeds, and fails this run when it failed.
"""
