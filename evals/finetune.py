"""Suite `finetune`: a sentence / sentence-pair classifier on the pre-trained backbone.

A linear head on one vector per example, trained with the BERT fine-tuning recipe (AdamW,
b2 0.999, eps 1e-6, weight decay 0.01 on matrices, 10% linear warmup then linear decay to 0,
global-norm clipping at 1): eval.finetune_steps steps of eval.finetune_batch_size examples,
eval.finetune_learning_rate (eval.finetune_train_examples > 0: on that many train examples only,
a fixed random subset, for data-efficiency curves). eval.freeze_backbone=True trains the head only (a linear probe);
otherwise every parameter is fine-tuned. Accuracy is measured on the task's held-out split.

Inputs (data.seq_len tokens, pairs truncated longest-first as BERT's run_classifier):
- encoders: [CLS] A [SEP] B [SEP] with segment ids 0/1; vector = the tanh pooler on [CLS]
  ("pooler", as BERT) or the first / mean hidden state;
- decoders: <bos> A <delim> B <eot> (GPT-1's layout, with the tokenizer's end-of-text and
  separator tokens); vector = the hidden state of the last token ("last", it has read everything)
  or the mean over tokens.

Tasks (evals.finetune_tasks): GLUE from TFDS, or "doc_order" derived from the run's corpus.
`chance` is the majority-class rate of the evaluation split (the accuracy of a constant guess).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs.errors import ConfigError
from evals import finetune_tasks
from evals.context import bos_id, pad_rows
from trainlib import metrics as metrics_lib

POOLINGS = ("auto", "pooler", "first", "last", "mean")
_WARMUP_FRAC = 0.1
_SALT = 0xF17E


def resolved_pooling(config) -> str:
  p = config.eval.finetune_pooling
  if p == "auto":
    return "pooler" if config.model.family == "encoder" else "last"
  return p


def validate(config, tokenizer):
  del tokenizer
  e = config.eval
  finetune_tasks.spec(e.finetune_task)
  for field, least in (("finetune_steps", 1), ("finetune_batch_size", 1),
                      ("finetune_train_examples", 0)):
    if not isinstance(e[field], int) or isinstance(e[field], bool) or e[field] < least:
      raise ConfigError(f"eval.{field}={e[field]!r} must be an integer >= {least}")
  lr = e.finetune_learning_rate
  if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
    raise ConfigError(f"eval.finetune_learning_rate={lr!r} must be a finite number > 0")
  if not isinstance(e.freeze_backbone, bool):
    raise ConfigError(f"eval.freeze_backbone={e.freeze_backbone!r} must be True or False")
  if e.finetune_pooling not in POOLINGS:
    raise ConfigError(f"eval.finetune_pooling={e.finetune_pooling!r} is not one of "
                      f"{', '.join(map(repr, POOLINGS))}")
  if e.finetune_pooling == "pooler" and config.model.family != "encoder":
    raise ConfigError("eval.finetune_pooling='pooler' needs an encoder (the [CLS] pooler); "
                      "decoders use 'last', 'first' or 'mean'")
  finetune_tasks.check_available(config)


def _truncate(parts, budget):
  """BERT's _truncate_seq_pair: drop the last token of the longer part until they fit."""
  parts = [list(p) for p in parts]
  while sum(map(len, parts)) > budget:
    longest = max(range(len(parts)), key=lambda i: len(parts[i]))
    parts[longest].pop()
  return parts


def encode(tokenizer, family, examples, seq_len):
  """examples: list of [text] or [text_a, text_b] -> rows (numpy) of model inputs."""
  n = len(examples)
  pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
  rows = dict(input_ids=np.full((n, seq_len), pad, np.int32),
              token_type_ids=np.zeros((n, seq_len), np.int32),
              input_mask=np.zeros((n, seq_len), np.int32), length=np.zeros((n,), np.int32))
  encoded = [tokenizer.encode_batch(list(texts)) for texts in zip(*examples)]
  for r in range(n):
    parts = [enc[r] for enc in encoded]
    parts = _truncate(parts, seq_len - 1 - len(parts))
    if family == "encoder":
      ids, types = [tokenizer.cls_id], [0]
      for segment, part in enumerate(parts):
        ids += part + [tokenizer.sep_id]
        types += [segment] * (len(part) + 1)
    else:
      bos = bos_id(tokenizer)
      delim = tokenizer.sep_id if tokenizer.sep_id is not None else bos
      ids, types = [bos] + parts[0], [0] * (len(parts[0]) + 1)
      if len(parts) == 2:
        ids += [delim] + parts[1]
        types += [1] * (len(parts[1]) + 1)
      ids, types = ids + [bos], types + [types[-1]]  # the token the classifier reads
    rows["input_ids"][r, :len(ids)] = ids
    rows["token_type_ids"][r, :len(ids)] = types
    rows["input_mask"][r, :len(ids)] = 1
    rows["length"][r] = len(ids)
  return rows


def _classifier(ctx, pooling):
  """(params {"backbone", "head"}, rows, deterministic, rng) -> logits [B, C] float32."""
  model, family = ctx.model, ctx.family

  def logits_fn(params, rows, deterministic, rng):
    rngs = {"dropout": rng}
    if family == "encoder":
      b = rows["input_ids"].shape[0]
      out = model.apply({"params": params["backbone"]}, rows["input_ids"], rows["token_type_ids"],
                        rows["input_mask"], masked_positions=jnp.zeros((b, 1), jnp.int32),
                        deterministic=deterministic, rngs=rngs)  # one MLM position: cheap
    else:
      out = model.apply({"params": params["backbone"]}, rows["input_ids"],
                        doc_ids=rows["input_mask"], deterministic=deterministic, rngs=rngs)
    hidden = out["hidden"].astype(jnp.float32)                     # [B, L, D]
    mask = rows["input_mask"].astype(jnp.float32)[..., None]       # [B, L, 1]
    if pooling == "pooler":
      vector = out["pooled"].astype(jnp.float32)
    elif pooling == "first":
      vector = hidden[:, 0]
    elif pooling == "last":
      vector = jnp.take_along_axis(hidden, (rows["length"] - 1)[:, None, None], axis=1)[:, 0]
    else:
      vector = jnp.sum(hidden * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
    head = params["head"]
    return vector @ head["kernel"] + head["bias"]                  # [B, C]

  def loss_and_logits(params, rows, deterministic, rng):
    """Mean cross-entropy over the real rows (weight 1; padding rows weigh 0), and logits."""
    logits = logits_fn(params, rows, deterministic, rng)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, rows["labels"])
    w = rows["weights"]
    return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0), logits

  return loss_and_logits


def _optimizer(config):
  e = config.eval
  warmup = max(1, int(_WARMUP_FRAC * e.finetune_steps))
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.0, e.finetune_learning_rate, warmup),
       optax.linear_schedule(e.finetune_learning_rate, 0.0, max(1, e.finetune_steps - warmup))],
      [warmup])
  decay_mask = lambda tree: jax.tree.map(lambda x: x.ndim >= 2, tree)  # not LayerNorm, biases
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01,
                                 mask=decay_mask))


def train_order(seed, num_records, subset, batch, steps):
  """-> [steps, batch] record indices: epochs over the pool (all records, or a fixed random
  `subset` of them), each epoch in its own order; a pure function of its arguments."""
  shuffle = lambda *keys: np.random.default_rng([seed, _SALT, *keys])
  pool = np.arange(num_records)
  if subset:
    pool = np.sort(shuffle(0).permutation(num_records)[:subset])
  positions = np.arange(steps * batch)
  epochs = positions // len(pool)
  order = {e: pool[shuffle(1, e).permutation(len(pool))] for e in np.unique(epochs).tolist()}
  return np.asarray([order[e][p % len(pool)] for e, p in zip(epochs, positions)]).reshape(
      steps, batch)


def _read(source, indices, keys):
  records = (source.__getitems__([int(i) for i in indices]) if hasattr(source, "__getitems__")
             else [source[int(i)] for i in indices])
  return ([finetune_tasks.texts(r, keys) for r in records],
          np.asarray([int(r["label"]) for r in records], np.int32))


def run(ctx):
  config, e = ctx.config, ctx.config.eval
  task, train_src, eval_src = finetune_tasks.open_splits(config)
  pooling = resolved_pooling(config)
  loss_and_logits = _classifier(ctx, pooling)
  rows_per_step = ctx.round_rows(e.finetune_batch_size)
  dropout = config.model.dropout_rate > 0 or config.model.attention_dropout_rate > 0
  train_deterministic = e.freeze_backbone or not dropout
  tx = _optimizer(config)

  def rows_of(texts, labels):
    rows = encode(ctx.tokenizer, ctx.family, texts, config.data.seq_len)
    rows.update(labels=labels, weights=np.ones((len(labels),), np.float32))
    rows = pad_rows(rows, rows_per_step)
    rows["weights"][len(labels):] = 0.0  # padding rows carry no loss and no accuracy
    return ctx.put_rows(rows)

  @jax.jit
  def train_step(trainable, opt_state, frozen, rows, rng):
    grad_fn = jax.value_and_grad(
        lambda t: loss_and_logits({**frozen, **t}, rows, train_deterministic, rng)[0])
    loss, grads = grad_fn(trainable)
    updates, opt_state = tx.update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state, loss

  @jax.jit
  def eval_step(params, rows):  # -> (loss sum, correct sum) over the real rows
    loss, logits = loss_and_logits(params, rows, True, jax.random.key(0))
    correct = (jnp.argmax(logits, -1) == rows["labels"]).astype(jnp.float32)
    return loss * jnp.sum(rows["weights"]), jnp.sum(correct * rows["weights"])

  init = np.random.default_rng([ctx.seed, _SALT])
  head = ctx.put_replicated({
      "kernel": (init.normal(size=(config.model.d_model, task.num_classes)) * 0.02).astype(
          np.float32),
      "bias": np.zeros((task.num_classes,), np.float32)})
  # The restored params are never donated or changed: later suites use them.
  if e.freeze_backbone:
    trainable, frozen = {"head": head}, {"backbone": ctx.params}
  else:
    trainable, frozen = {"backbone": ctx.params, "head": head}, {}
  order = train_order(ctx.seed, len(train_src), e.finetune_train_examples, e.finetune_batch_size,
                      e.finetune_steps)
  dropout_key = jax.random.key(ctx.seed)
  losses, label_counts = [], np.zeros(task.num_classes)
  progress = metrics_lib.LoopProgress(f"finetune {e.finetune_task} step", len(order))
  with ctx.mesh_context():
    opt_state = jax.jit(tx.init)(trainable)
    for step, indices in enumerate(order):
      texts, labels = _read(train_src, indices, task.text_keys)
      label_counts += np.bincount(labels, minlength=task.num_classes)
      trainable, opt_state, loss = train_step(trainable, opt_state, frozen,
                                              rows_of(texts, labels),
                                              jax.random.fold_in(dropout_key, step))
      losses.append(loss)  # fetched once at the end: a host sync only per progress line
      if progress.due(step + 1):
        jax.block_until_ready(loss)
        progress.update(step + 1)
    params = {**frozen, **trainable}
    texts, labels = _read(eval_src, range(len(eval_src)), task.text_keys)
    keep = np.flatnonzero(labels >= 0)  # GLUE test splits hold label -1
    texts, labels = [texts[i] for i in keep], labels[keep]
    loss_sum = correct = 0.0
    for lo in range(0, len(labels), rows_per_step):
      s, c = ctx.fetch(eval_step(params, rows_of(texts[lo:lo + rows_per_step],
                                                 labels[lo:lo + rows_per_step])))
      loss_sum, correct = loss_sum + float(s), correct + float(c)
  losses = [float(x) for x in ctx.fetch(losses)]
  tenth = max(1, len(losses) // 10)
  prior = label_counts[label_counts > 0] / label_counts.sum()
  n = len(labels)
  return {
      "metrics": {"accuracy": correct / n, "loss": loss_sum / n,
                  "chance": float(np.bincount(labels).max() / n)},
      "task": e.finetune_task,
      "num_classes": task.num_classes,
      "train_split_examples": len(train_src),
      "train_examples": len(np.unique(order)),
      "eval_split": task.eval_split,
      "eval_examples": n,
      "freeze_backbone": e.freeze_backbone,
      "pooling": pooling,
      "training": {"steps": e.finetune_steps, "batch_size": e.finetune_batch_size,
                   "learning_rate": e.finetune_learning_rate,
                   "loss_start": float(np.mean(losses[:tenth])),
                   "loss_end": float(np.mean(losses[-tenth:])),
                   # Loss of the best constant guess on the labels trained on: below it, the
                   # classifier uses its inputs.
                   "label_prior_loss": float(-np.sum(prior * np.log(prior))),
                   "loss_curve": [round(x, 5) for x in losses]},
  }
