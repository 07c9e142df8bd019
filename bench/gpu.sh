#!/usr/bin/env bash
# The GPU check, start to end, in one script (about 10 minutes on one H100/H200, start-up
# included; budgeted to fit 15):
#   1. a venv with jax's CUDA wheels (requirements-gpu.txt), from PyPI or, on a machine without
#      internet, from a folder of wheels: bench/gpu.sh --wheels DIR;
#   2. the model equivalence tests on the GPU (scan = unrolled, remat policies, KV cache = full
#      forward, the NumPy reference, flash = xla), float32 matmuls at full precision;
#   3. bench/gpu_step.py: tokens/s and MFU for the gpt2_small and gpt2_medium shapes in bf16,
#      with HF GPT-2 (SDPA) beside them where torch has CUDA, and ettin_encoder_150m at 2 x 8,192
#      (windowed + global layers through cuDNN). Figures: results/bench_gpu.json.
# Usage: bash bench/gpu.sh [--wheels DIR] [--venv DIR] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
wheels="" venv=".venv-gpu" out="results"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) wheels="$2"; shift 2 ;;
    --venv) venv="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "error: unknown argument $1 (valid: --wheels DIR, --venv DIR, --out DIR)" >&2; exit 2 ;;
  esac
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
  echo "error: no NVIDIA GPU visible (nvidia-smi failed)" >&2; exit 2; }
start=$(date +%s)
python3 -m venv "$venv"
if [ -n "$wheels" ]; then
  "$venv/bin/pip" install -q --no-index --find-links "$wheels" -r requirements-gpu.txt pytest
else
  "$venv/bin/pip" install -q -r requirements-gpu.txt
fi
echo "# venv ready after $(( $(date +%s) - start )) s"
export JAX_PLATFORMS=cuda XLA_PYTHON_CLIENT_PREALLOCATE=false
"$venv/bin/python" -c "import jax; print('# jax', jax.__version__, jax.devices())"
# Equivalence tests: tolerances are float32's, so no TF32 in these matmuls.
JAX_DEFAULT_MATMUL_PRECISION=highest "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_models_behavior.py tests/test_generation_decoder.py tests/test_models_prefix_mask.py \
  2>&1 | tail -n 15
echo "# tests done after $(( $(date +%s) - start )) s"
mkdir -p "$out"
"$venv/bin/python" -m bench.gpu_step --json "$out/bench_gpu.json"
echo "# done after $(( $(date +%s) - start )) s"
