"""Suite `finetune`: one fine-tuning run of a classifier on the pre-trained backbone.

A linear head on one vector per example (or per word, for word-level tasks), trained with the
BERT fine-tuning recipe (AdamW, b2 0.999, eps 1e-6, weight decay 0.01 on matrices, 10% linear
warmup then linear decay to 0, global-norm clipping at 1): eval.finetune_steps steps of
eval.finetune_batch_size examples at peak eval.finetune_learning_rate (eval.finetune_train_examples
> 0: on that many train examples only, a fixed random subset, for data-efficiency curves).
eval.freeze_backbone=True trains the head only (a linear probe); otherwise every parameter is
fine-tuned. Accuracy is measured on the task's test split. The `downstream` suite
(evals.downstream) runs this over a grid of learning rates and seeds, chosen on the dev split.

Inputs (pairs truncated longest-first as BERT's run_classifier; rows as long as the task's
examples need (99% of them whole), at most data.seq_len tokens):
- encoders: [CLS] A [SEP] B [SEP] with segment ids 0/1; vector = the tanh pooler on [CLS]
  ("pooler", as BERT) or the first / mean hidden state;
- decoders: <bos> A <delim> B <eot> (GPT-1's layout, with the tokenizer's end-of-text and
  separator tokens); vector = the hidden state of the last token ("last", it has read everything)
  or the mean over tokens.
- word-level tasks: the hidden state of each word's first token (as BERT's NER), any family.

Tasks (evals.finetune_tasks): GLUE from TFDS, or offline tasks derived from the run's corpus.
`chance` is the majority-class rate of the test split (the accuracy of a constant guess).
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
_ROW_QUANTUM = 16  # fine-tuning rows are cut to the task's examples' length, rounded up to this
_FULL_LENGTH_QUANTILE = 0.99


def resolved_pooling(config) -> str:
  p = config.eval.finetune_pooling
  if p == "auto":
    return "pooler" if config.model.family == "encoder" else "last"
  return p


def _check_int(e, field, least):
  if not isinstance(e[field], int) or isinstance(e[field], bool) or e[field] < least:
    raise ConfigError(f"eval.{field}={e[field]!r} must be an integer >= {least}")


def check_learning_rate(value, field):
  if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
      or value <= 0):
    raise ConfigError(f"{field}={value!r} must be a finite number > 0")


def validate_recipe(config):
  """The eval.* fields both fine-tuning suites share."""
  e = config.eval
  for field, least in (("finetune_steps", 1), ("finetune_batch_size", 1),
                       ("finetune_train_examples", 0)):
    _check_int(e, field, least)
  if not isinstance(e.freeze_backbone, bool):
    raise ConfigError(f"eval.freeze_backbone={e.freeze_backbone!r} must be True or False")
  if e.finetune_pooling not in POOLINGS:
    raise ConfigError(f"eval.finetune_pooling={e.finetune_pooling!r} is not one of "
                      f"{', '.join(map(repr, POOLINGS))}")
  if e.finetune_pooling == "pooler" and config.model.family != "encoder":
    raise ConfigError("eval.finetune_pooling='pooler' needs an encoder (the [CLS] pooler); "
                      "decoders use 'last', 'first' or 'mean'")


def validate(config, tokenizer):
  del tokenizer
  validate_recipe(config)
  check_learning_rate(config.eval.finetune_learning_rate, "eval.finetune_learning_rate")
  finetune_tasks.check_available(config, config.eval.finetune_task)


# ------------------------------------------------------------------------------ inputs


def _truncate(parts, budget):
  """BERT's _truncate_seq_pair: drop the last token of the longer part until they fit."""
  parts = [list(p) for p in parts]
  while sum(map(len, parts)) > budget:
    longest = max(range(len(parts)), key=lambda i: len(parts[i]))
    parts[longest].pop()
  return parts


def first_tokens_of_words(text, offsets):
  """-> for each whitespace word of `text`, the index of its first token (by character offsets),
  or -1 if no token covers it (e.g. a word the tokenizer drops)."""
  firsts, pos = [], 0
  for word in text.split():
    start = text.index(word, pos)
    end = pos = start + len(word)
    hit = next((t for t, (a, b) in enumerate(offsets) if a < end and b > start), -1)
    firsts.append(hit)
  return firsts


def tokenize(tokenizer, examples):
  """examples: list of [text] or [text_a, text_b] -> per text position, the tokenizer's
  encodings (ids and character offsets), without special tokens."""
  return [tokenizer.hf.encode_batch(list(texts), add_special_tokens=False)
          for texts in zip(*examples)]


def needed_length(encoded, r) -> int:
  """Tokens row r needs untruncated: its texts plus [CLS] and a [SEP] after each (encoders), or
  <bos>, a delimiter between two texts and the final token (decoders): len(texts) + 1 either way."""
  return sum(len(enc[r].ids) for enc in encoded) + len(encoded) + 1


def encode(tokenizer, family, examples, seq_len, word_labels=None, encoded=None):
  """examples: list of [text] or [text_a, text_b] -> rows (numpy) of model inputs, each cut to
  seq_len tokens the way BERT's run_classifier cuts (the specials and the token the classifier
  reads are kept). `encoded`: the examples' `tokenize` output, when already computed.

  word_labels (word-level tasks, single texts): a label per whitespace word of each text; rows
  then carry token_labels / token_weights [n, seq_len], weight 1 at each word's first token."""
  n = len(examples)
  pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
  rows = dict(input_ids=np.full((n, seq_len), pad, np.int32),
              token_type_ids=np.zeros((n, seq_len), np.int32),
              input_mask=np.zeros((n, seq_len), np.int32), length=np.zeros((n,), np.int32))
  encoded = encoded if encoded is not None else tokenize(tokenizer, examples)
  if word_labels is not None:
    rows.update(token_labels=np.zeros((n, seq_len), np.int32),
                token_weights=np.zeros((n, seq_len), np.float32))
  for r in range(n):
    parts = [enc[r].ids for enc in encoded]
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
    if word_labels is not None:
      firsts = first_tokens_of_words(examples[r][0], encoded[0][r].offsets)
      for label, t in zip(word_labels[r], firsts):
        if 0 <= t < len(parts[0]):  # +1: the [CLS] / <bos> in front
          rows["token_labels"][r, t + 1] = label
          rows["token_weights"][r, t + 1] = 1.0
  return rows


def row_length(lengths, seq_len) -> int:
  """Rows as long as 99% of the examples need, in steps of _ROW_QUANTUM, at most seq_len: the
  longest 1% are cut (as BERT cuts at max_seq_length) rather than every row padded to them."""
  need = int(np.ceil(np.quantile(lengths, _FULL_LENGTH_QUANTILE)))
  return int(min(seq_len, -(-need // _ROW_QUANTUM) * _ROW_QUANTUM))


class TaskData:
  """A task's splits, read and tokenized once: host arrays every run of the task indexes."""

  def __init__(self, task, splits, tokenizer, family, seq_len):
    self.task = task
    texts, labels, tokens = {}, {}, {}
    for role, source in splits.items():
      records = _records(source)
      if task.word_labels:
        labels[role] = [np.asarray(r["word_labels"], np.int32) for r in records]
        texts[role] = [finetune_tasks.texts(r, task.text_keys) for r in records]
      else:
        all_labels = np.asarray([int(r["label"]) for r in records], np.int32)
        keep = np.flatnonzero(all_labels >= 0)  # GLUE test splits hold label -1
        labels[role] = all_labels[keep]
        texts[role] = [finetune_tasks.texts(records[i], task.text_keys) for i in keep]
      tokens[role] = tokenize(tokenizer, texts[role])
    needs = [needed_length(tokens[role], r) for role in texts for r in range(len(texts[role]))]
    width = row_length(needs, seq_len)
    self.splits = {}
    for role in texts:
      if task.word_labels:
        rows = encode(tokenizer, family, texts[role], width, word_labels=labels[role],
                      encoded=tokens[role])
        rows.update(labels=rows.pop("token_labels"), weights=rows.pop("token_weights"))
      else:
        rows = encode(tokenizer, family, texts[role], width, encoded=tokens[role])
        rows.update(labels=labels[role], weights=np.ones((len(labels[role]),), np.float32))
      self.splits[role] = rows

  @classmethod
  def from_rows(cls, task, splits_rows):
    """A task whose rows are already built ({role: rows as `encode` returns, plus labels and
    weights}), e.g. a synthetic task in a test."""
    self = cls.__new__(cls)
    self.task, self.splits = task, splits_rows
    return self

  def size(self, role) -> int:
    return len(self.splits[role]["length"])

  def rows(self, role, indices) -> dict:
    return {k: v[indices] for k, v in self.splits[role].items()}

  def chance(self, role) -> float:
    """The accuracy of the best constant guess on `role` (the majority label's weight)."""
    rows = self.splits[role]
    counts = np.bincount(rows["labels"].ravel(), weights=rows["weights"].ravel(),
                         minlength=self.task.num_classes)
    return float(counts.max() / counts.sum())


def _records(source):
  n = len(source)
  if hasattr(source, "__getitems__"):
    return source.__getitems__(list(range(n)))
  return [source[i] for i in range(n)]


# ------------------------------------------------------------------------------ training


def _classifier(ctx, pooling, word_level):
  """(params {"backbone", "head"}, rows, deterministic, rng) -> (mean loss, logits) where logits
  are [B, C] (or [B, L, C] for word-level tasks), float32; rows weigh by rows["weights"]."""
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
    head = params["head"]
    if word_level:
      return hidden @ head["kernel"] + head["bias"]                # [B, L, C]
    if pooling == "pooler":
      vector = out["pooled"].astype(jnp.float32)
    elif pooling == "first":
      vector = hidden[:, 0]
    elif pooling == "last":
      vector = jnp.take_along_axis(hidden, (rows["length"] - 1)[:, None, None], axis=1)[:, 0]
    else:
      vector = jnp.sum(hidden * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
    return vector @ head["kernel"] + head["bias"]                  # [B, C]

  def loss_and_logits(params, rows, deterministic, rng):
    logits = logits_fn(params, rows, deterministic, rng)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, rows["labels"])
    w = rows["weights"]
    return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0), logits

  return loss_and_logits


def _optimizer(steps):
  """AdamW with a unit peak: the step multiplies the update by -learning_rate, so one compiled
  step serves every learning rate of a grid (the same arithmetic as optax.adamw(lr * shape))."""
  warmup = max(1, int(_WARMUP_FRAC * steps))
  shape = optax.join_schedules([optax.linear_schedule(0.0, 1.0, warmup),
                                optax.linear_schedule(1.0, 0.0, max(1, steps - warmup))], [warmup])
  decay_mask = lambda tree: jax.tree.map(lambda x: x.ndim >= 2, tree)  # not LayerNorm, biases
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-6),
                     optax.add_decayed_weights(0.01, mask=decay_mask),
                     optax.scale_by_schedule(shape))


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


class Finetuner:
  """Fine-tuning runs of one task on ctx's backbone, compiled once for every (learning rate,
  seed): `run` trains from the restored parameters and scores the eval splits at given steps."""

  def __init__(self, ctx, data: TaskData, steps, batch_size, freeze_backbone, pooling,
               train_examples=0, label=""):
    self.ctx, self.data, self.steps, self.batch_size = ctx, data, steps, batch_size
    self.freeze, self.train_examples = freeze_backbone, train_examples
    self.label = label or "finetune"
    config = ctx.config
    loss_and_logits = _classifier(ctx, pooling, data.task.word_labels)
    self.rows_per_step = ctx.round_rows(batch_size)
    self.rows_per_eval = ctx.round_rows(4 * batch_size)
    dropout = config.model.dropout_rate > 0 or config.model.attention_dropout_rate > 0
    train_deterministic = freeze_backbone or not dropout
    self.tx = tx = _optimizer(steps)

    @jax.jit
    def train_step(trainable, opt_state, frozen, rows, rng, learning_rate):
      grad_fn = jax.value_and_grad(
          lambda t: loss_and_logits({**frozen, **t}, rows, train_deterministic, rng)[0])
      loss, grads = grad_fn(trainable)
      updates, opt_state = tx.update(grads, opt_state, trainable)
      updates = jax.tree.map(lambda u: -learning_rate * u, updates)
      return optax.apply_updates(trainable, updates), opt_state, loss

    @jax.jit
    def eval_step(params, rows):  # -> (loss sum, correct sum, weight sum) over the real rows
      loss, logits = loss_and_logits(params, rows, True, jax.random.key(0))
      w = rows["weights"]
      correct = (jnp.argmax(logits, -1) == rows["labels"]).astype(jnp.float32)
      return loss * jnp.sum(w), jnp.sum(correct * w), jnp.sum(w)

    self._train_step, self._eval_step = train_step, eval_step

  def _put(self, rows, count):
    real = len(rows["length"])
    rows = pad_rows(rows, count)
    rows["weights"] = rows["weights"].copy()
    rows["weights"][real:] = 0.0  # padding rows carry no loss and no accuracy
    return self.ctx.put_rows(rows)

  def evaluate(self, params, role) -> dict:
    size, loss_sum, correct, weight = self.data.size(role), 0.0, 0.0, 0.0
    for lo in range(0, size, self.rows_per_eval):
      indices = np.arange(lo, min(size, lo + self.rows_per_eval))
      rows = self.data.rows(role, indices)
      s, c, w = self.ctx.fetch(self._eval_step(params, self._put(rows, self.rows_per_eval)))
      loss_sum, correct, weight = loss_sum + float(s), correct + float(c), weight + float(w)
    return {"accuracy": correct / weight, "loss": loss_sum / weight}

  def _head(self, seed):
    init = np.random.default_rng([seed, _SALT])
    d, c = self.ctx.config.model.d_model, self.data.task.num_classes
    return self.ctx.put_replicated({
        "kernel": (init.normal(size=(d, c)) * 0.02).astype(np.float32),
        "bias": np.zeros((c,), np.float32)})

  def run(self, learning_rate, seed, eval_at=None, eval_roles=("test",)) -> dict:
    """-> {"evals": [{"step", role: {"accuracy", "loss"}}...], "loss_curve", "train_examples",
    "label_counts"}; eval_at: the steps to score at (default: the last)."""
    ctx = self.ctx
    eval_at = sorted(set(eval_at or [self.steps]))
    head = self._head(seed)
    # The restored params are never donated or changed: later runs and suites use them.
    if self.freeze:
      trainable, frozen = {"head": head}, {"backbone": ctx.params}
    else:
      trainable, frozen = {"backbone": ctx.params, "head": head}, {}
    order = train_order(seed, self.data.size("train"), self.train_examples, self.batch_size,
                        self.steps)
    dropout_key = jax.random.key(seed)
    lr = jnp.float32(learning_rate)
    losses, evals = [], []
    label_counts = np.zeros(self.data.task.num_classes)
    progress = metrics_lib.LoopProgress(f"{self.label} step", len(order))
    with ctx.mesh_context():
      opt_state = jax.jit(self.tx.init)(trainable)
      for step, indices in enumerate(order):
        rows = self.data.rows("train", indices)
        label_counts += np.bincount(rows["labels"].ravel(), weights=rows["weights"].ravel(),
                                    minlength=len(label_counts))
        trainable, opt_state, loss = self._train_step(
            trainable, opt_state, frozen, self._put(rows, self.rows_per_step),
            jax.random.fold_in(dropout_key, step), lr)
        losses.append(loss)  # fetched at the end: a host sync only per progress line
        if progress.due(step + 1):
          jax.block_until_ready(loss)
          progress.update(step + 1)
        if step + 1 in eval_at:
          params = {**frozen, **trainable}
          evals.append({"step": step + 1,
                        **{role: self.evaluate(params, role) for role in eval_roles}})
    return {"evals": evals, "loss_curve": [float(x) for x in ctx.fetch(losses)],
            "train_examples": int(len(np.unique(order))), "label_counts": label_counts}


def label_prior_loss(label_counts) -> float:
  """Loss of the best constant guess on the labels trained on: below it, inputs are used."""
  prior = label_counts[label_counts > 0] / label_counts.sum()
  return float(-np.sum(prior * np.log(prior)))


def run(ctx):
  config, e = ctx.config, ctx.config.eval
  task, splits = finetune_tasks.open_splits(config)
  data = TaskData(task, {"train": splits["train"], "test": splits["test"]}, ctx.tokenizer,
                  ctx.family, config.data.seq_len)
  pooling = resolved_pooling(config)
  tuner = Finetuner(ctx, data, e.finetune_steps, e.finetune_batch_size, e.freeze_backbone,
                    pooling, e.finetune_train_examples, label=f"finetune {e.finetune_task}")
  result = tuner.run(e.finetune_learning_rate, ctx.seed)
  losses = result["loss_curve"]
  tenth = max(1, len(losses) // 10)
  test = result["evals"][-1]["test"]
  return {
      "metrics": {"accuracy": test["accuracy"], "loss": test["loss"],
                  "chance": data.chance("test")},
      "task": e.finetune_task,
      "num_classes": task.num_classes,
      "train_split_examples": data.size("train"),
      "train_examples": result["train_examples"],
      "eval_split": task.test_split,
      "eval_examples": data.size("test"),
      "freeze_backbone": e.freeze_backbone,
      "pooling": "first token of each word" if task.word_labels else pooling,
      "training": {"steps": e.finetune_steps, "batch_size": e.finetune_batch_size,
                   "learning_rate": e.finetune_learning_rate,
                   "loss_start": float(np.mean(losses[:tenth])),
                   "loss_end": float(np.mean(losses[-tenth:])),
                   "label_prior_loss": label_prior_loss(result["label_counts"]),
                   "loss_curve": [round(x, 5) for x in losses]},
  }
