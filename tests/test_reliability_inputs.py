"""Reliability round 3 (issue 29): nothing written outside ganlib's own folders, bounded readers for every input
format, numeric bounds, and the thread count of a resumed run. The fuzz suite is in tests/test_fuzz.py."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, tiny
from ganlib.rundir import RunDirectory, RunDirectoryError, read_json
from ganlib.run import train
from ganlib.safe_io import InputFileError, check_size, excerpt, load_yaml, parse_yaml

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def snapshot(path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------- never write outside a run folder
def test_a_symlinked_run_directory_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "users_folder"
    target.mkdir()
    (target / "train.ipynb").write_text("the user's own notebook")
    link = tmp_path / "run"
    link.symlink_to(target)
    before = snapshot(target)
    with pytest.raises(RunDirectoryError, match="symbolic link"):
        train(tiny(dataset="digits", epochs=1, steps_per_epoch=1), link, verbose=0)
    assert snapshot(target) == before


def test_a_folder_that_is_not_a_run_directory_is_refused_untouched(tmp_path):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "summary.json").write_text(json.dumps({"my": "results"}))
    before = snapshot(mine)
    with pytest.raises(RunDirectoryError, match="not a ganlib run directory"):
        train(tiny(dataset="digits", epochs=1, steps_per_epoch=1), mine, verbose=0)
    assert snapshot(mine) == before
    only_summary = tmp_path / "other"
    only_summary.mkdir()
    (only_summary / "summary.json").write_text(json.dumps({"accuracy": 0.9}))
    with pytest.raises(RunDirectoryError, match="not a ganlib run's"):
        train(tiny(dataset="digits", epochs=1, steps_per_epoch=1), only_summary, verbose=0)
    assert json.loads((only_summary / "summary.json").read_text()) == {"accuracy": 0.9}


def test_a_symlinked_or_foreign_study_folder_is_refused_before_anything_runs(tmp_path):
    from analysis.study import StudyError
    from analysis.sweep import check_study_folder, execute_run

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(StudyError, match="symbolic link"):
        check_study_folder(tmp_path / "link")
    (target / "thesis.tex").write_text("x")
    with pytest.raises(StudyError, match="not a ganlib study folder.*thesis.tex"):
        check_study_folder(target)
    # a run folder planted as a link inside a study: the runner reports it failed and writes nothing there
    runs = tmp_path / "study" / "runs" / "baseline"
    runs.mkdir(parents=True)
    (runs / "seed0").symlink_to(target)
    before = snapshot(target)
    result = execute_run(str(runs / "seed0"), tiny().to_dict(), 1, str(tmp_path / "log.txt"))
    assert result["status"] == "failed" and "symbolic link" in result["error"]
    assert snapshot(target) == before


def test_a_truncated_notebook_of_a_finished_run_is_recognised(tmp_path):
    from analysis.sweep import notebook_is_whole

    nb = tmp_path / "train.ipynb"
    nb.write_text('{"cells": [{"cell_type": "code", "sou')
    assert not notebook_is_whole(nb) and not notebook_is_whole(tmp_path / "missing.ipynb")


# ------------------------------------------------------------------------------------------- bounded readers
def test_an_alias_bomb_is_refused_quickly_everywhere(tmp_path):
    bomb = tmp_path / "params.yaml"
    bomb.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    t = time.perf_counter()
    with pytest.raises(InputFileError, match="expands to more than"):
        load_yaml(bomb, "parameters file")
    from analysis.study import StudyError, load_study

    with pytest.raises(StudyError, match="expands to more than"):
        load_study(bomb)
    out = subprocess.run([sys.executable, "-m", "ganlib", "train", "-f", str(bomb)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "expands to more than" in out.stderr
    assert time.perf_counter() - t < 60


@pytest.mark.slow
def test_papermill_parameters_file_is_bounded_before_papermill_translates_it(tmp_path):
    """`papermill notebooks/train.py out.ipynb -f bomb.yaml` reads the file through ganlib's papermill.io handler,
    which refuses it before papermill walks the parameters (it hung there)."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    out = subprocess.run([sys.executable, "-m", "papermill", os.path.join(ROOT, "notebooks", "train.py"),
                          str(tmp_path / "out.ipynb"), "-f", str(bomb)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "expands to more than" in out.stderr
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-m", "papermill", os.path.join(ROOT, "notebooks", "train.py"),
                          str(tmp_path / "out.ipynb"), "-f", str(fifo)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "not a regular file" in out.stderr


def test_files_that_are_not_regular_or_too_large_or_deep_are_refused(tmp_path):
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    from analysis.study import StudyError, load_study

    with pytest.raises(StudyError, match="not a regular file"):
        load_study(fifo)  # returns at once: a FIFO is never opened
    with pytest.raises(InputFileError, match="bytes; at most"):
        load_yaml(_big(tmp_path), "parameters file")
    deep = tmp_path / "summary.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunDirectoryError, match="nested|not valid JSON"):
        read_json(deep)
    with pytest.raises(InputFileError, match="nested"):
        check_size([[[[[[1]]]]]], "x", depth=4)
    with pytest.raises(InputFileError, match="line 1, column"):
        parse_yaml("a: [1, 2", "study file s.yaml")
    with pytest.raises(InputFileError, match="cannot be read"):
        parse_yaml("x: " + "9" * 5000 + "\ny: !!int " + "9" * 5000, "p.yaml")
    assert len(excerpt("x" * 50_000_000)) <= 80


def _big(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" * 300_000)
    return path


def test_dev_zero_as_a_study_file_or_run_summary_is_refused(tmp_path):
    from analysis.study import StudyError, load_study

    with pytest.raises(StudyError, match="not a regular file"):
        load_study("/dev/zero")
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").symlink_to("/dev/zero")
    with pytest.raises(RunDirectoryError, match="not a regular file"):
        RunDirectory(run).read_summary()


# ------------------------------------------------------------------------------------------- numbers and options
@pytest.mark.parametrize("argv, message", [
    (["sample", "RUN", "-n", "0"], "argument -n: 0 is not in 1..4096"),
    (["sample", "RUN", "-n", "100000000"], "is not in 1..4096"),
    (["sample", "RUN", "--scale", "0"], "--scale: 0 is not in 1..32"),
    (["sample", "RUN", "--columns", "0"], "--columns: 0 is not in 1..256"),
    (["plot", "x.csv", "--window", "0"], "--window: 0 is not in"),
    (["train", "--verbose", "banana"], "expected an integer, got 'banana'"),
    (["text", "RUN", ""], "give some text"),
])
def test_cli_options_are_bounded_before_anything_is_read(argv, message):
    out = subprocess.run([sys.executable, "-m", "ganlib", *argv], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode != 0 and message in out.stderr, out.stderr[-600:]


def test_plan_refuses_an_effect_it_cannot_simulate(tmp_path):
    from analysis.plan import PlanError, parse_effect

    for text in ("1e308", "inf", "nan", "-1e400"):
        with pytest.raises(PlanError):
            parse_effect(text, 10.0)


def test_sweep_options_are_bounded():
    out = subprocess.run([sys.executable, "-m", "analysis.sweep", "analysis/studies/quick.yaml", "--workers", "5000"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and "--workers must be from 1 to 1024" in out.stderr


def test_notebook_extras_are_checked():
    from ganlib.notebook_support import config_from_namespace

    with pytest.raises(Exception, match="verbose"):
        config_from_namespace({"verbose": "banana"}, extra=("run_dir", "verbose"))
    with pytest.raises(Exception, match="run_dir"):
        config_from_namespace({"run_dir": 123}, extra=("run_dir", "verbose"))


# ------------------------------------------------------------------------------------------- threads
def test_a_resume_with_another_thread_count_is_said_loudly():
    from ganlib.run import thread_change_warning

    assert thread_change_warning({"threads": 1}, 1, 3) is None
    assert thread_change_warning({}, 2, 3) is None  # an older run: nothing recorded to compare
    assert thread_change_warning({"threads": 1}, 2, 0) is None  # nothing trained yet
    said = thread_change_warning({"threads": 1}, 2, 3)
    assert "first 3 epoch(s) with 1 thread(s)" in said and "resumes with 2" in said and "threads=1" in said


def test_the_thread_count_is_recorded(tmp_path):
    summary = train(tiny(dataset="digits", epochs=1, steps_per_epoch=1), tmp_path / "run", verbose=0)
    assert isinstance(summary["threads"], int) and summary["threads"] >= 1 and summary["thread_changes"] == []


# ------------------------------------------------------------------------------------------- binary formats
def _npz_with(path, members: dict):
    """An .npz whose members are raw bytes (to forge headers numpy itself would never write)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def _npy_header(shape, descr="<f8") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_npz_header_claiming_terabytes_is_refused_before_allocation(tmp_path):
    from ganlib.rundir import load_arrays

    path = tmp_path / "state.npz"
    _npz_with(path, {"epoch": _npy_header(()) + b"\0" * 8, "big": _npy_header((10 ** 12,)) + b"\0" * 64})
    with pytest.raises(RunDirectoryError, match="claims 8,000,000,000,000 bytes"):
        load_arrays(path)
    # an entry nobody asked for is never read
    assert load_arrays(path, keys=("epoch",))["epoch"] == 0


def test_an_idx_gzip_bomb_and_a_too_long_idx_file_are_refused(tmp_path):
    import gzip

    from ganlib.data import CorruptDatasetError, read_idx

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as f:  # announces 1 x 2 x 2 bytes, then 64 MB of zeros
        f.write(b"\0\0\x08\x03" + np.array([1, 2, 2], ">u4").tobytes() + b"\0" * (64 << 20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(CorruptDatasetError, match="longer than its header says"):
        read_idx(bomb)
    huge = tmp_path / "h.idx"
    huge.write_bytes(b"\0\0\x08\x03" + np.array([100000, 100000, 100000], ">u4").tobytes())
    with pytest.raises(CorruptDatasetError, match="announces"):
        read_idx(huge)
    good = tmp_path / "g.idx"
    good.write_bytes(b"\0\0\x08\x02" + np.array([2, 3], ">u4").tobytes() + bytes(range(6)))
    assert read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_images_the_model_cannot_generate_are_refused_before_training_with_sizes_that_work(tmp_path):
    from PIL import Image

    from ganlib.config import ConfigError

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    config = tiny(dataset="folder", data_dir=str(folder), conditional=False, epochs=1, steps_per_epoch=1,
                  batch_size=4, metric_samples=0)
    with pytest.raises(ConfigError, match="holds 30x30 images.*image_size to one of \\[16, 28, 32"):
        train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "models").exists()
    assert train(config.replace(image_size=32), tmp_path / "run32", verbose=0)["status"] == "completed"


def test_truncated_or_malformed_cifar_batches_are_named(tmp_path):
    import pickle

    from ganlib.data import CorruptDatasetError, load_dataset

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}))
    assert load_dataset("cifar10", "test", str(tmp_path)).images.shape[1:] == (32, 32, 3)
    (folder / "data_batch_2").write_bytes((folder / "data_batch_1").read_bytes()[:100])
    with pytest.raises(CorruptDatasetError, match="data_batch_2 is not a whole CIFAR batch file.*truncated"):
        load_dataset("cifar10", "train", str(tmp_path))
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"labels": [0]}))
    with pytest.raises(CorruptDatasetError, match="data_batch_2 .*expected a dict with"):
        load_dataset("cifar10", "train", str(tmp_path))


def test_a_cut_keras_file_is_called_damaged_not_missing(tmp_path):
    import keras

    from ganlib.rundir import load_keras_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "generator.keras"
    model.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(RunDirectoryError, match="damaged"):
        load_keras_model(path)


def test_a_damaged_study_summary_or_an_alias_bomb_study_yaml_does_not_break_the_report(tmp_path):
    from analysis.studydir import StudyDirectory

    directory = StudyDirectory(tmp_path / "s")
    directory.path.mkdir()
    directory.summary_file.write_text('{"study": "s", "counts": ')
    directory.definition_file.write_text(ALIAS_BOMB)
    assert directory.read_summary() == {} and directory.definition() == {}
