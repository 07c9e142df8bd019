"""Suite `downstream`: fine-tuning tasks that rank objectives, with a recipe that learns.

For each task of eval.downstream_tasks (default: the offline tasks derived from the run's corpus,
evals.finetune_tasks), as BERT's GLUE protocol but with several fine-tuning seeds:
- every peak learning rate of eval.downstream_learning_rates x eval.downstream_seeds fine-tuning
  seeds (eval.seed, eval.seed + 1, ...) trains eval.finetune_steps steps (the finetune suite's
  recipe, evals.finetune); the dev and test splits are scored eval.downstream_evals times, evenly
  spaced, so the number of steps is searched too;
- the (learning rate, step) with the best dev accuracy averaged over the seeds is chosen, and its
  test accuracy is reported: mean and sample standard deviation over the fine-tuning seeds;
- beside it, the task's trivial baselines on the same test split (evals.baselines): the majority
  label, a bag of words, a bag of n-grams (uni+bigrams), or token identity for word-level tasks.

    python eval.py --config C --workdir W --suite downstream

Metrics per task T: T_accuracy (the chosen cell's mean test accuracy), T_accuracy_seed_std,
T_majority_accuracy, T_bow_accuracy (token identity for word-level tasks); the record also holds
the whole grid (dev and test accuracy of every learning rate, seed and step), the bag of n-grams
and the choice.
"""
import numpy as np

from configs.errors import ConfigError
from evals import baselines
from evals import finetune
from evals import finetune_tasks


def tasks(config) -> list[str]:
  names = [t.strip() for t in str(config.eval.downstream_tasks).split(",") if t.strip()]
  if not names:
    raise ConfigError(f"eval.downstream_tasks={config.eval.downstream_tasks!r} names no task; "
                      f"offline tasks: {', '.join(finetune_tasks.DERIVED)}")
  for name in names:
    finetune_tasks.spec(name, "eval.downstream_tasks")
  return list(dict.fromkeys(names))


def learning_rates(config) -> list[float]:
  text = str(config.eval.downstream_learning_rates)
  try:
    values = [float(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise ConfigError(f"eval.downstream_learning_rates={text!r} must be comma-separated numbers "
                      "(e.g. '1e-4,3e-4,1e-3')") from None
  if not values:
    raise ConfigError(f"eval.downstream_learning_rates={text!r} names no learning rate")
  for v in values:
    finetune.check_learning_rate(v, "eval.downstream_learning_rates")
  return values


def validate(config, tokenizer):
  del tokenizer
  finetune.validate_recipe(config)
  e = config.eval
  for field in ("downstream_seeds", "downstream_evals"):
    if not isinstance(e[field], int) or isinstance(e[field], bool) or e[field] < 1:
      raise ConfigError(f"eval.{field}={e[field]!r} must be an integer >= 1")
  if e.downstream_evals > e.finetune_steps:
    raise ConfigError(f"eval.downstream_evals={e.downstream_evals} is more than "
                      f"eval.finetune_steps={e.finetune_steps} (one evaluation per step at most)")
  learning_rates(config)
  for name in tasks(config):
    finetune_tasks.check_available(config, name, "eval.downstream_tasks")


def eval_steps(steps, count) -> list[int]:
  """count evenly spaced steps ending at `steps`, e.g. (400, 4) -> [100, 200, 300, 400]."""
  return sorted({max(1, round(steps * (k + 1) / count)) for k in range(count)})


def choose(grid, learning_rates, steps):
  """-> (learning rate, step): the best dev accuracy averaged over seeds (first on ties)."""
  best, choice = -1.0, None
  for lr in learning_rates:
    for step in steps:
      dev = np.mean([g["dev"] for g in grid if g["learning_rate"] == lr and g["step"] == step])
      if dev > best:
        best, choice = dev, (lr, step)
  return choice


def run_task(ctx, name, data=None):
  """One task: baselines, the grid and the choice -> (metrics, record)."""
  config, e = ctx.config, ctx.config.eval
  if data is None:
    task, splits = finetune_tasks.open_splits(config, name)
    data = finetune.TaskData(task, splits, ctx.tokenizer, ctx.family, config.data.seq_len)
  task = data.task
  rates, seeds = learning_rates(config), [ctx.seed + k for k in range(e.downstream_seeds)]
  steps = eval_steps(e.finetune_steps, e.downstream_evals)
  tuner = finetune.Finetuner(ctx, data, e.finetune_steps, e.finetune_batch_size,
                             e.freeze_backbone, finetune.resolved_pooling(config),
                             e.finetune_train_examples, label=f"downstream {name}")
  grid, curves = [], {}
  for lr in rates:
    for seed in seeds:
      ctx.log("downstream %s: learning rate %g, seed %d", name, lr, seed)
      result = tuner.run(lr, seed, eval_at=steps, eval_roles=("dev", "test"))
      curves[f"{lr:g}/{seed}"] = [round(x, 4) for x in result["loss_curve"][::10]]
      grid += [{"learning_rate": lr, "seed": seed, "step": point["step"],
                "dev": point["dev"]["accuracy"], "test": point["test"]["accuracy"]}
               for point in result["evals"]]
  lr, step = choose(grid, rates, steps)
  chosen = [g["test"] for g in grid if g["learning_rate"] == lr and g["step"] == step]
  if task.word_labels:
    bow, ngrams = baselines.token_identity(data), None
  else:
    bow, ngrams = baselines.bag_of_words(data), baselines.bag_of_words(data, bigrams=True)
  metrics = {f"{name}_accuracy": float(np.mean(chosen)),
             f"{name}_accuracy_seed_std": float(np.std(chosen, ddof=1)) if len(chosen) > 1 else 0.0,
             f"{name}_majority_accuracy": baselines.majority(data),
             f"{name}_bow_accuracy": bow["test"]}
  record = {"task": name, "description": task.description, "word_level": task.word_labels,
            "examples": {role: data.size(role) for role in data.splits},
            "chosen": {"learning_rate": lr, "step": step, "test_per_seed": chosen},
            "baselines": {"majority": baselines.majority(data),
                          ("token_identity" if task.word_labels else "bag_of_words"): bow,
                          **({"bag_of_ngrams": ngrams} if ngrams else {})},
            "grid": grid, "loss_curves_every_10_steps": curves}
  return metrics, record


def run(ctx):
  e = ctx.config.eval
  metrics, records = {}, {}
  for name in tasks(ctx.config):
    task_metrics, records[name] = run_task(ctx, name)
    metrics.update(task_metrics)
  lines = [f"{name}: {m[f'{name}_accuracy']:.3f} ± {m[f'{name}_accuracy_seed_std']:.3f} "
           f"(majority {m[f'{name}_majority_accuracy']:.3f}, bag of words "
           f"{m[f'{name}_bow_accuracy']:.3f})" for name in records for m in [metrics]]
  return {"metrics": metrics, "tasks": records, "pooling": finetune.resolved_pooling(ctx.config),
          "freeze_backbone": e.freeze_backbone,
          "recipe": {"steps": e.finetune_steps, "batch_size": e.finetune_batch_size,
                     "learning_rates": learning_rates(ctx.config),
                     "seeds": e.downstream_seeds, "evals": e.downstream_evals},
          "report": "downstream (test accuracy, mean ± std over fine-tuning seeds):\n  "
                    + "\n  ".join(lines)}
