#!/usr/bin/env bash
# The test suite, installing what it needs first. Extra arguments go to pytest (e.g. -k resume, -m "not slow").
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
export PYTHONUNBUFFERED=1
.venv/bin/python -m pytest --durations=12 "$@"  # the slowest tests, so the fast tier (-m "not slow") stays fast
code=$?
if [ "$code" = 5 ]; then echo "ERROR: pytest collected no tests"; exit 1; fi  # 'no tests' is a failure for us
exit "$code"
