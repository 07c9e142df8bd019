"""BERT's 2018 block (post-LN, learned positions, dense GELU MLP, biases) at the modern encoder's
size and training FLOPs.

The reference point the modern block is measured against: same data, tokenizer, masking (30%),
optimizer and shape (layers, width, heads); the block follows Devlin et al. 2019
(`base.classic_block`). Its layers cost more FLOPs per token than the modern ones, so it trains
for fewer steps, as many as give it the modern encoder's training FLOPs (`base.equal_compute_steps`;
tests/test_paired_configs.py checks the numbers below against it: 3.26e12 FLOPs at "cpu").
"""

from configs.paired import base


# Written out rather than computed here: counting FLOPs builds the model's shapes with JAX, and a
# config file must not start JAX's backends before train.py sets the CPU device count.
EQUAL_COMPUTE_STEPS = {"cpu": 307, "pod": 708_138}


def get_config(size="cpu"):
  c = base.classic_block(base.get_config(size))
  c.name = "bert_encoder"
  c.train.num_steps = EQUAL_COMPUTE_STEPS[size]
  return c
