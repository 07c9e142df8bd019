"""What every suite gets: the restored parameters on this run's mesh, and helpers to feed it.

Suites build their own small batches (cloze rows, fine-tuning pairs, prompts). Rows are padded to a
multiple of the batch-sharding degree and placed as global arrays sharded over the batch axes, so
the models' logical sharding constraints hold exactly as in training, on one CPU or a pod.
Every process holds the same host arrays (suites derive them from eval.seed), so each process
contributes the shards its devices own.
"""
import dataclasses
import os
from typing import Any

import jax
import numpy as np
from absl import logging

from trainlib import rundir, sharding
from trainlib import step as step_lib
from trainlib.state import TrainSetup


@dataclasses.dataclass
class EvalContext:
  config: Any
  workdir: str
  setup: TrainSetup          # model, objective, mesh, abstract state (trainlib.state)
  params: Any                # restored parameters, sharded like training
  step: int                  # checkpoint step the params come from
  tokenizer: Any             # pipeline.Tokenizer of the run

  @property
  def model(self):
    return self.setup.model

  @property
  def mesh(self):
    return self.setup.mesh

  @property
  def family(self) -> str:
    return self.config.model.family

  @property
  def seed(self) -> int:
    return int(self.config.eval.seed)

  @property
  def out_dir(self) -> str:
    return rundir.eval_dir(self.workdir)

  @property
  def is_primary(self) -> bool:
    return jax.process_index() == 0

  def mesh_context(self):
    """Mesh + logical rules in scope: trace every model call inside this."""
    return step_lib.mesh_context(self.setup)

  @property
  def row_multiple(self) -> int:
    """Rows of every batch must be a multiple of this (the batch-sharding degree)."""
    return sharding.batch_degree(self.config, self.mesh)

  def round_rows(self, rows: int) -> int:
    m = self.row_multiple
    return max(m, -(-rows // m) * m)

  def put_rows(self, tree):
    """Host arrays [B, ...] (B a multiple of row_multiple) -> global arrays sharded by rows."""
    def put(x):
      x = np.asarray(x)
      target = sharding.batch_sharding(self.config, self.mesh, x.ndim)
      return jax.make_array_from_callback(x.shape, target, lambda index: x[index])
    return jax.tree.map(put, tree)

  def fetch(self, tree):
    """Global arrays -> host numpy (whole arrays on every process, also when sharded over hosts)."""
    if jax.process_count() == 1:
      return jax.device_get(tree)
    from jax.experimental import multihost_utils  # late: start-up time (multi-host runs only)
    return multihost_utils.process_allgather(tree, tiled=True)

  def put_replicated(self, tree):
    """Device arrays of any placement -> replicated over the run's mesh (e.g. a fresh cache)."""
    return jax.device_put(tree, sharding.replicated(self.mesh))

  def log(self, message, *args):
    if self.is_primary:
      logging.info(message, *args)


def pad_rows(arrays: dict, rows: int) -> dict:
  """Pads every [n, ...] array to [rows, ...] by repeating row 0 (callers drop the extra rows)."""
  out = {}
  for key, x in arrays.items():
    x = np.asarray(x)
    extra = rows - x.shape[0]
    out[key] = np.concatenate([x, np.repeat(x[:1], extra, axis=0)]) if extra > 0 else x
  return out


def bos_id(tokenizer) -> int:
  """The token a decoder's documents start with: end-of-text (GPT-2), else [SEP] (wordpiece)."""
  for candidate in (tokenizer.eot_id, tokenizer.sep_id, tokenizer.cls_id):
    if candidate is not None:
      return int(candidate)
  raise ValueError(f"tokenizer {tokenizer.kind!r} has no end-of-text, [SEP] or [CLS] token")


def display_tokens(tokenizer, ids) -> list[str]:
  """Readable token strings: WordPiece as is ('##ing'); byte-level pieces decoded (' quick')."""
  specials = set(tokenizer.special_ids)
  if tokenizer.kind == "wordpiece":
    return [tokenizer.id_to_token(i) for i in ids]
  return [tokenizer.id_to_token(i) if int(i) in specials else tokenizer.decode([i]) for i in ids]
