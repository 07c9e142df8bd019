"""The documented rules that turn a (depth, width) grid into scaling-sweep runs.

Plain arithmetic, used by configs/sweeps/*.py at import time so every sweep is a concrete list of
(run name, config overrides) that `python -m launch.sweep --dry_run` prints in full.

Rules (each a function below):
- Learning rate by width, from GPT-3 Table 2.1 (Brown et al. 2020): the least-squares power law
  through its eight (d_model, LR) rows in log-log, lr(d) = 4.5e-4 * (768 / d)^0.77, within 26% of
  every row (a "muP-lite" rule: LR falls with width, not depth). Tiny CPU models are capped at
  `lr_cap` (2e-3 by default): below d_model ~110 the power law would exceed it.
- Batch by width: the batch (in tokens) of the GPT-3 row whose d_model is nearest in log-space,
  0.5M tokens (256 x 2048) for 768 up to 3.2M (1536 x 2048) for 12,288; CPU grids use one
  small batch for every size.
- Model size: N = 12 * num_layers * d_model^2 non-embedding parameters (Kaplan et al. 2020, with
  d_ff = 4 d_model; biases and LayerNorms ignored). Used only to plan budgets: figures read the
  exact counts that train.py records in provenance.json (models.counting); the two agree within
  4% at d_model 32 and 0.1% from d_model 768 up.
- FLOPs per token (planning only): 6N + 6 * d_model * vocab (the output layer, fwd + bwd)
  + 6 * num_layers * seq_len * d_model (causal attention scores and values, half of the
  bidirectional 12 L T d); within 3% of objectives.train_flops_per_token (models.counting) on these grids
  (biases and LayerNorms, left out, matter most at d_model 32).
- Fixed tokens: every size trains on the same number of tokens.
- Fixed compute (isoFLOP, Chinchilla approach 2, Hoffmann et al. 2022): every size trains on
  C / flops_per_token tokens; budgets are placed so the Chinchilla-optimal size (D = 20 N, so
  C = 6 N * 20 N) falls inside the grid, and a size is kept only if its tokens per parameter lie
  in [2, 200] (a decade either side of 20).
- Fixed compute with muP (`isoflop_width_runs`): depth and heads fixed, width varied, one
  learning rate for every width (tuned at muP's base width, configs/sweeps/mup_transfer_cpu.py);
  per budget, every grid width that gets at least `min_steps` optimizer steps (tiny models only
  leave their early loss plateau after about a thousand steps, so fewer would compare
  optimization time, not size) on at most `max_tokens` tokens (a cap on corpus repetition).
- Learning-rate transfer (`lr_transfer_runs`): every (parametrization, width, learning rate)
  of a grid, same steps, for the final-loss-against-learning-rate figure (Yang et al. 2022,
  Figure 1).
- Cooldown branches (`cooldown_branch_runs`, Hägele et al. 2024): one warmup-stable run that
  never decays and keeps a checkpoint at every branch step s; from each, a branch decays over
  cooldown_frac of its own total length T = s / (1 - cooldown_frac). One stable run thus gives
  the final loss at every budget T. Optional cosine runs of the same lengths are the control.
- Schedule: warmup over `warmup_frac` of the steps, cosine decay to 10% of the peak over the
  whole run (the decay length must match the run length for isoFLOP curves to be fair).
"""

import math

# GPT-3 Table 2.1: (name, num_layers, d_model, num_heads, d_head, batch in sequences of 2048
# tokens, learning rate). The table prints batches in tokens (0.5M, 1M, 2M, 3.2M = 256, 512, 1024,
# 1536 x 2048). The 13B row prints d_model 5140 (not divisible by its 40 heads); 5120 is what runs.
GPT3_TABLE_2_1 = (
    ("gpt3_small", 12, 768, 12, 64, 256, 6.0e-4),
    ("gpt3_medium", 24, 1024, 16, 64, 256, 3.0e-4),
    ("gpt3_large", 24, 1536, 16, 96, 256, 2.5e-4),
    ("gpt3_xl", 24, 2048, 24, 128, 512, 2.0e-4),
    ("gpt3_2.7b", 32, 2560, 32, 80, 512, 1.6e-4),
    ("gpt3_6.7b", 32, 4096, 32, 128, 1024, 1.2e-4),
    ("gpt3_13b", 40, 5120, 40, 128, 1024, 1.0e-4),
    ("gpt3_175b", 96, 12288, 96, 128, 1536, 0.6e-4),
)
GPT3_SEQ_LEN = 2048
# lr(d) = LR_AT_768 * (768 / d)^LR_WIDTH_EXPONENT: np.polyfit of log LR on log d, rows above.
LR_AT_768, LR_WIDTH_EXPONENT = 4.5e-4, 0.77
CHINCHILLA_TOKENS_PER_PARAM = 20.0
TOKENS_PER_PARAM_RANGE = (2.0, 200.0)


def learning_rate(d_model, lr_cap=2e-3):
  """Peak LR for a width: GPT-3 Table 2.1's power law in d_model, capped for tiny models."""
  return min(lr_cap, LR_AT_768 * (768 / d_model) ** LR_WIDTH_EXPONENT)


def batch_sequences(d_model, seq_len):
  """Global batch (sequences) of the GPT-3 row nearest in width, at this sequence length."""
  row = min(GPT3_TABLE_2_1, key=lambda r: abs(math.log(r[2] / d_model)))
  return max(1, round(row[5] * GPT3_SEQ_LEN / seq_len))


def non_embedding_params(num_layers, d_model):
  """Kaplan et al.'s N = 12 L d^2 (attention 4 d^2 + MLP 8 d^2 per layer)."""
  return 12 * num_layers * d_model**2


def flops_per_token(num_layers, d_model, seq_len, vocab_size):
  """Planning estimate of causal-LM training FLOPs per token (see the module docstring)."""
  n = non_embedding_params(num_layers, d_model)
  return 6 * n + 6 * d_model * vocab_size + 6 * num_layers * seq_len * d_model


def chinchilla_compute(params):
  """Training FLOPs at which `params` is compute-optimal (D = 20 N, C = 6 N D)."""
  return 6.0 * params * CHINCHILLA_TOKENS_PER_PARAM * params


def run_name(num_layers, d_model, budget_flops=None):
  """Directory-safe run name, e.g. "L4_d128", "C1e18_L4_d128" or "C2.5e11_L2_d64"."""
  name = f"L{num_layers}_d{d_model}"
  if budget_flops is None:
    return name
  mantissa, exponent = f"{budget_flops:.2g}".split("e")  # 2.5e11 -> "2.5", "+11"
  return f"C{mantissa}e{int(exponent)}_{name}"


def size_overrides(num_layers, d_model, d_head, lr_cap):
  """Overrides that set one grid point's shape and its width-dependent learning rate."""
  return {
      "model.num_layers": num_layers,
      "model.d_model": d_model,
      "model.num_heads": max(1, d_model // d_head),
      "model.d_head": 0,
      "model.d_ff": 4 * d_model,
      "optim.learning_rate": float(f"{learning_rate(d_model, lr_cap):.3g}"),
  }


def schedule_overrides(num_steps, warmup_frac, eval_points=10):
  """Steps, warmup and an eval cadence giving ~eval_points points on each learning curve."""
  return {
      "train.num_steps": num_steps,
      "optim.warmup_steps": max(1, round(warmup_frac * num_steps)),
      "train.eval_every": max(1, num_steps // eval_points),
  }


def _planned(num_layers, d_model, tokens, seq_len, vocab_size, budget_flops=None):
  """A run's meta: its shape and planned N, D and C (and isoFLOP budget)."""
  meta = {"num_layers": num_layers, "d_model": d_model,
          "planned_params": non_embedding_params(num_layers, d_model), "planned_tokens": tokens,
          "planned_flops": tokens * flops_per_token(num_layers, d_model, seq_len, vocab_size)}
  if budget_flops is not None:
    meta["budget_flops"] = budget_flops
  return meta


def _run(config, num_layers, d_model, batch, steps, seq_len, vocab_size, d_head, lr_cap,
         warmup_frac, budget_flops=None):
  """One sweep entry: name, config, overrides and the planned sizes (meta)."""
  meta = _planned(num_layers, d_model, steps * batch * seq_len, seq_len, vocab_size,
                  budget_flops)
  overrides = {**size_overrides(num_layers, d_model, d_head, lr_cap),
               "train.global_batch_size": batch, **schedule_overrides(steps, warmup_frac)}
  return {"name": run_name(num_layers, d_model, budget_flops), "config": config,
          "overrides": overrides, "meta": meta}


def fixed_tokens_runs(config, depths, widths, tokens, batch, seq_len, vocab_size, d_head,
                      lr_cap=2e-3, warmup_frac=0.02):
  """One run per (depth, width): same tokens for all. `batch` is an int or a fn(d_model)."""
  runs = []
  for num_layers in depths:
    for d_model in widths:
      b = batch(d_model) if callable(batch) else batch
      steps = max(1, round(tokens / (b * seq_len)))
      runs.append(_run(config, num_layers, d_model, b, steps, seq_len, vocab_size, d_head,
                       lr_cap, warmup_frac))
  return runs


def isoflop_runs(config, depths, widths, budgets, batch, seq_len, vocab_size, d_head,
                 lr_cap=2e-3, warmup_frac=0.02, min_steps=20):
  """One run per (budget, depth, width) whose tokens/param lie in TOKENS_PER_PARAM_RANGE."""
  runs = []
  low, high = TOKENS_PER_PARAM_RANGE
  for budget in budgets:
    for num_layers in depths:
      for d_model in widths:
        b = batch(d_model) if callable(batch) else batch
        per_token = flops_per_token(num_layers, d_model, seq_len, vocab_size)
        steps = round(budget / (per_token * b * seq_len))
        tokens_per_param = steps * b * seq_len / non_embedding_params(num_layers, d_model)
        if steps >= min_steps and low <= tokens_per_param <= high:
          runs.append(_run(config, num_layers, d_model, b, steps, seq_len, vocab_size, d_head,
                           lr_cap, warmup_frac, budget))
  return runs


def _width_run(config, name, d_model, steps, batch, overrides, meta, warmup_frac):
  overrides = {"model.d_model": d_model, "model.d_ff": 4 * d_model,
               "train.global_batch_size": batch, **overrides,
               **schedule_overrides(steps, warmup_frac)}
  return {"name": name, "config": config, "overrides": overrides, "meta": meta}


def isoflop_width_runs(config, widths, budgets, num_layers, batch, seq_len, vocab_size,
                       learning_rate, min_steps, max_tokens, warmup_frac=0.05):
  """Per budget, every width that trains >= min_steps steps on <= max_tokens (module doc)."""
  runs = []
  for budget in budgets:
    for d_model in sorted(widths):
      per_token = flops_per_token(num_layers, d_model, seq_len, vocab_size)
      steps = round(budget / (per_token * batch * seq_len))
      tokens = steps * batch * seq_len
      if steps < min_steps or tokens > max_tokens:
        continue
      meta = _planned(num_layers, d_model, tokens, seq_len, vocab_size, budget)
      runs.append(_width_run(config, run_name(num_layers, d_model, budget), d_model, steps,
                             batch, {"optim.learning_rate": learning_rate}, meta,
                             warmup_frac))
  return runs


def fixed_tokens_width_runs(config, depths, widths, steps, batch, seq_len, vocab_size,
                            learning_rate, warmup_frac=0.05):
  """Fixed tokens with muP: every (depth, width) trains `steps` steps at one learning rate."""
  runs = []
  for num_layers in depths:
    for d_model in widths:
      meta = _planned(num_layers, d_model, steps * batch * seq_len, seq_len, vocab_size)
      runs.append(_width_run(config, run_name(num_layers, d_model), d_model, steps, batch,
                             {"model.num_layers": num_layers,
                              "optim.learning_rate": learning_rate}, meta, warmup_frac))
  return runs


def lr_transfer_runs(config, widths, learning_rates, steps, batch, warmup_frac=0.05,
                     parametrizations=("sp", "mup"), extra=None):
  """Every (parametrization, width, learning rate): the learning-rate transfer grid.
  `extra`: overrides shared by every run (e.g. the heads and base width of an encoder)."""
  runs = []
  for parametrization in parametrizations:
    for d_model in widths:
      for lr in learning_rates:
        meta = {"parametrization": parametrization, "d_model": d_model, "learning_rate": lr}
        runs.append(_width_run(
            config, f"{parametrization}_d{d_model}_lr{lr:g}", d_model, steps, batch,
            {**(extra or {}), "model.parametrization": parametrization,
             "optim.learning_rate": lr}, meta,
            warmup_frac))
  return runs


def cooldown_branch_runs(config, branch_steps, cooldown_frac, batch, overrides, warmup_steps,
                         decay_shape="1-sqrt", cosine_controls=()):
  """[the stable run, one branch per step of branch_steps, cosine controls] (module docstring).

  The stable run trains to max(branch_steps) at the peak learning rate and checkpoints at every
  multiple of the branch steps' greatest common divisor, keeping all of them. Each branch
  `cooldown_s{s}` starts from step s of that run (`from_runs`) and decays to 0 over
  round(s * cooldown_frac / (1 - cooldown_frac)) steps. `cosine_controls`: branch steps whose
  same-length cosine run from scratch is added (`cosine_s{s}`, decay to 10%).
  """
  def total_steps(s):  # s stable steps, then a decay that is cooldown_frac of the total
    return s + max(1, round(s * cooldown_frac / (1 - cooldown_frac)))
  branch_steps = sorted(branch_steps)
  every = math.gcd(*branch_steps)
  last = branch_steps[-1]
  common = {**overrides, "train.global_batch_size": batch, "optim.warmup_steps": warmup_steps}
  stable = {"name": "stable", "config": config, "overrides": {
      **common, "optim.schedule": "wsd", "optim.decay_frac": 0.0, "train.num_steps": last,
      "train.checkpoint_every": every, "train.keep_checkpoints": last // every + 1,
      "train.eval_every": every}, "meta": {"role": "stable", "steps": last}}
  runs = [stable]
  for s in branch_steps:
    total = total_steps(s)
    runs.append({"name": f"cooldown_s{s}", "config": config, "overrides": {
        **common, "optim.schedule": "wsd", "optim.decay_shape": decay_shape,
        "optim.end_lr_frac": 0.0, "optim.cooldown_from_step": s,
        "optim.cooldown_steps": total - s, "train.num_steps": total,
        "train.eval_every": max(1, (total - s) // 4)},
        "from_runs": {"optim.cooldown_from_run": "stable"},
        "meta": {"role": "branch", "branch_step": s, "steps": total}})
  for s in cosine_controls:
    total = total_steps(s)
    runs.append({"name": f"cosine_s{s}", "config": config, "overrides": {
        **common, "optim.schedule": "cosine", "train.num_steps": total,
        "train.eval_every": max(1, total // 10)}, "meta": {"role": "cosine", "steps": total}})
  return runs
