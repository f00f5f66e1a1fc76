"""ganlib: honest hyperparameter studies of GANs.

The end-to-end path is `ganlib.GAN(...).train()`; below it: `Config` -> `data` -> `models` -> `trainer`
-> run directory (`rundir`), each usable on its own.
"""
import os as _os

# TensorFlow's C++ start-up chatter hides our own messages in notebooks and logs.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import device as _device  # noqa: E402  (standard library only)

# Before TensorFlow is imported: its fast CPU kernels are opt-in on most x86 CPUs (see device.prefer_onednn).
_device.prefer_onednn()

__version__ = "0.1.0"

from .config import Config, ConfigError  # noqa: E402


def __getattr__(name):
    # Heavy modules (TensorFlow) load only when used, so `import ganlib` and config validation stay fast.
    if name == "GAN":
        from .api import GAN
        return GAN
    if name == "train":
        from .run import train
        return train
    if name == "LatentExplorer":
        from .explore import LatentExplorer
        return LatentExplorer
    if name in ("load_dataset", "load_for_config"):
        from . import data
        return getattr(data, name)
    raise AttributeError(f"module 'ganlib' has no attribute {name!r}")


__all__ = ["Config", "ConfigError", "GAN", "LatentExplorer", "train", "load_dataset", "load_for_config", "__version__"]
