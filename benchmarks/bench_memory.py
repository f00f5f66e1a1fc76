"""Peak memory (RSS) of a short training run, and of gathering a large synthetic study with `analysis.gather`.

    python benchmarks/bench_memory.py            # ~1-2 minutes on 2 cores
    python benchmarks/bench_memory.py --quick    # small sizes (checks that it runs)

Every measurement runs in a fresh Python process and reports that process's peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`), next to its RSS once the imports are done, so "peak - baseline"
is what the measured work itself added.

1. training: `ganlib.run.train` of the Brownlee-sized conditional DCGAN (filters 128, batch 128) on Fashion-MNIST
   (60,000 images) for a few steps, without metrics.
2. gather: a synthetic study of `--runs` run directories (`runs/<variation>/seed<k>/` with config.json,
   summary.json, metrics/epochs.csv and metrics/batches.csv in the documented format, docs/run-directory.md)
   whose per-batch logs are 1x, 4x and 16x `--steps` rows per run. Measured: `analysis.gather.gather(study_dir)`
   (runs and epochs tables, per-run stability and rolling summaries of the batch logs, written as Parquet), and for
   contrast `analysis.gather.load_batches(study_dir)`, which holds every batch row of the study at once.
   gather's peak should barely move when the logs grow 16x (it reads one run's log at a time); load_batches' grows
   with the total log size.
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
from _benchutil import ROOT, machine, save_json, table  # noqa: E402

CHILD_PRELUDE = r"""
import json, resource, sys, time
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

TRAIN_CHILD = CHILD_PRELUDE + r"""
from ganlib.run import train
import tensorflow, keras
baseline = rss_mib()
started = time.perf_counter()
summary = train(json.loads(sys.argv[1]), sys.argv[2], verbose=0)
print(json.dumps({"status": summary["status"], "seconds": time.perf_counter() - started,
                  "baseline_rss_mib": baseline, "peak_rss_mib": peak_mib()}))
"""

GATHER_CHILD = CHILD_PRELUDE + r"""
import analysis.gather as G
baseline = rss_mib()
started = time.perf_counter()
what = sys.argv[1]
if what == "gather":
    tables = G.gather(sys.argv[2])
    facts = {"runs": len(tables.runs), "epoch_rows": len(tables.epochs),
             "stability_rows": 0 if tables.stability is None else len(tables.stability),
             "rolling_rows": 0 if tables.rolling is None else len(tables.rolling)}
else:
    batches = G.load_batches(sys.argv[2])
    facts = {"batch_rows": len(batches), "frame_mib": batches.memory_usage(deep=True).sum() / 2**20}
print(json.dumps({**facts, "seconds": time.perf_counter() - started, "baseline_rss_mib": baseline,
                  "peak_rss_mib": peak_mib()}))
"""


def child(code: str, *args, threads: int = 0) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True,
                          cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- synthetic study
def write_synthetic_study(study_dir: Path, runs: int, steps: int, epochs: int = 10, variations: int = 12,
                          seed: int = 0) -> dict:
    """A study of `runs` finished runs, each with `steps` per-batch rows over `epochs` epochs, in the run-directory
    format of docs/run-directory.md. Returns the total size of the batch logs."""
    import numpy as np

    from ganlib.config import Config
    from ganlib.rundir import FORMAT_VERSION

    rng = np.random.default_rng(seed)
    per_epoch = max(1, steps // epochs)
    steps = per_epoch * epochs
    batch_bytes = 0
    lrs = [1e-4 * (1 + i) for i in range(variations)]
    for r in range(runs):
        v, s = r % variations, r // variations
        run = study_dir / "runs" / f"lr={lrs[v]:g}" / f"seed{s}"
        (run / "metrics").mkdir(parents=True, exist_ok=True)
        config = Config(dataset="mnist_subset", lr=lrs[v], seed=s, epochs=epochs, steps_per_epoch=per_epoch)
        (run / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
        fid = float(30 + 10 * rng.standard_normal())
        summary = {"status": "completed", "error": None, "config_hash": config.hash, "format_version": FORMAT_VERSION,
                   "ganlib_version": "0.1.0", "started_at": "2026-11-23T00:00:00+00:00",
                   "updated_at": "2026-11-23T01:00:00+00:00", "finished_at": "2026-11-23T01:00:00+00:00",
                   "attempts": 1, "resumed_from_epoch": None, "epochs_completed": epochs,
                   "steps_per_epoch": per_epoch, "train_seconds_total": 3600.0, "train_seconds_this_attempt": 3600.0,
                   "dataset": {"name": "mnist_subset", "source": "synthetic", "train_images": 4000,
                               "image_shape": [28, 28, 1], "classes": [str(i) for i in range(10)],
                               "skipped_files": 0},
                   "parameters": {"generator": 1000, "discriminator": 1000},
                   "final_metrics": {"fid": fid, "kid": 0.01, "extractor": "synthetic", "n_samples": 1000}}
        (run / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        step = np.arange(1, steps + 1)
        epoch = (step - 1) // per_epoch + 1
        noise = rng.standard_normal((steps, 4))
        d_loss = 1.2 + 0.1 * noise[:, 0]
        g_loss = 0.9 + 0.2 * noise[:, 1]
        acc_r = np.clip(0.6 + 0.1 * noise[:, 2], 0, 1)
        acc_f = np.clip(0.5 + 0.1 * noise[:, 3], 0, 1)
        path = run / "metrics" / "batches.csv"
        with open(path, "w") as f:
            f.write("epoch,step,d_loss,g_loss,d_acc_real,d_acc_fake\n")
            np.savetxt(f, np.column_stack([epoch, step, d_loss, g_loss, acc_r, acc_f]),
                       fmt=["%d", "%d", "%.6g", "%.6g", "%.6g", "%.6g"], delimiter=",")
        batch_bytes += path.stat().st_size
        with open(run / "metrics" / "epochs.csv", "w") as f:
            f.write("epoch,d_loss,g_loss,d_acc_real,d_acc_fake,seconds,images_per_second,steps,eval_fid\n")
            for e in range(1, epochs + 1):
                m = epoch == e
                f.write(f"{e},{d_loss[m].mean():.6g},{g_loss[m].mean():.6g},{acc_r[m].mean():.6g},"
                        f"{acc_f[m].mean():.6g},360.0,{per_epoch * 64 / 360:.6g},{per_epoch},"
                        f"{fid + 50 / e if e % 5 == 0 else ''}\n")
    return {"runs": runs, "steps_per_run": steps, "batch_rows": runs * steps, "batch_log_mib": batch_bytes / 2**20}


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=240, help="run directories in the synthetic study")
    parser.add_argument("--steps", type=int, default=500, help="per-batch rows per run at size 1x")
    parser.add_argument("--scales", default="1,4,16", help="multiples of --steps to measure")
    parser.add_argument("--train-steps", type=int, default=5, help="steps of the training run")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--keep", help="keep the synthetic studies under this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.steps, args.scales, args.train_steps = 24, 20, "1,4", 2
    scales = [int(s) for s in args.scales.split(",")]
    result = {"benchmark": "memory", "machine": machine(), "quick": args.quick}

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ganlib-bench-memory-"))
    try:
        if not args.skip_train:
            config = dict(dataset="fashion_mnist", filters=128, embedding_dim=50, latent_dim=100, batch_size=128,
                          epochs=1, steps_per_epoch=args.train_steps, metric_samples=0, grid_size=10)
            if args.quick:
                config.update(dataset="mnist_subset", filters=16, batch_size=32)
            r = child(TRAIN_CHILD, json.dumps(config), base / "train-run")
            assert r["status"] == "completed", r
            result["train"] = {"config": config, **r}
            print(f"training run ({config['dataset']}, filters {config['filters']}, batch {config['batch_size']}, "
                  f"{args.train_steps} steps): "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB, after importing ganlib+TensorFlow "
                  f"{r['baseline_rss_mib']:.0f} MiB ({r['seconds']:.0f} s)", flush=True)

        rows = []
        for scale in scales:
            study = base / f"study-{scale}x"
            shutil.rmtree(study, ignore_errors=True)
            started = time.perf_counter()
            facts = write_synthetic_study(study, args.runs, args.steps * scale)
            made = time.perf_counter() - started
            g = child(GATHER_CHILD, "gather", study)
            b = child(GATHER_CHILD, "load_batches", study)
            rows.append({"log size": f"{scale}x", "rows/run": facts["steps_per_run"],
                         "batch logs MiB": facts["batch_log_mib"],
                         "gather peak MiB": g["peak_rss_mib"], "gather +MiB": g["peak_rss_mib"] - g["baseline_rss_mib"],
                         "gather s": g["seconds"],
                         "load_batches peak MiB": b["peak_rss_mib"],
                         "load_batches +MiB": b["peak_rss_mib"] - b["baseline_rss_mib"]})
            result.setdefault("gather", []).append({"scale": scale, **facts, "write_seconds": made,
                                                    "gather": g, "load_batches": b})
            print(f"  {scale}x: {args.runs} runs x {facts['steps_per_run']} batch rows "
                  f"({facts['batch_log_mib']:.1f} MiB of CSV, written in {made:.0f} s): gather peak "
                  f"{g['peak_rss_mib']:.0f} MiB (+{g['peak_rss_mib'] - g['baseline_rss_mib']:.0f} over imports, "
                  f"{g['seconds']:.1f} s); load_batches peak {b['peak_rss_mib']:.0f} MiB", flush=True)
        print()
        print(table(rows, list(rows[0])))
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            growth = last["rows/run"] / first["rows/run"]
            g_growth = last["gather +MiB"] / max(first["gather +MiB"], 1e-9)
            b_growth = last["load_batches +MiB"] / max(first["load_batches +MiB"], 1e-9)
            print(f"\nlogs x{growth:.0f}: gather's memory above its imports x{g_growth:.2f} "
                  f"({'sub-linear' if g_growth < growth else 'NOT sub-linear'}); load_batches' x{b_growth:.2f}")
            result["growth"] = {"log_size": growth, "gather_above_imports": g_growth,
                                "load_batches_above_imports": b_growth, "sublinear": g_growth < growth}
        result["table"] = rows
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    save_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
