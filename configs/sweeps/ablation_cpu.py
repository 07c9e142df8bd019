"""CPU objective ablation: MLM+NSP, MLM only, RoBERTa full-sentences MLM and LTR causal, 2 seeds.

The four configs of configs/ablations/ at their "cpu" size (2 layers, d_model 128, embedded
corpus, 400 steps of 16 x 128 tokens), each evaluated on the suites every objective can be scored
on: heldout (its own loss), cloze (one task for all objectives) and downstream (fine-tuning
tasks derived from the corpus, evals/downstream.py). Expect the table of results/ablation_cpu/ablation_table.md (docs/experiments.md).

    python -m launch.sweep --sweep configs/sweeps/ablation_cpu.py --root runs/ablation_cpu
    python -m figures.make --root runs/ablation_cpu --out results/

Expected (mean of 2 seeds; results/ablation_cpu/): held-out MLM accuracy 11-13% and MLM loss
5.56-5.58 for the three MLM variants, NSP at chance (51.6%); LTR LM loss 4.82; cloze accuracy
26-27% for the MLM variants and 49.4% for LTR (chance 20%); downstream word_order 69% for LTR
and 50-60% for the MLM variants (chance 50.4%, bag of words 47.8%), same_doc 54-59% for every
objective (bag of words 59.8%).
"""

SIZE = "cpu"

# (run name = config file, table label, the paper row it mirrors)
ROWS = (
    ("bert_mlm_nsp", "MLM + NSP (BERT)", "BERT Table 5: BERT_BASE"),
    ("mlm_only", "MLM, no NSP", "BERT Table 5: No NSP"),
    ("roberta_full_sentences", "MLM, full sentences (RoBERTa)",
     "RoBERTa Table 2: FULL-SENTENCES"),
    ("ltr_causal", "LTR causal LM, no NSP", "BERT Table 5: LTR & No NSP"),
)


def get_sweep(size=SIZE):
  runs = [{"name": name, "config": f"configs/ablations/{name}.py:{size}", "overrides": {},
           "meta": {"label": label, "paper_row": row}} for name, label, row in ROWS]
  return {"name": f"ablation_{size}", "kind": "ablation", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0, 1],
          "eval_suites": "heldout,cloze,downstream", "runs": runs}
