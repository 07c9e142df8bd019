"""lm-evaluation-harness model "pancake": lm_eval's three request types on a restored run, in JAX.

    ctx = evals.runner.restore(config, workdir, evals.runner.check_run(config, workdir))
    lm = PancakeLM(ctx)                           # or, this module imported:
    lm_eval.simple_evaluate(model=lm, tasks=[...])   # model="pancake",
                                                     # model_args="config=C,workdir=W[,step=N]"

The parameters stay sharded on the run's mesh (evals.context.EvalContext); every batch is padded to
a multiple of the mesh's batch-sharding degree and placed with ctx.put_rows, so it runs on one CPU
or a pod (each process runs every request on the same host arrays, as the eval suites do; lm_eval
sees rank 0 of 1). No torch: lm_eval's core only sorts, batches and scores text.

Window W: the longest input row, data.seq_len (the context the model was trained on) capped by
model.max_len; `max_length=` overrides it up to model.max_len. (lm_eval's HF model on an export of
the run, interop/hf.py, takes W = n_positions = model.max_len.)

Decoders
- loglikelihood(context, continuation): tokenized as lm_eval's HF model does (TemplateLM: the
  context's trailing spaces move into the continuation, the pair is encoded whole and split at the
  context's length; an empty context is the start-of-document token, evals.context.bos_id). The
  input row is (context + continuation)[-(W + 1):][:-1]: when the pair is longer than W + 1
  tokens, the context loses its first tokens (truncation from the left, as lm_eval's HF model);
  a continuation longer than W tokens is an error. -> (sum of log p over the continuation's
  tokens, whether every one of them is the argmax).
- loglikelihood_rolling(text): lm_eval's rolling windows (get_rolling_token_windows with
  context_len=1, made disjoint): the first window predicts the first W tokens after the
  start-of-document token, each later one up to W more tokens from the W tokens before them;
  every token is predicted once and the windows' sums are added.
- generate_until(context, gen_kwargs): the context's last W - max_gen_toks tokens, continued with
  evals.generation.generate (KV cache; greedy, or sampling with temperature / top_k / top_p when
  do_sample, keyed by eval.seed) until end-of-text or max_gen_toks tokens (default W // 2; other
  generation kwargs are a ConfigError); the decoded text is cut before the first of the `until`
  strings (end-of-text among them, as lm_eval adds it).
Encoders (MLM heads): pseudo-log-likelihood (Salazar et al. 2020). Each continuation token is
  masked in turn, one row per token: [CLS] context continuation [SEP] with that token [MASK]ed and
  every other token visible; score = sum of log p(token | the rest), is_greedy = every masked
  token is the head's argmax. Rows hold at most W - 2 text tokens (the context is cut from the
  left). Rolling: the same windows with W - 3 tokens, each window's tokens scored by PLL after one
  token of the previous window. generate_until: a ConfigError (an encoder does not generate).

Batching: requests (PLL rows for encoders) are sorted longest first with lm_eval's Collator, as
its HF model does; `batch_rows` rows per call (rounded up to the mesh's batch multiple, a short
last batch padded by repeating a row), each batch right-padded to the next power of two >= its
longest row (capped at W), so a handful of compiled shapes serve every request.
"""
import functools

import jax
import numpy as np
from lm_eval import utils as lm_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import (Collator, handle_stop_sequences, normalize_gen_kwargs,
                                  postprocess_generated_text)

from configs.errors import ConfigError
from evals import cloze, decoder_fns, generation
from evals.context import bos_id, pad_rows

BATCH_ROWS = 32
_MIN_WIDTH = 16
_GEN_OPTIONS = ("do_sample", "temperature", "top_k", "top_p")  # besides until and max_gen_toks


def bucket(length: int, cap: int) -> int:
  """The padded width of a batch whose longest row has `length` tokens: a power of two, <= cap."""
  width = _MIN_WIDTH
  while width < length:
    width *= 2
  return min(width, cap)


def window(config, max_length=None) -> int:
  """W (module docstring): max_length, else data.seq_len, never above model.max_len."""
  limit = int(config.model.max_len)
  if max_length is None:
    return min(int(config.data.seq_len), limit)
  if int(max_length) != max_length or not 1 <= max_length <= limit:
    raise ConfigError(f"max_length={max_length!r} must be an integer in [1, "
                      f"model.max_len={limit}]")
  return int(max_length)


def _decoder_logits(model, params, ids):
  return model.apply({"params": params}, ids)["logits"]


@register_model("pancake")
class PancakeLM(TemplateLM):
  """lm_eval model over an evals.context.EvalContext (module docstring)."""

  def __init__(self, ctx, batch_rows: int = BATCH_ROWS, max_length: int | None = None):
    super().__init__()
    if int(batch_rows) != batch_rows or batch_rows < 1:
      raise ConfigError(f"batch_rows={batch_rows!r} must be an integer >= 1")
    self.ctx = ctx
    self.tok = ctx.tokenizer
    self.rows = ctx.round_rows(int(batch_rows))
    self.window = window(ctx.config, max_length)
    self.is_encoder = ctx.family == "encoder"
    if self.is_encoder:
      missing = [name for name in ("cls_id", "sep_id", "mask_id") if getattr(self.tok, name) is None]
      if missing:
        raise ConfigError(f"pseudo-log-likelihood needs [CLS], [SEP] and [MASK]; "
                          f"data.tokenizer={ctx.config.data.tokenizer!r} lacks {missing}")
      if self.window < 4:
        raise ConfigError(f"an encoder row needs [CLS] text [SEP] with >= 2 text tokens: "
                          f"window {self.window} is too short")
    self.pad_id = self.tok.pad_id if self.tok.pad_id is not None else 0
    # Static arguments of jitted functions: made once, so every batch of a shape hits the cache.
    self._full_fn = functools.partial(_decoder_logits, ctx.model)
    self._pll = jax.jit(functools.partial(cloze.masked_token_scores, ctx.model))
    self._decoders = {}  # cache_len -> evals.decoder_fns.DecoderFns

  # ---- lm_eval's construction from model_args ("config=C,workdir=W,step=N,batch_rows=R")

  @classmethod
  def create_from_arg_string(cls, arg_string, additional_config=None):
    return cls.create_from_arg_obj(lm_utils.simple_parse_args_string(arg_string),
                                   additional_config)

  @classmethod
  def create_from_arg_obj(cls, arg_dict, additional_config=None):
    from configs import loading, paths  # late: only lm_eval's model_args path builds the model from text
    from evals import runner
    args = dict(arg_dict)
    missing = [k for k in ("config", "workdir") if k not in args]
    if missing:
      raise ConfigError(f"model_args for 'pancake' need config= and workdir= (missing "
                        f"{', '.join(missing)}); e.g. config=configs/quickstart.py,workdir=DIR")
    config = args.pop("config")  # a config file ("file.py[:arg]") or a ConfigDict
    config = loading.load_config_file(config) if isinstance(config, str) else config
    paths.absolutize_config(config)
    workdir = paths.absolute(str(args.pop("workdir")))
    step = args.pop("step", None)
    plan = runner.check_run(config, workdir, None if step is None else int(step))
    batch = (additional_config or {}).get("batch_size")
    if isinstance(batch, int) and "batch_rows" not in args:
      args["batch_rows"] = batch
    return cls(runner.restore(config, workdir, plan), **args)

  # ---- tokens (TemplateLM)

  @property
  def eot_token_id(self) -> int:
    return self.tok.sep_id if self.is_encoder else bos_id(self.tok)

  @property
  def prefix_token_id(self) -> int:
    """What an empty context stands for: the document start (an encoder's row starts with it)."""
    return self.tok.cls_id if self.is_encoder else bos_id(self.tok)

  @property
  def max_length(self) -> int:
    return self.window

  @property
  def tokenizer_name(self) -> str:
    return f"pancake-{self.tok.kind}-{self.tok.fingerprint}"

  def tok_encode(self, string, add_special_tokens=None, **kwargs):
    del add_special_tokens, kwargs  # pancake's tokenizers add none
    return self.tok.encode(string)

  # ---- loglikelihood

  def _loglikelihood_tokens(self, requests, disable_tqdm=False, **kwargs):
    """[((context, continuation) or None, context ids, continuation ids)] -> [(logp, greedy)]."""
    del disable_tqdm, kwargs
    scores = (self._encoder_scores if self.is_encoder else self._decoder_scores)(requests)
    for (key, _, _), answer in zip(requests, scores):
      if key is not None:
        self.cache_hook.add_partial("loglikelihood", key, answer)
    return scores

  def _check_continuation(self, continuation, room):
    if len(continuation) > room:
      raise ConfigError(f"a continuation of {len(continuation)} tokens does not fit the "
                        f"{room}-token row of this model (window {self.window}); raise "
                        "--max_length up to model.max_len or leave the task out")

  def _decoder_row(self, context, continuation):
    """-> (input ids, target ids, number of scored targets at the end), left-truncated to W."""
    self._check_continuation(continuation, self.window)
    whole = (list(context) + list(continuation))[-(self.window + 1):]
    return whole[:-1], whole[1:], len(continuation)

  def _decoder_scores(self, requests):
    collator = Collator(requests, sort_fn=lambda r: (-len(r[1]) - len(r[2]), tuple(r[1] + r[2])))
    out = []
    for chunk in collator.get_batched(n=self.rows):
      rows = [self._decoder_row(context, continuation) for _, context, continuation in chunk]
      width = bucket(max(len(inputs) for inputs, _, _ in rows), self.window)
      host = {"inputs": np.full((len(rows), width), self.pad_id, np.int32),
              "targets": np.zeros((len(rows), width), np.int32),
              "weights": np.zeros((len(rows), width), np.float32)}
      for r, (inputs, targets, scored) in enumerate(rows):
        host["inputs"][r, :len(inputs)] = inputs
        host["targets"][r, :len(targets)] = targets
        host["weights"][r, len(targets) - scored:len(targets)] = 1.0
      batch = self.ctx.put_rows(pad_rows(host, self.rows))
      with self.ctx.mesh_context():
        logp, greedy = generation.target_scores(self._full_fn, self.ctx.params, batch["inputs"],
                                                batch["targets"], batch["weights"])
      logp, greedy = self.ctx.fetch((logp, greedy))
      out += [(float(logp[r]), bool(greedy[r])) for r in range(len(rows))]
    return collator.get_original(out)

  def _encoder_text(self, context, continuation):
    """The text tokens of a PLL row (at most W - 2) and where the continuation starts in them."""
    body = list(context) + list(continuation)
    if body and body[0] == self.tok.cls_id:  # the empty context: the row's own [CLS] is it
      body = body[1:]
    room = self.window - 2
    self._check_continuation(continuation, room)
    body = body[-room:]
    return body, len(body) - len(continuation)

  def _encoder_scores(self, requests):
    """PLL: one row per continuation token, rows sorted longest first, summed per request."""
    pll_rows = []  # (request index, row ids with the [MASK], masked position, original token)
    for i, (_, context, continuation) in enumerate(requests):
      body, start = self._encoder_text(context, continuation)
      ids = [self.tok.cls_id] + body + [self.tok.sep_id]
      for position in range(start + 1, len(body) + 1):  # +1: after [CLS]
        masked = list(ids)
        masked[position] = self.tok.mask_id
        pll_rows.append((i, masked, position, ids[position]))
    collator = Collator(pll_rows, sort_fn=lambda r: (-len(r[1]), tuple(r[1])))
    scores = []
    for chunk in collator.get_batched(n=self.rows):
      width = bucket(max(len(ids) for _, ids, _, _ in chunk), self.window)
      host = {"input_ids": np.full((len(chunk), width), self.pad_id, np.int32),
              "token_type_ids": np.zeros((len(chunk), width), np.int32),
              "input_mask": np.zeros((len(chunk), width), np.int32),
              "masked_positions": np.zeros((len(chunk), 1), np.int32),
              "masked_ids": np.zeros((len(chunk), 1), np.int32)}
      for r, (_, ids, position, token) in enumerate(chunk):
        host["input_ids"][r, :len(ids)] = ids
        host["input_mask"][r, :len(ids)] = 1
        host["masked_positions"][r, 0], host["masked_ids"][r, 0] = position, token
      with self.ctx.mesh_context():
        logp, greedy = self._pll(self.ctx.params, self.ctx.put_rows(pad_rows(host, self.rows)))
      logp, greedy = self.ctx.fetch((logp, greedy))
      scores += [(float(logp[r, 0]), bool(greedy[r, 0])) for r in range(len(chunk))]
    totals = [[0.0, True] for _ in requests]
    for (i, _, _, _), (logp, greedy) in zip(pll_rows, collator.get_original(scores)):
      totals[i][0] += logp
      totals[i][1] &= greedy
    return [(logp, greedy) for logp, greedy in totals]

  def loglikelihood_rolling(self, requests, disable_tqdm=False):
    span = self.window - 3 if self.is_encoder else self.window
    windows, owners = [], []
    for i, (text,) in enumerate(req.args for req in requests):
      for context, continuation in map(lm_utils.make_disjoint_window,
                                       lm_utils.get_rolling_token_windows(
                                           token_list=self.tok_encode(text),
                                           prefix_token=self.prefix_token_id,
                                           max_seq_len=span, context_len=1)):
        windows.append((None, context, continuation))
        owners.append(i)
    totals = [0.0] * len(requests)
    for i, (logp, _) in zip(owners, self._loglikelihood_tokens(windows)):
      totals[i] += logp
    for req, total in zip(requests, totals):
      self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
    return totals

  # ---- generate_until

  def _decoder(self, cache_len):
    if cache_len not in self._decoders:
      self._decoders[cache_len] = decoder_fns.make_decoder_fns(self.ctx.model, cache_len)
    return self._decoders[cache_len]

  def _generation_settings(self, gen_kwargs):
    """lm_eval's gen_kwargs -> (until strings, max new tokens, generate() keyword arguments)."""
    if not isinstance(gen_kwargs, dict):
      raise ConfigError(f"generation kwargs must be a dict, got {gen_kwargs!r}")
    kwargs = normalize_gen_kwargs(gen_kwargs, max(1, self.window // 2))
    until = handle_stop_sequences(kwargs.pop("until", None), eos=self.tok.decode([bos_id(self.tok)]))
    new = int(kwargs.pop("max_gen_toks"))
    unknown = sorted(set(kwargs) - set(_GEN_OPTIONS))
    if unknown:
      raise ConfigError(f"generation kwargs {unknown} are not supported by the pancake model; "
                        f"it takes until, max_gen_toks, {', '.join(_GEN_OPTIONS)}")
    if not 1 <= new < self.window:
      raise ConfigError(f"max_gen_toks={new} must be in [1, {self.window - 1}] (window "
                        f"{self.window} = prompt + generated tokens)")
    options = {}
    if kwargs.get("do_sample"):
      options = {"temperature": float(kwargs.get("temperature", 1.0)),
                 "top_k": int(kwargs.get("top_k") or 0),
                 "top_p": float(kwargs.get("top_p") or 1.0)}
    return until, new, options

  def generate_until(self, requests, disable_tqdm=False):
    del disable_tqdm
    if self.is_encoder:
      raise ConfigError("generate_until asks an encoder to generate text; the pancake model "
                        "generates with decoders only (encoders answer loglikelihood tasks)")
    collator = Collator([req.args for req in requests],
                        sort_fn=lambda r: (-len(self.tok_encode(r[0])), r[0]),
                        group_by="gen_kwargs", group_fn=lambda r: r[1])
    out = []
    for n, chunk in enumerate(collator.get_batched(n=self.rows)):
      contexts, all_kwargs = zip(*chunk)
      until, new, options = self._generation_settings(all_kwargs[0])
      texts = self._generate(contexts, new, options, n)
      for context, kwargs, text in zip(contexts, all_kwargs, texts):
        text = postprocess_generated_text(text, until, think_end_token=None)
        out.append(text)
        self.cache_hook.add_partial("generate_until", (context, kwargs), text)
    return collator.get_original(out)

  def _generate(self, contexts, new, options, batch_index):
    """Continuations (decoded text) of `contexts` with `new` tokens at most, end-of-text included."""
    eot = bos_id(self.tok)
    room = self.window - new
    prompts = [(self.tok_encode(c) or [eot])[-room:] for c in contexts]
    width = bucket(max(map(len, prompts)), room)
    host = {"prompts": np.full((len(prompts), width), self.pad_id, np.int32),
            "lengths": np.asarray([len(p) for p in prompts], np.int32)}
    for r, p in enumerate(prompts):
      host["prompts"][r, :len(p)] = p
    batch = self.ctx.put_rows(pad_rows(host, self.rows))
    fns = self._decoder(width + new - 1)
    rng = (jax.random.fold_in(jax.random.key(self.ctx.seed), batch_index) if options else None)
    with self.ctx.mesh_context():
      result = generation.generate(fns.step_fn, self.ctx.params,
                                   self.ctx.put_replicated(fns.init_cache(self.rows)),
                                   batch["prompts"], batch["lengths"], new, rng=rng,
                                   eos_id=eot, pad_id=self.pad_id, **options)
    tokens, lengths = self.ctx.fetch((result.tokens, result.lengths))
    return [self.tok.decode(tokens[r, :int(lengths[r])]) for r in range(len(prompts))]
