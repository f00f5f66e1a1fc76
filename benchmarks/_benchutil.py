"""Small helpers shared by the benchmark scripts (no TensorFlow imports here)."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare_tensorflow() -> None:
    """Before TensorFlow's first import: keep its C++ start-up chatter out of the figures, and give it the CPU
    kernels a ganlib user gets (`import ganlib` turns on oneDNN where TensorFlow leaves it off)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import ganlib  # noqa: F401  (standard library and config only)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def versions() -> dict:
    out = {}
    for name in ("tensorflow", "keras", "numpy", "pandas"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(values) -> float:
    return float(statistics.median(values))


def spread(values) -> str:
    """'median [min-max]' of a list of numbers."""
    values = list(values)
    return f"{median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def table(rows, columns) -> str:
    """A plain-text table of dict rows (floats to 3 significant digits)."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def save_json(path, obj) -> None:
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    print(f"results written to {path}")
