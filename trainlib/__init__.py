"""Training library: mesh, shardings, optimizer, train state, steps, checkpoints, metrics, loop.

Entry point for most callers: `trainlib.loop.train_and_evaluate(config, workdir)` (train.py).
Lower-level pieces (AOT fit checks, benchmarks, eval): `state.build_setup`, `step.make_train_step`,
`step.abstract_batch`, `checkpoint.restore_params` (see docs/ARCHITECTURE.md, "trainlib/").
"""
