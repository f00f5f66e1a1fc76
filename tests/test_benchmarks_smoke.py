"""The benchmarks must keep running: each in its tiny --quick mode (no timing assertions), plus their helpers."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def test_flop_count_matches_a_hand_count():
    import bench_train

    g, d, gan = bench_train.reference_models((28, 28, 1), 10, "float32")
    # generator per image: dense 100->6272, label dense 50->49, two 4x4 transposed convs (7x7x129 -> 14x14x128,
    # 14x14x128 -> 28x28x128) and the 7x7 output conv (28x28x128 -> 28x28x1); FLOPs = 2 x multiply-adds
    hand_g = 2 * (100 * 6272 + 50 * 49 + 7 * 7 * 16 * 129 * 128 + 14 * 14 * 16 * 128 * 128 + 28 * 28 * 49 * 128)
    hand_d = 2 * (50 * 784 + 14 * 14 * 9 * 2 * 128 + 7 * 7 * 9 * 128 * 128 + 6272)
    assert bench_train.forward_flops(g) == hand_g
    assert bench_train.forward_flops(d) == hand_d
    flops = bench_train.step_flops(g, d, batch=1)
    assert flops["reference"] - flops["ganlib"] == hand_g  # the tutorial generates the fakes twice


def test_reference_updates_the_right_networks():
    import numpy as np

    import bench_train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, 28, 28), dtype=np.uint8)
    ref = bench_train.ReferenceGAN(images, rng.integers(0, 10, 256).astype(np.int32), 10, "float32")
    g0, d0 = [w.copy() for w in ref.g_model.get_weights()], [w.copy() for w in ref.d_model.get_weights()]
    ref.step(n=16)
    assert all(not np.allclose(a, b) for a, b in zip(g0, ref.g_model.get_weights()))
    assert all(not np.allclose(a, b) for a, b in zip(d0, ref.d_model.get_weights()))
    d1 = [w.copy() for w in ref.d_model.get_weights()]
    ref.d_model.trainable = False
    ref.gan_model.train_on_batch(list(ref.latent_points(16)), np.ones((16, 1), "float32"))
    assert all(np.allclose(a, b) for a, b in zip(d1, ref.d_model.get_weights()))  # D frozen in the combined model


def test_synthetic_study_is_read_by_gather(tmp_path):
    import bench_memory
    from analysis.gather import gather

    facts = bench_memory.write_synthetic_study(tmp_path, runs=6, steps=40, epochs=4, variations=3)
    assert facts["batch_rows"] == 6 * 40
    tables = gather(tmp_path, save=False, window=5)
    assert len(tables.runs) == 6 and (tables.runs["status"] == "completed").all()
    assert tables.runs["read_error"].isna().all()
    assert len(tables.epochs) == 6 * 4 and len(tables.stability) == 6


@pytest.mark.slow
def test_run_all_quick(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    train = json.loads((tmp_path / "train.json").read_text())
    assert {"ganlib float32", "reference float32", "ganlib mixed_bfloat16", "reference mixed_bfloat16"} \
        <= set(train["images_per_second"])
    study = json.loads((tmp_path / "study.json").read_text())
    assert len(study["table"]) == 2
    memory = json.loads((tmp_path / "memory.json").read_text())
    assert memory["train"]["peak_rss_mib"] > 0 and len(memory["table"]) == 2
    overhead = json.loads((tmp_path / "overhead.json").read_text())
    assert len(overhead["runs"]) == 2 and overhead["medians"]["training"] > 0 and overhead["runs_per_hour"] > 0
    folder = json.loads((tmp_path / "folder.json").read_text())
    # 60 images, 4 classes of 15: round(15 x 10 %) = 2 of each class held out for the test split
    assert [row["images"] for row in folder["table"]] == [52, 8, 52] and folder["table"][2]["memory_mapped"]
    assert "summary" in proc.stdout


@pytest.mark.slow
def test_output_conv_probe_quick(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "probe_output_conv.py"), "--quick",
                           "--json", str(tmp_path / "p.json")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["checks"]["float32"]["max_relative_gradient_diff"] < 1e-4


def test_the_torch_peer_builds_the_same_model():
    """The PyTorch side's parameter counts, computed by hand from its layers (no torch needed), are ganlib's."""
    import bench_torch

    g = (10 * 50 + 50 * 49 + 49) + (100 * 6272 + 6272) + (129 * 128 * 16 + 128) + (128 * 128 * 16 + 128) \
        + (128 * 49 + 1)
    d = (10 * 50 + 50 * 784 + 784) + (2 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + (6272 + 1)
    assert (g, d) == (1169336, 196773)  # bench_train's counts, checked against ganlib's models at run time
    assert bench_torch.BATCH == 128 and bench_torch.FILTERS == 128


@pytest.mark.slow
def test_torch_peer_quick(tmp_path):
    """PyTorch goes in .venv-torch (bench_torch.py --setup, a local wheel here), never into ganlib's venv."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = os.path.join(ROOT, "benchmarks", "bench_torch.py")
    if not os.path.exists(os.path.join(ROOT, ".venv-torch", "bin", "python")):
        setup = subprocess.run([sys.executable, script, "--setup"], cwd=ROOT, capture_output=True, text=True,
                               timeout=1200)
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    proc = subprocess.run([sys.executable, script, "--quick", "--json", str(tmp_path / "t.json")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "t.json").read_text())
    assert {row["variant"] for row in result["table"]} == {"ganlib float32", "ganlib mixed_bfloat16",
                                                           "torch float32", "torch mixed_bfloat16"}
    assert not result["failed"] and set(result["targets_met"]) == {"ganlib float32 / best torch float32",
                                                                   "ganlib mixed_bfloat16 / best torch mixed_bfloat16"}
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    needs = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    assert not [d for d in needs if d.lower().startswith("torch")]  # a benchmark's peer, never ganlib's dependency


@pytest.mark.slow
def test_overhead_on_a_loopback_cluster_quick(tmp_path):
    """A study through a separate `dask scheduler` and two `dask worker` processes, started with Dask's defaults:
    both runs are trained there, and the runner says the workers' profiler takes CPU from the training."""
    script = os.path.join(ROOT, "benchmarks", "bench_overhead.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--loopback-cluster", "--dask-defaults", "--json",
                           str(tmp_path / "o.json")], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "o.json").read_text())
    assert result["loopback_cluster"] and result["dask_defaults"] and len(result["runs"]) == 2
    assert "2 of 2 Dask workers run Dask's profiler" in proc.stdout


def test_torch_peer_refuses_unknown_precisions_before_any_work(capsys):
    import bench_torch

    with pytest.raises(SystemExit) as exit_info:
        bench_torch.main(["--precisions", "float32,fp8", "--torch-python", "/nonexistent/python"])
    assert exit_info.value.code == 2
    assert "--precisions takes float32 and/or mixed_bfloat16" in capsys.readouterr().err


@pytest.mark.parametrize("script, args, expect", [
    ("check_interval_coverage.py", ["--reps", "3"], "Expected best of k = n trials"),
    ("check_seed_planner.py", ["--pilots", "1", "--simulations", "20"], "bad seeds"),
])
def test_the_honesty_checks_run(script, args, expect):
    """The simulation checks behind benchmarks/README.md's coverage and planner tables keep running (tiny sizes:
    the figures mean nothing)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout


def test_the_small_data_table_reads_a_gathered_study(tmp_path):
    """bench_small_data's table: per-seed FID, medians, the last and largest train/held-out gap, the report's exact
    test against the baseline, and the learning curves when FID was logged per epoch (synthetic tables)."""
    import numpy as np
    import pandas as pd

    import bench_small_data
    from analysis.studydir import StudyDirectory

    directory = StudyDirectory(tmp_path / "small_s500")
    runs = pd.DataFrame({"variation": ["baseline"] * 3 + ["diffaugment"] * 3, "seed": [0, 1, 2] * 2,
                         "status": "completed", "final_fid": [3.0, 3.2, 2.9, 7.0, 7.5, 6.8],
                         "final_coverage": [0.6, 0.62, 0.64, 0.4, 0.38, 0.36], "train_seconds": 100.0})
    epochs = pd.DataFrame([{"variation": v, "seed": s, "epoch": e, "eval_fid": 10.0 / e + (v != "baseline"),
                            "d_overfit_gap": 0.3 * e if v == "baseline" else 0.05}
                           for v in ("baseline", "diffaugment") for s in range(3) for e in (1, 2)])
    directory.write_table("runs", runs)
    directory.write_table("epochs", epochs)
    text = bench_small_data.summarize(directory.path)
    assert "| baseline | 3.00 / 3.20 / 2.90 | 3.00 | - | 0.620 | - | 100 | 0.60 (0.60) |" in text
    assert "diffaugment vs baseline, fid: median x2.33, exact Mann-Whitney p = 0.1000 (3 vs 3 seeds)" in text
    assert "| 2 | 5.00 / 0.60 | 6.00 / 0.05 |" in text
    assert np.isclose(bench_small_data.stats.min_achievable_p(3, 3), 0.1)
