#!/usr/bin/env bash
# The main job: joint DINO vs decoupled GMM prototypes on Fashion-MNIST, CPU.
#   bash tools/demo.sh                      # default budget (see README)
#   DEMO_EPOCHS=10 DEMO_TRAIN_IMAGES=0 bash tools/demo.sh   # longer budget
#   DEMO_LT=1 bash tools/demo.sh            # long-tailed Fashion-MNIST-LT
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup_env.sh
PYTHONWARNINGS=ignore exec .venv/bin/python tools/demo.py "$@"
