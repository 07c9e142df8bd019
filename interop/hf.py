r"""GPT-2, BERT, Llama and ModernBERT weights in and out of pancake, through HF's safetensors layout.

Import (config: `configs/from_hf.py:DIR`, which sets init.from_hf = DIR):
    train.py / eval.py start from DIR's weights whenever the workdir holds no checkpoint
    (trainlib/step0.py and evals/runner.py call `init_state` / `load_params` here).
Export (`export` here; the command, interop/export.py, restores a run and calls it):
    python -m interop.hf export --config C --workdir W [--step S] --out DIR [--config.a.b=v]
writes DIR/config.json, DIR/model.safetensors, DIR/README.md (a model card: the source, the
class, each head's state) and the tokenizer files (tokenizer.json without padding or truncation
settings, tokenizer_config.json and vocab.json + merges.txt or vocab.txt), loadable with
AutoModelForCausalLM / AutoModelForPreTraining / AutoModelForMaskedLM / AutoModel and
AutoTokenizer; every file gets the same mode. With init.from_hf set
(configs/from_hf.py:HF_DIR) and no checkpoint in W (or no --workdir), the imported weights are
exported as they are, without a training step.

Heads (`head_status`, `plan_export`): what came in goes out. A head imported from init.from_hf
or trained by the run's objective is written (a BertModel's pooler too); one that was initialised
at random because the checkpoint lacked it and never trained since is left out where the
class allows (a BertModel stays a BertModel) and otherwise written, and either way named in
config.json (`pancake_untrained_heads`), README.md and a warning line.

Sharded import: every parameter is made with `jax.make_array_from_callback` on its target
NamedSharding (from trainlib.state.build_setup); the callback of each device reads, from the
lazily opened safetensors file, only the slice that device holds (interop/names.py says which
HF slice that is), so no device and no host buffer ever holds a full copy of a sharded tensor.
Export gathers each parameter to the host (orbax restores any checkpoint onto this process's
mesh), rebuilds the HF tensors from the same table and writes them with safetensors.numpy; it
runs as one process (a pod's checkpoint exports from any single machine with the host memory
for one copy of the parameters).

Bad input (a missing file, a truncated safetensors, a missing tensor or a shape that does not
fit, an unknown model_type, an override that contradicts config.json, a tokenizer larger than
vocab_size, a model HF cannot represent) is a ConfigError naming the path and field, raised
before anything is written (entry points: exit code 2).
"""

import dataclasses
import json
import os

import jax
import numpy as np
from absl import logging
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

import objectives
from configs.errors import ConfigError
from interop import hf_config, names
from trainlib import fs

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


class Checkpoint:
  """The safetensors file(s) of an HF directory, opened lazily: tensors are read by slice."""

  def __init__(self, hf_dir):
    self.hf_dir = hf_dir
    single, index = os.path.join(hf_dir, WEIGHTS_FILE), os.path.join(hf_dir, INDEX_FILE)
    if os.path.exists(single):
      files = [single]
    elif os.path.exists(index):
      weight_map = hf_config.read_json(index, "").get("weight_map", {})
      files = sorted({os.path.join(hf_dir, f) for f in weight_map.values()})
    else:
      other = [f for f in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
               if os.path.exists(os.path.join(hf_dir, f))]
      hint = (f" (it holds {', '.join(other)}: re-save with save_pretrained(..., "
              "safe_serialization=True))" if other else "")
      raise ConfigError(f"{single} does not exist{hint}; pancake reads HF weights from "
                        f"{WEIGHTS_FILE} or {INDEX_FILE}")
    self.files, self.where = {}, {}
    for path in files:
      try:
        handle = safe_open(path, framework="numpy")
        keys = handle.keys()
      except (SafetensorError, OSError) as e:
        raise ConfigError(f"{path} is not a readable safetensors file ({e}); re-download or "
                          "re-save it") from None
      self.files[path] = handle
      for key in keys:
        self.where[key] = path
    self.size = {path: os.path.getsize(path) for path in files}

  def names(self):
    return set(self.where)

  def shape(self, name):
    return tuple(self.files[self.where[name]].get_slice(name).get_shape())

  def dtype(self, name):
    return self.files[self.where[name]].get_slice(name).get_dtype()

  def read(self, name, index):
    """tensor[index] as a numpy array (only that slice is read from disk)."""
    return self.files[self.where[name]].get_slice(name)[index]


# ------------------------------------------------------------------ which rule serves each leaf


def _path_key(path):
  return tuple(getattr(k, "key", getattr(k, "name", k)) for k in path)


def _leaf_rules(config, params_tree):
  """{leaf path tuple: (rule, layers)}: layers = None (global), int (unrolled), "all" (scanned)."""
  _, global_rules, layer_rules, _ = names.family_rules(config.model)
  by_ours = {r.ours: r for r in global_rules}
  by_layer = {r.ours: r for r in layer_rules}
  out = {}
  for path, _ in jax.tree_util.tree_flatten_with_path(params_tree)[0]:
    key = _path_key(path)
    if key[:2] == ("stack", "layers"):
      rule, layers = by_layer.get("/".join(key[2:])), "all"
    elif key[0] == "stack":
      rule, layers = by_layer.get("/".join(key[2:])), int(key[1].rsplit("_", 1)[1])
    else:
      rule, layers = by_ours.get("/".join(key)), None
    if rule is None:
      raise ConfigError(f"parameter {'/'.join(key)} has no Hugging Face counterpart in "
                        f"interop/names.py for model.family={config.model.family!r}")
    out[key] = (rule, layers)
  return out


def _layer_list(layers, num_layers):
  return list(range(num_layers)) if layers == "all" else [layers]


# ------------------------------------------------------------------ import


def _norm(index, shape):
  out = []
  for s, n in zip(index, shape):
    start, stop, step = s.indices(n)
    if step != 1:
      raise ValueError(f"strided shard index {s}")
    out.append((start, stop))
  return out


def _read_block(ckpt, name, rule, ours_shape, index):
  """The pancake block `index` (slices of one layer's shape) read from HF tensor `name`."""
  bounds = _norm(index, ours_shape)
  axes = rule.axes or tuple((a,) for a in range(len(ours_shape)))
  hf_index, inner = [], []
  for j, group in enumerate(axes):
    first = group[0]
    rest = int(np.prod([ours_shape[a] for a in group[1:]], dtype=np.int64))
    full = rest * ours_shape[first]
    offset = rule.part * full if j == rule.split_axis and rule.parts > 1 else 0
    start, stop = bounds[first]
    hf_index.append(slice(offset + start * rest, offset + stop * rest))
    inner.append([stop - start] + [ours_shape[a] for a in group[1:]])
  block = ckpt.read(name, tuple(hf_index))
  block = block.reshape([n for group in inner for n in group])
  order = [a for group in axes for a in group]
  block = block[tuple(slice(*bounds[a]) if k > 0 else slice(None)  # the first of each group is cut
                      for group in axes for k, a in enumerate(group))]
  return np.transpose(block, np.argsort(order))


def _expect(ckpt, name, want, rule_ours, hf_dir):
  """ConfigError unless tensor `name` has shape `want` and a dtype numpy can read."""
  got = ckpt.shape(name)
  if got != want:
    raise ConfigError(f"{hf_dir}: tensor {name} has shape {list(got)} but pancake's {rule_ours} "
                      f"needs {list(want)} (config.json and the weights disagree)")
  if ckpt.dtype(name) not in _NUMPY_DTYPES:
    raise ConfigError(f"{hf_dir}: tensor {name} is {ckpt.dtype(name)}; pancake reads "
                      f"{', '.join(_NUMPY_DTYPES)} (re-save the model in float32)")


def _resolve_names(ckpt, prefix):
  """HF name as the table writes it -> name in this checkpoint (prefix present or not; old
  LayerNorm.gamma/beta)."""
  have = ckpt.names()

  def resolve(name):
    candidates = [name, name[len(prefix):] if name.startswith(prefix) else prefix + name]
    for c in list(candidates):
      if c.endswith("LayerNorm.weight"):
        candidates.append(c[:-len("weight")] + "gamma")
      if c.endswith("LayerNorm.bias"):
        candidates.append(c[:-len("bias")] + "beta")
    return next((c for c in candidates if c in have), None)
  return resolve


def plan_import(config, abstract_params, hf_dir=None):
  """Checks every tensor the model needs (names, shapes, dtypes) against the checkpoint.

  -> (checkpoint, {leaf: (rule, layers, [HF names] or None = initialised)}, missing head groups).
  Raises ConfigError before anything is read or written.
  """
  hf_dir = hf_dir or config.init.from_hf
  ckpt = Checkpoint(hf_dir)
  prefix, _, _, ignored = names.family_rules(config.model)
  resolve = _resolve_names(ckpt, prefix)
  leaves = dict((_path_key(p), leaf) for p, leaf in
                jax.tree_util.tree_flatten_with_path(abstract_params)[0])
  plan, missing, used = {}, set(), set()
  for key, (rule, layers) in _leaf_rules(config, abstract_params).items():
    shape = leaves[key].shape[1:] if layers == "all" else leaves[key].shape
    want = names.hf_shape(rule, shape)
    if layers is None:
      wanted = [names.hf_name(rule, prefix)]
    else:  # None: a layer below rule.from_layer, which HF does not have (filled, not read)
      wanted = [names.hf_name(rule, prefix, i) if i >= rule.from_layer else None
                for i in _layer_list(layers, config.model.num_layers)]
    if all(w is None for w in wanted):
      plan[key] = (rule, layers, wanted)
      continue
    found = [resolve(n) if n is not None else None for n in wanted]
    if all(f is None for f, w in zip(found, wanted) if w is not None) and rule.group != "body":
      missing.add(rule.group)
      plan[key] = (rule, layers, None)
      continue
    absent = [w for w, f in zip(wanted, found) if f is None and w is not None]
    if absent:
      raise ConfigError(f"{hf_dir}: the checkpoint has no tensor {absent[0]} (needed for "
                        f"{'/'.join(key)}); is config.json from the same model?")
    found_names = [f for f in found if f is not None]
    for f in found_names:
      _expect(ckpt, f, want, "/".join(key), hf_dir)
    used.update(found_names)
    plan[key] = (rule, layers, found)
  unused = sorted(n for n in ckpt.names() - used if not n.endswith(ignored))
  if unused:
    logging.warning("%s: %d tensors not used by this model: %s", hf_dir, len(unused),
                    ", ".join(unused[:8]) + (" ..." if len(unused) > 8 else ""))
  return ckpt, plan, missing


def load_params(config, abstract_params, fallback=None, hf_dir=None):
  """HF weights as pancake parameters, each made on its sharding from per-device slices.

  `abstract_params`: ShapeDtypeStructs with shardings (setup.abstract_state.params).
  `fallback()`: sharded parameters to take heads the checkpoint lacks from (e.g. random init).
  """
  hf_dir = hf_dir or config.init.from_hf
  ckpt, plan, missing = plan_import(config, abstract_params, hf_dir)
  if missing:
    logging.warning("%s has no %s: initialised from config.seed", hf_dir,
                    ", ".join(names.head_groups(config.model)[g] for g in sorted(missing)))
    if fallback is None:
      raise ConfigError(f"{hf_dir} lacks {', '.join(sorted(missing))} and nothing initialises them")
  initialised = fallback() if missing else None
  flat_init = (dict((_path_key(p), v) for p, v in
                    jax.tree_util.tree_flatten_with_path(initialised)[0]) if missing else {})

  def read_layer(name, rule, shape, index, dtype):
    if name is None:  # below rule.from_layer: the identity norm pancake's init also gives
      fill = 1.0 if rule.ours.endswith("/scale") else 0.0
      return np.full([b - a for a, b in _norm(index, shape)], fill, dtype)
    return _read_block(ckpt, name, rule, shape, index)

  def make(path, leaf):
    key = _path_key(path)
    rule, layers, found = plan[key]
    if found is None:
      return flat_init[key]
    dtype = leaf.dtype
    if layers == "all":
      shape = leaf.shape[1:]

      def callback(index):  # layers lo..hi of this device's block, written in place
        lo, hi = _norm(index[:1], leaf.shape[:1])[0]
        block = None
        for n, i in enumerate(range(lo, hi)):
          layer = read_layer(found[i], rule, shape, index[1:], dtype)
          if block is None:
            block = np.empty((hi - lo,) + layer.shape, dtype)
          block[n] = layer
        return block
    else:
      def callback(index):
        return read_layer(found[0], rule, leaf.shape, index, dtype).astype(dtype, copy=False)
    return jax.make_array_from_callback(leaf.shape, leaf.sharding, callback)

  params = jax.tree_util.tree_map_with_path(make, abstract_params)
  logging.info("imported %d tensors from %s",
               sum(sum(n is not None for n in p[2] or []) for p in plan.values()), hf_dir)
  return params


def check(config, tokenizer, abstract_params):
  """Every import check: config.json vs the config, the tokenizer vs config.json, and every
  tensor's name, shape and dtype vs the model. Reads headers only; raises ConfigError."""
  hf_config.check_against_config(config)
  check_tokenizer(config, tokenizer)
  plan_import(config, abstract_params)


def check_tokenizer(config, tokenizer):
  """The tokenizer from init.from_hf's files must fit the checkpoint's vocabulary and ids."""
  hf_dir = config.init.from_hf
  path = os.path.join(hf_dir, hf_config.CONFIG_FILE)
  cfg = hf_config.read_config(hf_dir)
  source = config.data.tokenizer_file or config.data.vocab_file or "the tokenizer"
  if tokenizer.vocab_size > cfg["vocab_size"]:
    raise ConfigError(f"{source} has {tokenizer.vocab_size} tokens but {path} gives "
                      f"vocab_size={cfg['vocab_size']}: the tokenizer is not this model's")
  ids = {"pad_token_id": ("padding", tokenizer.pad_id)}
  if cfg["model_type"] in ("gpt2", "llama"):
    ids["eos_token_id"] = ("end-of-text", tokenizer.eot_id)
  for key, (role, ours) in ids.items():
    theirs = cfg.get(key)
    if theirs is not None and ours is not None and theirs != ours and theirs < cfg["vocab_size"]:
      raise ConfigError(f"{path}: {key}={theirs} but the {role} token of {source} has id "
                        f"{ours}: the tokenizer is not this model's")


# ------------------------------------------------------------------ export


UNTRAINED, IMPORTED, TRAINED, CARRIED = "untrained", "imported", "trained", "carried"


def head_status(config, params, steps_trained):
  """{head group: "imported" | "trained" | "carried" | "untrained"} for the heads the model has.

  A head is trained when the run took steps (steps_trained > 0) under an objective whose
  loss_terms hold the term that trains it (names.HEAD_TRAINED_BY); otherwise it holds what its
  init gave it: init.from_hf's tensors (imported) or, where that checkpoint lacks the head, a
  random init (untrained); init.from_run's arrays (carried); else a random init (untrained).
  `params`: arrays or ShapeDtypeStructs of the model's parameter tree.
  """
  groups = {rule.group for rule, _ in _leaf_rules(config, params).values()} - {"body"}
  terms = objectives.get(config.objective.name).loss_terms if steps_trained > 0 else ()
  start = dict.fromkeys(groups, UNTRAINED)
  if config.init.from_hf:
    try:  # headers only; the weights may have moved since a run trained from them
      _, _, missing = plan_import(config, params)
    except ConfigError as e:
      logging.warning("cannot tell which heads init.from_hf lacked (%s): every head is taken "
                      "as imported", str(e)[:300])
      missing = set()
    start = {g: UNTRAINED if g in missing else IMPORTED for g in groups}
  elif config.init.from_run:
    start = dict.fromkeys(groups, CARRIED)
  return {g: TRAINED if names.HEAD_TRAINED_BY.get(g) in terms else s for g, s in start.items()}


@dataclasses.dataclass
class ExportPlan:
  """What an export writes: the transformers class, the head groups written, and a note for
  every head that is left out or written untrained (config.json and README.md name them)."""
  architecture: str
  written: set      # head groups
  status: dict      # head_status
  notes: dict       # {head (names.head_groups' words): what the export did with it}
  untrained: list   # the heads (in words) that never trained, written or not


def plan_export(config, status):
  """ExportPlan for head `status` (head_status): untrained heads are left out where the class
  can lack them (BertModel when the MLM head never trained), imported ones kept (a pooler that
  came in goes out)."""
  present = {g for g, s in status.items() if s != UNTRAINED}
  cls = hf_config.architecture_class(config.model, present)
  required, optional = hf_config.CLASS_HEADS.get(cls, (set(), set()))
  written = (required | (optional & present)) & status.keys()
  described = names.head_groups(config.model)
  never = ("random init (init.from_hf has none), never trained" if config.init.from_hf
           else "random init, never trained")
  notes, untrained = {}, sorted(described.get(g, g) for g, s in status.items() if s == UNTRAINED)
  for group in sorted(status):
    what = described.get(group, group)
    if status[group] == UNTRAINED:
      notes[what] = (f"written untrained ({cls} needs it): {never}" if group in written
                     else f"left out: {never}")
    elif group not in written:
      notes[what] = f"left out: {cls} has none"
  return ExportPlan(cls, written, status, notes, untrained)


def export_tensors(config, params, plan):
  """Host numpy parameters -> {HF name: float32 array} (the inverse of the import) of the
  head groups `plan` writes."""
  prefix, _, _, _ = names.family_rules(config.model)
  if plan.architecture in hf_config.UNPREFIXED_CLASSES:
    prefix = ""
  tensors = {}
  flat = dict((_path_key(p), np.asarray(v)) for p, v in
              jax.tree_util.tree_flatten_with_path(params)[0])
  for key, (rule, layers) in _leaf_rules(config, params).items():
    if rule.group != "body" and rule.group not in plan.written:
      continue
    value = flat[key]
    per_layer = value.shape[1:] if layers == "all" else value.shape
    axes = rule.axes or tuple((a,) for a in range(len(per_layer)))
    order = [a for group in axes for a in group]
    part_shape = [int(np.prod([per_layer[a] for a in g], dtype=np.int64)) for g in axes]
    for n, layer in enumerate(_layer_list(layers, config.model.num_layers)):
      if layers is not None and layer < rule.from_layer:
        continue  # HF has no such tensor (pancake's is unused there)
      block = value[n] if layers == "all" else value
      name = (names.hf_name(rule, prefix, layer) if layers is not None
              else names.hf_name(rule, prefix))
      part = np.transpose(block, order).reshape(part_shape)
      if rule.parts == 1:
        tensors[name] = np.ascontiguousarray(part, dtype=np.float32)
        continue
      if name not in tensors:
        tensors[name] = np.zeros(names.hf_shape(rule, per_layer), np.float32)
      width = part_shape[rule.split_axis]
      where = [slice(None)] * len(part_shape)
      where[rule.split_axis] = slice(rule.part * width, (rule.part + 1) * width)
      tensors[name][tuple(where)] = part
  return tensors


def write_tokenizer(tokenizer, max_len, out_dir):
  """tokenizer.json (no padding or truncation settings: transformers pads per call),
  tokenizer_config.json and the classic vocabulary files of HF's layout -> the paths written."""
  spec = json.loads(tokenizer.hf.to_str())
  spec["padding"] = spec["truncation"] = None
  model = spec["model"]
  written = [os.path.join(out_dir, name) for name in ("tokenizer.json", "tokenizer_config.json")]
  with open(written[0], "w", encoding="utf-8") as f:
    f.write(json.dumps(spec, ensure_ascii=False))
  token = lambda i: tokenizer.id_to_token(i) if i is not None else None
  if tokenizer.kind == "wordpiece":
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    written.append(os.path.join(out_dir, "vocab.txt"))
    with open(written[-1], "w", encoding="utf-8") as f:
      f.writelines(t + "\n" for t, _ in vocab)
    lowercase = bool(spec.get("normalizer") and spec["normalizer"].get("lowercase"))
    tok_cfg = dict(tokenizer_class="BertTokenizer", do_lower_case=lowercase,
                   unk_token=token(tokenizer.unk_id), sep_token=token(tokenizer.sep_id),
                   pad_token=token(tokenizer.pad_id), cls_token=token(tokenizer.cls_id),
                   mask_token=token(tokenizer.mask_id), tokenize_chinese_chars=True,
                   strip_accents=None)
  else:
    eot = token(tokenizer.eot_id)
    tok_cfg = dict(tokenizer_class="GPT2Tokenizer" if tokenizer.kind == "bpe" else
                   "PreTrainedTokenizerFast", bos_token=eot, eos_token=eot, unk_token=eot,
                   add_prefix_space=False)
    if tokenizer.pad_id is not None:
      tok_cfg["pad_token"] = token(tokenizer.pad_id)
    if tokenizer.kind == "bpe":
      written += [os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt")]
      fs.write_json(written[-2], model["vocab"])
      with open(written[-1], "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines((m if isinstance(m, str) else " ".join(m)) + "\n" for m in model["merges"])
  tok_cfg["model_max_length"] = max_len
  fs.write_json(written[1], {k: v for k, v in tok_cfg.items() if v is not None})
  return written


README_FILE = "README.md"
_STATUS_WORDS = {IMPORTED: "imported from init.from_hf", TRAINED: "trained by this run",
                 CARRIED: "carried from init.from_run"}


def model_card(config, plan, source):
  """README.md of an export: where the weights come from, the class, and every head's state."""
  described = names.head_groups(config.model)
  lines = [f"# {config.name}", "",
           f"Exported by pancake (`python -m interop.hf export`) from {source}.", "",
           f"Loads as `transformers.{plan.architecture}` (config.json `architectures`); the "
           "tokenizer with `AutoTokenizer`. tokenizer.json carries no padding or truncation "
           "settings: pass `padding=` / `truncation=` per call.", ""]
  if plan.status:
    lines += ["| head | weights |", "| --- | --- |"]
    for group in sorted(plan.status):
      what = described.get(group, group)
      state = plan.notes.get(what, _STATUS_WORDS.get(plan.status[group], plan.status[group]))
      if plan.status[group] == IMPORTED and what not in plan.notes:
        state += f" ({config.init.from_hf})"
      lines.append(f"| {what} | {state} |")
    lines.append("")
  if plan.untrained:
    lines += [f"Never trained (random init): {', '.join(plan.untrained)}. config.json lists them "
              "under `pancake_untrained_heads`.", ""]
  return "\n".join(lines)


def _same_mode(paths):
  """Gives every written file the mode open() gave the first (safetensors writes 0600)."""
  mode = os.stat(paths[0]).st_mode & 0o777
  for path in paths[1:]:
    os.chmod(path, mode)


def export(config, params, tokenizer, out_dir, *, steps_trained=0, source=None):
  """Writes an HF model directory from host or device parameters (after check_exportable).

  `steps_trained`: optimizer steps the parameters took since their init (0: init.from_hf's
  weights as imported), which says which heads hold trained weights (head_status); heads that
  never trained are left out where the class allows, else written and named (plan_export).
  """
  hf_config.check_exportable(config.model, tokenizer.kind)
  params = jax.device_get(params)
  plan = plan_export(config, head_status(config, params, steps_trained))
  tensors = export_tensors(config, params, plan)
  os.makedirs(out_dir, exist_ok=True)
  hf_cfg = hf_config.hf_config(config.model, tokenizer, plan.architecture)
  if plan.untrained:
    hf_cfg["pancake_untrained_heads"] = plan.untrained
    logging.warning("exported as %s; never trained (random init): %s", plan.architecture,
                    "; ".join(f"{what}: {plan.notes[what]}" for what in plan.untrained))
  written = [os.path.join(out_dir, hf_config.CONFIG_FILE), os.path.join(out_dir, WEIGHTS_FILE),
             os.path.join(out_dir, README_FILE)]
  fs.write_json(written[0], hf_cfg)
  save_file(tensors, written[1], metadata={"format": "pt"})
  source = source or (f"init.from_hf={config.init.from_hf} (no training step)"
                      if config.init.from_hf and not steps_trained else "its parameters")
  fs.write_text(written[2], model_card(config, plan, source))
  written += write_tokenizer(tokenizer, config.model.max_len, out_dir)
  _same_mode(written)
  return tensors


if __name__ == "__main__":  # `python -m interop.hf export`: the command is interop/export.py's
  from interop import export as _export
  _export.command()
