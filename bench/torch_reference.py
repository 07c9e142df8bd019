"""The PyTorch reference for bench/train_step.py: HF transformers GPT-2 / BERT of the same shapes.

Built from configs with random weights (nothing is downloaded), trained the way pancake trains:
AdamW, global-norm clipping at 1.0, float32, dropout off, one full optimizer step per call.
torch and transformers are bench-only dependencies (requirements-bench.txt).
"""

import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class Shape:
  num_layers: int
  d_model: int
  num_heads: int
  d_ff: int
  seq_len: int
  batch: int
  vocab_size: int
  predictions_per_seq: int  # encoder: masked positions per sequence


def _quiet_transformers():
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  import transformers
  transformers.logging.set_verbosity_error()
  return transformers


def build_decoder(shape):
  """GPT2LMHeadModel: pre-LN, gelu_tanh ("gelu_new"), tied LM head, learned positions."""
  transformers = _quiet_transformers()
  config = transformers.GPT2Config(
      vocab_size=shape.vocab_size, n_positions=shape.seq_len, n_embd=shape.d_model,
      n_layer=shape.num_layers, n_head=shape.num_heads, n_inner=shape.d_ff,
      activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
      bos_token_id=0, eos_token_id=0, loss_type="ForCausalLM")
  return transformers.GPT2LMHeadModel(config)


def build_encoder(shape):
  """BertForPreTraining: post-LN, exact GELU, MLM head over all positions + NSP."""
  transformers = _quiet_transformers()
  config = transformers.BertConfig(
      vocab_size=shape.vocab_size, hidden_size=shape.d_model, num_hidden_layers=shape.num_layers,
      num_attention_heads=shape.num_heads, intermediate_size=shape.d_ff, hidden_act="gelu",
      max_position_embeddings=shape.seq_len, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12)
  return transformers.BertForPreTraining(config)


def make_batch(family, shape, seed=0):
  """Random tokens (a fixed generator, so every timed step sees the same work)."""
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  import torch
  g = torch.Generator().manual_seed(seed)
  b, l = shape.batch, shape.seq_len
  ids = torch.randint(0, shape.vocab_size, (b, l), generator=g)
  if family == "decoder":
    return {"input_ids": ids, "labels": ids}
  # MLM labels: the token at predictions_per_seq random positions per row, -100 (ignored) elsewhere.
  labels = torch.full((b, l), -100, dtype=torch.long)
  for row in range(b):
    positions = torch.randperm(l, generator=g)[:shape.predictions_per_seq]
    labels[row, positions] = ids[row, positions]
  return {"input_ids": ids, "token_type_ids": (torch.arange(l) >= l // 2).long().expand(b, l),
          "attention_mask": torch.ones(b, l, dtype=torch.long), "labels": labels,
          "next_sentence_label": torch.randint(0, 2, (b,), generator=g)}


class TorchTrainer:
  """One AdamW step per `step()`: forward, loss, backward, clip, update."""

  def __init__(self, family, shape, seed=0):
    # late: optional dependency (torch and transformers: requirements-bench.txt)
    import torch
    torch.manual_seed(seed)
    self.model = (build_decoder if family == "decoder" else build_encoder)(shape)
    self.model.train()
    # BERT's AdamW settings (as pancake's optimizer): weight decay 0.01, betas (0.9, 0.999).
    self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=(0.9, 0.999),
                                       eps=1e-6, weight_decay=0.01)
    self.batch = make_batch(family, shape, seed)
    self.params = sum(p.numel() for p in self.model.parameters())

  def step(self):
    # late: optional dependency (torch and transformers: requirements-bench.txt)
    import torch
    loss = self.model(**self.batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
    self.optimizer.step()
    self.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def matmul_flops_per_second(n=2048, repeats=5):
  """Best float32 [n,n]x[n,n] rate of torch's CPU BLAS, FLOP/s (2 n^3 per product)."""
  # late: optional dependency (torch and transformers: requirements-bench.txt)
  import torch
  a, b = torch.randn(n, n), torch.randn(n, n)
  torch.mm(a, b)  # warm up the BLAS thread pool
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    torch.mm(a, b)
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best
