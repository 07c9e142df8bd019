"""GPT-2's block (pre-LN, learned positions, dense tanh-GELU MLP, biases) at the modern decoder's
size and training FLOPs.

The reference point the modern decoder is measured against: same data, tokenizer, optimizer and
shape; the block follows Radford et al. 2019 (`base.classic_block`), trained for as many steps as
give it the modern decoder's training FLOPs (`base.equal_compute_steps`; tests/test_paired_configs.py
checks the numbers below against it: 4.88e12 FLOPs at "cpu").
"""

from configs.paired import base


# Written out, not computed here (see bert_encoder.py).
EQUAL_COMPUTE_STEPS = {"cpu": 340, "pod": 755_015}


def get_config(size="cpu"):
  c = base.classic_block(base.to_decoder(base.get_config(size)))
  c.name = "gpt2_decoder"
  c.train.num_steps = EQUAL_COMPUTE_STEPS[size]
  return c
