#!/usr/bin/env bash
# Run HERE (a machine with a package index), once, before the GPU check: fetches into .whl/ the wheels of the
# packages that the GPU check imports and that the device image lacks (it has torch, transformers, accelerate,
# huggingface_hub, safetensors, typer, rich, pyyaml...: /work/.library/device/KINDS.md), at the versions in
# constraints.txt, for the device's Python 3.12 on x86-64. .whl/ is git-ignored through .git/info/exclude; the
# device run carries it (run's `carry: [".whl"]`) and scripts/gpu_check.sh installs it there.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(diffusers open_clip_torch ftfy wcwidth kornia kornia_rs)
PYTHON=${PYTHON:-.venv/bin/python}

pins=()
for package in "${PACKAGES[@]}"; do
  pin=$(grep -i "^${package}==" constraints.txt) || { echo "no pin for $package in constraints.txt" >&2; exit 1; }
  pins+=("$pin")
done
exclude=$(git rev-parse --git-path info/exclude)
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
platforms=()
for n in 2_28 2_27 2_17; do platforms+=(--platform "manylinux_${n}_x86_64"); done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"
ls -l .whl
