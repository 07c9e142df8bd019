"""Print examples as the model sees them, or one JSON line of statistics.

  python -m pipeline.inspect --config configs/<name>.py --num 4
  python -m pipeline.inspect --config configs/<name>.py --stats 2000 [--split validation]

Encoder rows show segment A / B, and each predicted position as {seen|original} (seen is
[MASK], a random token, or the original). Causal rows show each packed document segment with its
position range, and the first (input -> target) pairs.
"""
import json
import math

from configs import cli, paths
from absl import flags
from ml_collections import config_flags

from configs.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file (configs/<name>.py)")
_NUM = flags.DEFINE_integer("num", 4, "examples to print")
_STATS = flags.DEFINE_integer("stats", 0, "if > 0: print one JSON line of statistics over this "
                              "many examples instead of examples")
_SPLIT = flags.DEFINE_string("split", "", "split to read; '' = data.train_split")
_STEP = flags.DEFINE_integer("step", 0, "first step to read")


def format_encoder_row(batch: dict, row: int, tok) -> str:
  n = int(batch["input_mask"][row].sum())
  ids, types = batch["input_ids"][row, :n], batch["token_type_ids"][row, :n]
  predicted = {int(p): int(o) for p, o, w in zip(batch["masked_positions"][row],
                                                 batch["masked_ids"][row],
                                                 batch["masked_weights"][row]) if w > 0}
  pieces = {0: [], 1: []}
  for i, (t, s) in enumerate(zip(ids, types)):
    text = tok.id_to_token(int(t))
    if i in predicted:
      text = "{" + text + "|" + tok.id_to_token(predicted[i]) + "}"
    pieces[int(s)].append(text)
  lines = [f"segment A ({len(pieces[0])} tokens): " + " ".join(pieces[0])]
  if pieces[1]:
    lines.append(f"segment B ({len(pieces[1])} tokens): " + " ".join(pieces[1]))
  head = f"predictions={len(predicted)} padding={len(batch['input_ids'][row]) - n}"
  if "nsp_labels" in batch:
    label = int(batch["nsp_labels"][row])
    head += f" nsp_label={label} ({'random B' if label else 'true continuation'})"
  return "\n".join([head] + lines)


def format_causal_row(batch: dict, row: int, tok) -> str:
  doc_ids, inputs = batch["doc_ids"][row], batch["input_ids"][row]
  lines = [f"segments={int(doc_ids.max())} tokens={len(inputs)}"]
  for d in range(1, int(doc_ids.max()) + 1):
    where = (doc_ids == d).nonzero()[0]
    pos = batch["positions"][row, where]
    lines.append(f"  doc {d} [{where[0]}:{where[-1] + 1}] positions {pos[0]}..{pos[-1]}: "
                 + repr(tok.decode(inputs[where])))
  pairs = [f"{tok.id_to_token(int(a))!r}->{tok.id_to_token(int(b))!r}"
           for a, b in zip(inputs[:6], batch["targets"][row, :6])]
  lines.append("  input->target: " + " ".join(pairs))
  return "\n".join(lines)


def main(argv):
  del argv
  import pipeline  # pylint: disable=g-import-not-at-top  (after flag parsing: fast --help)
  from pipeline import stats as stats_lib  # pylint: disable=g-import-not-at-top
  try:
    config = _CONFIG.value
    if config is None:
      raise ConfigError("--config is required (a configs/<name>.py file)")
    split = _SPLIT.value or config.data.train_split
  except OSError as e:  # the config file is missing or failed to load
    raise ConfigError(" ".join(str(e).split())) from None
  paths.absolutize_config(config)
  pipe = pipeline.make_pipeline(config, split)
  name = config.objective.name
  want = _STATS.value if _STATS.value > 0 else _NUM.value
  steps = math.ceil(want / pipe.host_batch_size)
  batches = [pipe.batch(_STEP.value + s) for s in range(steps)]
  if _STATS.value > 0:
    batches = [{k: v[:want - i * pipe.host_batch_size] for k, v in b.items()}
               for i, b in enumerate(batches)]
    result = stats_lib.batch_stats(batches, pipe.tokenizer, name)
    result.update(objective=name, split=split, fingerprint=pipe.fingerprint)
    print(json.dumps(result, sort_keys=True))
    return
  fmt = format_causal_row if name == "causal" else format_encoder_row
  for i in range(want):
    b, row = batches[i // pipe.host_batch_size], i % pipe.host_batch_size
    print(f"--- example {i} (step {_STEP.value + i // pipe.host_batch_size}, row {row})")
    print(fmt(b, row, pipe.tokenizer))


def _main(argv):
  try:
    main(argv)
  except ConfigError as e:
    cli.fail(e)


if __name__ == "__main__":
  cli.run(_main)
