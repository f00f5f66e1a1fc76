#!/usr/bin/env bash
# Installs what ganlib needs on a fresh machine: the Debian dataset package (and Chromium for the report's
# browser test) where apt is available, a virtual environment in .venv, and ganlib with its dependencies.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then apt_packages+=(chromium); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "[setup] apt-get install ${apt_packages[*]}"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_packages[@]}" >/dev/null \
      || echo "[setup] WARNING: could not install ${apt_packages[*]}; Fashion-MNIST studies and the browser test need them."
  else
    echo "[setup] no apt-get: install ${apt_packages[*]} yourself (Fashion-MNIST IDX files can also go in ~/.keras/datasets/fashion-mnist/)."
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ganlib-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || { [ "$want_test" = 1 ] && ! .venv/bin/python -c "import pytest" 2>/dev/null; }; then
  echo "[setup] pip install -e .[test] (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import ganlib, keras, tensorflow as tf; print("ganlib", ganlib.__version__, "keras", keras.__version__, "tensorflow", tf.__version__)' 2>/dev/null)"
