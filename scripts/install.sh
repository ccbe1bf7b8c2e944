#!/usr/bin/env bash
# Idempotent installer: creates .venv and installs the pinned OpenMMLab stack
# plus mmookd in editable mode. A second run only verifies and returns.
#
#   TORCH_SPEC   torch requirement (default torch==2.13.0, the CPU build on disk;
#                CUDA users: e.g. TORCH_SPEC="torch==2.5.1" with their index)
#   PIP_EXTRA    extra pip arguments (e.g. --index-url for CUDA torch builds)
#   VENV         virtual environment path (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PIP_EXTRA=${PIP_EXTRA:-}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# pip's own output (and its warnings about this machine's indexes) goes to a
# log in the venv; the console gets one line per step, and the log's end
# when a step fails.
LOG="$VENV/install.log"
run_logged() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "[install] error: '$*' failed; the end of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
}
pip_install() { run_logged "$VPY" -m pip install -q --disable-pip-version-check $PIP_EXTRA "$@"; }

# Fast path: everything present at the pinned versions -> nothing to do.
if "$VPY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md, sys
want = {'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': '3.3.0',
        'trackeval': '1.3.0'}
for k, v in want.items():
    if md.version(k) != v:
        sys.exit(1)
import torch, mmcv.ops  # noqa: F401  (ops compiled)
from mmcv.ops import MultiScaleDeformableAttention  # noqa: F401
for k in ('mmookd', 'pytest', 'ruff', 'yapf', 'psutil', 'tabulate'):
    md.version(k)
PYEOF
then
  echo "[install] $VENV is up to date"
  exit 0
fi

echo "[install] torch ($TORCH_SPEC), build tools, mmengine (pip's output: $LOG)"
pip_install "$TORCH_SPEC"
# mmcv's setup.py and mmengine's `mmdet::` config paths import pkg_resources,
# which setuptools 81 removed; torch 2.13 needs >= 77.
pip_install "setuptools>=77,<81" wheel ninja psutil
pip_install "numpy" "opencv-python-headless" "mmengine==0.10.7"

if ! "$VPY" -c "import mmcv.ops" 2>/dev/null || \
   [ "$("$VPY" -c 'import importlib.metadata as m; print(m.version("mmcv"))' 2>/dev/null)" != "2.1.0" ]; then
  echo "[install] building mmcv 2.1.0 with ops (20-40 minutes on 2 cores; pip caches the wheel; progress in $LOG)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} run_logged "$VPY" -m pip install --disable-pip-version-check \
    --no-build-isolation $PIP_EXTRA mmcv==2.1.0
fi
echo "[install] mmdet 3.3.0, TrackEval, mmookd"
pip_install "mmdet==3.3.0"
# TrackEval (HOTA / AssA / IDF1 beside AP) without its declared dependencies:
# they pin opencv-python (the GUI build, beside our headless one) and recent
# numpy / scipy / matplotlib releases that pip would upgrade. Its metrics
# only need numpy, scipy and pycocotools (already here) and tabulate (its
# package __init__ imports it).
pip_install --no-deps "trackeval==1.3.0"
pip_install "tabulate>=0.9.0"
pip_install -e ".[tests]" --no-build-isolation
echo "[install] done: $("$VPY" -c 'import torch, mmcv, mmdet, mmengine; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "mmengine", mmengine.__version__)')"
