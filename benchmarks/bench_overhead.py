"""Per-run fixed costs of a study: where a run's time goes besides training, and their share of the run.

    python benchmarks/bench_overhead.py                     # the default study with 2 seeds (4 runs), ~4 min
    python benchmarks/bench_overhead.py --seeds 5           # the whole default study (~8 min)
    python benchmarks/bench_overhead.py --read studies/quick  # an existing study directory: nothing trained
    python benchmarks/bench_overhead.py --loopback-cluster  # the same through `dask scheduler` + 2 `dask worker`s
    python benchmarks/bench_overhead.py --loopback-cluster --dask-defaults  # ... started without the quiet settings
    python benchmarks/bench_overhead.py --quick             # a tiny 2-run study (checks that it runs)

A run's time as the study runner sees it (`study_summary.json: runs.<id>.seconds`, papermill from kernel start to
the last cell) is split into: the phases `ganlib.run.train` records in `summary.json: timings` (data, import,
metrics_setup, models, training, saving, final_metrics, untrained_metrics) and the rest ("kernel and notebook":
kernel start, the notebook's cells outside `train`, writing the executed notebook). Fixed cost = everything but
`training`; the target is <= 15% of the run. A first run on a machine also trains the metrics' feature network
(inside metrics_setup); such runs are shown but left out of the medians when there are others.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import ROOT, machine, median, save_json, table  # noqa: E402

PHASES = ("data", "import", "metrics_setup", "models", "training", "saving", "final_metrics", "untrained_metrics")
FEATURE_NET_TRAINING_S = 30.0  # metrics_setup above this trained the feature network (loading it takes ~1 s)


@contextlib.contextmanager
def loopback_cluster(folder: Path, workers: int = 2, quiet: bool = True):
    """A Dask scheduler and `workers` one-thread workers on 127.0.0.1, as separate processes (a cluster's
    layout on one machine), started with the quiet settings docs/studies.md gives (`quiet=False`: Dask's
    defaults); yields the scheduler's address."""
    from analysis.sweep import quiet_dask_environment

    env = {**os.environ, **(quiet_dask_environment() if quiet else {})}
    scheduler_file = folder / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                    "--no-dashboard", "--name", f"w{i}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for i in range(workers)]
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def run_study(study_file: Path, out: Path, seeds: int, quick: bool, scheduler=None) -> Path:
    import yaml

    study = yaml.safe_load(study_file.read_text())
    study["seeds"] = seeds
    study["name"] = "overhead"
    if quick:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny import TINY

        study.pop("variations", None)  # two tiny configurations: the baseline (lr 2e-4) and lr 1e-4
        study.update(baseline={**TINY, "metric_samples": 200, "lr": 2e-4}, grid={"lr": [2e-4, 1e-4]},
                     metrics=["fid"], primary_metric="final_fid", factors=["lr"])
    path = out / "overhead.yaml"
    path.write_text(yaml.safe_dump(study))
    subprocess.run([sys.executable, "-m", "analysis.sweep", str(path), "--out", str(out)]
                   + (["--scheduler", scheduler] if scheduler else []), cwd=ROOT, check=True)
    return out / "overhead"


def breakdown(study_dir: Path) -> list:
    runs = json.loads((study_dir / "study_summary.json").read_text())["runs"]
    rows = []
    for run_id, r in runs.items():
        summary_file = study_dir / "runs" / run_id / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        timings = summary.get("timings")
        if not r.get("seconds") or not timings:
            continue  # not trained by that runner, or by a ganlib before timings were recorded
        row = {"run": run_id, "run seconds": r["seconds"], **{p: timings.get(p, 0.0) for p in PHASES}}
        row["kernel and notebook"] = r["seconds"] - sum(timings.values())
        row["fixed"] = r["seconds"] - timings.get("training", 0.0)
        row["fixed %"] = 100 * row["fixed"] / r["seconds"]
        row["feature net trained"] = timings.get("metrics_setup", 0.0) > FEATURE_NET_TRAINING_S
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default=str(ROOT / "analysis" / "studies" / "quick.yaml"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--read", help="an existing study directory to read instead of running one")
    parser.add_argument("--loopback-cluster", action="store_true", help="run through a `dask scheduler` and two "
                        "`dask worker` processes on 127.0.0.1 instead of the runner's LocalCluster")
    parser.add_argument("--dask-defaults", action="store_true", help="with --loopback-cluster: start the scheduler "
                        "and workers with Dask's default settings (stack profiler, 100 ms memory monitor, stealing)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        scheduler = stack.enter_context(loopback_cluster(Path(tmp), quiet=not args.dask_defaults)) \
            if args.loopback_cluster else None
        study_dir = Path(args.read) if args.read else run_study(Path(args.study), Path(tmp), 1 if args.quick else
                                                                 args.seeds, args.quick, scheduler)
        rows = breakdown(study_dir)
        wall = json.loads((study_dir / "study_summary.json").read_text()).get("wall_seconds")
    if not rows:
        print(f"no run in {study_dir} records summary.json: timings (trained by an older ganlib?)")
        return 1
    typical = [r for r in rows if not r["feature net trained"]] or rows
    columns = ["run seconds", *PHASES, "kernel and notebook", "fixed", "fixed %"]
    medians = {c: median([r[c] for r in typical]) for c in columns}
    print(table(rows, ["run", *columns, "feature net trained"]))
    print(f"\nmedian of {len(typical)} run(s){' (feature-net training left out)' if len(typical) < len(rows) else ''}:")
    for c in columns:
        share = "" if c in ("run seconds", "fixed %") else f"  ({100 * medians[c] / medians['run seconds']:.1f}%)"
        print(f"  {c:20s} {medians[c]:8.2f}{share}")
    met = medians["fixed %"] <= 15
    runs_per_hour = 3600 * len(rows) / wall if wall else None
    print(f"fixed costs {medians['fixed %']:.1f}% of a run: target <= 15% {'MET' if met else 'MISSED'}; study wall "
          f"{wall} s for {len(rows)} runs: {runs_per_hour:.0f} runs/hour"
          + (f" (loopback Dask cluster, 2 workers, {'Dask defaults' if args.dask_defaults else 'quiet'})"
             if args.loopback_cluster else ""))
    save_json(args.json, {"benchmark": "overhead", "machine": machine(), "runs": rows, "medians": medians,
                          "study_wall_seconds": wall, "runs_per_hour": runs_per_hour, "target_met": met,
                          "quick": args.quick, "loopback_cluster": args.loopback_cluster,
                          "dask_defaults": args.dask_defaults})
    return 0


if __name__ == "__main__":
    sys.exit(main())
