"""Run a study: every (variation, seed) through the training notebook, in parallel on a Dask cluster, resumably.

    python -m analysis.sweep analysis/studies/quick.yaml [--out studies/] [--scheduler tcp://host:port]
        [--workers N] [--threads-per-run T] [--gpus auto|none|0,1] [--only VARIATION ...] [--dry-run]

Everything is validated before the first run starts. Each run is one papermill execution of `notebooks/train.py`
into `<out>/<study>/runs/<variation>/seed<k>/` (the executed notebook stays there as `train.ipynb`). Running the
same command again skips completed and diverged runs, resumes interrupted ones from their last checkpoint and
retries failed ones; a lock file per run keeps two runners on one study from training the same run at once.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Optional

from analysis.study import LARGE_PLAN, Study, StudyError, default_workers, load_study
from analysis.studydir import StudyDirectory

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "train.py"
FINISHED = ("completed", "diverged")  # ganlib.run.train returns these as they are: never retrained
# Read by TensorFlow, OpenMP, MKL and OpenBLAS when the kernel starts; `threads` alone cannot reach numpy's pools.
THREAD_ENV = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS")


def _summary_field(run_dir, key: str) -> Optional[str]:
    """A field of a run's summary.json; None when there is none (or it cannot be read)."""
    from ganlib.rundir import RunDirectory

    try:
        return RunDirectory(run_dir).read_summary().get(key)
    except Exception:  # unreadable summaries are reported as such by gather
        return None


def read_status(run_dir) -> Optional[str]:
    return _summary_field(run_dir, "status")


def _verdict(run_dir) -> Optional[str]:
    return _summary_field(run_dir, "verdict")


def _kernel_manager_class(env: dict, log, launcher=None):
    """A kernel manager that starts the kernel with `env` and its own output (TensorFlow's C++ logging, crash
    messages) going to `log` instead of the worker's terminal; with `launcher` (analysis.warm_kernels), the
    kernel is forked from a warm zygote instead of importing everything itself."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            return await super().start_kernel(**{"env": env, "stdout": log, "stderr": log, **kw})

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if launcher and "ipykernel_launcher" in cmd:  # [python, -m, ipykernel_launcher, -f, FILE, ...]
                rest = cmd[cmd.index("ipykernel_launcher") + 1:]
                return [part.replace("{connection_file}", self.connection_file) for part in launcher[:-2]] + rest
            return cmd

    return KernelManager


SCHEDULER_TIMEOUT = "10s"
QUIET_DASK = {"distributed.worker.profile.enabled": False, "distributed.worker.memory.monitor-interval": "1s",
              "distributed.scheduler.work-stealing": False}


def quiet_dask_environment() -> dict:
    """QUIET_DASK as the environment variables `dask scheduler` and `dask worker` read when they start, for the
    machines of a cluster (the local cluster gets QUIET_DASK directly)."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in QUIET_DASK.items()}


def _worker_settings() -> dict:
    import dask

    return {"profile": dask.config.get("distributed.worker.profile.enabled"),
            "monitor": dask.config.get("distributed.worker.memory.monitor-interval")}


def noisy_workers_hint(client) -> Optional[str]:
    """A hint for a cluster whose workers run Dask's stack profiler (every 10 ms) or a memory monitor more often
    than once a second next to the training (on a 2-core loopback cluster: ~2.5 % of the study's wall time,
    benchmarks/README.md)."""
    from dask.utils import parse_timedelta

    try:
        settings = client.run(_worker_settings)
    except Exception:  # a worker that cannot answer: nothing to say about it
        return None
    noisy = [w for w, s in settings.items() if s["profile"] or parse_timedelta(s["monitor"]) < 1]
    if not noisy:
        return None
    env = " ".join(f"{k}={v}" for k, v in quiet_dask_environment().items())
    return (f"note: {len(noisy)} of {len(settings)} Dask workers run Dask's profiler or a frequent memory monitor, "
            f"which take CPU from the training beside them; start workers and scheduler with {env} "
            "(docs/studies.md).")


BUSY_GRACE_SECONDS = 10  # a kernel whose Dask worker died holds its run's lock for a few seconds more


def _wait_for_trainer(run, seconds: float) -> bool:
    """True if a live process still holds the run's training lock after waiting up to `seconds` for it."""
    deadline = time.monotonic() + seconds
    while run.is_locked():
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.5)
    return False


def run_line(run_id: str, result: dict) -> str:
    """The runner's line for a finished run: status, time, error, and loudly a run that did not learn."""
    line = (f"{run_id}: {result['status']}"
            + (f" in {result['seconds']:.0f}s" if result.get("trained") else " (not trained)")
            + (f" - {result['error']}" if result.get("error") else ""))
    if result.get("verdict") == "did_not_learn":
        line += " - DID NOT LEARN: " + "; ".join(result.get("verdict_reasons") or [])
    elif result.get("verdict_cautions"):  # their first clause: the report has the whole sentences
        line += " - caution: " + "; ".join(c.split(" (")[0] for c in result["verdict_cautions"])
    return line


def worker_gpu(gpus) -> Optional[str]:
    """The GPU of this local-cluster worker: worker i of a LocalCluster (named 0, 1, ...) gets gpus[i]."""
    if not gpus:
        return None
    try:
        from distributed import get_worker

        index = int(get_worker().name)
    except (ValueError, TypeError):  # not on a worker, or a worker not named by its index
        index = 0
    return str(gpus[index % len(gpus)])


STUDY_ENTRIES = {"study.yaml", "study_summary.json", "runs", "logs", "tables", ".quarto"}


def check_study_folder(study_dir: Path) -> None:
    """Refuse (StudyError, before anything is written) a study folder that is a symbolic link, or an existing
    folder that holds anything but a study's files: ganlib writes a study only into a folder of its own."""
    from ganlib.rundir import foreign_entries

    if study_dir.is_symlink():
        raise StudyError(f"{study_dir} is a symbolic link; ganlib does not write a study through a link. Give --out "
                         "the folder the link points to, or remove the link.")
    if study_dir.exists() and not study_dir.is_dir():
        raise StudyError(f"{study_dir} is a file; the study needs that name as a folder (choose another --out).")
    if study_dir.is_dir():
        foreign = foreign_entries(study_dir, STUDY_ENTRIES)
        if foreign:
            raise StudyError(f"{study_dir} is not a ganlib study folder (it holds {', '.join(foreign[:5])}"
                             f"{' and more' if len(foreign) > 5 else ''}); choose another --out. Nothing was changed.")


def notebook_is_whole(path: Path) -> bool:
    """Whether `path` is a complete notebook file (a disk that filled up while papermill wrote it leaves it cut)."""
    import nbformat

    try:
        nbformat.read(path, as_version=4)
        return True
    except Exception:  # missing, cut short, not JSON, not a notebook
        return False


def execute_run(run_dir: str, parameters: dict, threads: int, log_file: str, notebook: Optional[str] = None,
                gpus=None) -> dict:
    """Train one run through papermill. Executed on a Dask worker; never raises, returns what happened.
    With `gpus`, the run's kernel sees only its worker's GPU (CUDA_VISIBLE_DEVICES, see `worker_gpu`)."""
    from filelock import FileLock, Timeout

    from ganlib.rundir import TEMP_MARK, RunDirectory, RunDirectoryError, now

    run_dir = Path(run_dir)
    result = {"run_dir": str(run_dir), "status": None, "error": None, "seconds": 0.0, "trained": False}
    try:  # never through a link, never into a folder that is not a run's (ganlib.rundir)
        if run_dir.parent.is_symlink():
            raise RunDirectoryError(f"{run_dir.parent} is a symbolic link; ganlib does not write a study's runs "
                                    "through a link. Replace it by a folder.")
        RunDirectory(run_dir).check_safe_to_write()
    except RunDirectoryError as e:
        return {**result, "status": "failed", "error": f"RunDirectoryError: {e}"}
    run_dir.mkdir(parents=True, exist_ok=True)
    # Non-blocking claim: a run another runner is training is left to it. The OS drops the lock when the
    # holder dies, so a killed runner never leaves a run claimed.
    lock = FileLock(str(run_dir / ".claim.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return {**result, "status": "busy", "error": "claimed by another runner"}
    try:
        run = RunDirectory(run_dir)
        if _wait_for_trainer(run, BUSY_GRACE_SECONDS):
            return {**result, "status": "busy", "error": "being trained by another process"}
        status = read_status(run_dir)
        if status in FINISHED and notebook_is_whole(run_dir / "train.ipynb"):  # finished since it was planned
            done = RunDirectory(run_dir).read_summary()
            return {**result, "status": status, "verdict": done.get("verdict"),
                    "verdict_reasons": done.get("verdict_reasons"), "verdict_cautions": done.get("verdict_cautions")}
        import papermill

        env = {**os.environ, **{k: str(threads) for k in THREAD_ENV}}  # limit every thread pool of the kernel
        gpu = worker_gpu(gpus)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu  # one GPU per parallel run: never two runs' memory on one GPU
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        from analysis import warm_kernels

        # The first run of a worker also waits for its zygote's start (~10 s); later runs find it warm.
        launcher = warm_kernels.pool().kernel_command(env) if warm_kernels.enabled() else None
        error = details = None
        with open(log_file, "ab") as log, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The specified file", UserWarning)  # papermill about `.py` input
            # Executed into a temporary file that replaces train.ipynb only when papermill is done: a full disk
            # or a kill never leaves a truncated notebook in place of the last whole one.
            partial = run_dir / f".train{TEMP_MARK}executing.ipynb"
            try:
                papermill.execute_notebook(
                    str(notebook or NOTEBOOK), str(partial), progress_bar=False,
                    parameters={**parameters, "run_dir": str(run_dir), "threads": threads},
                    kernel_manager_class=_kernel_manager_class(env, log, launcher),
                    # Every output is on disk when the last cell ends: no need to wait (~3 s measured) for the
                    # kernel's graceful exit (TensorFlow's teardown) before the next run can start.
                    shutdown_kernel="immediate")
            except Exception as e:  # PapermillExecutionError (a cell raised), a dead kernel, ...
                ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
                error = f"{ename}: {evalue}" if ename else f"{type(e).__name__}: {e}"
                details = traceback.format_exc()
            finally:
                if notebook_is_whole(partial):  # a failed run's notebook shows where it failed: kept too
                    os.replace(partial, run_dir / "train.ipynb")
                partial.unlink(missing_ok=True)
        summary = run.read_summary()
        if error and summary.get("status") not in ("failed", *FINISHED):
            # It failed before ganlib.run.train could record it (e.g. in the data preview cell, or the kernel
            # died): record it, so the run directory says so and the study reports it -- unless a live trainer
            # holds the run (another process started it meanwhile): that run is busy, and its summary is its own.
            try:
                with run.lock():
                    summary = run.update_summary(status="failed", error=error, finished_at=now(),
                                                 traceback=details)
            except RunDirectoryError:
                return {**result, "status": "busy", "error": "being trained by another process"}
        return {**result, "status": summary.get("status") or "failed", "error": summary.get("error") or error,
                "seconds": round(time.perf_counter() - started, 1), "trained": True,
                "attempts": summary.get("attempts"), "verdict": summary.get("verdict"),
                "verdict_reasons": summary.get("verdict_reasons"), "verdict_cautions": summary.get("verdict_cautions")}
    finally:
        lock.release()


def plan(study: Study, study_dir: Path, only=None) -> list:
    """[(Run, run_dir, status)] in execution order; refuses run directories that hold another configuration."""
    from ganlib.rundir import RunDirectory

    directory = StudyDirectory(study_dir)
    runs, conflicts = [], []
    for run in study.runs(only):
        run_dir = directory.run_dir(run.variation, run.seed)
        try:
            existing = RunDirectory(run_dir).read_config() if (run_dir / "config.json").exists() else None
        except Exception:
            existing = None  # unreadable: training will report it
        if existing is not None and existing.hash != run.config.hash:
            conflicts.append(f"{run.run_id} (has {existing.hash}, study wants {run.config.hash})")
        runs.append((run, run_dir, read_status(run_dir)))
    if conflicts:
        raise StudyError(f"These run directories already hold a different configuration than the study now "
                         f"defines: {'; '.join(conflicts)}. Rename the changed variation, or delete the runs.")
    # Seed-major order: a study stopped early still has every variation with the same number of seeds.
    variations = [v.name for v in study.variations]
    return sorted(runs, key=lambda r: (study.seeds.index(r[0].seed), variations.index(r[0].variation)))


@contextlib.contextmanager
def dask_client(scheduler: Optional[str], workers: int):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as e:  # refused, unreachable, no such host, bad address
            raise StudyError(f"could not connect to the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT} "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}). Is it "
                             "running (`dask scheduler`, then `dask worker <address>` on each machine) and is the "
                             "address right? Nothing was trained.") from None
        with client:
            yield client
        return
    # One single-threaded worker process per parallel run; loopback only, no dashboard port to collide on.
    # Quiet workers: a run is one long task, so Dask's 10 ms stack profiler, its 100 ms memory monitor and work
    # stealing only take CPU from the training next to them (measured: ~8% of a core per worker and scheduler).
    import dask

    with dask.config.set(QUIET_DASK), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _error(run_dir) -> Optional[str]:
    from ganlib.rundir import RunDirectory

    try:
        return RunDirectory(run_dir).read_summary().get("error")
    except Exception:
        return None


def _counts(statuses) -> dict:
    counts = {}
    for s in statuses:
        counts[s or "not started"] = counts.get(s or "not started", 0) + 1
    return counts


def confirm_large_plan(n_runs: int, yes: bool) -> bool:
    """A plan of more than LARGE_PLAN runs needs --yes (or a yes at a terminal) before anything is trained."""
    if n_runs <= LARGE_PLAN or yes:
        return True
    message = f"This plan trains {n_runs:,} runs (more than {LARGE_PLAN})."
    if sys.stdin is not None and sys.stdin.isatty():
        return input(f"{message} Train them? [y/N] ").strip().lower() in ("y", "yes")
    print(f"error: {message} Check it with --dry-run, then pass --yes to train them.", file=sys.stderr)
    return False


def run_study(study: Study, out, scheduler=None, workers=None, threads=None, only=None, dry_run=False,
              yes=False, gpus="auto") -> int:
    """Run (the rest of) a study; returns the exit code: 0, 1 if a run failed, 2 if a large plan was not
    confirmed.

    `gpus` ("auto": `ganlib.device.visible_gpus()`; a list of ids; None or []: none) gives a local cluster one
    worker per GPU by default, each run on its worker's GPU with the CPU cores shared out. A remote scheduler's
    workers keep their own environment (start one `dask worker` per GPU with CUDA_VISIBLE_DEVICES set).
    """
    from ganlib.device import visible_gpus
    from ganlib.rundir import now

    gpus = [] if scheduler else list(visible_gpus() if gpus == "auto" else gpus or [])
    workers = workers or study.resources.get("workers") or (len(gpus) if gpus else None)
    if gpus and workers > len(gpus):  # one run per GPU at a time: two would share (and may exhaust) its memory
        print(f"note: {workers} workers asked for but {len(gpus)} GPU(s) given ({', '.join(gpus)}); running "
              f"{len(gpus)} at a time, one on each GPU", file=sys.stderr)
        workers = len(gpus)
    threads = threads or study.resources.get("threads_per_run") or \
        (max(1, default_workers(1) // workers) if gpus else 1)
    workers = workers or default_workers(threads)
    study_dir = Path(out).expanduser().resolve() / study.name
    check_study_folder(study_dir)
    directory = StudyDirectory(study_dir)
    runs = plan(study, study_dir, only)
    todo = [(run, d) for run, d, status in runs if status not in FINISHED]
    print(f"study {study.name!r}: {len(study.variations)} variations x {len(study.seeds)} seeds; "
          f"{len(runs)} runs planned, {len(runs) - len(todo)} already finished, {len(todo)} to run")
    if study.question:
        print(f"question: {study.question}")
    print(f"output: {study_dir}; " + (f"scheduler {scheduler}" if scheduler else f"{workers} local workers")
          + f" x {threads} threads per run" + (f", one GPU each of {', '.join(gpus)}" if gpus else ""))
    if dry_run:
        for v in study.variations:
            print(f"  {v.name:40s} hash {v.config.hash}  {v.overrides or '(baseline)'}")
        for run, d, status in runs:
            print(f"  {run.run_id:40s} {status or 'not started'}")
        return 0
    if not confirm_large_plan(len(todo), yes):
        return 2

    started, t0 = now(), time.perf_counter()
    try:
        directory.write_definition(study)
    except OSError as e:  # read-only or full: before any run starts
        raise StudyError(f"cannot write the study folder {study_dir} ({e.strerror or e}); make it writable or free "
                         "space, then run again.") from None
    results = {}
    if todo:
        from distributed import as_completed
        from tqdm import tqdm

        with dask_client(scheduler, workers) as client:
            hint = noisy_workers_hint(client) if scheduler else None
            if hint:
                print(hint)
            futures = {client.submit(execute_run, str(d), run.config.to_dict(), threads,
                                     str(directory.log_file(run.variation, run.seed)), gpus=gpus or None,
                                     pure=False): run
                       for run, d in todo}
            with tqdm(total=len(futures), desc=study.name, unit="run", file=sys.stderr) as bar:
                for future in as_completed(futures):
                    run = futures[future]
                    try:
                        result = future.result()
                    except Exception as e:  # the worker itself died (KilledWorker), ...
                        result = {"status": "failed", "error": f"{type(e).__name__}: {e}", "seconds": 0.0}
                    results[run.run_id] = result
                    tqdm.write(run_line(run.run_id, result), file=sys.stderr)
                    bar.update()

    final = {run.run_id: read_status(d) for run, d, _ in runs}
    for run_id, result in results.items():  # e.g. a worker lost: no summary.json may say so
        if result["status"] == "failed":
            final[run_id] = "failed"
    summary = {
        "study": study.name, "question": study.question, "study_dir": str(study_dir),
        "started_at": started, "finished_at": now(), "wall_seconds": round(time.perf_counter() - t0, 1),
        "scheduler": scheduler or "local", "workers": None if scheduler else workers, "threads_per_run": threads,
        "gpus": gpus,
        "only": only, "runs_planned": len(runs), "runs_trained": sum(bool(r.get("trained")) for r in results.values()),
        "counts": _counts(final.values()),
        "failed": {run.run_id: (results.get(run.run_id) or {}).get("error") or _error(d)
                   for run, d, _ in runs if final[run.run_id] == "failed"},
        "busy": sorted(k for k, r in results.items() if r["status"] == "busy"),
        "did_not_learn": sorted(k for k, d in ((run.run_id, d) for run, d, _ in runs) if _verdict(d) == "did_not_learn"),
        "runs": {k: {"status": s, **{f: results.get(k, {}).get(f) for f in ("error", "seconds", "trained")}}
                 for k, s in final.items()},
    }
    try:
        directory.write_summary(summary)
    except OSError as e:  # the runs themselves are on disk and resume; only this summary is missing
        print(f"error: could not write {directory.summary_file} ({e.strerror or e}); the runs are safe. Make the "
              "folder writable or free space, then run the same command again.", file=sys.stderr)
        return 1
    try:
        from analysis.gather import gather

        gather(study_dir)
    except Exception as e:  # the runs are safe on disk; the tables can be rebuilt with `python -m analysis.gather`
        print(f"warning: gathering the tables failed: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"study {study.name!r} done in {summary['wall_seconds']:.0f}s: "
          + ", ".join(f"{n} {s}" for s, n in sorted(summary["counts"].items()))
          + (f"; {len(summary['busy'])} in progress in another runner" if summary["busy"] else ""))
    for run_id, error in summary["failed"].items():
        print(f"  FAILED {run_id}: {error}")
    if summary["did_not_learn"]:
        print(f"  DID NOT LEARN ({len(summary['did_not_learn'])} of {len(runs)} runs; the report does not rank "
              f"them as results): {', '.join(summary['did_not_learn'])}")
    print(f"summary: {directory.summary_file}; tables: {directory.tables_dir}")
    return 1 if summary["failed"] else 0


def main(argv=None, prog: str = "python -m analysis.sweep") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("study", help="study file (YAML), e.g. analysis/studies/quick.yaml")
    parser.add_argument("--out", default="studies", help="output folder; the study goes to OUT/<name>/")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port); "
                        "default: a local cluster")
    parser.add_argument("--workers", type=int, help="parallel runs of the local cluster "
                        "(default: study resources.workers, else CPU cores // threads per run)")
    parser.add_argument("--threads-per-run", type=int, dest="threads",
                        help="CPU threads of each run (default: study resources.threads_per_run, else 1)")
    parser.add_argument("--gpus", default="auto", help="GPUs of the local cluster, one run on each at a time: "
                        "'auto' (CUDA_VISIBLE_DEVICES, else nvidia-smi; none here means CPU), 'none', or ids "
                        "such as 0,1")
    parser.add_argument("--only", action="append", metavar="VARIATION",
                        help="run only this variation (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="validate and show the plan; train nothing")
    parser.add_argument("--yes", action="store_true", help=f"train a plan of more than {LARGE_PLAN} runs without asking")
    args = parser.parse_args(argv)
    from analysis.study import MAX_RESOURCES

    for name, key in (("workers", "workers"), ("threads", "threads_per_run")):
        if getattr(args, name) is not None and not 1 <= getattr(args, name) <= MAX_RESOURCES[key]:
            parser.error(f"--{name.replace('threads', 'threads-per-run')} must be from 1 to {MAX_RESOURCES[key]}")
    try:
        study = load_study(args.study)
        gpus = args.gpus if args.gpus == "auto" else [] if args.gpus == "none" else \
            [g.strip() for g in args.gpus.split(",") if g.strip()]
        return run_study(study, args.out, args.scheduler, args.workers, args.threads, args.only, args.dry_run,
                         args.yes, gpus)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Import ourselves by module name so Dask pickles `analysis.sweep.execute_run`, not `__main__.execute_run`,
    # which workers could not import.
    from analysis import sweep

    sys.exit(sweep.main())
