#!/usr/bin/env bash
# Run every benchmark and print the figures and ratios: bash benchmarks/run_all.sh [--quick] [--only train,...] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m benchmarks "$@"
