"""The shapes bench/train_step.py and bench/parallel_runs.py time, and pancake's config for each.

(The case list and what each case is are in bench/train_step.py's docstring.)
"""

_BENCH = dict(num_layers=6, d_model=512, num_heads=8, d_ff=2048, seq_len=256, batch=8,
              vocab_size=8192, predictions_per_seq=40, use_bias=True)
_ABLATION = dict(num_layers=2, d_model=128, num_heads=4, d_ff=512, seq_len=128, batch=16,
                 predictions_per_seq=20, use_bias=True)
CASES = {
    "bench_decoder": dict(_BENCH, family="decoder"),
    "bench_encoder": dict(_BENCH, family="encoder"),
    "nanogpt_decoder": dict(family="decoder", num_layers=4, d_model=128, num_heads=4, d_ff=512,
                            seq_len=64, batch=12, vocab_size=65, predictions_per_seq=0,
                            use_bias=True),
    "cpu_ablation_decoder_v2048": dict(_ABLATION, family="decoder", vocab_size=2048),
    "cpu_ablation_encoder_v2048": dict(_ABLATION, family="encoder", vocab_size=2048),
    "cpu_ablation_decoder_v4096": dict(_ABLATION, family="decoder", vocab_size=4096),
    "cpu_ablation_encoder_v4096": dict(_ABLATION, family="encoder", vocab_size=4096),
    "scaling_cpu_smallest": dict(family="decoder", num_layers=2, d_model=32, num_heads=1, d_ff=128,
                                 seq_len=128, batch=16, vocab_size=2048, predictions_per_seq=0,
                                 use_bias=True),
}


def bench_config(case, cpu_devices=0):
  """pancake's config for a case: BERT-like encoder (post-LN, exact GELU, MLM+NSP) or GPT-2-like
  decoder (pre-LN, tanh GELU, causal LM), as HF's BertForPreTraining / GPT2LMHeadModel."""
  # late: start-up time (JAX starts after main() set XLA's flags and the CPU device count)
  from configs import base
  import objectives
  shape = CASES[case]
  family = shape["family"]
  c = base.get_config()
  c.name = case
  m = c.model
  m.family = family
  m.num_layers, m.d_model, m.num_heads = shape["num_layers"], shape["d_model"], shape["num_heads"]
  m.d_ff, m.vocab_size, m.max_len = shape["d_ff"], shape["vocab_size"], shape["seq_len"]
  m.use_bias = shape["use_bias"]
  m.dropout_rate = m.attention_dropout_rate = 0.0
  if family == "encoder":
    m.activation, m.ln_placement, m.ln_epsilon, m.nsp_head = "gelu_exact", "post", 1e-12, True
    c.objective.name = objectives.default_for(family)  # BERT's MLM + NSP
    c.objective.max_predictions_per_seq = shape["predictions_per_seq"]
  else:
    m.activation, m.ln_placement, m.ln_epsilon = "gelu_tanh", "pre", 1e-5
    c.objective.name = objectives.default_for(family)  # GPT's causal LM
  c.data.seq_len = shape["seq_len"]
  c.train.global_batch_size = shape["batch"]
  c.mesh.cpu_devices = cpu_devices
  return c
