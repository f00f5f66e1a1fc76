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
