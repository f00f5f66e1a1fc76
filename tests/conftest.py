import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GANLIB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".cache", "ganlib"))
# Decoded test folders (tmp_path folders, a new key every session) are not worth keeping between sessions.
import tempfile  # noqa: E402

os.environ.setdefault("GANLIB_FOLDER_CACHE", tempfile.mkdtemp(prefix="ganlib-folders-"))

import pytest  # noqa: E402

import ganlib  # noqa: E402,F401  (before any test module imports TensorFlow: the CPU kernels users get)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from tiny import tiny  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-relative "prepend" import mode)


@pytest.fixture
def tiny_config():
    return tiny
