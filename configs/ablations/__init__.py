"""Objective ablations (BERT Table 5, RoBERTa Table 2) as small named diffs from one base.

`base.py` holds what every ablation shares (backbone, corpus, tokenizer, optimizer, budget) in two
sizes, "cpu" and "pod"; each other file changes only the fields listed for it in
`base.ALLOWED_DIFFS`. Run one with `python train.py --config configs/ablations/mlm_only.py:cpu`,
or all of them with `python -m launch.sweep --sweep configs/sweeps/ablation_cpu.py`.
"""
