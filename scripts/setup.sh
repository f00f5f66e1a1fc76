#!/usr/bin/env bash
# Installs what ganlib needs on a fresh machine: the Debian dataset package (and Chromium for the report's
# browser test) where apt is available, a virtual environment in .venv, and ganlib with its dependencies.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
# the emoji_flags dataset: the colour flags of the Noto Color Emoji font (ganlib draws them itself)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || apt_packages+=(fonts-noto-color-emoji)
if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then apt_packages+=(chromium); fi
# the widgets' browser test drives chromium through its driver (tests/test_browser_widgets.py)
if [ "$want_test" = 1 ] && ! command -v chromedriver >/dev/null 2>&1; then apt_packages+=(chromium-driver); fi
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
# The browser front end of the widgets (Voila, JupyterLab: `ganlib form`, `ganlib explore RUN --serve`) is the
# `notebook` extra; both commands install it, the main job for its users and the tests for the browser test.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || { [ "$want_test" = 1 ] && ! .venv/bin/python -c "import pytest, voila" 2>/dev/null; }; then
  echo "[setup] pip install -e .[test,notebook] (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,notebook]"
  touch "$stamp"
fi
# Tests and CI render a study with the real Quarto. Users install Quarto the usual way (https://quarto.org); here
# the offline bundle beside the project (../shared/tools/quarto, never copied into it) goes into .venv/quarto.
quarto_bundle=../shared/tools/quarto
if [ "$want_test" = 1 ] && [ ! -x .venv/quarto/bin/quarto ] && ! command -v quarto >/dev/null 2>&1 \
   && [ -f "$quarto_bundle/install_quarto.sh" ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null || true
  fi
  echo "[setup] installing Quarto from $quarto_bundle into .venv/quarto (for the report's Quarto test)"
  bash "$quarto_bundle/install_quarto.sh" install "$PWD/.venv/quarto" "$(ls "$quarto_bundle"/quarto-*-offline.tar.gz | head -n 1)" \
    --no-python >/tmp/ganlib-quarto-install.log 2>&1 \
    || echo "[setup] WARNING: Quarto could not be installed (log: /tmp/ganlib-quarto-install.log); tests/test_quarto.py will say so."
fi
echo "[setup] ready: $(.venv/bin/python -c 'import ganlib, keras, tensorflow as tf; print("ganlib", ganlib.__version__, "keras", keras.__version__, "tensorflow", tf.__version__)' 2>/dev/null)"
