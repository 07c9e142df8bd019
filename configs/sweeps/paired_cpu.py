"""CPU paired study (Ettin at toy scale): modern encoder vs decoder, continued training across
families, and the 2018 blocks at equal compute, 2 seeds.

Runs (configs/paired/, "cpu" size: 3 layers, d_model 128, the embedded corpus, WordPiece 4,096):
- modern_encoder (MLM, 30% masking) and modern_decoder (causal LM): one block, one recipe, the
  same 819k tokens; they differ only in mask and loss.
- encoder_from_decoder / decoder_from_encoder: Ettin's cross-objective continued training. Each
  starts from the other family's final checkpoint (init.from_run; the plan of carried and new
  parameters is in the run's init_from_run.json) and trains CONTINUE_FRACTION (25%) of the
  budget more with its own objective, warmup and decay.
- encoder_continued / decoder_continued: the control for those, the same 25% more with the
  family's own objective from its own final checkpoint. A cross run is judged against this
  control (equal total compute and equal schedule), and against the native run.
- bert_encoder / gpt2_decoder: BERT's and GPT-2's blocks at the native runs' shape and training
  FLOPs (fewer steps, since their layers cost more per token).
Each run is evaluated on heldout (its own objective's loss), cloze (one task every objective is
scored on) and finetune (doc_order classification on the backbone).

    python -m launch.sweep --sweep configs/sweeps/paired_cpu.py --root runs/paired_cpu
    python -m figures.make --root runs/paired_cpu --out results/

The finetune suite is most of each run's eval. Continued runs re-read the corpus from the start of the same data order (data.seed = seed).

Expected (mean of 2 seeds; results/paired_cpu/): MLM loss 4.87 (modern encoder), 5.17 (from the
decoder), 4.69 (its control), 5.63 (BERT block); LM loss 4.42 (modern decoder), 5.20 (from the
encoder), 4.31 (its control), 4.69 (GPT-2 block); cloze 33% (encoder) and 58% (decoder);
doc_order fine-tuning 48-52% for every run (majority 51.8%).
"""

import importlib

from configs.paired import base

SIZE = "cpu"


def _continued(config_name):
  """Overrides of a continued-training run: CONTINUE_FRACTION of the native steps and warmup."""
  native = importlib.import_module(f"configs.paired.{config_name}").get_config(SIZE)
  steps = round(native.train.num_steps * base.CONTINUE_FRACTION)
  return {"train.num_steps": steps,
          "optim.warmup_steps": round(native.optim.warmup_steps * base.CONTINUE_FRACTION),
          "train.checkpoint_every": steps}


# (run name, config, source run of init.from_run or None, table label, the paper's row)
ROWS = (
    ("modern_encoder", "modern_encoder", None, "Modern encoder, MLM", "Ettin: encoder"),
    ("modern_decoder", "modern_decoder", None, "Modern decoder, causal LM", "Ettin: decoder"),
    ("encoder_from_decoder", "modern_encoder", "modern_decoder",
     "Encoder from the decoder (+25% MLM)", "Ettin: cross-objective encoder"),
    ("decoder_from_encoder", "modern_decoder", "modern_encoder",
     "Decoder from the encoder (+25% causal)", "Ettin: cross-objective decoder"),
    ("encoder_continued", "modern_encoder", "modern_encoder",
     "Encoder, +25% MLM (control)", "control for the cross-objective encoder"),
    ("decoder_continued", "modern_decoder", "modern_decoder",
     "Decoder, +25% causal (control)", "control for the cross-objective decoder"),
    ("bert_encoder", "bert_encoder", None, "BERT block, MLM, equal FLOPs",
     "BERT (Devlin et al. 2019) block"),
    ("gpt2_decoder", "gpt2_decoder", None, "GPT-2 block, causal LM, equal FLOPs",
     "GPT-2 (Radford et al. 2019) block"),
)


def get_sweep(size=SIZE):
  runs = []
  for name, config, source, label, row in ROWS:
    run = {"name": name, "config": f"configs/paired/{config}.py:{size}", "overrides": {},
           "meta": {"label": label, "paper_row": row}}
    if source:
      run["overrides"] = _continued(config)
      run["from_runs"] = {"init.from_run": source}
    runs.append(run)
  return {"name": f"paired_{size}", "kind": "ablation", "budget": None,
          "description": __doc__.splitlines()[0], "seeds": [0, 1],
          "budget_note": "The modern encoder and decoder process the same tokens; the BERT and "
                         "GPT-2 blocks get their family's modern-run training FLOPs (fewer "
                         "steps); continued runs add 25% of the native steps.",
          "eval_suites": "heldout,cloze,finetune", "runs": runs}
