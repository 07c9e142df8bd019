"""Statistics of generated batches, as `python -m pipeline.inspect --stats N` prints them (each
objective names its function here as its `stats`)."""
import numpy as np


def _originals(batch: dict) -> np.ndarray:
  """[B, L] token ids before masking: input_ids with the masked positions put back."""
  original = batch["input_ids"].copy()
  rows, cols = np.nonzero(batch["masked_weights"] > 0)
  original[rows, batch["masked_positions"][rows, cols]] = batch["masked_ids"][rows, cols]
  return original


def encoder_stats(batches: list[dict], tokenizer) -> dict:
  special = np.zeros(tokenizer.vocab_size, bool)
  layout_ids = (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
  special[[i for i in layout_ids if i is not None]] = True
  counts = dict(examples=0, tokens=0, maskable=0, selected=0, mask=0, random=0, unchanged=0,
                special_selected=0, nsp_positive=0, real=0)
  for b in batches:
    original = _originals(b)
    real = b["input_mask"] > 0
    rows, cols = np.nonzero(b["masked_weights"] > 0)
    pos = b["masked_positions"][rows, cols]
    seen, orig = b["input_ids"][rows, pos], b["masked_ids"][rows, cols]
    is_mask = seen == tokenizer.mask_id
    is_same = ~is_mask & (seen == orig)
    counts["examples"] += len(b["input_ids"])
    counts["tokens"] += b["input_ids"].size
    counts["real"] += int(real.sum())
    counts["maskable"] += int((real & ~special[original]).sum())
    counts["selected"] += len(pos)
    counts["mask"] += int(is_mask.sum())
    counts["unchanged"] += int(is_same.sum())
    counts["random"] += int((~is_mask & ~is_same).sum())
    counts["special_selected"] += int(special[orig].sum())
    if "nsp_labels" in b:
      counts["nsp_positive"] += int((b["nsp_labels"] == 0).sum())
  sel = max(1, counts["selected"])
  out = dict(examples=counts["examples"],
             masked_fraction=counts["selected"] / max(1, counts["maskable"]),
             mask_token_fraction=counts["mask"] / sel,
             random_token_fraction=counts["random"] / sel,
             unchanged_fraction=counts["unchanged"] / sel,
             special_tokens_selected=counts["special_selected"],
             padding_fraction=1 - counts["real"] / max(1, counts["tokens"]),
             mean_predictions_per_seq=counts["selected"] / max(1, counts["examples"]))
  if any("nsp_labels" in b for b in batches):
    out["nsp_positive_rate"] = counts["nsp_positive"] / max(1, counts["examples"])
  return out


def causal_stats(batches: list[dict], tokenizer) -> dict:
  tokens = sum(b["input_ids"].size for b in batches)
  weights = sum(float(b["target_weights"].sum()) for b in batches)
  docs = np.concatenate([b["doc_ids"].max(axis=1) for b in batches])
  eot = sum(int((b["input_ids"] == tokenizer.eot_id).sum()) for b in batches)
  shifted = all(np.array_equal(b["targets"][:, :-1], b["input_ids"][:, 1:]) for b in batches)
  return dict(examples=int(len(docs)), padding_fraction=1 - weights / max(1, tokens),
              mean_segments_per_row=float(docs.mean()), eot_fraction=eot / max(1, tokens),
              targets_are_shifted_inputs=bool(shifted))


def prefix_lm_stats(batches: list[dict], tokenizer) -> dict:
  """causal_stats plus the prefix lengths and whether the loss sits on the suffix alone."""
  out = causal_stats(batches, tokenizer)
  prefix = np.concatenate([b["prefix_len"] for b in batches])
  length = batches[0]["input_ids"].shape[1]
  suffix_only = all(np.array_equal(b["target_weights"] > 0,
                                   np.arange(length)[None, :] >= b["prefix_len"][:, None] - 1)
                    for b in batches)
  weights = sum(float(b["target_weights"].sum()) for b in batches)
  tokens = sum(b["input_ids"].size for b in batches)
  out.update(mean_prefix_fraction=float(prefix.mean()) / length,
             min_prefix_len=int(prefix.min()), max_prefix_len=int(prefix.max()),
             loss_token_fraction=weights / max(1, tokens), loss_on_suffix_only=bool(suffix_only))
  out.pop("padding_fraction")  # prefix targets have weight 0 but are real tokens
  return out


def gpt_bert_stats(batches: list[dict], tokenizer) -> dict:
  """Causal / masked row shares and BERT's masking statistics over the masked rows.

  A masked row's original token j is targets[j - 1] where target_weights[j - 1] > 0."""
  special = np.zeros(tokenizer.vocab_size, bool)
  special[tokenizer.special_ids] = True
  counts = dict(rows=0, causal_rows=0, maskable=0, selected=0, mask=0, same=0, special=0)
  causal_shifted = True
  for b in batches:
    masked = b["prefix_len"] > 0
    counts["rows"] += len(masked)
    counts["causal_rows"] += int((~masked).sum())
    c_in, c_t = b["input_ids"][~masked], b["targets"][~masked]
    causal_shifted &= bool(np.array_equal(c_t[:, :-1], c_in[:, 1:]))
    ids, targets, w = b["input_ids"][masked], b["targets"][masked], b["target_weights"][masked]
    chosen = w[:, :-1] > 0                       # [R, L-1]: token j = 1..L-1 was selected
    seen, orig = ids[:, 1:][chosen], targets[:, :-1][chosen]
    original = ids[:, 1:].copy()
    original[chosen] = orig
    counts["maskable"] += int((~special[original]).sum())
    counts["selected"] += int(chosen.sum())
    counts["mask"] += int((seen == tokenizer.mask_id).sum())
    counts["same"] += int(((seen != tokenizer.mask_id) & (seen == orig)).sum())
    counts["special"] += int(special[orig].sum()) + int((w[:, -1] > 0).sum())
  sel = max(1, counts["selected"])
  return dict(examples=counts["rows"], causal_row_fraction=counts["causal_rows"] / max(1, counts["rows"]),
              causal_targets_are_shifted_inputs=causal_shifted,
              masked_fraction=counts["selected"] / max(1, counts["maskable"]),
              mask_token_fraction=counts["mask"] / sel,
              unchanged_fraction=counts["same"] / sel,
              random_token_fraction=(sel - counts["mask"] - counts["same"]) / sel,
              special_tokens_selected=counts["special"],
              mean_predictions_per_masked_row=counts["selected"] / max(1, counts["rows"]
                                                                       - counts["causal_rows"]))
