#!/usr/bin/env bash
# GPU check: the core tests on CUDA, then the core benchmark at a GPU-sized configuration (the enwik8
# preset's layer size) and, on two pinned CPU cores of the same machine, at the reference configuration.
# Usage: scripts/gpu_check.sh [OUT_DIR]   (default results/gpu). Needs python3 with torch (CUDA), pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc
} 2>&1 | tee "$out/device.txt"

$py -m pytest -q -p no:cacheprovider tests/core/test_cuda.py tests/core/test_attention.py \
  tests/core/test_training.py tests/core/test_memory.py 2>&1 | tee "$out/tests.txt"

$py -m ctbench.cli bench core --device cuda --config gpu --json "$out/bench_core_cuda.json" 2>&1 \
  | tee "$out/bench_core_cuda.txt"

if command -v taskset >/dev/null; then pin="taskset -c 0,1"; else pin=""; fi
$pin $py -m ctbench.cli bench core --device cpu --config reference --threads 2 \
  --json "$out/bench_core_cpu2.json" 2>&1 | tee "$out/bench_core_cpu2.txt"
