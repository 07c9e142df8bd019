"""Why doc_order fine-tuning ranks no objective: the evidence, on trained runs.

    python -m evals.doc_order_study --run configs/ablations/bert_mlm_nsp.py:cpu=runs/ablation_cpu/bert_mlm_nsp/seed0 \
        --run configs/ablations/ltr_causal.py:cpu=runs/ablation_cpu/ltr_causal/seed0 --out results/doc_order

doc_order (evals.finetune_tasks): are two consecutive sentences of a document in their order?
For each run (a checkpoint and its config), on doc_order's splits:
- fine_tuned: the downstream recipe (evals.downstream: every learning rate x seed, chosen on dev);
- probe: the same with the backbone frozen (a linear probe on the classifier's input vector);
- long: LONG_STEPS steps (about 3.5 epochs of the train split, 5x the recipe) at the recipe's
  best learning rate, one seed, dev and test scored four times;
- control: the recipe on word_order, a task the same recipe can learn (so a failure on doc_order
  is the task's, not the recipe's): the run's own downstream result when it has one.
And without any model, the task's ceiling as far as surface features show it: majority, bag of
words and bag of n-grams (with their train accuracy: fitting the train pairs but not the test pairs
means no signal that generalizes), and a discourse-cue rule (the second sentence opens with a word
that refers back, "This", "It", "However", ...: in order; the first does: swapped).
Writes OUT/doc_order_study.json and OUT/README.md.
"""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np

LONG_STEPS = 1000
LONG_EVALS = 4
CUES = ("this", "these", "that", "it", "its", "they", "their", "such", "however", "otherwise",
        "then", "thus", "therefore", "also", "see", "note", "for example", "in this", "the same")


def _opens_with_cue(sentence: str) -> bool:
  s = sentence.strip().lower().lstrip("\"'*(")
  return any(s == c or s.startswith(c + " ") or s.startswith(c + ",") for c in CUES)


def cue_rule(split) -> dict:
  """Accuracy and coverage of: second sentence opens with a cue -> in order; first -> swapped."""
  decided = correct = 0
  labels = []
  for i in range(len(split)):
    r = split[i]
    a, b = (r[k].decode() if isinstance(r[k], bytes) else r[k] for k in ("sentence1", "sentence2"))
    label = int(r["label"])
    labels.append(label)
    ca, cb = _opens_with_cue(a), _opens_with_cue(b)
    if ca != cb:
      decided += 1
      correct += int((1 if cb else 0) == label)
  majority = max(np.mean(labels), 1 - np.mean(labels))
  n = len(labels)
  return {"coverage": decided / n, "accuracy_where_it_decides": correct / max(1, decided),
          "accuracy": (correct + majority * (n - decided)) / n}


def _with_eval(ctx, **fields):
  config = ctx.config.copy_and_resolve_references()
  with config.unlocked():
    for key, value in fields.items():
      config.eval[key] = value
  return dataclasses.replace(ctx, config=config)


def study_run(ctx, data, word_order_data) -> dict:
  # late: start-up time (the arguments are checked before JAX and TFDS load)
  from evals import downstream, finetune
  from trainlib import rundir
  out = {"family": ctx.family, "objective": ctx.config.objective.name, "step": ctx.step}
  metrics, record = downstream.run_task(ctx, "doc_order", data)
  out["fine_tuned"] = {"metrics": metrics, "chosen": record["chosen"], "grid": record["grid"]}
  metrics, record = downstream.run_task(_with_eval(ctx, freeze_backbone=True), "doc_order", data)
  out["probe"] = {"metrics": metrics, "chosen": record["chosen"], "grid": record["grid"]}
  lr = out["fine_tuned"]["chosen"]["learning_rate"]
  e = ctx.config.eval
  tuner = finetune.Finetuner(ctx, data, LONG_STEPS, e.finetune_batch_size, False,
                             finetune.resolved_pooling(ctx.config), label="doc_order long")
  long = tuner.run(lr, ctx.seed, eval_at=downstream.eval_steps(LONG_STEPS, LONG_EVALS),
                   eval_roles=("dev", "test"))
  out["long"] = {"steps": LONG_STEPS, "learning_rate": lr,
                 "epochs": LONG_STEPS * e.finetune_batch_size / data.size("train"),
                 "evals": long["evals"],
                 "loss_start": float(np.mean(long["loss_curve"][:100])),
                 "loss_end": float(np.mean(long["loss_curve"][-100:]))}
  # The control: word_order through the same recipe, as the run's downstream suite scored it
  # (run first: `eval.py --suite downstream`), else here.
  suite = rundir.read_record(rundir.eval_result_path(ctx.workdir, "downstream")) or {}
  if "word_order" in suite.get("tasks", {}) and suite.get("checkpoint_step") == ctx.step:
    metrics = {k: v for k, v in suite["metrics"].items() if k.startswith("word_order_")}
    out["control_word_order"] = {"metrics": metrics, "chosen": suite["tasks"]["word_order"]["chosen"],
                                 "from": "eval/downstream.json"}
  else:
    metrics, record = downstream.run_task(ctx, "word_order", word_order_data())
    out["control_word_order"] = {"metrics": metrics, "chosen": record["chosen"]}
  return out


def _pct(x):
  return f"{100 * x:.1f}"


def render(study) -> str:
  t = study["task"]
  lines = [
      "# Why doc_order ranks no objective",
      "",
      f"Written by `python -m evals.doc_order_study` ({study['date']}); numbers from "
      "doc_order_study.json. Test accuracy in %, mean ± sd over fine-tuning seeds.",
      "",
      f"Task: {t['examples']['train']} train / {t['examples']['dev']} dev / "
      f"{t['examples']['test']} test pairs. Without a model (test): majority "
      f"{_pct(t['majority'])}, bag of words {_pct(t['bag_of_words']['test'])} (train "
      f"{_pct(t['bag_of_words']['train'])}), bag of n-grams {_pct(t['bag_of_ngrams']['test'])} "
      f"(train {_pct(t['bag_of_ngrams']['train'])}), discourse-cue rule "
      f"{_pct(t['cue_rule']['accuracy'])} (decides {_pct(t['cue_rule']['coverage'])}% of pairs, "
      f"{_pct(t['cue_rule']['accuracy_where_it_decides'])}% right where it does).",
      "",
      "| run | fine-tuned | linear probe | long (steps, test at each eval) | control: word_order |",
      "|---|---:|---:|---|---:|"]
  for label, r in study["runs"].items():
    ft, pr, lg, ctl = r["fine_tuned"], r["probe"], r["long"], r["control_word_order"]
    cell = lambda m, k: f"{_pct(m[k + '_accuracy'])} ± {_pct(m[k + '_accuracy_seed_std'])}"
    curve = ", ".join(f"{e['step']}: {_pct(e['test']['accuracy'])}" for e in lg["evals"])
    lines.append(f"| {label} ({r['objective']}) | {cell(ft['metrics'], 'doc_order')} | "
                 f"{cell(pr['metrics'], 'doc_order')} | {curve} | "
                 f"{cell(ctl['metrics'], 'word_order')} |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run", action="append", required=True, metavar="CONFIG=WORKDIR")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  # late: start-up time (the arguments are checked before JAX and TFDS load)
  from configs import paths
  from configs.errors import ConfigError
  from configs.loading import ConfigFileError, load_config_file
  from evals import baselines, finetune, finetune_tasks, runner
  studies, task = {}, None
  try:
    pairs = []
    for spec in args.run:
      config_path, sep, workdir = spec.partition("=")
      if not sep:
        raise ConfigError(f"--run {spec!r} must be CONFIG=WORKDIR")
      config = load_config_file(config_path)
      paths.absolutize_config(config)  # as eval.py: orbax and TFDS need absolute paths
      workdir = paths.absolute(workdir)
      pairs.append((config, workdir, runner.check_run(config, workdir)))
  except (ConfigError, ConfigFileError, runner.RunDirError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for config, workdir, plan in pairs:
    ctx = runner.restore(config, workdir, plan)
    label = os.path.relpath(workdir, os.path.dirname(os.path.dirname(workdir)))  # run/seed
    spec, splits = finetune_tasks.open_splits(config, "doc_order")
    data = finetune.TaskData(spec, splits, ctx.tokenizer, ctx.family, config.data.seq_len)
    word_order = lambda: finetune.TaskData(*finetune_tasks.open_splits(config, "word_order"),
                                           ctx.tokenizer, ctx.family, config.data.seq_len)
    if task is None:
      task = {"examples": {role: data.size(role) for role in data.splits},
              "majority": baselines.majority(data),
              "bag_of_words": baselines.bag_of_words(data),
              "bag_of_ngrams": baselines.bag_of_words(data, bigrams=True),
              "cue_rule": cue_rule(splits["test"]), "tokenizer_of": label}
    studies[label] = study_run(ctx, data, word_order)
  # late: start-up time (the arguments are checked before JAX and TFDS load)
  import datetime
  study = {"date": datetime.date.today().isoformat(), "task": task, "runs": studies,
           "long_steps": LONG_STEPS}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "doc_order_study.json"), "w") as f:
    json.dump(study, f, indent=1, sort_keys=True)
  with open(os.path.join(args.out, "README.md"), "w") as f:
    f.write(render(study))
  print(render(study))
  return 0


if __name__ == "__main__":
  sys.exit(main())
