"""The study runner: planning, claims, and (slow) real runs through papermill on a local Dask cluster."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from filelock import FileLock

from analysis import sweep
from analysis.study import StudyError, load_study
from analysis.studydir import StudyDirectory
from ganlib.rundir import RunDirectory

ROOT = Path(__file__).resolve().parents[1]
from tiny import TINY  # noqa: E402


def write_study(tmp_path, variations=({"name": "small_lr", "lr": 1.0e-4},), seeds=2, **baseline) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(dict(name="tiny", question="does lr matter?", baseline={**TINY, **baseline},
                                        variations=list(variations), seeds=seeds,
                                        resources={"workers": 2, "threads_per_run": 1})))
    return path


def summary(study_dir, run_id) -> dict:
    return RunDirectory(study_dir / "runs" / run_id).read_summary()


# ---------------------------------------------------------------------------------------------- fast
def test_dry_run_trains_nothing(tmp_path, capsys):
    assert sweep.main([str(write_study(tmp_path)), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs planned" in out and "small_lr/seed1" in out and not (tmp_path / "out").exists()


def test_errors_before_training(tmp_path, capsys):
    path = write_study(tmp_path)
    assert sweep.main([str(path), "--out", str(tmp_path / "out"), "--only", "smal_lr"]) == 2
    assert "did you mean 'small_lr'" in capsys.readouterr().err
    bad = write_study(tmp_path, variations=[{"name": "x", "d_lr": -1}])
    assert sweep.main([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "variation 'x'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_plan_refuses_a_run_directory_of_another_configuration(tmp_path):
    study = load_study(write_study(tmp_path))
    run = study.runs()[0]
    folder = StudyDirectory(tmp_path / "tiny").run_dir(run.variation, run.seed)
    RunDirectory(folder).write_config(run.config.replace(filters=4))
    with pytest.raises(StudyError, match="already hold a different configuration"):
        sweep.plan(study, tmp_path / "tiny")


def test_a_claimed_run_is_left_to_its_runner(tmp_path):
    run_dir = tmp_path / "runs" / "baseline" / "seed0"
    run_dir.mkdir(parents=True)
    with FileLock(str(run_dir / ".claim.lock")):  # another runner is training it
        result = sweep.execute_run(str(run_dir), TINY, 1, str(tmp_path / "log"))
    assert result["status"] == "busy" and not result["trained"] and not (run_dir / "train.ipynb").exists()


def test_visible_gpus_from_the_environment_or_nvidia_smi(tmp_path, monkeypatch):
    from ganlib.device import visible_gpus

    for value, expected in [("0,1", ["0", "1"]), ("", []), ("-1", []), ("GPU-5c1e, GPU-77ab", ["GPU-5c1e", "GPU-77ab"])]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        assert visible_gpus() == expected
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-2)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert visible_gpus() == ["0", "1"]
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert visible_gpus() == []


def test_a_local_cluster_gets_one_worker_per_gpu_and_shares_the_cores(tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(dict(name="g", baseline=TINY, variations=[{"name": "b", "lr": 1e-4}], seeds=2)))
    assert sweep.run_study(load_study(path), tmp_path / "out", gpus=["0", "1"], dry_run=True) == 0
    cores = len(os.sched_getaffinity(0))
    assert f"2 local workers x {max(1, cores // 2)} threads per run, one GPU each of 0, 1" in capsys.readouterr().out
    assert sweep.run_study(load_study(path), tmp_path / "out", gpus=[], dry_run=True) == 0
    assert f"{cores} local workers x 1 threads per run\n" in capsys.readouterr().out
    assert sweep.worker_gpu(["3", "4"]) == "3" and sweep.worker_gpu(None) is None  # outside a worker: the first
    # more workers than GPUs (resources.workers: 2, --gpus 1): one run per GPU at a time, and the plan says so
    path.write_text(yaml.safe_dump(dict(name="g", baseline=TINY, variations=[{"name": "b", "lr": 1e-4}], seeds=2,
                                        resources={"workers": 2})))
    assert sweep.run_study(load_study(path), tmp_path / "out", gpus=["1"], dry_run=True) == 0
    said = capsys.readouterr()
    assert "1 local workers" in said.out and "one GPU each of 1" in said.out and "running 1 at a time" in said.err


# ---------------------------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    # Two (pretend) GPUs: each of the two workers' runs sees only its own (tensorflow-cpu ignores the variable).
    assert sweep.main([str(write_study(tmp_path)), "--out", str(out), "--gpus", "7,9"]) == 0
    study_dir = out / "tiny"
    gpus_seen = set()
    for run_id in ("baseline/seed0", "baseline/seed1", "small_lr/seed0", "small_lr/seed1"):
        assert (study_dir / "runs" / run_id / "train.ipynb").exists()
        s = summary(study_dir, run_id)
        assert s["status"] == "completed" and s["attempts"] == 1
        gpus_seen.add(s["device"]["cuda_visible_devices"])
    assert gpus_seen == {"7", "9"}
    config = json.loads((study_dir / "runs" / "small_lr" / "seed1" / "config.json").read_text())
    assert (config["seed"], config["d_lr"], config["threads"]) == (1, 1e-4, 1)
    study_summary = json.loads((study_dir / "study_summary.json").read_text())
    assert study_summary["counts"] == {"completed": 4} and study_summary["runs_trained"] == 4
    assert study_summary["gpus"] == ["7", "9"] and study_summary["workers"] == 2
    assert load_study(study_dir / "study.yaml").variation("small_lr").config.lr == 1e-4
    import pandas as pd

    runs = pd.read_parquet(study_dir / "tables" / "runs.parquet")
    assert len(runs) == 4 and set(runs["status"]) == {"completed"} and set(runs["epochs_completed"]) == {2}
    assert len(pd.read_parquet(study_dir / "tables" / "epochs.parquet")) == 8
    capsys.readouterr()
    # Again: everything is finished, nothing is trained (and no cluster is started).
    assert sweep.main([str(study_dir / "study.yaml"), "--out", str(out)]) == 0
    assert "4 already finished, 0 to run" in capsys.readouterr().out
    assert summary(study_dir, "baseline/seed0")["attempts"] == 1


@pytest.mark.slow
def test_failing_run_is_recorded_and_the_study_goes_on(tmp_path, capsys):
    path = write_study(tmp_path, variations=[{"name": "broken", "dataset": "folder", "data_dir": "/nonexistent"}],
                       seeds=1)
    assert sweep.main([str(path), "--out", str(tmp_path / "out")]) == 1
    study_dir = tmp_path / "out" / "tiny"
    assert summary(study_dir, "baseline/seed0")["status"] == "completed"
    failed = summary(study_dir, "broken/seed0")
    assert failed["status"] == "failed" and "/nonexistent" in failed["error"]
    assert (study_dir / "runs" / "broken" / "seed0" / "train.ipynb").exists()  # the notebook shows the error
    study_summary = json.loads((study_dir / "study_summary.json").read_text())
    assert study_summary["counts"] == {"completed": 1, "failed": 1}
    assert "/nonexistent" in study_summary["failed"]["broken/seed0"]
    assert "FAILED broken/seed0" in capsys.readouterr().out


@pytest.mark.slow
def test_killed_runner_resumes_without_retraining(tmp_path):
    path = write_study(tmp_path, epochs=4)
    out = tmp_path / "out"
    study_dir = out / "tiny"
    runner = subprocess.Popen([sys.executable, "-m", "analysis.sweep", str(path), "--out", str(out)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    descendants = []
    try:
        deadline = time.time() + 180
        while not any(s.read_text().count('"completed"') for s in study_dir.glob("runs/*/*/summary.json")):
            assert runner.poll() is None and time.time() < deadline, "no run completed"
            descendants = psutil.Process(runner.pid).children(recursive=True) or descendants
            time.sleep(0.2)
        descendants = psutil.Process(runner.pid).children(recursive=True) or descendants
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        # Workers and kernels notice their parent is gone and exit (so no run stays claimed by an orphan).
        _, alive = psutil.wait_procs(descendants, timeout=30)
        assert not alive, f"left running: {alive}"
    finally:
        for p in descendants:
            if p.is_running():
                p.kill()
    finished = {}
    for s in study_dir.glob("runs/*/*/summary.json"):
        data = json.loads(s.read_text())
        if data["status"] == "completed":
            finished[s.parent] = (data["attempts"], data["finished_at"])
    assert 1 <= len(finished) < 4
    assert sweep.main([str(path), "--out", str(out)]) == 0
    for run_dir in study_dir.glob("runs/*/*"):
        data = RunDirectory(run_dir).read_summary()
        assert data["status"] == "completed" and data["epochs_completed"] == 4
        if run_dir in finished:
            assert (data["attempts"], data["finished_at"]) == finished[run_dir]  # not trained again
    study_summary = json.loads((study_dir / "study_summary.json").read_text())
    assert study_summary["runs_trained"] == 4 - len(finished) and study_summary["counts"] == {"completed": 4}


def test_runner_line_flags_a_run_that_did_not_learn():
    from analysis.sweep import run_line

    ok = run_line("baseline/seed0", {"status": "completed", "seconds": 12.0, "trained": True, "verdict": "learned"})
    assert ok == "baseline/seed0: completed in 12s"
    bad = run_line("x/seed1", {"status": "completed", "seconds": 9.0, "trained": True, "verdict": "did_not_learn",
                               "verdict_reasons": ["label accuracy 0.100 is at chance"]})
    assert bad.endswith("DID NOT LEARN: label accuracy 0.100 is at chance")
    careful = run_line("y/seed2", {"status": "completed", "seconds": 9.0, "trained": True, "verdict": "learned",
                                   "verdict_cautions": ["little variety: recall 0.010 < 0.1 (real images ...)"]})
    assert careful == "y/seed2: completed in 9s - caution: little variety: recall 0.010 < 0.1"


PROBE_NOTEBOOK = '''# %% tags=["parameters"]
run_dir = None
threads = 0

# %%
import json, os, sys
preloaded = "tensorflow" in sys.modules  # before this kernel imported anything itself
import ganlib
leaked = hasattr(ganlib, "_left_by_an_earlier_run")
ganlib._left_by_an_earlier_run = True
import matplotlib
with open(os.path.join(run_dir, "probe.json"), "w") as f:
    json.dump({"preloaded": preloaded, "leaked": leaked, "pid": os.getpid(), "ppid": os.getppid(),
               "omp": os.environ.get("OMP_NUM_THREADS"), "backend": matplotlib.get_backend()}, f)
'''


@pytest.mark.slow
def test_run_kernels_are_forked_fresh_from_a_warm_zygote(tmp_path):
    from analysis import warm_kernels

    notebook = tmp_path / "probe.py"
    notebook.write_text(PROBE_NOTEBOOK)
    probes = []
    for i in range(2):
        run_dir = tmp_path / f"run{i}"
        result = sweep.execute_run(str(run_dir), {}, 1, str(tmp_path / f"log{i}"), notebook=str(notebook))
        assert result["error"] is None, result
        probes.append(json.loads((run_dir / "probe.json").read_text()))
    assert all(p["preloaded"] for p in probes)  # TensorFlow was imported before the kernel ran a cell
    assert probes[0]["pid"] != probes[1]["pid"] and probes[0]["ppid"] == probes[1]["ppid"]  # forks of one zygote
    assert not probes[1]["leaked"]  # nothing of the first run's kernel reaches the second
    assert all(p["omp"] == "1" and "inline" in p["backend"] for p in probes)
    warm_kernels.pool().close()
    # Without warm kernels the same notebook runs in an ordinary kernel.
    os.environ["GANLIB_WARM_KERNELS"] = "0"
    try:
        result = sweep.execute_run(str(tmp_path / "cold"), {}, 1, str(tmp_path / "log_cold"), notebook=str(notebook))
    finally:
        del os.environ["GANLIB_WARM_KERNELS"]
    cold = json.loads((tmp_path / "cold" / "probe.json").read_text())
    assert result["error"] is None and not cold["preloaded"] and "inline" in cold["backend"]


def test_quiet_dask_environment_is_what_dask_reads_at_start():
    """The environment variables docs/studies.md gives cluster machines set exactly the local cluster's settings."""
    import dask

    collected = dask.config.collect_env(sweep.quiet_dask_environment())
    assert {key: dask.config.get(key, config=collected) for key in sweep.QUIET_DASK} == sweep.QUIET_DASK


@pytest.mark.parametrize("settings, noisy", [(sweep.QUIET_DASK, False),
                                             ({"distributed.worker.profile.enabled": True}, True),
                                             ({"distributed.worker.profile.enabled": False,
                                               "distributed.worker.memory.monitor-interval": "100ms"}, True)])
def test_a_cluster_with_noisy_workers_gets_a_hint(settings, noisy):
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(settings), LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        hint = sweep.noisy_workers_hint(client)
    if noisy:
        assert "1 of 1 Dask workers" in hint and "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in hint
    else:
        assert hint is None
