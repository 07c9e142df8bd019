"""One transformer block, configured (not copied) for both families.

post-LN (BERT, Vaswani et al.):  x = LN(x + Drop(Attn(x)));   x = LN(x + Drop(Mlp(x)))
pre-LN  (GPT-2/3):               x = x + Drop(Attn(LN(x)));   x = x + Drop(Mlp(LN(x)))
(pre-LN stacks end with one more LayerNorm, applied by the model after the last block.)
LN is spec.norm (LayerNorm or RMSNorm); Mlp is dense or gated (models/layers.py).
"""

import flax.linen as nn

from models.attention import SelfAttention
from models.layers import BLD, Mlp, constrain, layer_norm
from models.spec import ModelSpec


class Block(nn.Module):
  """Returns (x, None) so the same class serves as an `nn.scan` body and as an unrolled layer."""
  spec: ModelSpec
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, segments, positions=None, layer=None):
    # x: [B, L, D], segments/positions: [B, L] int32 (see models/attention.py);
    # layer: this block's {"window", "rope_base"} scalars (models/stack.py); both may be None
    # when neither RoPE nor a sliding window is on
    spec = self.spec
    attention = SelfAttention(spec, self.deterministic, self.decode, name="attention")
    mlp = Mlp(spec, name="mlp")
    drop = lambda h: nn.Dropout(spec.dropout_rate)(h, deterministic=self.deterministic)
    ln_attention = layer_norm(spec, "ln_attention")
    ln_mlp = layer_norm(spec, "ln_mlp")
    if spec.ln_placement == "pre":
      x = x + drop(attention(ln_attention(x), segments, positions, layer))
      x = x + drop(mlp(ln_mlp(x)))
    else:
      x = ln_attention(x + drop(attention(x, segments, positions, layer)))
      x = ln_mlp(x + drop(mlp(x)))
    return constrain(x, BLD), None
