"""muP (Yang et al. 2022, Tensor Programs V), in the `mup` package's Adam convention.

Relative to a base width (model.mup_base_width; width_mult = d_model / base), with Adam:
  hidden weights (every kernel except the readouts below: q/k/v/out, MLP, MLM transform, pooler)
      init std init_range / sqrt(width_mult) (fan_in grows with width), Adam update / width_mult;
  vector-like parameters (embedding tables, biases, norm scales) and readout kernels
      (READOUT_MODULES: a dimension of vocab or classes, which does not grow)
      init and learning rate as in SP;
  readout logits (the tied or untied vocab projection, the NSP classifier) times 1 / width_mult,
      before the output bias (mup's MuReadout / MuSharedReadout), so the tied embedding keeps its
      input-layer init and learning rate in both families;
  attention logits q.k * attention_scale: 1/d_head, times sqrt(base d_head) so that at the base
      width it is SP's 1/sqrt(d_head) (mup's attn_mult convention). This assumes num_heads fixed
      and d_head growing with width (d_head / width_mult is the base d_head), as every muP sweep
      here does (`scaling_base.py:cpu_mup`: 2 heads at every width). A sweep that fixes d_head
      and grows num_heads would need a base d_head field, which does not exist yet.
At width_mult = 1 every rule is the identity, and under parametrization="sp" the modules do not
call any of this (bitwise as before: tests/test_models_golden.py). The optimizer
(trainlib/optim.py) multiplies updates by `learning_rate_multipliers`, after Adam's learning rate,
so weight decay is scaled with the update (torch AdamW under mup's decoupled_wd).
"""

import flax.linen as nn
import jax

from models.spec import ModelSpec

# Dense layers whose output dimension is finite (vocab, classes): the readouts.
READOUT_MODULES = ("lm_head", "mlm_decoder", "nsp_classifier")


def is_hidden(module_name: str) -> bool:
  """Whether the kernel of the dense layer `module_name` is a hidden (matrix-like) weight."""
  return module_name not in READOUT_MODULES


def init_scale(spec: ModelSpec, module_name: str) -> float:
  """Factor on init_range for the kernel of `module_name` (1.0 under SP)."""
  if spec.parametrization != "mup" or not is_hidden(module_name):
    return 1.0
  return spec.width_mult ** -0.5


def attention_scale(spec: ModelSpec):
  """The factor on q.k under muP: sqrt(d_head / width_mult) / d_head; None under SP (each
  kernel's own 1/sqrt(d_head), so SP stays bitwise as before)."""
  if spec.parametrization != "mup":
    return None
  return (spec.d_head / spec.width_mult) ** 0.5 / spec.d_head


def output_multiplier(spec: ModelSpec) -> float:
  """Factor on readout logits: 1 / width_mult (1.0 under SP)."""
  return 1.0 / spec.width_mult


def _names(path):
  return [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]


def learning_rate_multipliers(spec: ModelSpec, params):
  """Tree like `params` (boxed or not) of Adam learning-rate factors: 1 / width_mult on hidden
  kernels, 1 elsewhere."""
  def factor(path, _):
    names = _names(path)
    hidden = names[-1] == "kernel" and len(names) >= 2 and is_hidden(names[-2])
    return 1.0 / spec.width_mult if hidden else 1.0
  return jax.tree_util.tree_map_with_path(
      factor, params, is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))
