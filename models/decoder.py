"""GPT-style causal decoder (Radford et al. 2019; Brown et al. 2020).

embeddings (token + learned position, dropout) -> stack of blocks (pre-LN) -> final LayerNorm ->
logits against the token table (tied, GPT-2/3) or an untied "lm_head" matrix.

Incremental decoding: `init(..., decode=True)` on a [B, max_len] input allocates the `cache`
collection (per-layer keys/values, stacked on a leading layers axis when scanned, plus
`position_index`). Each later `apply(..., decode=True, mutable=["cache"])` call appends its
tokens (one or a whole prompt) and attends to everything cached so far. Positions default to the
running index; pass `positions` (and `doc_ids`, 0 = padding) for left-padded prompts.

`prefix_len[B]` (training and scoring only) makes the first prefix_len positions of each row
attend to each other bidirectionally (prefix LM; prefix_len = L: a fully bidirectional row, as
GPT-BERT's masked rows); see models/attention.py.
"""

import flax.linen as nn
import jax.numpy as jnp

from models.attention import PrefixSegments, segment_ids_from
from models.layers import Embeddings, constrain, dense, layer_norm, make_readout, readout
from models.spec import ModelSpec
from models.stack import Stack


class Decoder(nn.Module):
  spec: ModelSpec

  @nn.compact
  def __call__(self, input_ids, positions=None, doc_ids=None, deterministic=True, decode=False,
               prefix_len=None):
    """input_ids/positions/doc_ids: [B, L], prefix_len: [B]. Returns hidden [B, L, D], logits
    [B, L, V] float32 and readout (what the logits are made of: models/layers.py Readout)."""
    spec = self.spec
    # The running index advances on every decode call, even when positions are given.
    running_positions = self._next_positions(input_ids.shape[1], decode)
    if positions is None:
      positions = jnp.broadcast_to(running_positions, input_ids.shape)
    segments = segment_ids_from(input_ids.shape, doc_ids)
    if prefix_len is not None:
      segments = PrefixSegments(segments, prefix_len.astype(jnp.int32))

    embeddings = Embeddings(spec, name="embeddings")
    x = embeddings(input_ids, positions, deterministic=deterministic)
    x = Stack(spec, name="stack")(x, segments, deterministic, decode, positions)
    if spec.ln_placement == "pre":
      x = layer_norm(spec, "final_ln")(x)
    hidden = x  # [B, L, D]

    if spec.tie_embeddings:
      logits = embeddings.attend(hidden)
      kernel = embeddings.token.embedding.T  # [D, V]
    else:
      lm_head = dense(spec, spec.vocab_size, ("embed", "vocab"), "lm_head", use_bias=False)
      logits = readout(spec, lm_head(hidden).astype(jnp.float32))
      kernel = nn.unbox(lm_head.variables["params"]["kernel"])  # [D, V]
    logits = constrain(logits, ("activation_batch", "activation_length", "activation_vocab"))
    return {"hidden": hidden, "logits": logits, "readout": make_readout(spec, hidden, kernel)}

  def _next_positions(self, length, decode):
    """[L] positions: 0..L-1, or continuing from the tokens already in the cache."""
    if not decode:
      return jnp.arange(length)
    allocated = self.has_variable("cache", "position_index")
    index = self.variable("cache", "position_index", lambda: jnp.zeros((), jnp.int32))
    if not allocated:  # init sizes the cache; positions as in a full pass
      return jnp.arange(length)
    start = index.value
    index.value = start + length
    return start + jnp.arange(length)
