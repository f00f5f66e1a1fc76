"""Image folders: the first load decodes every file; the test split and every later run read the decoded copy.

    python benchmarks/bench_folder.py               # 2,000 JPEGs of 178x218 (CelebA's size) brought to 64x64
    python benchmarks/bench_folder.py --quick       # 60 images (checks that it runs)

Each load is a fresh Python process (as in a study, where every run is one), timed around `load_dataset` only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import ROOT, machine, save_json, table  # noqa: E402

CHILD = r"""
import json, sys, time
from ganlib.data import load_dataset
t = time.perf_counter()
d = load_dataset("folder", sys.argv[1], data_dir=sys.argv[2], image_size=64)
print(json.dumps({"seconds": time.perf_counter() - t, "images": len(d), "memory_mapped": type(d.images).__name__ == "memmap"}))
"""


def make_folder(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    n = 60 if args.quick else args.images
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "images", Path(tmp) / "cache"
        make_folder(root, n)
        env = {**os.environ, "GANLIB_FOLDER_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
        rows = []
        for label, split in [("first load: decode (train split)", "train"), ("test split", "test"),
                             ("next run: train split", "train")]:
            out = subprocess.run([sys.executable, "-c", CHILD, split, str(root)], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows.append({"load": label, **json.loads(out.strip().splitlines()[-1])})
    print(f"{n} JPEGs 178x218 -> 64x64 RGB")
    print(table(rows, ["load", "seconds", "images", "memory_mapped"]))
    save_json(args.json, {"machine": machine(), "images": n, "table": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
