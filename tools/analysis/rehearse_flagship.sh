#!/usr/bin/env bash
# Rehearse the flagship command: dist_train.sh, --resume and dist_test.sh
# of configs/gm_dino_vitb_in1k.py on generated images (rehearse_flagship.py).
# Usage: bash tools/analysis/rehearse_flagship.sh [--ranks N] [--help]
DIR="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$DIR/rehearse_flagship.py" "$@"
