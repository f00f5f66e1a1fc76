"""What the machine offers that changes how a run is computed (not what it means)."""
from __future__ import annotations

import contextlib
import functools
import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# The user's own setting, read when `import ganlib` first loads this module, before prefer_onednn() sets it.
USER_ONEDNN_SETTING = os.environ.get(ONEDNN_VARIABLE)


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "x86", "i686")


def prefer_onednn() -> None:
    """Ask TensorFlow for its oneDNN CPU kernels unless the user chose (TF_ENABLE_ONEDNN_OPTS set to anything).

    TensorFlow turns them on by itself only on x86 CPUs with AVX512-VNNI, AVX512-BF16 or AMX; elsewhere it uses
    its Eigen kernels, which its wheels build without AVX2/FMA. On an AVX2-only AMD EPYC (Zen 3) that made a
    ganlib training step 2.1x slower (benchmarks/README.md, "oneDNN"). TensorFlow reads the variable once, when
    it is first imported: hence this runs on `import ganlib` (see `onednn_hint` for the other order)."""
    if is_x86():
        os.environ.setdefault(ONEDNN_VARIABLE, "1")


def onednn_enabled():
    """Whether this process's TensorFlow runs its oneDNN CPU kernels (None: TensorFlow does not say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own check; no public API exists
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_hint(enabled, x86: bool, chosen) -> str:
    """What to tell a user whose TensorFlow runs without oneDNN on x86 though they did not turn it off ("": all
    well). `chosen` is TF_ENABLE_ONEDNN_OPTS as the user set it before ganlib (None: unset)."""
    if enabled is not False or not x86 or (chosen is not None and chosen.strip().lower() in ("0", "false", "off")):
        return ""
    return ("TensorFlow runs without its oneDNN CPU kernels here (it was imported before ganlib, which turns them "
            "on; TensorFlow does by itself only on CPUs with AVX512-VNNI/BF16 or AMX). Training is about 2x "
            "slower on such CPUs: import ganlib before tensorflow/keras, or start Python with "
            "TF_ENABLE_ONEDNN_OPTS=1 (=0 to keep this setting and silence this note).")


def warn_without_onednn() -> None:
    """Say so (a RuntimeWarning) when TensorFlow was imported before ganlib and runs without oneDNN."""
    import warnings

    hint = onednn_hint(onednn_enabled(), is_x86(), USER_ONEDNN_SETTING)
    if hint:
        warnings.warn(hint, RuntimeWarning, stacklevel=3)


@functools.lru_cache(maxsize=1)
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX-BF16).

    Only then is `mixed_bfloat16` faster (measured 1.3-1.6x here); elsewhere bf16 is emulated and slower, so
    `precision="auto"` keeps float32. Read from /proc/cpuinfo (Linux); other systems: False."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def visible_gpus() -> list:
    """The GPUs a study can give one run each, found without starting CUDA in this process: the ids in
    CUDA_VISIBLE_DEVICES when it is set ("" or "-1": none), else one per GPU that `nvidia-smi -L` lists."""
    import os
    import shutil
    import subprocess

    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        ids = [x.strip() for x in given.split(",") if x.strip()]
        return [] if not ids or ids[0].startswith("-") else ids  # CUDA stops at the first invalid id
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def describe() -> dict:
    """The device a run trains on, for its summary.json: {"kind": "GPU" or "CPU", "name", "count", "tensorflow",
    "cpu_threads", "cuda_visible_devices", "onednn"}. TensorFlow puts the models on the first GPU when it sees one
    (a CUDA build of TensorFlow, see docs/configuration.md "GPU"); otherwise on the CPU. "onednn": whether its
    oneDNN CPU kernels ran (numbers differ from Eigen's in the last bits; speed by up to 2x)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    name = _cpu_model() or platform.processor() or platform.machine()
    if gpus:
        try:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
        except (ValueError, RuntimeError):
            name = gpus[0].name
    return {"kind": "GPU" if gpus else "CPU", "name": name, "count": len(gpus) or 1, "tensorflow": tf.__version__,
            "onednn": onednn_enabled(),
            "cpu_threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what native code writes to file descriptor 2 to /dev/null for a while.

    TensorFlow's C++ start-up lines ("oneDNN custom operations are on", absl's "All log messages before
    absl::InitializeLog()") are written before TF_CPP_MIN_LOG_LEVEL is read, straight to the process's stderr;
    in a report render they stream through Quarto's console for every page that loads a generator."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (once) without its native start-up lines; Python warnings and errors still show."""
    if "tensorflow" in sys.modules:
        return
    with quiet_native_stderr():
        import tensorflow  # noqa: F401
