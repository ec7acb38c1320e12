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
    # setuptools < 81: mmengine 0.10.7 resolves `mmpretrain::` configs with pkg_resources
    $PIP install -q --upgrade pip wheel 'setuptools<81'
    # torch first, with a torchvision that matches it (see docs/components.md, "Set-up")
    .venv/bin/python -c "import torch, torchvision" 2>/dev/null || \
        $PIP install -q 'torch==2.14.1' 'torchvision==0.29.1'
    # never both mmcv and mmcv-lite: setup.py picks mmcv when it is present
    $PIP install -q mmengine==0.10.7 mmpretrain==1.2.0 pytest matplotlib
    .venv/bin/python -c "import mmcv" 2>/dev/null || $PIP install -q mmcv-lite==2.2.0
    $PIP install -q --no-build-isolation -e .
    touch "$STAMP"
fi

.venv/bin/python -c "from gmproto_mm.datasets import prepare_fashion_mnist; prepare_fashion_mnist('data/fashion-mnist')"
