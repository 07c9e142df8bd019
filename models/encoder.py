"""BERT-style bidirectional encoder (Devlin et al. 2019; google-research/bert modeling.py).

embeddings (token + position + segment, LayerNorm, dropout) -> stack of blocks (post-LN as
published) -> [final LN only for pre-LN] -> heads:
  MLM: hidden gathered at masked_positions -> dense + activation + LayerNorm ("mlm_head") ->
       logits against the token table (tied) or an untied matrix, plus a per-token output bias.
  pooler: tanh(dense(hidden[:, 0])) on [CLS]; NSP: 2-way classifier on the pooled vector.
"""

import flax.linen as nn
import jax.numpy as jnp

from models.attention import segment_ids_from
from models.layers import (Embeddings, activation_fn, constrain, dense, layer_norm, make_readout,
                           readout)
from models.spec import ModelSpec
from models.stack import Stack


class MlmTransform(nn.Module):
  """BERT's `cls/predictions/transform`: dense D->D, activation, LayerNorm."""
  spec: ModelSpec

  @nn.compact
  def __call__(self, x):
    # A D x D kernel cannot name "embed" twice; its output side shards like an MLP input.
    x = dense(self.spec, self.spec.d_model, ("embed", "mlp"), "dense")(x)
    x = activation_fn(self.spec.activation)(x)
    return layer_norm(self.spec, "ln")(x)


class Encoder(nn.Module):
  spec: ModelSpec

  @nn.compact
  def __call__(self, input_ids, token_type_ids=None, input_mask=None, doc_ids=None,
               positions=None, masked_positions=None, deterministic=True):
    """input_ids/token_type_ids/input_mask/doc_ids/positions: [B, L]; masked_positions: [B, P].

    Returns hidden [B, L, D], mlm_logits [B, P, V] float32 ([B, L, V] without masked_positions),
    mlm_readout (what mlm_logits are made of: models/layers.py Readout), pooled [B, D], and
    nsp_logits [B, 2] float32 when spec.nsp_head.
    """
    spec = self.spec
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
    segments = segment_ids_from(input_ids.shape, doc_ids, input_mask)

    embeddings = Embeddings(spec, name="embeddings")
    x = embeddings(input_ids, positions, token_type_ids, deterministic)
    x = Stack(spec, name="stack")(x, segments, deterministic, positions=positions)
    if spec.ln_placement == "pre":
      x = layer_norm(spec, "final_ln")(x)
    hidden = x  # [B, L, D]

    if masked_positions is not None:  # only the predicted positions reach the vocab projection
      x = jnp.take_along_axis(hidden, masked_positions[..., None].astype(jnp.int32), axis=1)
    x = MlmTransform(spec, name="mlm_head")(x)  # [B, P, D]
    if spec.tie_embeddings:
      logits = embeddings.attend(x)
      kernel = embeddings.token.embedding.T  # [D, V]
    else:
      decoder = dense(spec, spec.vocab_size, ("embed", "vocab"), "mlm_decoder", use_bias=False)
      logits = readout(spec, decoder(x).astype(jnp.float32))
      kernel = nn.unbox(decoder.variables["params"]["kernel"])  # [D, V]
    bias = self.param("mlm_output_bias",
                      nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)),
                      (spec.vocab_size,), spec.param_dtype).astype(jnp.float32)
    logits = constrain(logits + bias,
                       ("activation_batch", "activation_length", "activation_vocab"))

    pooled = jnp.tanh(dense(spec, spec.d_model, ("embed", "mlp"), "pooler")(hidden[:, 0]))
    outputs = {"hidden": hidden, "mlm_logits": logits, "pooled": pooled,
               "mlm_readout": make_readout(spec, x, kernel, bias)}
    if spec.nsp_head:
      # muP: the NSP bias is inside dense, so the multiplier also scales it (zero at init).
      outputs["nsp_logits"] = readout(spec, dense(spec, 2, ("embed", "classes"), "nsp_classifier")(
          pooled).astype(jnp.float32))
    return outputs
