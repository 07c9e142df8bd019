"""Pod scaling sweep: decoders of depth 12-96 x width 768-12,288 (up to GPT-3 175B) at 10B tokens.

A 4 x 5 grid, depths (12, 24, 48, 96) x widths (768, 1536, 3072, 6144, 12288), from 85M to 174B
non-embedding parameters (96 x 12,288 is GPT-3 175B's shape), each trained on the same
10B tokens of C4 at length 2048: L(N) at fixed D, plus the aspect-ratio comparison of Kaplan et
al. 2020, Figure 5 (same N, different depth/width). Learning rate and batch by width from GPT-3
Table 2.1 (configs/scaling_rules.py), d_head 128, warmup 2% of steps, cosine to 10%.
The largest run is ~1e22 FLOPs (~30 h on v5p-1024 at 40% MFU). Set the mesh for your slice with
`--override`, see configs/sweeps/scaling_base.py.
"""

from configs import scaling_rules

CONFIG = "configs/sweeps/scaling_base.py:pod"
DEPTHS, WIDTHS = (12, 24, 48, 96), (768, 1536, 3072, 6144, 12288)
SEQ_LEN, VOCAB, TOKENS = 2048, 50257, 10e9


def get_sweep():
  runs = scaling_rules.fixed_tokens_runs(
      CONFIG, DEPTHS, WIDTHS, tokens=TOKENS,
      batch=lambda d: scaling_rules.batch_sequences(d, SEQ_LEN), seq_len=SEQ_LEN,
      vocab_size=VOCAB, d_head=128, warmup_frac=0.02)
  return {"name": "scaling_pod", "kind": "scaling", "budget": "tokens",
          "description": __doc__.splitlines()[0], "seeds": [0], "eval_suites": "heldout",
          "runs": runs}
