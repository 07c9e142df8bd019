"""Trivial baselines of a fine-tuning task, on the same tokenized rows as the model.

- majority: the accuracy of a constant guess (the most frequent label of the split);
- bag of words: logistic regression on token counts (log1p), one bag per text of an example and,
  for pairs, a bag of the tokens both texts share; the L2 strength chosen on the dev split;
- bag of n-grams: the same with token bigrams added (a stronger, still order-blind-beyond-two
  reference);
- word-level tasks: token identity, the majority label of each first-token id in the train split
  (the global majority for ids never seen), i.e. everything a model could learn without context.
Token ids are hashed into _BUCKETS buckets per block, so a baseline's size does not grow with the
vocabulary.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

_BUCKETS = 1024
_L2 = (1e-4, 1e-3, 1e-2)
_STEPS = 200
_MAX_TRAIN = 4_000  # the first 4k train examples: a [4k, 5 x 1024] float32 design matrix at most


def majority(data, role="test") -> float:
  return data.chance(role)


def _hash(x):
  return (x.astype(np.int64) * 2654435761) % _BUCKETS


def features(rows, bigrams: bool) -> np.ndarray:
  """[n, blocks * _BUCKETS] float32 log1p counts: a block per segment (and per n), plus shared."""
  ids, types, mask = rows["input_ids"], rows["token_type_ids"], rows["input_mask"].astype(bool)
  n = ids.shape[0]
  pair = bool((types[mask] > 0).any())
  segments = 2 if pair else 1
  blocks = segments * (2 if bigrams else 1) + (1 if pair else 0)
  width = blocks * _BUCKETS
  r, c = np.nonzero(mask)
  flat = [r * width + types[r, c] * _BUCKETS + _hash(ids[r, c])]
  if bigrams:
    br, bc = np.nonzero(mask[:, 1:] & mask[:, :-1] & (types[:, 1:] == types[:, :-1]))
    big = _hash(ids[br, bc].astype(np.int64) * 1_000_003 + ids[br, bc + 1])
    flat.append(br * width + (segments + types[br, bc]) * _BUCKETS + big)
  out = np.bincount(np.concatenate(flat), minlength=n * width).astype(np.float32).reshape(n, width)
  if pair:
    shared = (blocks - 1) * _BUCKETS
    out[:, shared:] = np.minimum(out[:, :_BUCKETS], out[:, _BUCKETS:2 * _BUCKETS])
  return np.log1p(out)


@jax.jit
def _fit(x, y, l2, num_classes_one_hot):
  """Full-batch Adam on the mean cross-entropy + l2 |W|^2: a convex problem."""
  d, c = x.shape[1], num_classes_one_hot.shape[0]
  params = {"w": jnp.zeros((d, c)), "b": jnp.zeros((c,))}
  tx = optax.adam(0.05)

  def loss(p):
    logits = x @ p["w"] + p["b"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return ce + l2 * jnp.sum(p["w"] ** 2)

  def step(carry, _):
    p, s = carry
    g = jax.grad(loss)(p)
    u, s = tx.update(g, s, p)
    return (optax.apply_updates(p, u), s), None

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=_STEPS)
  return params


def _accuracy(params, x, y):
  return float(np.mean(np.argmax(np.asarray(x @ params["w"] + params["b"]), -1) == y))


def bag_of_words(data, bigrams=False) -> dict:
  """{"dev", "test", "train": accuracy, "l2"} of the logistic regression (L2 chosen on dev)."""
  train = data.splits["train"]
  n = min(len(train["length"]), _MAX_TRAIN)
  x, y = features({k: v[:n] for k, v in train.items()}, bigrams), train["labels"][:n]
  xd, yd = features(data.splits["dev"], bigrams), data.splits["dev"]["labels"]
  xt, yt = features(data.splits["test"], bigrams), data.splits["test"]["labels"]
  classes = jnp.zeros((data.task.num_classes,))
  fits = [(_accuracy(p, xd, yd), l2, p) for l2 in _L2
          for p in [_fit(jnp.asarray(x), jnp.asarray(y), l2, classes)]]
  dev, l2, params = max(fits, key=lambda f: f[0])
  return {"dev": dev, "test": _accuracy(params, xt, yt), "l2": l2,
          "train": _accuracy(params, x, y)}  # how well it fits what it was fitted on


def token_identity(data) -> dict:
  """Word-level tasks: {"dev", "test": accuracy} of predicting each word's label from its first
  token's id alone (the train split's majority label for that id)."""
  def positions(role):
    rows = data.splits[role]
    r, c = np.nonzero(rows["weights"] > 0)
    return rows["input_ids"][r, c], rows["labels"][r, c]
  ids, labels = positions("train")
  num_classes = data.task.num_classes
  counts = np.zeros((int(max(ids.max(), 0)) + 1, num_classes))
  np.add.at(counts, (ids, labels), 1.0)
  default = int(np.bincount(labels, minlength=num_classes).argmax())
  out = {}
  for role in ("dev", "test"):
    i, y = positions(role)
    seen = i < len(counts)
    guess = np.full(len(i), default)
    guess[seen] = np.where(counts[i[seen]].sum(-1) > 0, counts[i[seen]].argmax(-1), default)
    out[role] = float(np.mean(guess == y))
  return out
