#!/usr/bin/env bash
# Set up everything on a fresh machine (idempotent), then run the tests.
#   bash tools/run_tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup_env.sh
exec .venv/bin/python -m pytest "$@"
