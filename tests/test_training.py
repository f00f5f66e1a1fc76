import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ganlib.rundir import RunDirectory, RunDirectoryError
from ganlib.run import train
from conftest import ROOT, tiny


def test_a_few_steps_change_weights_and_give_finite_losses(tmp_path):
    import keras

    from ganlib.data import load_for_config
    from ganlib.models import build_models
    from ganlib.trainer import GANTrainer, make_optimizer

    cfg = tiny()
    data = load_for_config(cfg)
    g, d = build_models(cfg, data.image_shape, data.num_classes)
    before = [w.copy() for w in g.get_weights()], [w.copy() for w in d.get_weights()]
    trainer = GANTrainer(g, d, cfg, data.num_classes)
    trainer.compile(make_optimizer(cfg, "g", 10), make_optimizer(cfg, "d", 10))
    x = data.as_float()[:16]
    logs = trainer.train_on_batch(x, data.labels[:16], return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    for old, new in zip(before, (g.get_weights(), d.get_weights())):
        assert any(not np.allclose(a, b) for a, b in zip(old, new))
    assert 0 <= logs["d_acc_real"] <= 1


def test_run_directory_is_complete(tmp_path):
    summary = train(tiny(epochs=3, sample_interval=2), tmp_path / "run", verbose=0)
    run = RunDirectory(tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert [p.name for p in run.sample_files()] == ["epoch_0002.png", "epoch_0003.png"]
    assert run.model_file("generator").exists() and run.model_file("discriminator").exists()
    epochs, batches = run.read_epochs(), run.read_batches()
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert batches["step"].tolist() == list(range(1, 7))
    assert np.isfinite(batches[["d_loss", "g_loss"]].to_numpy()).all()
    assert json.loads(run.config_file.read_text())["filters"] == 8
    # a finished run is left as it is
    again = train(tiny(epochs=3, sample_interval=2), tmp_path / "run", verbose=0)
    assert again["finished_at"] == summary["finished_at"] and again["attempts"] == 1


def test_same_seed_same_curve_and_different_seed_differs(tmp_path):
    a = train(tiny(), tmp_path / "a", verbose=0)
    b = train(tiny(), tmp_path / "b", verbose=0)
    c = train(tiny(seed=1), tmp_path / "c", verbose=0)
    la, lb, lc = (RunDirectory(tmp_path / n).read_batches() for n in "abc")
    cols = ["d_loss", "g_loss"]
    np.testing.assert_allclose(la[cols], lb[cols], rtol=1e-5)
    assert not np.allclose(la[cols], lc[cols])


def test_refuses_a_directory_of_another_configuration(tmp_path):
    train(tiny(), tmp_path / "run", verbose=0)
    with pytest.raises(RunDirectoryError, match="different configuration"):
        train(tiny(lr=1e-3), tmp_path / "run", verbose=0)


KILLER = """
import os, signal, sys, keras
sys.path.insert(0, {tests!r})
from conftest import tiny
from ganlib.run import train

class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == {epoch} and batch == {batch}:
            os.kill(os.getpid(), signal.SIGKILL)
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

train(tiny(epochs=4, steps_per_epoch=3), {run!r}, verbose=0, callbacks=[Kill()])
"""


@pytest.mark.parametrize("epoch, batch", [(3, 1), (2, 2)])
def test_killed_run_resumes_with_continuous_identical_log(tmp_path, epoch, batch):
    run_dir = str(tmp_path / "killed")
    script = KILLER.format(tests=os.path.join(ROOT, "tests"), run=run_dir, epoch=epoch, batch=batch)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = RunDirectory(run_dir)
    assert run.status == "running"
    assert run.read_epochs()["epoch"].max() == epoch - 1

    summary = train(tiny(epochs=4, steps_per_epoch=3), run_dir, verbose=0)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == epoch - 1
    resumed = run.read_batches()
    assert resumed["step"].tolist() == list(range(1, 13))  # no duplicated or missing steps
    assert run.read_epochs()["epoch"].tolist() == [1, 2, 3, 4]

    train(tiny(epochs=4, steps_per_epoch=3), tmp_path / "straight", verbose=0)
    straight = RunDirectory(tmp_path / "straight").read_batches()
    # models, optimizer state, RNG state and data order were all restored: the curves coincide
    np.testing.assert_allclose(resumed[["d_loss", "g_loss"]], straight[["d_loss", "g_loss"]], rtol=1e-4, atol=1e-6)


def test_transfer_learning_starts_from_another_runs_models(tmp_path):
    import keras

    train(tiny(), tmp_path / "source", verbose=0)
    source = keras.models.load_model(tmp_path / "source" / "models" / "generator.keras")
    summary = train(tiny(init_from=str(tmp_path / "source"), epochs=1, steps_per_epoch=1, lr=1e-9),
                    tmp_path / "target", verbose=0)
    assert summary["status"] == "completed"
    target = keras.models.load_model(tmp_path / "target" / "models" / "generator.keras")
    # trainable weights only: a training step moves batch norm's moving statistics whatever the learning rate
    for a, b in zip(source.trainable_weights, target.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    with pytest.raises(RunDirectoryError, match="no final models"):
        train(tiny(init_from=str(tmp_path / "nothing")), tmp_path / "t2", verbose=0)


def test_non_finite_loss_marks_run_diverged_and_keeps_logs(tmp_path):
    import keras

    class Poison(keras.callbacks.Callback):  # what an exploding learning rate does, deterministically
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                w = self.model.discriminator.trainable_weights[0]
                w.assign(np.full(w.shape, np.nan, "float32"))

    summary = train(tiny(epochs=4), tmp_path / "div", verbose=0, callbacks=[Poison()])
    assert summary["status"] == "diverged"
    assert "non-finite" in summary["error"] and "epoch 2" in summary["error"]
    run = RunDirectory(tmp_path / "div")
    assert run.read_epochs()["epoch"].tolist() == [1, 2]  # what was logged is kept
    assert not run.model_file("generator").exists()
    # re-running a diverged run does not retrain it
    assert train(tiny(epochs=4), tmp_path / "div", verbose=0)["status"] == "diverged"


def test_the_summary_records_the_device(tmp_path):
    from ganlib.run import train
    from tiny import tiny

    summary = train(tiny(epochs=1), tmp_path / "run", verbose=0)
    device = summary["device"]
    assert device["kind"] in ("CPU", "GPU") and device["count"] >= 1 and device["tensorflow"]
    assert device["cpu_threads"] >= 1 and device["name"]


def _tensorboard_tags(folder, values=None):
    import tensorflow as tf

    tags = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
                if values is not None and value.HasField("tensor"):
                    values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return tags


def test_tensorboard_logs_losses_metrics_and_sample_grids(tmp_path):
    config = tiny(epochs=3, tensorboard=True, metric_interval=1, metric_samples=64)
    assert config.hash == tiny(epochs=3, metric_interval=1, metric_samples=64).hash  # an output flag only
    run = RunDirectory(tmp_path / "run")
    train(config, run.path, verbose=0)
    values = {}
    scalars = _tensorboard_tags(run.tensorboard_dir / "train", values)
    for tag in ("epoch_d_loss", "epoch_g_loss", "epoch_d_acc_real", "epoch_eval_fid", "epoch_eval_label_accuracy"):
        assert scalars.get(tag) == {0, 1, 2}, (tag, sorted(scalars))
    # the learning rates the run trained with (Keras logged an unused optimizer's 0.001 as "learning_rate")
    assert "epoch_learning_rate" not in scalars
    assert values["epoch_learning_rate_g_optimizer"] == pytest.approx([config.g_lr] * 3)
    assert values["epoch_learning_rate_d_optimizer"] == pytest.approx([config.d_lr] * 3)
    assert _tensorboard_tags(run.tensorboard_dir / "samples") == {"samples (fixed noise)": {0, 1, 2}}


def test_tensorboard_without_the_package_is_refused_before_training(tmp_path, monkeypatch):
    import importlib.util

    from ganlib import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'ganlib\[tensorboard\]'"):
        train(tiny(tensorboard=True), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "metrics").exists() and not (tmp_path / "run" / "tensorboard").exists()


def test_the_summary_times_each_phase_of_the_run(tmp_path):
    summary = train(tiny(epochs=1, metric_samples=64), tmp_path / "run", verbose=0)
    timings = summary["timings"]
    assert set(timings) == {"data", "import", "metrics_setup", "models", "training", "saving", "final_metrics",
                            "untrained_metrics"}
    assert all(v >= 0 for v in timings.values()) and timings["training"] >= summary["train_seconds_this_attempt"] * 0.9


def test_variations_sharing_the_untrained_generator_reuse_its_floor(tmp_path, monkeypatch):
    import ganlib.metrics
    from ganlib.metrics.evaluate import Evaluator

    # A fresh folder for the floors (the feature networks stay cached): an earlier run of this test in the same
    # checkout must not have left these floors behind.
    fresh = tmp_path / "cache"
    monkeypatch.setattr(ganlib.metrics, "cache_dir", lambda path=None: fresh)
    folder = fresh / "untrained"
    before = set()
    base = dict(epochs=1, metric_samples=64, seed=12345)
    first = train(tiny(**base), tmp_path / "a", verbose=0)
    added = set(folder.glob("*.json")) - before
    assert len(added) == 1  # this generator, evaluation and real features: computed once, kept
    calls = []
    real_call = Evaluator.__call__
    monkeypatch.setattr(Evaluator, "__call__", lambda self, g: calls.append(g) or real_call(self, g))
    other_d = train(tiny(**base, d_lr=5e-4), tmp_path / "b", verbose=0)  # same G and seed: the same floor
    assert other_d["untrained_metrics"] == first["untrained_metrics"] and len(calls) == 1  # the trained G only
    other_seed = train(tiny(**{**base, "seed": 12346}), tmp_path / "c", verbose=0)
    assert other_seed["untrained_metrics"]["fid"] != first["untrained_metrics"]["fid"] and len(calls) == 3
    assert len(set(folder.glob("*.json")) - before) == 2


@pytest.mark.parametrize("grid, classes", [(8, 10), (10, 10), (6, 3), (4, 47)])
def test_sample_grid_columns_show_one_class_each_when_there_are_enough_columns(grid, classes):
    from ganlib.run import benchmark_noise

    _, labels = benchmark_noise(tiny(grid_size=grid), classes)
    cells = labels.reshape(grid, grid)
    if classes <= grid:  # each column one class: column j shows class j mod classes
        assert all(len(set(cells[:, j])) == 1 and cells[0, j] == j % classes for j in range(grid))
    else:
        assert set(labels.tolist()) == set(range(min(classes, grid * grid)))
