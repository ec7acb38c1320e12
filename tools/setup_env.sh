#!/usr/bin/env bash
# Idempotent set-up, sourced by tools/run_tests.sh and tools/demo.sh:
# the Debian data package, .venv at the repo root with torch, OpenMMLab and
# this package, and data/fashion-mnist/ un-gzipped from the Debian files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

STAMP=.venv/.gmproto_mm_installed
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ] || [ tools/setup_env.sh -nt "$STAMP" ]; then
    echo "[setup] creating .venv and installing packages (first run: a few minutes)"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    PIP=".venv/bin/python -m pip"
    # setuptools < 82: mmengine 0.10.7 resolves `mmpretrain::` configs (the
    # tests read mmpretrain's SwAV one) with pkg_resources, gone in 82
    $PIP install -q --upgrade pip wheel 'setuptools<82'
    # torch first, with a torchvision that matches it (see docs/install.md);
    # an installed torch (e.g. a CUDA build) is kept
    .venv/bin/python -c "import torch, torchvision" 2>/dev/null || \
        $PIP install -q 'torch==2.14.1' 'torchvision==0.29.1'
    $PIP install -q mmengine==0.10.7 mmpretrain==1.2.0
    # never both mmcv and mmcv-lite: an mmcv (either) that is there is kept,
    # else the tested mmcv-lite (the [lite] extra)
    if .venv/bin/python -c "import mmcv" 2>/dev/null; then
        EXTRAS=tests
    else
        $PIP install -q mmcv-lite==2.2.0
        EXTRAS=lite,tests
    fi
    $PIP install -q --no-build-isolation -e ".[$EXTRAS]"
    touch "$STAMP"
fi

.venv/bin/python -c "from gmproto_mm.datasets import prepare_fashion_mnist; prepare_fashion_mnist('data/fashion-mnist')"
