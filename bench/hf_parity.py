"""A pancake run, exported to Hugging Face's layout, evaluated by transformers: same held-out loss,
same greedy continuations.

  python -m bench.hf_parity --config configs/quickstart.py --workdir runs/quickstart --out DIR

Exports the latest checkpoint with interop.hf (as `python -m interop.hf export` does), then:
- held-out loss over the run's eval batches (train.eval_batches of data.eval_split, the batches
  of the run's own held-out curve): pancake's eval step vs `GPT2LMHeadModel.from_pretrained(DIR)`
  in float32, each packed document segment of a row run on its own (pancake's attention never
  crosses a document boundary, and positions restart at each one);
- greedy continuations of eval.generate_prompts: eval.py's generate suite vs HF `generate`.
Prints one JSON line. Needs torch and transformers (requirements-bench.txt); figures printed,
never asserted (the tests assert the same on a tiny run: tests/test_interop_gpt2.py).
"""
import json
import os

import numpy as np
from absl import app, flags
from ml_collections import config_flags



def hf_causal_loss(model, batch):
  """(sum of token losses, weight) of HF `model` on a pancake causal batch: each packed
  document segment (doc_ids) on its own, positions from 0, as pancake's mask has it."""
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  import torch
  total, weight = 0.0, 0.0
  for r in range(batch["input_ids"].shape[0]):
    doc = batch["doc_ids"][r]
    for d in np.unique(doc):
      sel = np.where(doc == d)[0]
      with torch.no_grad():
        logits = model(torch.tensor(batch["input_ids"][r, sel][None], dtype=torch.long)).logits[0]
      logp = torch.log_softmax(logits.double(), -1).numpy()
      w = batch["target_weights"][r, sel]
      total += float(-(logp[np.arange(len(sel)), batch["targets"][r, sel]] * w).sum())
      weight += float(w.sum())
  return total, weight


def hf_greedy(model, prompt_ids, new_tokens, eos_id):
  """HF generate, greedy: the generated ids (EOS included when reached)."""
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  import torch
  with torch.no_grad():
    out = model.generate(torch.tensor([prompt_ids], dtype=torch.long), do_sample=False,
                         max_new_tokens=new_tokens, eos_token_id=eos_id, pad_token_id=eos_id,
                         num_beams=1)
  return out[0, len(prompt_ids):].tolist()


def main(argv):
  del argv
  # late: start-up time (the flags parse before JAX and transformers load)
  import transformers

  import objectives
  from evals import generate, runner
  from interop import export
  from trainlib import checkpoint, loop, rundir
  from trainlib import mesh as mesh_lib
  from trainlib import state as state_lib
  from trainlib import step as step_lib
  config, workdir, out = _CONFIG.value, os.path.abspath(_WORKDIR.value), os.path.abspath(_OUT.value)
  step = export.export_run(config, workdir, out)
  model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()

  setup = state_lib.build_setup(config, mesh_lib.make_mesh(config))
  params, _ = checkpoint.restore_params(rundir.checkpoints_dir(workdir),
                                        setup.abstract_state.params, step)
  eval_pipe = objectives.make_pipeline(config, config.data.eval_split)
  n = config.train.eval_batches
  ours = loop.evaluate(setup, step_lib.make_eval_step(setup), params, eval_pipe, n)["lm_loss"]
  sums = [hf_causal_loss(model, eval_pipe.batch(i)) for i in range(n)]
  theirs = sum(s for s, _ in sums) / sum(w for _, w in sums)

  records = runner.run(config, workdir, "generate", step=step, echo=lambda *_: None)
  tok = objectives.get_tokenizer(config)
  new = config.eval.generate_max_new_tokens
  greedy = []
  for sample, prompt in zip(records["generate"]["samples"], generate.prompt_ids(tok, config)):
    hf_ids = hf_greedy(model, prompt, new, tok.eot_id)
    greedy.append({"prompt": sample["prompt"], "equal": sample["greedy_tokens"] == hf_ids,
                   "pancake": sample["greedy"], "transformers": tok.decode(
                       [i for i in hf_ids if i != tok.eot_id])})
  print(json.dumps({"step": step, "eval_batches": n, "tokens": int(sum(w for _, w in sums)),
                    "heldout_loss_pancake": ours, "heldout_loss_transformers": theirs,
                    "abs_diff": abs(ours - theirs), "greedy": greedy}, ensure_ascii=False))


if __name__ == "__main__":  # flags defined here: tests import this module's helpers
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file of the run.")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  _OUT = flags.DEFINE_string("out", None, "Directory to export to.")
  flags.mark_flags_as_required(["config", "workdir", "out"])
  app.run(main)
