"""muP checks (models/mup.py): the coordinate check and the data of the learning-rate transfer.

coordinate check (Yang et al. 2022, sec. D.1): train models that differ only in d_model for a few
Adam steps on one fixed batch, then record the RMS of every attention and MLP output and of the logits.
Under muP each stays about the same as width grows; under SP (fixed init_range, one learning
rate) they grow. `coord_check` returns the RMS values, `slopes` the slope of log RMS against
log width per activation (about 0 = flat). Tests run it at tiny depth, length and batch.

The committed figure: `python -m figures.mup_check --out results/mup` writes
results/mup/coord_check.{png,pdf,json} (widths 32-512, both families, SP beside muP).

The learning-rate transfer figure needs real training runs on the corpus: it is the sweep
configs/sweeps/mup_transfer_cpu.py, drawn by figures.make (figures/lr_transfer.py).
"""

import argparse
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import models
from configs import base
from trainlib import optim

def model_config(family, parametrization, width, base_width, num_layers=2, num_heads=4,
                 vocab_size=64, seq_len=16):
  """The config of one coordinate-check / transfer model: only d_model changes with width."""
  c = base.get_config()
  c.model.update(family=family, d_model=width, num_heads=num_heads, num_layers=num_layers,
                 vocab_size=vocab_size, max_len=seq_len, parametrization=parametrization,
                 mup_base_width=base_width, scan_layers=False, nsp_head=False)
  if family == "encoder":  # BERT's shape: post-LN, exact GELU
    c.model.update(ln_placement="post", activation="gelu_exact", ln_epsilon=1e-12)
  # The loss is _loss_fn's own (the objective's config is not read), so no objective is set.
  return c


def _loss_fn(model, family, ids):
  """Next-token CE (decoder) or CE of the tokens at masked positions (encoder, every 4th)."""
  if family == "decoder":
    def loss(params):
      logits = model.apply(params, ids)["logits"][:, :-1]
      return optax.softmax_cross_entropy_with_integer_labels(logits, ids[:, 1:]).mean()
  else:
    masked = jnp.broadcast_to(jnp.arange(0, ids.shape[1], 4), (ids.shape[0], ids.shape[1] // 4))
    inputs = ids.at[:, ::4].set(0)  # token 0 stands for [MASK]

    def loss(params):
      logits = model.apply(params, inputs, masked_positions=masked)["mlm_logits"]
      targets = jnp.take_along_axis(ids, masked, axis=1)
      return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
  return loss


def activation_rms(model, params, family, ids):
  """{"layers_i/attention" | "layers_i/mlp": RMS of that sublayer's output (before the residual
  add, so post-LN encoders show it too), "logits": RMS of the logits} on batch ids [B, L]."""
  wanted = ("SelfAttention", "Mlp")
  capture = lambda module, _: type(module).__name__ in wanted
  out, state = model.apply(params, ids, capture_intermediates=capture, mutable=["intermediates"])
  stack = state["intermediates"]["stack"]
  rms = lambda x: float(jnp.sqrt(jnp.mean(jnp.square(x.astype(jnp.float32)))))
  result = {f"{layer}/{sub}": rms(stack[layer][sub]["__call__"][0])
            for layer in sorted(stack) for sub in ("attention", "mlp")}
  result["logits"] = rms(out["logits" if family == "decoder" else "mlm_logits"])
  return result


def coord_check(family, parametrization, widths, base_width=None, steps=4, learning_rate=1e-2,
                batch_size=4, seed=0, **shape):
  """{activation: [RMS at each width]} after `steps` Adam steps (trainlib.optim's optimizer:
  constant learning rate, no clipping or weight decay) on one random batch [batch_size, seq_len]."""
  base_width = base_width or widths[0]
  rows = {}
  for width in widths:
    c = model_config(family, parametrization, width, base_width, **shape)
    c.optim.update(learning_rate=learning_rate, warmup_steps=0, schedule="constant", clip_norm=0.0,
                   weight_decay=0.0)
    c.train.num_steps = max(steps, 1)
    ids = jax.random.randint(jax.random.key(seed + 1), (batch_size, c.model.max_len), 1,
                             c.model.vocab_size)
    model = models.build_model(c.model)
    params = nn.unbox(model.init(jax.random.key(seed), ids))  # as the trainer holds them
    tx, _ = optim.make_optimizer(c)
    opt_state = tx.init(params)
    grad_fn = jax.grad(_loss_fn(model, family, ids))

    @jax.jit
    def step(params, opt_state):
      updates, opt_state = tx.update(grad_fn(params), opt_state, params)
      return optax.apply_updates(params, updates), opt_state

    for _ in range(steps):
      params, opt_state = step(params, opt_state)
    for name, value in activation_rms(model, params, family, ids).items():
      rows.setdefault(name, []).append(value)
  return rows


def slopes(widths, rows):
  """{activation: slope of log RMS against log width} (least squares over the widths)."""
  log_w = np.log(np.asarray(widths, float))
  return {name: float(np.polyfit(log_w, np.log(values), 1)[0]) for name, values in rows.items()}


FIGURE_WIDTHS = (32, 64, 128, 256, 512)


def coord_check_figure(out_dir, widths=FIGURE_WIDTHS, steps=4, log=print, **shape):
  """Writes OUT/coord_check.{png,pdf,json}: activation RMS against width after `steps` Adam
  steps, SP beside muP, for both families (base width = the narrowest). Returns the paths."""
  # late: start-up time (the check itself, which the tests run, needs no matplotlib)
  import matplotlib.pyplot as plt
  from figures import plots
  os.makedirs(out_dir, exist_ok=True)
  record = {"widths": list(widths), "steps": steps, "base_width": widths[0], "results": {}}
  with plt.rc_context(plots.STYLE):
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.2), sharex=True, sharey="row")
    for row, family in enumerate(("decoder", "encoder")):
      for col, parametrization in enumerate(("sp", "mup")):
        rows = coord_check(family, parametrization, widths, steps=steps, **shape)
        fitted = slopes(widths, rows)
        record["results"][f"{family}/{parametrization}"] = {"rms": rows, "slopes": fitted}
        hidden = [fitted[k] for k in rows if k != "logits"]
        log(f"{family} {parametrization}: sublayer slopes {min(hidden):.2f} to {max(hidden):.2f}, "
            f"logits {fitted['logits']:.2f}")
        ax = axes[row, col]
        for name, values in rows.items():
          ax.plot(widths, values, marker="o", markersize=2.5, label=name,
                  linestyle="--" if name == "logits" else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(widths), [str(w) for w in widths])
        ax.set_title(f"{family}, {'muP' if parametrization == 'mup' else 'SP'}: slopes "
                     f"{min(hidden):.2f} to {max(hidden):.2f} (logits {fitted['logits']:.2f})")
        if col == 0:
          ax.set_ylabel("activation RMS")
        if row == 1:
          ax.set_xlabel("d_model")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"Coordinate check: RMS after {steps} Adam steps (lr 1e-2) against width; "
                 "flat under muP", fontsize=9.5)
    fig.tight_layout()
    fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
  base = os.path.join(out_dir, "coord_check")
  paths = plots.save(fig, base)
  with open(base + ".json", "w") as f:
    json.dump(record, f, indent=2)
  return paths + [base + ".json"]


def main(argv=None):
  parser = argparse.ArgumentParser(description="muP coordinate-check figure (both families)")
  parser.add_argument("--out", default="results/mup", help="output folder")
  args = parser.parse_args(argv)
  for path in coord_check_figure(args.out):
    print("wrote", path)


if __name__ == "__main__":
  main()
