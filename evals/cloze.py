"""Suite `cloze`: fill the blank of a held-out sentence, one task for every objective.

Items come from evals.cloze_items (chosen on the raw text, so every model answers the same
questions). Each candidate is written into the sentence, tokenized by the model's tokenizer and
scored; the model's answer is the best-scoring candidate.

- Encoders (mlm, mlm_nsp, mlm_full_sentences): pseudo-log-likelihood of the filled blank under
  the MLM head: [CLS] sentence [SEP] with every piece of the candidate replaced by [MASK], score =
  sum over those pieces of log p(piece). (Masking all pieces at once keeps one forward pass per
  candidate; like any summed likelihood it favours candidates of fewer pieces.)
- Decoders: log-likelihood of the whole filled sentence after the start-of-document token.

Metrics: accuracy, chance (= 1 / eval.cloze_candidates) and mean reciprocal rank of the answer.
Sentences longer than data.seq_len are cut to a window around the blank.
"""
import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ConfigError
from evals import cloze_items, generation
from evals.context import bos_id, pad_rows
from pipeline import corpora
from trainlib import metrics as metrics_lib

MAX_BLANK_PIECES = 16         # a 12-letter word is at most 13 byte-level pieces
_ROWS_PER_CALL = 64
_MAX_HELD_OUT_CHARS = 5_000_000  # held-out text read for items (large corpora: a prefix)


def validate(config, tokenizer):
  e = config.eval
  for field, least in (("cloze_examples", 1), ("cloze_candidates", 2)):
    value = e[field]
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
      raise ConfigError(f"eval.{field}={value!r} must be an integer >= {least}")
  least_len = MAX_BLANK_PIECES + 2
  if config.data.seq_len < least_len:
    raise ConfigError(f"data.seq_len={config.data.seq_len} is too short for the cloze suite "
                      f"(a blank of up to {MAX_BLANK_PIECES} pieces plus context): use >= "
                      f"{least_len}")
  if config.model.family == "encoder" and tokenizer.mask_id is None:
    raise ConfigError(f"the cloze suite scores encoders with the mask token, which "
                      f"data.tokenizer={config.data.tokenizer!r} lacks")


def held_out_documents(config) -> list[str]:
  docs = corpora.open_corpus(config.data).documents(config.data.eval_split)
  out, chars = [], 0
  for text in docs.iter_range(0, len(docs)):
    out.append(text)
    chars += len(text)
    if chars >= _MAX_HELD_OUT_CHARS:
      break
  return out


def _encode(tokenizer, item, k):
  """Token ids of the sentence filled with candidate k, and the indices of the blank's pieces."""
  text, start, end = item.filled(k)
  enc = tokenizer.hf.encode(text, add_special_tokens=False)
  blank = [i for i, (a, b) in enumerate(enc.offsets) if a < end and b > start]
  return list(enc.ids), blank[:MAX_BLANK_PIECES]


def _window(ids, blank, budget):
  """At most `budget` tokens around the blank -> (ids, shifted blank indices)."""
  if len(ids) <= budget:
    return ids, blank
  middle = (blank[0] + blank[-1]) // 2
  lo = min(max(0, middle - budget // 2), len(ids) - budget)
  return ids[lo:lo + budget], [i - lo for i in blank]


def encoder_rows(tokenizer, items, seq_len):
  n = len(items) * len(items[0].candidates)
  rows = dict(input_ids=np.full((n, seq_len), tokenizer.pad_id, np.int32),
              token_type_ids=np.zeros((n, seq_len), np.int32),
              input_mask=np.zeros((n, seq_len), np.int32),
              masked_positions=np.zeros((n, MAX_BLANK_PIECES), np.int32),
              masked_ids=np.zeros((n, MAX_BLANK_PIECES), np.int32),
              masked_weights=np.zeros((n, MAX_BLANK_PIECES), np.float32))
  r = 0
  for item in items:
    for k in range(len(item.candidates)):
      ids, blank = _window(*_encode(tokenizer, item, k), seq_len - 2)
      full = np.asarray([tokenizer.cls_id] + ids + [tokenizer.sep_id], np.int32)
      positions = np.asarray(blank, np.int32) + 1  # after [CLS]
      rows["masked_ids"][r, :len(blank)] = full[positions]
      rows["masked_positions"][r, :len(blank)] = positions
      rows["masked_weights"][r, :len(blank)] = 1.0
      full[positions] = tokenizer.mask_id
      rows["input_ids"][r, :len(full)] = full
      rows["input_mask"][r, :len(full)] = 1
      r += 1
  return rows


def decoder_rows(tokenizer, items, seq_len):
  n = len(items) * len(items[0].candidates)
  pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
  rows = dict(ids=np.full((n, seq_len), pad, np.int32), length=np.zeros((n,), np.int32))
  r = 0
  for item in items:
    for k in range(len(item.candidates)):
      ids, _ = _window(*_encode(tokenizer, item, k), seq_len - 1)
      full = [bos_id(tokenizer)] + ids
      rows["ids"][r, :len(full)] = full
      rows["length"][r] = len(full) - 1  # every token after the start token is scored
      r += 1
  return rows


def masked_token_scores(model, params, rows):
  """An encoder's MLM head at rows["masked_positions"] [R, P] (the inputs hold [MASK] there) ->
  (log p(rows["masked_ids"]) [R, P], whether each is the head's argmax [R, P]). Traceable."""
  out = model.apply({"params": params}, rows["input_ids"], rows["token_type_ids"],
                    rows["input_mask"], masked_positions=rows["masked_positions"],
                    deterministic=True)
  logp = jax.nn.log_softmax(out["mlm_logits"].astype(jnp.float32))       # [R, P, V]
  picked = jnp.take_along_axis(logp, rows["masked_ids"][..., None], axis=-1)[..., 0]
  return picked, jnp.argmax(logp, axis=-1) == rows["masked_ids"]


def _scorer(ctx):
  """(params, rows) -> [R] scores, jitted; rows as built by encoder_rows / decoder_rows."""
  model = ctx.model
  if ctx.family == "encoder":
    def score(params, rows):
      picked, _ = masked_token_scores(model, params, rows)
      return jnp.sum(picked * rows["masked_weights"], axis=-1)
    return jax.jit(score)

  full_fn = lambda params, ids: model.apply({"params": params}, ids)["logits"]
  return lambda params, rows: generation.sequence_logprob(
      full_fn, params, rows["ids"], jnp.ones_like(rows["length"]), rows["length"])


def run(ctx):
  config, tok = ctx.config, ctx.tokenizer
  e = config.eval
  items = cloze_items.build_items(held_out_documents(config), e.cloze_examples,
                                  e.cloze_candidates, ctx.seed)
  build = encoder_rows if ctx.family == "encoder" else decoder_rows
  rows = build(tok, items, config.data.seq_len)
  total = len(items) * e.cloze_candidates
  per_call = ctx.round_rows(_ROWS_PER_CALL)
  score = _scorer(ctx)
  scores = []
  progress = metrics_lib.LoopProgress("cloze batch", -(-total // per_call))
  with ctx.mesh_context():
    for lo in range(0, total, per_call):
      chunk = pad_rows({k: v[lo:lo + per_call] for k, v in rows.items()}, per_call)
      out = np.asarray(ctx.fetch(score(ctx.params, ctx.put_rows(chunk))))
      scores.append(out[:min(per_call, total - lo)])
      if progress.due(len(scores)):
        progress.update(len(scores))
  scores = np.concatenate(scores).reshape(len(items), e.cloze_candidates)
  answers = np.asarray([item.answer for item in items])
  answer_scores = scores[np.arange(len(items)), answers]
  correct = np.argmax(scores, axis=1) == answers
  rank = np.sum(scores > answer_scores[:, None], axis=1)  # 0 = best
  examples = [{"sentence": item.with_blank(), "candidates": list(item.candidates),
               "answer": item.candidates[item.answer],
               "chosen": item.candidates[int(np.argmax(s))],
               "scores": [round(float(x), 4) for x in s]}
              for item, s in zip(items[:8], scores[:8])]
  return {
      "metrics": {"accuracy": float(np.mean(correct)), "chance": 1.0 / e.cloze_candidates,
                  "mrr": float(np.mean(1.0 / (1.0 + rank)))},
      "num_examples": len(items),
      "num_candidates": e.cloze_candidates,
      "scoring": ("masked-LM pseudo-log-likelihood of the blank" if ctx.family == "encoder"
                  else "log-likelihood of the filled sentence"),
      "split": config.data.eval_split,
      "items_fingerprint": cloze_items.fingerprint(items),
      "examples": examples,
  }
