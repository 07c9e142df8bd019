"""The local lm-eval tasks, made from the run's own held-out split: offline, for any run.

    paths = build(config, out_dir)   # out_dir/<task>.yaml + out_dir/<task>.jsonl per task

Both read the documents of data.eval_split (evals.cloze.held_out_documents) and draw with
eval.seed; eval.cloze_examples items each. The task definitions live in
evals/harness_tasks/<task>.yaml; the file written here includes that definition (lm_eval's
`include:`) and adds the task name and its data file (`dataset_path: json` with
`dataset_kwargs: {data_files: {test: out_dir/<task>.jsonl}}`, lm-eval 0.4.13), so that
`--include_path out_dir` serves the tasks to any lm_eval model (the Hugging Face export of the
run included). Both carry the tag `pancake`. A document whose continuation (a choice) is longer
than the model's scoring row (window - 2 tokens of the run's tokenizer, evals/harness_lm.py) is
left out; the command prints how many documents each task has.

- pancake_cloze (multiple_choice): the cloze suite's items (evals.cloze_items with
  eval.cloze_candidates): context = the sentence up to the blank, choices = each candidate
  followed by the rest of the sentence. Metrics acc, acc_norm; chance = 1 / eval.cloze_candidates.
- pancake_lastword (loglikelihood, LAMBADA-style): held-out prose sentences ending in a word of 3
  to 12 letters and a full stop: context = the sentence before that word, continuation = " word".
  Metrics perplexity (of the word) and acc (the word is the greedy continuation).
"""
import json
import os
import re

import numpy as np

from evals import cloze, cloze_items
from trainlib import fs

TAG = "pancake"
TASKS = ("pancake_cloze", "pancake_lastword")
DEFINITIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness_tasks")
_LAST_WORD = re.compile(r"\s([A-Za-z]{3,12})\.$")
_SALT = 0x1A57  # keeps this draw apart from other users of eval.seed


def cloze_docs(documents, config, fits) -> list[dict]:
  e = config.eval
  items = cloze_items.build_items(documents, e.cloze_examples, e.cloze_candidates, e.seed)
  docs = [{"context": item.left, "choices": [word + item.right for word in item.candidates],
           "gold": item.answer} for item in items]
  return [doc for doc in docs if all(map(fits, doc["choices"]))]


def lastword_docs(documents, config, fits) -> list[dict]:
  sentences = cloze_items.prose_sentences(documents)
  rng = np.random.default_rng([config.eval.seed, _SALT])
  docs = []
  for s in rng.permutation(len(sentences)):
    if len(docs) >= config.eval.cloze_examples:
      break
    m = _LAST_WORD.search(sentences[s])
    if m and fits(" " + m.group(1)):
      docs.append({"context": sentences[s][:m.start()], "continuation": " " + m.group(1)})
  return docs


_BUILDERS = {"pancake_cloze": cloze_docs, "pancake_lastword": lastword_docs}


def build(config, tokenizer, max_continuation, out_dir) -> dict:
  """Writes every local task's data and task file into out_dir -> {task: number of documents}.

  Documents whose continuation (a choice) is longer than `max_continuation` tokens of the run's
  tokenizer are left out: a model cannot score them (short windows only)."""
  documents = cloze.held_out_documents(config)
  fits = lambda text: len(tokenizer.encode(text)) <= max_continuation
  fs.makedirs(out_dir)
  counts = {}
  for task in TASKS:
    docs = _BUILDERS[task](documents, config, fits)
    data = os.path.join(out_dir, f"{task}.jsonl")
    with open(data, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs)
    spec = {"include": os.path.join(DEFINITIONS, f"{task}.yaml"), "task": task,
            "dataset_kwargs": {"data_files": {"test": data}}}
    with open(os.path.join(out_dir, f"{task}.yaml"), "w", encoding="utf-8") as f:
      json.dump(spec, f, indent=1)  # JSON is YAML
      f.write("\n")
    counts[task] = len(docs)
  return counts
