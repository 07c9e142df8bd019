"""Rows as text, the way `python -m pipeline.inspect` prints them (each objective picks one)."""


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


def format_prefix_row(batch: dict, row: int, tok) -> str:
  """The causal view, then the prefix (seen both ways) and the predicted suffix as text."""
  p, inputs = int(batch["prefix_len"][row]), batch["input_ids"][row]
  lines = [f"prefix_len={p} (bidirectional) suffix={len(inputs) - p} (causal, predicted)",
           format_causal_row(batch, row, tok),
           "  prefix: " + repr(tok.decode(inputs[:p])),
           "  suffix: " + repr(tok.decode(inputs[p:]))]
  return "\n".join(lines)


def format_gpt_bert_row(batch: dict, row: int, tok) -> str:
  """Causal rows as the causal view; masked rows with each predicted token as
  {seen|original}, the original being the target one position earlier."""
  if int(batch["prefix_len"][row]) == 0:
    return "mode=causal\n" + format_causal_row(batch, row, tok)
  inputs, targets, w = batch["input_ids"][row], batch["targets"][row], batch["target_weights"][row]
  pieces = []
  for j, t in enumerate(inputs):
    text = tok.id_to_token(int(t))
    if j > 0 and w[j - 1] > 0:
      text = "{" + text + "|" + tok.id_to_token(int(targets[j - 1])) + "}"
    pieces.append(text)
  return (f"mode=masked next-token (bidirectional) predictions={int((w > 0).sum())}\n  "
          + " ".join(pieces))
