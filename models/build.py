"""`build_model`: a model ConfigDict -> the Encoder or Decoder module (re-exported as
models.build_model; models.counting builds through it too)."""

from models.decoder import Decoder
from models.encoder import Encoder
from models.spec import resolve


def build_model(model_cfg, capture_attention=False):
  """Encoder or Decoder module for a `model` ConfigDict (validated before anything is built).

  capture_attention=True makes every layer sow `attention_probs` [B, H, Lq, Lk], `queries` and
  `keys` [B, H, L, Dh] into the `intermediates` collection (read them with `collect_attention`).
  """
  spec = resolve(model_cfg, capture_attention)
  return Encoder(spec) if spec.family == "encoder" else Decoder(spec)
