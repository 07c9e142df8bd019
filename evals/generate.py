"""Suite `generate` (decoders): continuations of eval.generate_prompts, printed and saved.

Each prompt (comma-separated in eval.generate_prompts; a document start token is put in front,
as in training) is continued for eval.generate_max_new_tokens tokens with the key/value cache
(evals.generation via evals.decoder_fns), three ways:
- greedy;
- sampling with eval.temperature, eval.top_k, eval.top_p (key: eval.seed);
- beam search with eval.beam_size beams and eval.length_penalty.
Generation stops at the end-of-text token. Metrics (mean over prompts): log-probability per
generated token of the greedy, sampled and best beam outputs, and the fraction of distinct
bigrams among the sampled tokens (1.0 = no repetition).
"""
import jax
import numpy as np

from configs.errors import ConfigError
from evals import decoder_fns, generation, sampling
from evals.context import bos_id, pad_rows


def prompts(config) -> list[str]:
  return [p.strip() for p in str(config.eval.generate_prompts).split(",") if p.strip()]


def prompt_ids(tokenizer, config) -> list[list[int]]:
  return [[bos_id(tokenizer)] + tokenizer.encode(p) for p in prompts(config)]


def validate(config, tokenizer):
  e = config.eval
  if not prompts(config):
    raise ConfigError(f"eval.generate_prompts={e.generate_prompts!r} holds no prompt "
                      "(comma-separated texts)")
  n = e.generate_max_new_tokens
  if not isinstance(n, int) or isinstance(n, bool) or n < 1:
    raise ConfigError(f"eval.generate_max_new_tokens={n!r} must be an integer >= 1")
  sampling.static_options(e.temperature, e.top_k, e.top_p, rng="checked")  # fields only
  generation.validate_beam(e.beam_size, e.length_penalty)
  longest = max(map(len, prompt_ids(tokenizer, config)))
  if longest + n - 1 > config.model.max_len:
    raise ConfigError(
        f"the longest prompt ({longest} tokens with the start token) plus "
        f"eval.generate_max_new_tokens={n} exceeds model.max_len={config.model.max_len}; "
        "shorten eval.generate_prompts or lower eval.generate_max_new_tokens")


def _texts(tokenizer, tokens, lengths, eos):
  """Decoded generations, without the end-of-text token."""
  out = []
  for row, n in zip(np.asarray(tokens), np.asarray(lengths)):
    ids = [int(t) for t in row[:int(n)] if int(t) != eos]
    out.append(tokenizer.decode(ids))
  return out


def _distinct_bigrams(tokens, lengths):
  bigrams = [tuple(row[i:i + 2]) for row, n in zip(np.asarray(tokens), np.asarray(lengths))
             for i in range(int(n) - 1)]
  return len(set(bigrams)) / len(bigrams) if bigrams else 1.0


def run(ctx):
  config, tok = ctx.config, ctx.tokenizer
  e = config.eval
  texts = prompts(config)
  ids = prompt_ids(tok, config)
  n, new = len(ids), e.generate_max_new_tokens
  width = max(map(len, ids))
  pad = tok.pad_id if tok.pad_id is not None else 0
  host = {"prompts": np.full((n, width), pad, np.int32),
          "lengths": np.asarray([len(p) for p in ids], np.int32)}
  for r, p in enumerate(ids):
    host["prompts"][r, :len(p)] = p
  rows = ctx.round_rows(n)  # every row count must split over the batch axes
  batch = ctx.put_rows(pad_rows(host, rows))
  fns = decoder_fns.make_decoder_fns(ctx.model, cache_len=width + new - 1)
  eos = tok.eot_id
  common = dict(eos_id=eos, pad_id=pad)
  with ctx.mesh_context():
    greedy = generation.generate(fns.step_fn, ctx.params, ctx.put_replicated(fns.init_cache(rows)),
                                 batch["prompts"], batch["lengths"], new, **common)
    sampled = generation.generate(
        fns.step_fn, ctx.params, ctx.put_replicated(fns.init_cache(rows)), batch["prompts"],
        batch["lengths"], new, rng=jax.random.key(ctx.seed), temperature=e.temperature,
        top_k=e.top_k, top_p=e.top_p, **common)
    beams = generation.beam_search(
        fns.step_fn, ctx.params, ctx.put_replicated(fns.init_cache(rows * e.beam_size)),
        batch["prompts"], batch["lengths"], new, beam_size=e.beam_size,
        length_penalty_alpha=e.length_penalty, cache_batch_axes=fns.cache_batch_axes, **common)
  # Host arrays of the real prompts' rows (the padding rows are dropped).
  greedy, sampled, beams = jax.tree.map(lambda x: np.asarray(x)[:n],
                                        ctx.fetch((greedy, sampled, beams)))
  per_token = lambda logp, length: float(np.mean(logp / np.maximum(length, 1)))
  samples = []
  greedy_text = _texts(tok, greedy.tokens, greedy.lengths, eos)
  sampled_text = _texts(tok, sampled.tokens, sampled.lengths, eos)
  for i, prompt in enumerate(texts):
    beam_text = _texts(tok, beams.tokens[i], beams.lengths[i], eos)
    samples.append({
        "prompt": prompt,
        "greedy": greedy_text[i], "greedy_tokens": greedy.tokens[i, :greedy.lengths[i]].tolist(),
        "sample": sampled_text[i], "sample_tokens": sampled.tokens[i, :sampled.lengths[i]].tolist(),
        "beams": [{"text": t, "score": float(s), "tokens": b[:int(length)].tolist()}
                  for t, s, b, length in zip(beam_text, beams.scores[i], beams.tokens[i],
                                             beams.lengths[i])],
    })
  return {
      "metrics": {
          "greedy_logprob_per_token": per_token(greedy.logprobs, greedy.lengths),
          "sample_logprob_per_token": per_token(sampled.logprobs, sampled.lengths),
          "beam_logprob_per_token": per_token(beams.logprobs[:, 0], beams.lengths[:, 0]),
          "sample_distinct_bigrams": _distinct_bigrams(sampled.tokens, sampled.lengths),
      },
      "settings": {"max_new_tokens": new, "temperature": e.temperature, "top_k": e.top_k,
                   "top_p": e.top_p, "beam_size": e.beam_size,
                   "length_penalty": e.length_penalty, "eos_id": eos},
      "samples": samples,
      "report": "\n".join(_report(s) for s in samples),
  }


def _report(sample):
  lines = [f"prompt: {sample['prompt']!r}", f"  greedy: {sample['greedy']!r}",
           f"  sample: {sample['sample']!r}"]
  lines += [f"  beam {k} ({b['score']:.3f}): {b['text']!r}" for k, b in enumerate(sample["beams"])]
  return "\n".join(lines)
