"""Study throughput: runs per hour with parallel single-threaded runs vs one multi-threaded run at a time.

    python benchmarks/bench_study.py              # 2 x 1 thread vs 1 x 2 threads, ~2-3 minutes on 2 cores
    python benchmarks/bench_study.py --quick      # one tiny run per layout (checks that it runs)

A study trains many small runs. Each run here is what `analysis.sweep` starts for one (variation, seed): a fresh
Python process calling `ganlib.run.train(config, run_dir)` with `config.threads = T` and every thread-pool
variable (OMP_NUM_THREADS, TF_NUM_INTRAOP_THREADS, ...) set to T, so process start-up and the TensorFlow import
are counted, as they are in a study. A layout "P x T" keeps P such processes running at once until all runs of
the repetition are done. Layouts alternate (in rotating order) over repetitions, each repetition with fresh run
directories and the same seeds; runs/hour = runs / wall seconds * 3600, and the ratio of a repetition compares the
layouts measured back to back.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import ROOT, machine, median, save_json, spread, table  # noqa: E402

THREAD_ENV = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS")

# A small study run: the conditional DCGAN at width 32 on 4,000 real MNIST digits, 2 epochs x 10 steps.
CONFIG = dict(dataset="mnist_subset", filters=32, latent_dim=64, embedding_dim=16, batch_size=64, epochs=2,
              steps_per_epoch=10, metric_samples=0, grid_size=4, sample_interval=1, checkpoint_interval=1)

CHILD = r"""
import json, resource, sys, time
started = time.perf_counter()
from ganlib.run import train
import tensorflow, keras
imported = time.perf_counter()
summary = train(json.loads(sys.argv[1]), sys.argv[2], verbose=0)
print(json.dumps({"status": summary["status"], "train_seconds": summary.get("train_seconds_this_attempt"),
                  "process_seconds": time.perf_counter() - started,
                  "import_seconds": imported - started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def start_run(config: dict, run_dir: Path, threads: int) -> subprocess.Popen:
    env = {**os.environ, **{k: str(threads) for k in THREAD_ENV}, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps({**config, "threads": threads}), str(run_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))


def run_layout(config: dict, runs: int, processes: int, threads: int, out: Path) -> dict:
    """Train `runs` runs (seeds 0..runs-1), at most `processes` at once; wall time and per-run facts."""
    pending = list(range(runs))
    active, results = [], []
    started = time.perf_counter()
    while pending or active:
        while pending and len(active) < processes:
            seed = pending.pop(0)
            active.append((seed, start_run({**config, "seed": seed}, out / f"seed{seed}", threads)))
        time.sleep(0.05)
        for item in list(active):
            seed, proc = item
            if proc.poll() is None:
                continue
            active.remove(item)
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"run seed{seed} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    bad = [r for r in results if r["status"] != "completed"]
    if bad:
        raise RuntimeError(f"runs did not complete: {bad}")
    return {"wall_seconds": wall, "runs_per_hour": runs / wall * 3600,
            "train_seconds": [r["train_seconds"] for r in results],
            "process_seconds": [r["process_seconds"] for r in results],
            "import_seconds": [r["import_seconds"] for r in results],
            "peak_rss_mib": [r["peak_rss_mib"] for r in results]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per layout per repetition")
    parser.add_argument("--reps", type=int, default=2, help="repetitions (layouts alternate)")
    parser.add_argument("--layouts", default="2x1,1x2", help="PROCESSESxTHREADS, comma separated; the first "
                        "is compared with the others")
    parser.add_argument("--steps", type=int, default=CONFIG["steps_per_epoch"], help="steps per epoch of a run")
    parser.add_argument("--quick", action="store_true", help="1 run x 1 rep x 2 steps per layout")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--keep", help="keep the run directories under this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.reps, args.steps = 1, 1, 2
    config = {**CONFIG, "steps_per_epoch": args.steps}
    layouts = [tuple(int(x) for x in spec.lower().split("x")) for spec in args.layouts.split(",")]

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ganlib-bench-study-"))
    print(f"bench_study: {args.runs} runs per layout per repetition, {args.reps} repetitions, layouts "
          f"{', '.join(f'{p} processes x {t} threads' for p, t in layouts)}; run config {config}")
    results = {layout: [] for layout in layouts}
    load_before = os.getloadavg()[0]
    try:
        for rep in range(args.reps):
            order = layouts[rep % len(layouts):] + layouts[:rep % len(layouts)]
            for p, t in order:
                out = base / f"rep{rep}-{p}x{t}"
                shutil.rmtree(out, ignore_errors=True)
                r = run_layout(config, args.runs, p, t, out)
                results[(p, t)].append(r)
                print(f"  rep {rep + 1}: {p} x {t} threads: {args.runs} runs in {r['wall_seconds']:.1f} s "
                      f"= {r['runs_per_hour']:.0f} runs/h (median training {median(r['train_seconds']):.1f} s, "
                      f"process {median(r['process_seconds']):.1f} s per run)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"load average (1 min) before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    rows = []
    for (p, t), rs in results.items():
        rows.append({"layout": f"{p} x {t} threads", "runs/hour": median([r["runs_per_hour"] for r in rs]),
                     "min": min(r["runs_per_hour"] for r in rs), "max": max(r["runs_per_hour"] for r in rs),
                     "train s/run": median([x for r in rs for x in r["train_seconds"]]),
                     "process s/run": median([x for r in rs for x in r["process_seconds"]]),
                     "import s/run": median([x for r in rs for x in r["import_seconds"]]),
                     "peak RSS MiB/run": median([x for r in rs for x in r["peak_rss_mib"]])})
    print()
    print(table(rows, ["layout", "runs/hour", "min", "max", "process s/run", "import s/run", "train s/run",
                       "peak RSS MiB/run"]))
    print("(process = the whole child process: Python + TensorFlow import, data, model build, training, sample grids,"
          " checkpoint and final models; train = Keras fit alone, from summary.json)")
    first = layouts[0]
    ratios = {}
    for other in layouts[1:]:
        r = [a["runs_per_hour"] / b["runs_per_hour"] for a, b in zip(results[first], results[other])]
        name = f"{first[0]}x{first[1]} / {other[0]}x{other[1]} runs per hour"
        ratios[name] = r
        print(f"ratio {name}: {spread(r)} (per repetition: median [min-max])")
    save_json(args.json, {"benchmark": "study", "machine": machine(), "config": config, "runs": args.runs,
                          "reps": args.reps, "quick": args.quick, "table": rows, "ratios": ratios,
                          "load_average_before": load_before,
                          "results": {f"{p}x{t}": rs for (p, t), rs in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
