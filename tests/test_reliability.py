"""Fault injection: kills, a full disk, divergence, bad input and hostile files never lose work or run code.

Every test here is a row of docs/reliability.md. Runs use scikit-learn's digits (8x8, loads in milliseconds) and
3 epochs of 2 steps; "killed" runs are child processes that SIGKILL themselves at a chosen point.
"""
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, tiny
from ganlib.config import Config, ConfigError
from ganlib.data import CorruptDatasetError, DatasetNotFoundError
from ganlib.rundir import (DiskFullError, RunDirectory, RunDirectoryError, load_arrays, load_keras_model,
                           write_json)
from ganlib.run import load_models_from, train

RUN = dict(dataset="digits", epochs=3, steps_per_epoch=2)  # 6 steps; a checkpoint after every epoch
LOSSES = ["d_loss", "g_loss", "d_acc_real", "d_acc_fake"]


def cfg(**overrides) -> Config:
    return tiny(**{**RUN, **overrides})


def snapshot(path) -> dict:
    """{relative path: sha256} of every file under path: to show that something was left untouched."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> RunDirectory:
    """The uninterrupted run that every interrupted-and-resumed run must reproduce exactly."""
    path = tmp_path_factory.mktemp("reference") / "run"
    assert train(cfg(), path, verbose=0)["status"] == "completed"
    return RunDirectory(path)


def assert_readable_after_kill(run: RunDirectory, may_have_finished=False):
    """What a reader (gather, the report) sees in a killed run: whole rows, contiguous epochs and steps."""
    assert run.read_summary()["status"] in (("running", "completed") if may_have_finished else ("running",))
    epochs, batches = run.read_epochs(), run.read_batches()
    assert epochs["epoch"].tolist() == list(range(1, len(epochs) + 1))
    assert batches["step"].tolist() == list(range(1, len(batches) + 1))
    for log in (epochs, batches):
        assert len(log) == 0 or not log[LOSSES].isna().any().any()  # no torn row
    assert all(p.name.startswith("epoch_") for p in run.sample_files())  # a temporary grid is not a grid
    if run.checkpoint_file.exists():
        assert load_arrays(run.checkpoint_file)["epoch"] <= len(epochs)  # logs are never behind the checkpoint


def assert_same_as(run: RunDirectory, reference: RunDirectory):
    """A complete, clean run directory whose results equal the uninterrupted run's."""
    summary = run.read_summary()
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3, summary
    assert run.temp_files() == []  # leftovers of interrupted writes were removed on resume
    for log in (run.epochs_file, run.batches_file):
        assert log.read_bytes().endswith(b"\n")
    epochs, batches = run.read_epochs(), run.read_batches()
    ref_epochs, ref_batches = reference.read_epochs(), reference.read_batches()
    assert list(epochs.columns) == list(ref_epochs.columns)  # no column made of a torn header
    assert epochs["epoch"].tolist() == [1, 2, 3] and batches["step"].tolist() == list(range(1, 7))
    np.testing.assert_array_equal(batches[LOSSES], ref_batches[LOSSES])
    np.testing.assert_array_equal(epochs[LOSSES + ["sample_std"]], ref_epochs[LOSSES + ["sample_std"]])
    assert [p.name for p in run.sample_files()] == [p.name for p in reference.sample_files()]
    assert load_arrays(run.checkpoint_file)["epoch"] == 3
    for name in ("generator", "discriminator"):
        for a, b in zip(load_keras_model(run.model_file(name)).get_weights(),
                        load_keras_model(reference.model_file(name)).get_weights()):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------- kills
CHILD = """
import os, signal, sys, threading
sys.path.insert(0, {tests!r})
import keras
from conftest import tiny
from ganlib.run import train

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class Epoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

CALLBACKS = []
{hook}
train(tiny(**{config!r}), {run!r}, verbose=0, callbacks=CALLBACKS)
"""

# SIGKILL a fixed delay after step 2 of epoch 2 starts: inside the step, or (later) in the epoch's logging,
# sample grid or checkpoint - where exactly depends on the machine's speed, which is the point.
KILL_AFTER = """
class KillLater(Epoch):
    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            threading.Timer({delay}, die).start()
CALLBACKS = [KillLater()]
"""
# SIGKILL when the n-th block of rows is appended to a log, after only part of it reached the file.
TORN_APPEND = """
real_fsync, calls = os.fsync, []
def fsync(fd):
    if os.readlink(f"/proc/self/fd/{{fd}}").endswith({file!r}):
        calls.append(fd)
        if len(calls) == {call}:
            os.ftruncate(fd, {keep} if {keep} > 0 else os.fstat(fd).st_size + {keep})
            die()
    real_fsync(fd)
os.fsync = fsync
"""
# SIGKILL when the n-th new version of a file is complete in its temporary file (torn: half of it), just before
# os.replace would put it in place.
BEFORE_REPLACE = """
real_replace, calls = os.replace, []
def replace(src, dst):
    if str(dst).endswith({file!r}):
        calls.append(dst)
        if len(calls) == {call}:
            if {torn}:
                os.truncate(src, os.path.getsize(src) // 2)
            die()
    return real_replace(src, dst)
os.replace = replace
"""
KILLS = {  # name: (hook, checkpoint epoch left behind (None: none; "?": depends on timing), temp file left)
    "in_step_2_of_epoch_2": (KILL_AFTER.format(delay=0.0), "?", None),
    "0.2s_after_step_2_of_epoch_2": (KILL_AFTER.format(delay=0.2), "?", None),
    "torn_row_in_batches_csv": (TORN_APPEND.format(file="/metrics/batches.csv", call=2, keep=-10), 1, False),
    "torn_header_of_epochs_csv": (TORN_APPEND.format(file="/metrics/epochs.csv", call=1, keep=10), None, False),
    "checkpoint_half_written": (BEFORE_REPLACE.format(file="/checkpoints/state.npz", call=2, torn=True), 1, True),
    "final_model_being_saved": (BEFORE_REPLACE.format(file="/models/generator.keras", call=1, torn=False), 3, True),
}


@pytest.mark.parametrize("point", list(KILLS))
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, reference, point):
    hook, checkpoint_epoch, temp_left = KILLS[point]
    run = RunDirectory(tmp_path / "run")
    script = CHILD.format(tests=os.path.join(ROOT, "tests"), hook=hook, config=RUN, run=str(run.path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    timed = checkpoint_epoch == "?"  # a slow timer may even fire after the run finished: that must hold too
    assert_readable_after_kill(run, may_have_finished=timed)
    if not timed:
        saved = load_arrays(run.checkpoint_file)["epoch"] if run.checkpoint_file.exists() else None
        assert saved == checkpoint_epoch
    if temp_left is not None:
        assert bool(run.temp_files()) == temp_left  # the fault happened where it was meant to

    summary = train(cfg(), run.path, verbose=0)
    assert summary["attempts"] == 2 or timed
    if not timed:
        assert summary["resumed_from_epoch"] == checkpoint_epoch
    assert_same_as(run, reference)


@pytest.mark.parametrize("where", ["checkpoint", "epoch_log"])
def test_disk_full_keeps_the_previous_version_and_says_where(tmp_path, monkeypatch, where):
    calls = []

    def full(real, target):
        def fake(*args):
            name = os.readlink(f"/proc/self/fd/{args[0]}") if isinstance(args[0], int) else str(args[1])
            if name.endswith(target):
                calls.append(name)
                if len(calls) == 2:  # the second checkpoint / the second epoch's row
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args)
        return fake

    if where == "checkpoint":
        target = "/checkpoints/state.npz"
        monkeypatch.setattr(os, "replace", full(os.replace, target))
    else:
        target = "/metrics/epochs.csv"
        monkeypatch.setattr(os, "fsync", full(os.fsync, target))
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(DiskFullError, match=f"Disk full.* while writing {re.escape(str(run.path) + target)}") as caught:
        train(cfg(), run.path, verbose=0)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()

    summary = run.read_summary()
    assert summary["status"] == "failed" and summary["error"].startswith("DiskFullError") and "Disk full" in summary["error"]
    assert load_arrays(run.checkpoint_file)["epoch"] == 1  # the previous checkpoint is intact
    if where == "epoch_log":  # the log holds whole rows only: the failed one was cut off again
        assert run.epochs_file.read_text().count("\n") == 2 and run.read_epochs()["epoch"].tolist() == [1]
    assert run.temp_files() == []  # a state the kill tests above resume from


def test_leftover_temporary_files_do_not_confuse_readers(tmp_path, reference):
    run = RunDirectory(shutil.copytree(reference.path, tmp_path / "run"))
    junk = [run.path / "metrics" / ".epochs.tmp-x1.csv", run.path / "samples" / ".epoch_0009.tmp-x2.png",
            run.path / "models" / ".generator.tmp-x3.keras", run.path / "checkpoints" / ".state.tmp-x4.npz"]
    for p in junk:
        p.write_bytes(b"half a file")
    assert sorted(run.temp_files()) == sorted(junk)
    assert run.read_epochs().equals(reference.read_epochs())
    assert [p.name for p in run.sample_files()] == [p.name for p in reference.sample_files()]
    assert len(load_models_from(run.path)) == 2
    from analysis.gather import read_run

    row, epochs, _ = read_run(dict(study="s", variation="v", seed=0, run_id="v/seed0", run_dir=run.path, config=None))
    assert row["status"] == "completed" and row["read_error"] is None and len(epochs) == 3


def test_a_run_directory_is_trained_by_one_process_at_a_time(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with run.lock():  # as a training process holds it
        with pytest.raises(RunDirectoryError, match="being trained by another process"):
            train(cfg(), run.path, verbose=0)
    assert not run.summary_file.exists() and not run.config_file.exists()


# ---------------------------------------------------------------------------------------------- divergence
class Interrupt(BaseException):
    """Stops a run like a kill does (no status written), without the cost of a child process."""


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_loss_stops_the_run_as_diverged(tmp_path, value):
    import keras

    class Poison(keras.callbacks.Callback):  # what an exploding learning rate does, deterministically
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                bias = self.model.discriminator.get_layer("d_logit").trainable_weights[-1]
                bias.assign(np.full(bias.shape, value, "float32"))

    run = RunDirectory(tmp_path / "run")
    summary = train(cfg(epochs=4), run.path, verbose=0, callbacks=[Poison()])
    assert summary["status"] == "diverged" and "non-finite" in summary["error"] and "epoch 2" in summary["error"]
    assert run.read_epochs()["epoch"].tolist() == [1, 2]  # what was logged is kept
    assert load_arrays(run.checkpoint_file)["epoch"] == 1  # the diverged state is not a resume point
    assert not run.models_dir.exists()


@pytest.mark.parametrize("interrupted", [False, True])
def test_collapsed_generator_stops_the_run_as_diverged_even_across_a_resume(tmp_path, interrupted):
    import keras

    class Collapse(keras.callbacks.Callback):
        """Diverse samples first (a scaled-up output layer), then from epoch 3 on a zero output kernel: every
        sample is the same image."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            if epoch == 0:
                self.kernel.assign(self.kernel * 25.0)
            if epoch == 3 and interrupted and not self.resumed:
                raise Interrupt()

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch >= 2:
                self.kernel.assign(np.zeros(self.kernel.shape, "float32"))

        @property
        def kernel(self):
            return self.model.generator.get_layer("g_image").kernel

    run = RunDirectory(tmp_path / "run")
    # the tutorial recipe (no batch norm, Glorot init): a 6-step DCGAN-recipe generator's samples are all alike
    # from the start (tiny N(0, 0.02) weights, batch norm in inference mode), so there would be nothing to lose
    config = cfg(epochs=6, divergence_patience=2, recipe="tutorial")
    collapse = Collapse()
    collapse.resumed = False
    if interrupted:
        with pytest.raises(Interrupt):
            train(config, run.path, verbose=0, callbacks=[collapse])
        assert run.status == "running" and run.read_epochs()["epoch"].tolist() == [1, 2, 3]
        collapse.resumed = True
    summary = train(config, run.path, verbose=0, callbacks=[collapse])
    assert summary["status"] == "diverged", summary
    assert "collapsed" in summary["error"] and "at epoch 4" in summary["error"]
    epochs = run.read_epochs()
    assert epochs["epoch"].tolist() == [1, 2, 3, 4]
    assert (epochs["sample_std"][:2] > 0.1).all() and (epochs["sample_std"][2:] < 0.02).all()
    assert not run.models_dir.exists() and summary["attempts"] == 1 + interrupted


# ---------------------------------------------------------------------------------------------- bad input
FUZZ = [None, "x", "", -1, 0, 1.5, float("nan"), float("inf"), [1], [[0, 1]], {}, True, 10**9, "1e-4"]


def test_every_bad_config_value_is_a_config_error_naming_the_field():
    from dataclasses import fields

    for f in fields(Config):
        for value in FUZZ:
            try:
                Config.from_dict({f.name: value})
            except ConfigError as e:  # anything else (TypeError, ...) fails the test
                assert str(e).startswith(f"Invalid configuration: {e.field}=")
    with pytest.raises(ConfigError, match="'lrr' \\(did you mean 'lr'\\?\\)"):
        Config.from_dict({"lrr": 1e-4})
    with pytest.raises(ConfigError, match="Invalid configuration: lr=-1"):  # the field typed, not g_lr
        Config.from_dict({"lr": -1})


def test_unhashable_dataset_value_is_a_config_error():
    with pytest.raises(ConfigError, match="dataset"):
        Config.from_dict({"dataset": ["mnist"]})


def test_notebook_parameters_are_checked_before_anything_runs():
    from ganlib.notebook_support import config_from_namespace

    with pytest.raises(ConfigError, match="'lrr' \\(did you mean 'lr'\\?\\)"):
        config_from_namespace({"lrr": 2e-4, "run_dir": "x"})
    with pytest.raises(ConfigError, match="epochs=0"):
        config_from_namespace({"epochs": 0})
    config, run_dir = config_from_namespace({"lr": 1e-3, "run_dir": "somewhere"})
    assert config.g_lr == 1e-3 and run_dir == "somewhere"


def test_bad_config_in_train_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        train({**cfg().to_dict(), "epoch": 3}, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def _idx(header_dims, n_bytes, magic=(0, 0, 8)):
    return gzip.compress(struct.pack(">BBBB", *magic, len(header_dims)) + struct.pack(f">{len(header_dims)}I",
                                                                                      *header_dims) + bytes(n_bytes))


class Evil:
    """Unpickling this creates the file `marker`: proof that a file's pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _bad_dataset(kind, tmp_path):
    """(config overrides, expected error type, message pattern) of one missing or damaged dataset."""
    data = tmp_path / "data"
    data.mkdir()
    labels = _idx([100], 100)
    if kind == "missing_folder":
        return dict(dataset="folder", data_dir=str(tmp_path / "nowhere")), DatasetNotFoundError, "nowhere"
    if kind == "truncated_idx":
        (data / "train-images-idx3-ubyte.gz").write_bytes(_idx([100, 28, 28], 5000))
        (data / "train-labels-idx1-ubyte.gz").write_bytes(labels)
        return dict(dataset="fashion_mnist", data_dir=str(data)), CorruptDatasetError, "train-images.*truncated"
    if kind == "bad_magic_idx":
        (data / "train-images-idx3-ubyte.gz").write_bytes(_idx([100, 28, 28], 78400, magic=(0x50, 0x4B, 3)))
        (data / "train-labels-idx1-ubyte.gz").write_bytes(labels)
        return dict(dataset="fashion_mnist", data_dir=str(data)), CorruptDatasetError, "train-images.*bad magic"
    if kind == "not_gzip_idx":
        (data / "train-images-idx3-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")
        (data / "train-labels-idx1-ubyte.gz").write_bytes(labels)
        return dict(dataset="fashion_mnist", data_dir=str(data)), CorruptDatasetError, "Cannot read IDX file"
    if kind == "pickled_mnist_npz":  # a "dataset" whose arrays are pickled objects
        evil = np.array([Evil(tmp_path / "marker")], dtype=object)
        np.savez(data / "mnist.npz", x_train=evil, y_train=evil, x_test=evil, y_test=evil)
        return dict(dataset="mnist", data_dir=str(data)), ValueError, "pickle"
    raise AssertionError(kind)


@pytest.fixture
def no_models(monkeypatch):
    import ganlib.models

    def build_models(*args):
        raise AssertionError("models were built before the data was checked")

    monkeypatch.setattr(ganlib.models, "build_models", build_models)


@pytest.mark.parametrize("kind", ["missing_folder", "truncated_idx", "bad_magic_idx", "not_gzip_idx",
                                  "pickled_mnist_npz"])
def test_missing_or_damaged_dataset_fails_before_building_models(tmp_path, no_models, kind):
    overrides, error, pattern = _bad_dataset(kind, tmp_path)
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(error, match=pattern):
        train(cfg(**overrides), run.path, verbose=0)
    summary = run.read_summary()
    assert summary["status"] == "failed" and re.search(pattern, summary["error"]) and summary["traceback"]
    assert {p.name for p in run.path.iterdir()} - {".train.lock"} == {"config.json", "summary.json"}  # nothing else
    assert not (tmp_path / "marker").exists()


def _image_folder(root, bad=True):
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(24):
        (root / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "ab"[i % 2] / f"{i:02d}.png")
    if bad:
        (root / "b" / "zz_not_an_image.png").write_bytes(b"GIF89a? no: garbage")
        whole = (root / "a" / "00.png").read_bytes()
        (root / "b" / "zz_truncated.png").write_bytes(whole[: len(whole) // 2])
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "b" / "zz_odd_size.png")


def test_unreadable_or_odd_sized_images_are_skipped_and_counted(tmp_path):
    _image_folder(tmp_path / "images")
    run = RunDirectory(tmp_path / "run")
    summary = train(cfg(dataset="folder", data_dir=str(tmp_path / "images"), epochs=1, steps_per_epoch=1),
                    run.path, verbose=0)
    assert summary["status"] == "completed"
    assert summary["dataset"]["skipped_files"] == 2 and summary["dataset"]["image_shape"] == [8, 8, 1]
    assert summary["dataset"]["resized_files"] == 1  # the 10x10 image, brought to the common size


def test_on_bad_image_error_rejects_the_dataset_naming_the_file(tmp_path, no_models):
    _image_folder(tmp_path / "images")
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(CorruptDatasetError, match="zz_not_an_image.png"):
        train(cfg(dataset="folder", data_dir=str(tmp_path / "images"), on_bad_image="error"), run.path, verbose=0)
    assert run.status == "failed" and not run.checkpoint_file.parent.exists()


def _write_run(path, config=None, summary=None, **files):
    path.mkdir(parents=True)
    if config is not None:
        write_json(path / "config.json", config.to_dict())
    if summary is not None:
        write_json(path / "summary.json", summary)
    for name, text in files.items():
        (path / name.replace("_json", ".json")).write_text(text)
    return path


@pytest.mark.parametrize("damage, message", [
    ("newer_format", "written by a newer ganlib \\(run format 2"),
    ("config_not_json", "config.json is not valid JSON"),
    ("summary_not_json", "summary.json is not valid JSON"),
    ("config_invalid_value", "config.json does not hold a valid configuration: .*epochs=-3"),
    ("config_not_a_mapping", "config.json holds a list"),
])
def test_incompatible_or_damaged_run_directory_is_refused_untouched(tmp_path, damage, message):
    path = tmp_path / "run"
    good = cfg()
    if damage == "newer_format":
        _write_run(path, good, {"status": "running", "format_version": 2})
    elif damage == "config_not_json":
        _write_run(path, None, {"status": "running", "format_version": 1}, config_json='{"dataset": "digits",')
    elif damage == "summary_not_json":
        _write_run(path, good, None, summary_json="\x00\x00\x00")
    elif damage == "config_invalid_value":
        _write_run(path, None, None, config_json=json.dumps({**good.to_dict(), "epochs": -3}))
    else:
        _write_run(path, None, None, config_json="[1, 2]")
    before = snapshot(path)
    with pytest.raises(RunDirectoryError, match=message):
        train(good, path, verbose=0)
    assert snapshot(path) == before


def test_changed_config_under_an_existing_run_directory_is_refused_untouched(reference):
    before = snapshot(reference.path)
    with pytest.raises(RunDirectoryError, match="different configuration.*'lr': \\(0.0004, 0.001\\)"):
        train(cfg(lr=1e-3), reference.path, verbose=0)
    assert snapshot(reference.path) == before


# ---------------------------------------------------------------------------------------------- untrusted files
@pytest.fixture
def unsafe_keras_globally():
    """A notebook that called keras.config.enable_unsafe_deserialization() for some other model."""
    import keras
    from keras.src.backend.common import global_state

    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()
    yield
    global_state.set_global_attribute("safe_mode_saving", before)


def _lambda_run(tmp_path, names=("generator", "discriminator")):
    """A run directory whose models hold a Lambda layer with Python bytecode that creates `marker`."""
    import keras

    marker = tmp_path / "marker"
    function = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(function)(keras.layers.Dense(4)(inputs)))
    run = _write_run(tmp_path / "run", cfg(), {"status": "completed", "format_version": 1})
    (run / "models").mkdir()
    for name in names:
        model.save(run / "models" / f"{name}.keras")
    marker.unlink(missing_ok=True)  # building the model ran the lambda
    return run, marker


@pytest.mark.parametrize("globally_unsafe", [False, True])
def test_a_keras_file_with_python_bytecode_is_refused(tmp_path, request, globally_unsafe):
    from ganlib.api import GAN

    run, marker = _lambda_run(tmp_path)
    if globally_unsafe:
        request.getfixturevalue("unsafe_keras_globally")
    with pytest.raises(ValueError, match="Lambda"):
        load_models_from(run)
    with pytest.raises(ValueError, match="Lambda"):
        GAN.load(run)
    with pytest.raises(ValueError, match="Lambda"):
        train(cfg(init_from=str(run)), tmp_path / "transfer", verbose=0)
    assert not marker.exists()


def test_gan_load_refuses_bytecode_in_the_ema_generator_even_if_keras_was_made_unsafe(tmp_path,
                                                                                      unsafe_keras_globally):
    from ganlib.api import GAN
    import keras

    run, marker = _lambda_run(tmp_path, names=("generator_ema",))
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    for name in ("generator", "discriminator"):
        plain.save(run / "models" / f"{name}.keras")
    with pytest.raises(ValueError, match="Lambda"):
        GAN.load(run)
    assert not marker.exists()


def test_a_keras_file_naming_a_non_keras_function_is_refused(tmp_path, monkeypatch):
    import keras

    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Dense(2, activation="relu")(inputs)).save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as z:
        files = {n: z.read(n) for n in z.namelist()}
    evil = {"module": "os", "class_name": "function", "config": "system", "registered_name": "system"}
    files["config.json"] = files["config.json"].replace(b'"activation": "relu"',
                                                        b'"activation": ' + json.dumps(evil).encode())
    assert b'"os"' in files["config.json"]
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    with pytest.raises(TypeError, match="could not be deserialized"):
        load_keras_model(tmp_path / "evil.keras")
    assert calls == []


@pytest.mark.parametrize("file", ["checkpoint", "benchmark_noise"])
def test_an_npz_with_pickled_objects_is_refused(tmp_path, file):
    run = RunDirectory(_write_run(tmp_path / "run", cfg(), {"status": "running", "format_version": 1}))
    target = run.checkpoint_file if file == "checkpoint" else run.noise_file
    target.parent.mkdir()
    evil = np.array([Evil(tmp_path / "marker")], dtype=object)
    np.savez(target, epoch=np.int64(1), z=evil, labels=evil, **{"generator/0000": evil})
    with pytest.raises(RunDirectoryError, match=f"{target.name} holds pickled Python objects"):
        train(cfg(), run.path, verbose=0)
    assert not (tmp_path / "marker").exists()
    if file == "checkpoint":  # read while the directory is checked, before anything is written
        assert run.read_summary() == {"status": "running", "format_version": 1}
    else:
        assert run.status == "failed" and "never unpickles" in run.read_summary()["error"]


PYTHON_TAG = "name: x\nbaseline: !!python/object/apply:os.system ['touch {marker}']\nseeds: 1\n"


def test_python_tags_in_yaml_are_refused(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.yaml"
    evil.write_text(PYTHON_TAG.format(marker=marker))
    from analysis.study import StudyError, load_study

    with pytest.raises(StudyError, match="python/object"):
        load_study(evil)
    # papermill's own `-f params.yaml` (and `-y`) loading
    from click.testing import CliRunner
    from papermill.cli import papermill

    result = CliRunner().invoke(papermill, [os.path.join(ROOT, "notebooks", "train.py"), str(tmp_path / "o.ipynb"),
                                            "-f", str(evil)])
    assert result.exit_code != 0 and "python/object" in str(result.exception)
    assert not marker.exists() and not (tmp_path / "o.ipynb").exists()


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", "/abs", "x\\y"])
def test_run_names_cannot_leave_the_study_directory(name):
    from analysis.study import StudyError, study_from_dict

    with pytest.raises(StudyError, match="Invalid variation name"):
        study_from_dict({"name": "s", "baseline": {"lr": 1e-4}, "variations": [{"name": name, "lr": 1e-3}], "seeds": 1})
    with pytest.raises(StudyError, match="Invalid variation name"):  # a generated name from a grid value
        study_from_dict({"name": "s", "baseline": {"lr": 1e-4}, "grid": {"data_dir": [name]}, "seeds": 1})


# ---------------------------------------------------------------------------------------------- two runners
@pytest.mark.slow
def test_two_runners_on_one_study_train_each_run_once(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(dict(
        name="twice", baseline={k: v for k, v in cfg().to_dict().items() if k != "seed"},
        variations=[{"name": "small_lr", "lr": 1e-4}], seeds=1, resources={"workers": 1, "threads_per_run": 1})))
    out = tmp_path / "out"
    runners = [subprocess.Popen([sys.executable, "-m", "analysis.sweep", str(study), "--out", str(out)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [r.communicate(timeout=600)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], logs
    for variation in ("baseline", "small_lr"):
        summary = RunDirectory(out / "twice" / "runs" / variation / "seed0").read_summary()
        assert summary["status"] == "completed" and summary["attempts"] == 1, (variation, summary, logs)


# ============================================================================================== round 2 (issue 13)
# ---------------------------------------------------------------------------------------------- identity of runs
def _as_if_killed(run: RunDirectory) -> None:
    """A completed run made to look killed after its last checkpoint: status running, no final models."""
    shutil.rmtree(run.models_dir)
    summary = run.read_summary()
    summary.update(status="running", final_metrics=None, finished_at=None)
    write_json(run.summary_file, summary)


@pytest.mark.parametrize("removed", [["config.json"], ["config.json", "summary.json"]])
def test_a_checkpoint_is_never_resumed_by_another_configuration(tmp_path, reference, removed):
    path = tmp_path / "run"
    shutil.copytree(reference.path, path)
    run = RunDirectory(path)
    _as_if_killed(run)
    for name in removed:
        (path / name).unlink()
    before = snapshot(path)
    with pytest.raises(RunDirectoryError, match="different configuration.*records configuration "
                                                f"{cfg().hash}.*this one is {cfg(lr=1e-3).hash}"):
        train(cfg(lr=1e-3), path, verbose=0)
    assert snapshot(path) == before  # nothing deleted or rewritten


def test_the_corrected_command_trains_into_a_directory_whose_first_attempt_failed_a_check(tmp_path):
    path = tmp_path / "run"
    _image_folder(tmp_path / "images", bad=False)  # 24 images: 21 to train on
    folder = dict(dataset="folder", data_dir=str(tmp_path / "images"))
    with pytest.raises(ConfigError, match="batch_size"):
        train(cfg(**folder, batch_size=32), path, verbose=0)  # refused once the images are counted
    assert RunDirectory(path).status == "failed"
    summary = train(cfg(**folder, batch_size=8), path, verbose=0)
    assert summary["status"] == "completed" and summary["config_hash"] == cfg(**folder, batch_size=8).hash
    assert "traceback" not in summary or summary["traceback"] is None


# ---------------------------------------------------------------------------------------------- damaged logs
@pytest.mark.parametrize("damage", ["torn_last_line_of_epochs_csv", "deleted_epochs_csv", "deleted_batches_csv"])
def test_a_resume_refuses_logs_with_gaps(tmp_path, reference, damage):
    path = tmp_path / "run"
    shutil.copytree(reference.path, path)
    run = RunDirectory(path)
    _as_if_killed(run)
    if damage == "torn_last_line_of_epochs_csv":
        data = run.epochs_file.read_bytes()
        run.epochs_file.write_bytes(data[:data.rstrip(b"\n").rfind(b"\n") + 12])  # epoch 3's row cut short
        pattern, name = "epochs.csv lacks epoch\\(s\\) 3", "epochs.csv"
    else:
        name = damage.split("_", 1)[1].replace("_csv", ".csv")
        (run.path / "metrics" / name).unlink()
        pattern = f"{name} is missing"
    before = snapshot(path)
    with pytest.raises(RunDirectoryError, match=f"{pattern}, but the checkpoint .* is at epoch 3.*Nothing was changed"):
        train(cfg(), path, verbose=0)
    assert snapshot(path) == before


def test_a_stray_file_in_samples_does_not_block_a_resume(tmp_path, reference):
    path = tmp_path / "run"
    shutil.copytree(reference.path, path)
    run = RunDirectory(path)
    _as_if_killed(run)
    shutil.copy(run.sample_file(2), run.samples_dir / "epoch_0002 copy.png")
    assert train(cfg(), path, verbose=0)["status"] == "completed"
    assert run.sample_epoch(run.sample_files()[-1]) == 3 and (run.samples_dir / "epoch_0002 copy.png").exists()


def test_random_bytes_as_a_checkpoint_are_called_damaged_not_pickled(tmp_path):
    run = RunDirectory(_write_run(tmp_path / "run", cfg(), {"status": "running", "format_version": 1}))
    run.checkpoint_file.parent.mkdir()
    run.checkpoint_file.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(RunDirectoryError, match="is not an .npz file") as caught:
        train(cfg(), run.path, verbose=0)
    assert "pickled" not in str(caught.value)


def test_files_are_readable_by_the_group_like_any_file_the_user_writes(tmp_path, reference):
    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    for name in ("config.json", "summary.json", "checkpoints/state.npz", "models/generator.keras",
                 "samples/epoch_0003.png", "samples/benchmark_noise.npz"):
        assert (reference.path / name).stat().st_mode & 0o777 == expected, name


def test_a_file_size_limit_is_an_error_naming_the_file(tmp_path, monkeypatch):
    run = RunDirectory(tmp_path / "run")
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("epochs.csv"):
            raise OSError(errno.EFBIG, "File too large")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError, match=f"File size limit exceeded while writing {re.escape(str(run.epochs_file))}"):
        train(cfg(), run.path, verbose=0)


# ---------------------------------------------------------------------------------------------- transfer (init_from)
@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> RunDirectory:
    path = tmp_path_factory.mktemp("source") / "run"
    assert train(cfg(epochs=1), path, verbose=0)["status"] == "completed"
    return RunDirectory(path)


def test_init_from_takes_a_model_file_of_the_run(tmp_path, source_run):
    summary = train(cfg(init_from=str(source_run.model_file("generator"))), tmp_path / "run", verbose=0)
    assert summary["status"] == "completed"


def test_init_from_a_run_with_another_architecture_is_refused_naming_the_fields(tmp_path, source_run, no_models):
    with pytest.raises(ConfigError, match="init_from.*that run has g_filters=8 \\(here 16\\), d_filters=8 \\(here 16\\)"):
        train(cfg(filters=16, init_from=str(source_run.path)), tmp_path / "run", verbose=0)


def test_init_from_a_run_with_other_classes_is_refused_before_training(tmp_path, source_run):
    _image_folder(tmp_path / "images", bad=False)  # 2 classes of 8x8 images
    with pytest.raises(ConfigError, match="trained on 2 classes.*its generator knows 10"):
        train(cfg(dataset="folder", data_dir=str(tmp_path / "images"), init_from=str(source_run.path)),
              tmp_path / "run", verbose=0)
    assert not RunDirectory(tmp_path / "run").checkpoint_file.exists()


# ---------------------------------------------------------------------------------------------- small inputs
def test_numbers_written_as_text_are_numbers():
    from ganlib.notebook_support import config_from_namespace

    config, _ = config_from_namespace({"lr": "2e-4", "epochs": "3"})  # papermill -f params.yaml gives YAML 1.1 strings
    assert config.g_lr == config.d_lr == 2e-4 and config.epochs == 3
    assert config.hash == Config(lr=2e-4, epochs=3).hash
    with pytest.raises(ConfigError, match="epochs='three'"):
        Config.from_dict({"epochs": "three"})


def test_papermill_params_file_with_yaml_1_1_numbers(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("lr: 2e-4\nepochs: 1\n")
    from papermill.iorw import read_yaml_file  # how papermill's CLI reads `-f params.yaml`

    values = read_yaml_file(str(params))
    assert values["lr"] == "2e-4"  # YAML 1.1: the notebook receives a string
    from ganlib.notebook_support import config_from_namespace

    assert config_from_namespace(values)[0].lr == 2e-4


def test_gan_with_a_typo_says_did_you_mean():
    from ganlib.api import GAN

    with pytest.raises(ConfigError, match="'lrr' \\(did you mean 'lr'\\?\\)"):
        GAN(lrr=1e-3)


def test_a_mistyped_data_dir_is_an_error_not_a_fallback(tmp_path):
    from ganlib.data import load_dataset

    with pytest.raises(DatasetNotFoundError, match="check data_dir=.*fashoin"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "fashoin"))


# ---------------------------------------------------------------------------------------------- images
def test_skip_means_skip_even_for_the_first_file(tmp_path):
    from ganlib.data import load_dataset

    _image_folder(tmp_path / "images")
    (tmp_path / "images" / "a" / "!first.png").write_bytes(b"not an image at all")
    data = load_dataset("folder", "train", str(tmp_path / "images"))
    assert len(data.skipped) == 3 and any("!first.png" in s for s in data.skipped)
    assert data.resized == 1  # the 10x10 image is brought to the common 8x8 size
    summary = train(cfg(dataset="folder", data_dir=str(tmp_path / "images"), epochs=1, steps_per_epoch=1),
                    tmp_path / "run", verbose=0)
    assert summary["dataset"]["skipped_files"] == 3 and summary["dataset"]["resized_files"] == 1
    assert any("!first.png" in s for s in summary["dataset"]["skipped"])


def test_a_decompression_bomb_is_skipped_or_refused_by_name(tmp_path, monkeypatch):
    from PIL import Image

    from ganlib.data import load_dataset

    _image_folder(tmp_path / "images", bad=False)
    Image.new("L", (400, 400)).save(tmp_path / "images" / "a" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # 160,000 pixels > 2x the limit: a "bomb"
    data = load_dataset("folder", "train", str(tmp_path / "images"))
    assert [s.split(":")[0] for s in data.skipped] == [str(tmp_path / "images" / "a" / "bomb.png")]
    with pytest.raises(CorruptDatasetError, match="bomb.png.*DecompressionBomb"):
        load_dataset("folder", "train", str(tmp_path / "images"), on_bad_image="error")


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from ganlib.data import load_dataset

    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65,520
    for i in range(4):
        Image.fromarray(ramp).save(tmp_path / f"{i}.png")
    assert Image.open(tmp_path / "0.png").mode in ("I;16", "I")
    images = load_dataset("folder", "test", str(tmp_path)).images[..., 0]
    np.testing.assert_allclose(images[0].astype(float), ramp / 257.0, atol=0.51)
    assert (images == 255).mean() < 0.05


def test_images_of_mixed_sizes_are_cropped_and_resized_to_the_common_size(tmp_path):
    from PIL import Image

    from ganlib.data import load_dataset

    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / f"sq{i:02d}.png")
    for i in range(10):  # a wide image: centre-cropped to square, not squashed
        wide = np.zeros((12, 24, 3), np.uint8)
        wide[:, 6:18] = 200
        Image.fromarray(wide).save(tmp_path / f"wide{i:02d}.png")
    data = load_dataset("folder", "train", str(tmp_path)).take(10**6)
    full = load_dataset("folder", "test", str(tmp_path))
    assert data.images.shape[1:] == (12, 12, 3) and len(data) + len(full) == 30 and data.skipped == []
    assert data.resized == full.resized == 10  # counted over the folder's files, before the train/test split
    wide = np.asarray(Image.open(tmp_path / "wide00.png"))
    from ganlib.data import _fit

    cropped = np.asarray(_fit(Image.fromarray(wide), (12, 12)))
    assert (cropped == 200).all()  # the centre 12x12 of the wide image is all that is kept


# ---------------------------------------------------------------------------------------------- study files
BOMB = "name: bomb\nbaseline: {epochs: 1}\nseeds: 1\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "description: *a8\n"


def _sweep_cli(tmp_path, text, *args, timeout=60):
    study = tmp_path / "study.yaml"
    study.write_text(text)
    return subprocess.run([sys.executable, "-m", "analysis.sweep", str(study), "--out", str(tmp_path / "out"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    assert len(BOMB.encode()) < 700
    done = _sweep_cli(tmp_path, BOMB, "--dry-run")
    assert done.returncode == 2 and "expands to more than 100,000 values" in done.stderr, done.stderr[-2000:]


def test_a_huge_grid_is_refused_before_it_is_built(tmp_path):
    values = ", ".join(str(i) for i in range(100))
    text = (f"name: huge\nbaseline: {{epochs: 1}}\nseeds: 1\ngrid:\n  latent_dim: [{values}]\n"
            f"  embedding_dim: [{values}]\n  filters: [{values}]\n  subset: [{values}, 1000]\n")
    done = _sweep_cli(tmp_path, text, "--dry-run")
    assert done.returncode == 2 and "100 x 100 x 100 x 101 = 101,000,000 grid points" in done.stderr, done.stderr[-2000:]


def test_a_repeated_key_is_refused(tmp_path):
    from analysis.study import StudyError, load_study

    path = tmp_path / "study.yaml"
    path.write_text("name: twice\nbaseline: {lr: 1e-3}\nseeds: 1\nbaseline: {lr: 2e-4}\n")
    with pytest.raises(StudyError, match="found the key 'baseline' a second time \\(first at line 2\\)"):
        load_study(path)


def test_a_large_plan_needs_yes(tmp_path):
    text = "name: large\nbaseline: {epochs: 1}\nseeds: 3\ngrid:\n  latent_dim: [" + ", ".join(
        str(i) for i in range(1, 101)) + "]\n"  # 300 runs
    done = _sweep_cli(tmp_path, text)
    assert done.returncode == 2 and "This plan trains 300 runs" in done.stderr and "--yes" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written, nothing trained
    assert _sweep_cli(tmp_path, text, "--dry-run").returncode == 0


def test_a_dead_scheduler_is_a_short_clear_error(tmp_path):
    text = yaml.safe_dump(dict(name="remote", baseline={k: v for k, v in cfg().to_dict().items() if k != "seed"},
                               seeds=1))
    done = _sweep_cli(tmp_path, text, "--scheduler", "tcp://127.0.0.1:9", timeout=45)
    assert done.returncode == 2 and "could not connect to the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------- study runner
def test_the_runner_reports_a_live_run_as_busy_and_leaves_its_summary(tmp_path, monkeypatch):
    from analysis import sweep

    monkeypatch.setattr(sweep, "BUSY_GRACE_SECONDS", 0.5)
    run = RunDirectory(_write_run(tmp_path / "run", cfg(), {"status": "running", "format_version": 1}))
    before = snapshot(run.path)
    with run.lock():  # a live trainer (another process, or a kernel whose Dask worker died)
        result = sweep.execute_run(str(run.path), cfg().to_dict(), 1, str(tmp_path / "log"))
    assert result["status"] == "busy" and "another process" in result["error"] and not result["trained"]
    assert run.read_summary() == {"status": "running", "format_version": 1}
    assert {k: v for k, v in snapshot(run.path).items() if "lock" not in k} == before


# ---------------------------------------------------------------------------------------------- one model loader
@pytest.mark.parametrize("loader", ["analysis.figures.load_generator", "ganlib.explore.load_generator",
                                    "ganlib.metrics.evaluate_run"])
def test_every_model_loader_refuses_bytecode_even_if_keras_was_made_unsafe(tmp_path, unsafe_keras_globally, loader):
    import importlib

    run, marker = _lambda_run(tmp_path, names=("generator", "discriminator", "generator_ema"))
    module, name = loader.rsplit(".", 1)
    with pytest.raises(ValueError, match="Lambda"):
        getattr(importlib.import_module(module), name)(run)
    assert not marker.exists()


def test_there_is_one_keras_model_loader():
    """Every .keras file is read by ganlib.rundir.load_keras_model; a second loader could skip its guards."""
    offenders = []
    for folder in ("ganlib", "analysis", "notebooks", "reports"):
        for path in (Path(ROOT) / folder).rglob("*"):
            if path.suffix in (".py", ".qmd") and path != Path(ROOT) / "ganlib" / "rundir.py":
                text = path.read_text()
                if re.search(r"models\.load_model\(|saving\.load_model|import load_model\b|load_weights\(", text):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_fault_table_names_only_tests_that_exist():
    """docs/reliability.md is a true table: every test it names is defined (an abbreviated `name_…` is a prefix)."""
    doc = (Path(ROOT) / "docs" / "reliability.md").read_text()
    named = re.findall(r"`(?:tests/\w+\.py::)?(test_\w+)(…)?", doc)
    defined = set(re.findall(r"def (test_\w+)", "".join(p.read_text() for p in (Path(ROOT) / "tests").glob("*.py"))))
    missing = [n for n, abbreviated in named if not (any(d.startswith(n) for d in defined) if abbreviated else
                                                      n in defined)]
    assert named and missing == []
