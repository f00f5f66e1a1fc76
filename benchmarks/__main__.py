"""Run every benchmark, one after the other, and print the headline figures and ratios at the end.

    python -m benchmarks                      # all of them (~20 minutes on 2 idle cores)
    python -m benchmarks --quick              # each in its tiny smoke mode (figures mean nothing)
    python -m benchmarks --only train,memory  # some of them
    python -m benchmarks --only output_conv   # the probe behind the output-layer change (not in "all")
    python -m benchmarks --out DIR            # keep each benchmark's JSON results and log in DIR

Each benchmark runs in its own Python process (`python benchmarks/bench_<name>.py`), so one's threads, memory
and TensorFlow state cannot bias the next. `bench_metrics.py` (FID timings) is run when present; arguments for it
can be given with `--metrics-args "..."`.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = ("train", "torch", "study", "overhead", "metrics", "memory", "quality", "folder")  # run by default
EXTRA = ("output_conv",)  # run only when named with --only (the investigation behind an applied change)
SCRIPTS = {"output_conv": "probe_output_conv.py"}


def _help(script: Path) -> str:
    try:
        return subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                              cwd=str(ROOT)).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def command(name: str, quick: bool, out: Path, metrics_args: str):
    """The command line of one benchmark (None to skip it), and where its JSON results go (or None)."""
    script = HERE / SCRIPTS.get(name, f"bench_{name}.py")
    if not script.exists():
        return None, None
    cmd = [sys.executable, str(script)]
    json_path = out / f"{name}.json"
    if name == "metrics":  # another engineer's script: use only the options it declares
        usage = _help(script)
        if quick:
            if "--quick" not in usage:
                return None, None
            cmd.append("--quick")
        cmd += shlex.split(metrics_args)
        if "--json" in usage:
            cmd += ["--json", str(json_path)]
        else:
            json_path = None
        return cmd, json_path
    if name == "torch" and not (ROOT / ".venv-torch" / "bin" / "python").exists():
        return None, None  # PyTorch is not installed: `python benchmarks/bench_torch.py --setup`
    if quick:
        cmd.append("--quick")
    return cmd + ["--json", str(json_path)], json_path


def headline(name: str, result: dict) -> list:
    """One-line figures of a benchmark's JSON results."""
    from statistics import median

    lines = []
    if name == "train":
        for row in result.get("table", []):
            lines.append(f"{row['implementation']:9s} {row['precision']:14s} {row['images/s']:7.1f} images/s "
                         f"{row['GFLOP/s']:6.1f} GFLOP/s")
        met = result.get("targets_met", {})
        for key, values in result.get("ratios", {}).items():
            cpu = result.get("cpu_time_ratios", {}).get(key)
            verdict = f"  target {'MET' if met[key] else 'MISSED'}" if key in met else ""
            lines.append(f"ratio {key}: {median(values):.2f} (wall)"
                         + (f", {median(cpu):.2f} (CPU time)" if cpu else "") + verdict)
    elif name == "study":
        for row in result.get("table", []):
            lines.append(f"{row['layout']:16s} {row['runs/hour']:7.0f} runs/hour")
        for key, values in result.get("ratios", {}).items():
            lines.append(f"ratio {key}: {median(values):.2f}")
    elif name in ("torch", "overhead"):
        for row in result.get("table", []):
            lines.append(f"{row['variant']:30s} {row['images/s']:7.1f} images/s")
        for key, values in result.get("ratios", {}).items():
            if "best" in key:
                lines.append(f"ratio {key}: {median(values):.2f} (wall), "
                             f"{median(result['cpu_time_ratios'][key]):.2f} (CPU time)")
        if "medians" in result:
            lines.append(f"fixed costs {result['medians']['fixed %']:.1f}% of a run "
                         f"({result['medians']['run seconds']:.0f} s); {result['runs_per_hour']:.0f} runs/hour")
    elif name == "folder":
        for row in result.get("table", []):
            lines.append(f"{row['load']:34s} {row['seconds']:6.2f} s ({row['images']} images)")
    elif name == "output_conv":
        for precision, r in result.get("train_step", {}).items():
            for variant in ("forward only", "forward + kernel gradient"):
                if variant in r:
                    lines.append(f"{precision:15s} g_image rewritten ({variant}): train_step speed-up "
                                 f"{median(r[variant]['speedup']):.2f}")
    elif name == "quality":
        for row in result.get("table", []):
            lines.append(f"{row['variant']:10s} {row['budget']:3s} FID {row['fid']:20s} intra-class FID "
                         f"{row['intra_fid']:20s} recall {row['recall']:20s} coverage {row['coverage']:20s} "
                         f"label acc {row['label_accuracy']}")
    elif name == "memory":
        train = result.get("train")
        if train:
            lines.append(f"training run peak RSS {train['peak_rss_mib']:.0f} MiB "
                         f"(after imports {train['baseline_rss_mib']:.0f} MiB)")
        for row in result.get("table", []):
            lines.append(f"gather {row['log size']:>4s} logs ({row['batch logs MiB']:.1f} MiB CSV): peak "
                         f"{row['gather peak MiB']:.0f} MiB; load_batches {row['load_batches peak MiB']:.0f} MiB")
        growth = result.get("growth")
        if growth:
            lines.append(f"logs x{growth['log_size']:.0f} -> gather memory above imports "
                         f"x{growth['gather_above_imports']:.2f} ({'sub-linear' if growth['sublinear'] else 'NOT sub-linear'})")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke mode of each benchmark")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ORDER + EXTRA)}")
    parser.add_argument("--out", help="folder for the JSON results and logs (default: a temporary folder)")
    parser.add_argument("--metrics-args", default="", help="extra arguments for bench_metrics.py")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(ORDER)
    unknown = [n for n in names if n not in ORDER + EXTRA]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(ORDER + EXTRA)}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ganlib-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}

    started, summary, failed = time.perf_counter(), [], []
    for name in names:
        cmd, json_path = command(name, args.quick, out, args.metrics_args)
        if cmd is None:
            present = (HERE / SCRIPTS.get(name, f"bench_{name}.py")).exists()
            why = ("no PyTorch: python benchmarks/bench_torch.py --setup" if name == "torch" and present else
                   "no --quick mode" if present else "not present")
            print(f"=== bench_{name}: skipped ({why})")
            continue
        print(f"=== bench_{name}: {' '.join(shlex.quote(c) for c in cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        with open(out / f"{name}.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            for line in proc.stdout:  # echo and keep a log, without TensorFlow's C++ start-up lines
                log.write(line)
                if not line.startswith(("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")):
                    print(line, end="", flush=True)
            proc.wait()
        seconds = time.perf_counter() - t0
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, log {out / (name + '.log')})"
        if proc.returncode != 0:
            failed.append(name)
        print(f"=== bench_{name}: {status} in {seconds:.0f} s\n", flush=True)
        lines = []
        if json_path and json_path.exists():
            lines = headline(name, json.loads(json_path.read_text()))
        summary.append((name, seconds, status, lines))

    print("=" * 100)
    print(f"summary ({'quick mode: figures mean nothing' if args.quick else 'see benchmarks/README.md'}); "
          f"results in {out}")
    for name, seconds, status, lines in summary:
        print(f"bench_{name} ({seconds:.0f} s, {status})")
        for line in lines:
            print(f"  {line}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
