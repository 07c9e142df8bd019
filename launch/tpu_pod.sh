#!/usr/bin/env bash
# Launch pancake on every worker (host) of a Cloud TPU VM slice.
#
# Usage:
#   TPU=my-v5p-1024 ZONE=us-east5-a WORKDIR=gs://bucket/runs/gpt3 \
#     launch/tpu_pod.sh [--dry_run] [--setup_only | --skip_setup] [-- extra train.py flags]
#
# Example (the GPT-3 175B recipe; see configs/pod_recipes.py for the overrides):
#   TPU=gpt3 ZONE=us-east5-a CONFIG=configs/gpt3_175b.py WORKDIR=gs://b/runs/gpt3 \
#     launch/tpu_pod.sh -- --config.train.global_batch_size=2048
#
# Two steps, each one `gcloud compute tpus tpu-vm ssh --worker=all` (all hosts at once):
#   1. setup: clone REPO_URL into REMOTE_DIR (or fetch), check out COMMIT exactly, make a venv and
#      `pip install -r requirements.txt` (the pinned jax[tpu]/libtpu): every host runs one code.
#   2. train: `python train.py --config $CONFIG --workdir $WORKDIR --multihost ...` on every host.
#      On a TPU VM, jax.distributed.initialize() finds the coordinator and the process ids from the
#      TPU metadata, so no addresses are passed. The log of each host goes to REMOTE_DIR/train.log
#      and also to the terminal.
#
# Variables (environment):
#   TPU          (required) TPU VM (slice) name, as in `gcloud compute tpus tpu-vm list`
#   ZONE         (required) its zone, e.g. us-east5-a
#   PROJECT      gcloud project (default: gcloud's configured project)
#   WORKDIR      (required unless --setup_only) run directory; use gs://... so every host and a
#                resumed run see the same checkpoints
#   CONFIG       config file, relative to the repository (default: configs/quickstart.py)
#   RECIPE       a pod recipe from configs/pod_recipes.py (e.g. gpt3_175b): CONFIG defaults to
#                the recipe's preset (configs/$RECIPE.py, or its `preset`) and the recipe's mesh/batch/remat/attention flags come before
#                yours (yours win). Check it fits first: python -m launch.aot (see that file).
#   REPO_URL     git URL the workers clone (default: this checkout's `origin` remote)
#   COMMIT       commit the workers check out (default: this checkout's HEAD; the run's
#                provenance.json records it)
#   REMOTE_DIR   checkout directory on each worker (default: pancake, under the ssh user's home)
#   PYTHON       interpreter used to make the venv on the workers (default: python3)
#   TRAIN_ENV    extra environment for train.py,
#                e.g. "LIBTPU_INIT_ARGS=--xla_tpu_enable_async_all_gather=true"
#   GCLOUD       gcloud binary (default: gcloud)
#   DRY_RUN=1    same as --dry_run: print the commands, run nothing (no gcloud needed)
#
# Flags:
#   --dry_run     print each gcloud command (shell-quoted, one per line) instead of running it
#   --setup_only  only the setup step;  --skip_setup: only the train step
#   --            everything after it is passed to train.py (e.g. --config.train.num_steps=10)
set -euo pipefail

die() { echo "error: $*" >&2; exit 2; }

DRY_RUN="${DRY_RUN:-0}"
DO_SETUP=1
DO_TRAIN=1
TRAIN_ARGS=()
while (($#)); do
  case "$1" in
    --dry_run|--dry-run) DRY_RUN=1 ;;
    --setup_only) DO_TRAIN=0 ;;
    --skip_setup) DO_SETUP=0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag '$1' (train.py flags go after --)" ;;
  esac
  shift
done

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

[[ -n "${TPU:-}" ]] || die "TPU is not set (the TPU VM name)"
[[ -n "${ZONE:-}" ]] || die "ZONE is not set (e.g. us-east5-a)"
((DO_TRAIN == 0)) || [[ -n "${WORKDIR:-}" ]] || die "WORKDIR is not set (use gs://... on a pod)"
RECIPE_FLAGS=()
if [[ -n "${RECIPE:-}" ]]; then
  # pod_recipes.py is plain data (stdlib only), so any python3 can print the recipe's flags.
  read -r -a RECIPE_FLAGS < <(cd "$REPO_ROOT" && python3 -m configs.pod_recipes "$RECIPE" \
    --flags_only) || die "RECIPE=$RECIPE is not in configs/pod_recipes.py"
  CONFIG="${CONFIG:-$(cd "$REPO_ROOT" && python3 -m configs.pod_recipes "$RECIPE" --config_only)}"
fi
CONFIG="${CONFIG:-configs/quickstart.py}"
[[ -f "$REPO_ROOT/${CONFIG%%:*}" ]] || die "CONFIG=$CONFIG is not a file in $REPO_ROOT"  # file[:arg]
REPO_URL="${REPO_URL:-$(git -C "$REPO_ROOT" remote get-url origin 2>/dev/null || true)}"
[[ -n "$REPO_URL" ]] || die "REPO_URL is not set and this checkout has no 'origin' remote"
COMMIT="${COMMIT:-$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || true)}"
[[ -n "$COMMIT" ]] || die "COMMIT is not set and $REPO_ROOT is not a git checkout"
REMOTE_DIR="${REMOTE_DIR:-pancake}"
PYTHON="${PYTHON:-python3}"
GCLOUD="${GCLOUD:-gcloud}"

q() { printf '%q' "$1"; }

# Runs on every worker. Idempotent: a second launch fetches and re-checks-out instead of cloning.
SETUP_CMD="set -e; \
if [ ! -d $(q "$REMOTE_DIR")/.git ]; then git clone $(q "$REPO_URL") $(q "$REMOTE_DIR"); fi; \
cd $(q "$REMOTE_DIR") && git fetch --quiet origin && git checkout --quiet --detach $(q "$COMMIT"); \
if [ ! -x .venv/bin/python ]; then $(q "$PYTHON") -m venv .venv; fi; \
.venv/bin/pip install --quiet -r requirements.txt"

TRAIN_CMD="cd $(q "$REMOTE_DIR") && ${TRAIN_ENV:+$TRAIN_ENV }.venv/bin/python train.py \
--config $(q "$CONFIG") --workdir $(q "$WORKDIR") --multihost"
for arg in "${RECIPE_FLAGS[@]}" "${TRAIN_ARGS[@]}"; do TRAIN_CMD+=" $(q "$arg")"; done
TRAIN_CMD+=" 2>&1 | tee train.log"

SSH=("$GCLOUD" compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all)
[[ -z "${PROJECT:-}" ]] || SSH+=(--project "$PROJECT")

# Single-quotes a word for the dry-run echo (easier to read than %q's backslashes).
sq() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

run() {
  if ((DRY_RUN)); then
    local out="" a
    for a in "$@"; do out+="$(sq "$a") "; done
    echo "${out% }"
  else
    "$@"
  fi
}

((DO_SETUP == 0)) || run "${SSH[@]}" --command "$SETUP_CMD"
((DO_TRAIN == 0)) || run "${SSH[@]}" --command "$TRAIN_CMD"
