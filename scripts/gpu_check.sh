#!/usr/bin/env bash
# The prepared GPU check: one command on a lent H100/H200, about 9 minutes, nothing downloaded: SD 1.5's shapes at 512²,
# then SDXL's at 1024².
#   here, once:      scripts/gpu_wheels.sh          (the few wheels the device image lacks → .whl/, git-ignored)
#   on the device:   bash scripts/gpu_check.sh      (the run tool with carry [".whl"] and timeout_s 600)
# Writes $OUT/gpu-check.json (rewritten after every measurement, so a cut-off run keeps what it measured) and
# $OUT/gpu-check.log; the table is the log's end. Extra arguments go to `localctrl perf` (e.g. --batches 16,32).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-localctrl-runs/gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true PYTHONUNBUFFERED=1

# The project's venv where there is one (it is 6.7 GB: it never travels), else the device image's python, which
# holds torch, topped up with the carried wheels. --no-deps: everything else they need is in the image.
if [ -x .venv/bin/python ]; then
  PYTHON=.venv/bin/python
else
  PYTHON=python3
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Fail in seconds, not after the models are built, when something is missing.
"$PYTHON" - <<'PY'
import importlib.util, sys
missing = [name for name in ("torch", "diffusers", "transformers", "open_clip", "kornia", "typer", "rich")
           if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing: {', '.join(missing)}: run scripts/gpu_wheels.sh here and carry .whl")
import torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch")
import cli, bench.perf.presets  # noqa: F401  (the command's own imports)
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, python {sys.version.split()[0]}")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true

# The hard stop leaves ~30 s of the 10 minutes for start-up; the command itself skips the SD 1.5 measurements it cannot
# start by 300 s and the SDXL ones by 480 s.
set -o pipefail
timeout 560 "$PYTHON" cli.py perf --preset gpu --compile --budget-s 300 --xl-budget-s 480 --out "$OUT/gpu-check.json" "$@" 2>&1 \
  | tee "$OUT/gpu-check.log"
