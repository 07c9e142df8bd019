"""The paired encoder/decoder study (Ettin, Weller et al. 2025) as small named diffs from one base.

`base.py` holds what every run shares (the modern block, corpus, tokenizer, optimizer, budget)
in a "cpu" and a "pod" size; each other file changes only the fields `base.ALLOWED_DIFFS` lists
for it. The sweep `configs/sweeps/paired_cpu.py` adds the continued-training runs (Ettin's
encoder-from-decoder and decoder-from-encoder), which start from the other family's checkpoint.
"""
