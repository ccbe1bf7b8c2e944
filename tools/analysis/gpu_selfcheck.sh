#!/usr/bin/env bash
# Run tools/analysis/gpu_selfcheck.py on an offline CUDA machine that has
# Python and a CUDA torch but no OpenMMLab (issue 15), from the project root:
#
#   WHL_DIR=.whl bash tools/analysis/gpu_selfcheck.sh --out work_dirs/selfcheck
#
# $WHL_DIR holds the wheels the machine lacks, downloaded beforehand for its
# Python (mmengine 0.10.7, mmdet 3.3.0, addict, yapf, termcolor,
# terminaltables, pycocotools, shapely, scipy, psutil,
# opencv-python-headless, setuptools<70, platformdirs, tomli) and mmcv's
# source archive mmcv-2.1.0.tar.gz (PyPI has no mmcv 2.1.0 wheel). The
# wheels go to /tmp/site, mmcv's ops are built in place with CUDA for
# $TORCH_CUDA_ARCH_LIST (default 9.0, Hopper; about 5 minutes on 16 cores,
# skipped when already built), then the self-check runs with the arguments
# given here.
set -eo pipefail
W=${WHL_DIR:-.whl}
SITE=${SITE:-/tmp/site}
BUILD=${MMCV_BUILD:-/tmp/mmcv-build}/mmcv-2.1.0
if [ ! -d "$SITE/mmdet" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target "$SITE" "$W"/*.whl
fi
export PYTHONPATH="$BUILD:$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! ls "$BUILD"/mmcv/_ext*.so >/dev/null 2>&1; then
  mkdir -p "$(dirname "$BUILD")"
  tar xzf "$W/mmcv-2.1.0.tar.gz" -C "$(dirname "$BUILD")"
  echo "building mmcv 2.1.0 CUDA ops (about 5 minutes)..."
  (cd "$BUILD" && MMCV_WITH_OPS=1 FORCE_CUDA=1 \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} \
    MAX_JOBS=${MAX_JOBS:-16} python3 setup.py build_ext --inplace \
    > "$(dirname "$BUILD")/build.log" 2>&1) \
    || { tail -30 "$(dirname "$BUILD")/build.log"; exit 1; }
fi
python3 -c "import torch, mmcv, mmdet; from mmcv.ops import MultiScaleDeformableAttention; print('stack:', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__)"
exec python3 tools/analysis/gpu_selfcheck.py "$@"
