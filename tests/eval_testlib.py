"""Shared by tests/test_eval*.py: the tiny runs the eval suites are tested on, trained once.

The causal run is trainlib's loop test run (tests/train_testlib.loop_config: 12 steps, a
checkpoint every 3), so its compiled train step comes from the persistent compile cache; the
encoder run is the same model as an MLM+NSP encoder. eval.* settings are shrunk to seconds.
"""
import os

from tests.conftest import TEST_VOCAB_SIZE
from tests.train_testlib import loop_config, tiny_config


def eval_config(objective="causal", data_dir=""):
  c = loop_config(data_dir)
  if objective != "causal":  # the same run as an encoder (WordPiece, MLM heads)
    encoder = tiny_config(objective, vocab=TEST_VOCAB_SIZE, seq_len=32, batch=8)
    c.model, c.objective = encoder.model, encoder.objective
    c.data.tokenizer = "wordpiece"
  e = c.eval
  e.num_batches = 1  # = the loop's final eval (train.eval_batches=1): the two must agree
  e.cloze_examples, e.cloze_candidates = 24, 4
  # 16 training examples: few enough to memorize in 24 steps, so learning shows in the loss.
  e.finetune_steps, e.finetune_batch_size, e.finetune_train_examples = 24, 16, 16
  if objective == "causal":  # full fine-tuning, the head on the last token
    e.freeze_backbone, e.finetune_learning_rate = False, 2e-3
  else:  # a linear probe on the [CLS] pooler
    e.freeze_backbone, e.finetune_learning_rate = True, 1e-2
  # downstream: one task, 2 learning rates x 2 seeds of those 24 steps, scored at steps 12 and 24
  e.downstream_tasks, e.downstream_learning_rates = "word_order", "1e-3,3e-3"
  e.downstream_seeds, e.downstream_evals = 2, 2
  e.generate_prompts = "The module,In the"
  e.generate_max_new_tokens, e.beam_size = 8, 1  # beam 1 must reproduce greedy
  e.attention_text = "Return the value. ||| It is a list."
  return c


_RUNS = {}


def trained_run(objective, data_dir, root):
  """(config, workdir) of a run trained once per test session under `root`."""
  if objective not in _RUNS:
    from trainlib import loop
    config = eval_config(objective, data_dir)
    workdir = os.path.join(root, objective)
    loop.train_and_evaluate(config, workdir)
    _RUNS[objective] = workdir
  return eval_config(objective, data_dir), _RUNS[objective]
