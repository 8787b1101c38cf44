#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: parity and the speed table at real shapes, on CUDA.
#
#   bench/gpu.sh [WORK_DIR]
#
# Needs onnxruntime-gpu (CUDAExecutionProvider) and a CUDA build of torch with
# transformers and optimum-onnx in the Python it finds ($PYTHON, else .venv/bin/python,
# else python3), about 40 GB of disk in WORK_DIR (default: a temp folder) and 30 GB of RAM
# (GPT-J-6B is written as 12 GB of fp16 safetensors, then exported to a 12 GB bundle).
# What it runs (bench/real_shapes.py, which prints the table with ratios to eager and
# to the memory floor: weight bytes per decode step / device-to-device copy bandwidth):
#   1. CodeGen-350M shape: fp32 and fp16 bundles on the CUDA provider with IO binding
#      (logit parity against transformers on the GPU), against transformers eager fp16
#      and optimum ORT on CUDA;
#   2. GPT-J-6B, whole (28 layers, d 4096): fp16 bundle against transformers eager fp16
#      (optimum skipped: its export holds the fp32 model in memory, 24 GB).
# Unverified until a session is lent a GPU: see docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"

"$PY" - <<'PYEOF'
import sys
import onnxruntime as ort
import torch
problems = []
if "CUDAExecutionProvider" not in ort.get_available_providers():
    problems.append("onnxruntime has no CUDAExecutionProvider: pip uninstall onnxruntime && "
                    "pip install -e '.[gpu]'")
if not torch.cuda.is_available():
    problems.append("torch sees no GPU: install a CUDA build of torch")
if problems:
    sys.exit("bench/gpu.sh: " + "; ".join(problems))
print(f"GPU: {torch.cuda.get_device_name(0)}, onnxruntime {ort.__version__}, torch {torch.__version__}")
PYEOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== CodeGen-350M shape, CUDA: parity (fp32, fp16) and speed =="
"$PY" bench/real_shapes.py --device cuda --shape codegen-350M --formats fp32,fp16 \
    --work "$WORK" --json "$WORK/codegen-350M-cuda.json"

echo "== GPT-J-6B fp16, CUDA: parity and speed =="
"$PY" bench/real_shapes.py --device cuda --shape gptj-6B --formats fp16 --no-optimum \
    --work "$WORK" --json "$WORK/gptj-6B-cuda.json"

echo "figures: $WORK/*.json"
