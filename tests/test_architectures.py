"""Architectures and normalizations: shapes, a few training steps each, spectral norm, MSG-GAN, image folders,
and the notebook command for WGAN-GP and MSG-GAN runs."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT
from ganlib import Config
from test_losses import SMALL, batch, make_trainer


@pytest.mark.parametrize("model, norm, d_norm", [
    ("dcgan", "none", None), ("dcgan", "batch", None), ("dcgan", "layer", None), ("dcgan", "instance", None),
    ("dcgan", "none", "spectral"), ("mlp", "batch", "spectral"), ("mlp", "instance", "layer"),
    ("msggan", "layer", "spectral"), ("msggan", "batch", None),
])
def test_each_architecture_and_normalization_trains(model, norm, d_norm):
    cfg = Config(model=model, norm=norm, d_norm=d_norm, image_size=16, **SMALL)
    trainer = make_trainer(cfg, shape=(16, 16, 1))
    for step in range(2):
        logs = trainer.train_on_batch(*batch(8, (16, 16, 1), seed=step), return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert trainer(trainer.sample_noise(3)).shape == (3, 16, 16, 1)  # full-size images, also for msggan


def test_layer_norm_of_feature_maps_normalizes_each_sample_over_height_width_and_channels():
    import keras

    cfg = Config(norm="layer", depth=3, image_size=16, precision="float32", **SMALL)
    trainer = make_trainer(cfg, shape=(16, 16, 1))
    layer = trainer.discriminator.get_layer("d_down1_norm")
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 4, 4, 4)).astype("float32")
    y = np.asarray(layer(x))  # gamma = 1, beta = 0 at initialization
    np.testing.assert_allclose(y.reshape(2, -1).mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(y.reshape(2, -1).std(axis=1), 1, atol=1e-2)
    assert isinstance(layer, keras.layers.GroupNormalization) and layer.groups == 1


def test_spectral_norm_keeps_the_largest_singular_value_of_each_kernel_at_one():
    cfg = Config(d_norm="spectral", filters=8, depth=2, **{k: v for k, v in SMALL.items() if k != "filters"})
    trainer = make_trainer(cfg)
    for step in range(5):
        trainer.train_on_batch(*batch(8, seed=step), return_dict=True)
    real, labels = batch(8)
    trainer.discriminator([real, labels], training=True)  # normalizes the kernels the last update changed
    wrapped = [layer for layer in trainer.discriminator.layers if layer.name.endswith("_sn")]
    assert len(wrapped) == 3  # two convolutions and the logit layer
    for layer in wrapped:
        kernel = layer.layer.kernel.numpy()
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.05, (layer.name, sigma)


# ---------------------------------------------------------------------------------------------- MSG-GAN
def test_msggan_generator_emits_a_pyramid_and_the_discriminator_takes_one():
    import tensorflow as tf

    from ganlib.models import build_models, image_pyramid
    from ganlib.trainer import generate

    cfg = Config(model="msggan", image_size=32, channels=3, depth=3, **SMALL)
    g, d = build_models(cfg, (32, 32, 3), 10)
    z, labels = tf.random.normal((2, 8)), tf.constant([1, 2])
    images = g([z, labels])
    assert [tuple(x.shape) for x in images] == [(2, 4, 4, 3), (2, 8, 8, 3), (2, 16, 16, 3), (2, 32, 32, 3)]
    assert all(x.dtype == tf.float32 for x in images)
    assert d([*images, labels]).shape == (2, 1)
    assert generate(g, np.asarray(z), np.array([1, 2])).shape == (2, 32, 32, 3)  # the full-size level
    # the real pyramid: each level is the 2x2 block average of the next finer one
    real = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    pyramid = [np.asarray(x) for x in image_pyramid(real, 2)]
    assert [x.shape[1] for x in pyramid] == [2, 4, 8]
    np.testing.assert_allclose(pyramid[0], real.reshape(2, 2, 4, 2, 4, 3).mean(axis=(2, 4)), rtol=1e-5)
    with pytest.raises(Exception, match="d_depth"):
        Config(model="msggan", depth=2, d_depth=1)


def test_msggan_short_run(tmp_path):
    from conftest import tiny
    from ganlib.rundir import RunDirectory, load_keras_model
    from ganlib.run import train
    from ganlib.trainer import generate

    summary = train(tiny(dataset="digits", model="msggan", depth=2, ema=0.9), tmp_path / "run", verbose=0)
    run = RunDirectory(tmp_path / "run")
    assert summary["status"] == "completed"
    assert [p.name for p in run.sample_files()] == ["epoch_0001.png", "epoch_0002.png"]
    assert np.isfinite(run.read_batches()[["d_loss", "g_loss"]].to_numpy()).all()
    for name in ("generator", "generator_ema"):  # saved multi-output generators load and sample full-size images
        generator = load_keras_model(run.model_file(name))
        assert generate(generator, np.zeros((2, 16)), np.array([0, 1])).shape == (2, 8, 8, 1)


# ---------------------------------------------------------------------------------------------- image folders
def _image_folder(root, size, mode, n=24):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, len(mode)), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(), mode).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("size, mode, model, depth", [(64, "RGBA", "msggan", 4), (128, "RGB", "dcgan", 5),
                                                      (28, "L", "dcgan", 2)])
def test_image_folder_runs_at_size_and_channels(tmp_path, size, mode, model, depth):
    from PIL import Image

    from ganlib.rundir import RunDirectory
    from ganlib.run import train

    data_dir = _image_folder(tmp_path / "images", size, mode)
    cfg = Config(dataset="folder", data_dir=str(data_dir), image_size=size, model=model, depth=depth, filters=4,
                 latent_dim=8, embedding_dim=2, batch_size=4, epochs=1, steps_per_epoch=1, metric_samples=0,
                 grid_size=2)
    summary = train(cfg, tmp_path / "run", verbose=0)
    assert summary["status"] == "completed", summary.get("error")
    assert summary["dataset"]["image_shape"] == [size, size, len(mode)]
    with Image.open(RunDirectory(tmp_path / "run").sample_files()[-1]) as grid:
        assert grid.mode == mode and grid.width > 2 * size


# ---------------------------------------------------------------------------------------------- the notebook
PAPERMILL = os.path.join(os.path.dirname(sys.executable), "papermill")
METRICS = importlib.util.find_spec("ganlib.metrics") is not None


@pytest.mark.slow
@pytest.mark.parametrize("variant", [dict(loss="wgan_gp", norm="layer", d_steps=2),
                                     dict(model="msggan", conditional=False)])
def test_notebook_run(tmp_path, variant):
    params = dict(dataset="mnist_subset", subset=128, batch_size=16, filters=4, latent_dim=8, embedding_dim=2,
                  epochs=2, steps_per_epoch=2, grid_size=4, metric_interval=1, metric_samples=64 if METRICS else 0,
                  run_dir="run", verbose=0, **variant)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "train.py"), "out.ipynb", "-f", "params.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert sorted(p.name for p in (run / "samples").glob("epoch_*.png")) == ["epoch_0001.png", "epoch_0002.png"]
    if METRICS:
        assert np.isfinite(summary["final_metrics"]["fid"])
        epochs = (run / "metrics" / "epochs.csv").read_text().splitlines()
        assert "eval_fid" in epochs[0] and len(epochs) == 3
