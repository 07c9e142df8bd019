"""Statistics of generated batches, as `python -m pipeline.inspect --stats N` prints them."""
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


def batch_stats(batches: list[dict], tokenizer, objective_name: str) -> dict:
  if objective_name == "causal":
    return causal_stats(batches, tokenizer)
  return encoder_stats(batches, tokenizer)
