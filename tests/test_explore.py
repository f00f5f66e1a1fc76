"""Exploration tools: latent helpers, the explorer driven through its methods and widgets, GIFs, result plots and
the explore notebook (papermill) on one tiny trained run."""
import json
import os
import shutil
import string
import subprocess
import sys
from types import SimpleNamespace

import imageio.v3 as iio
import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from conftest import ROOT, tiny  # noqa: E402
from ganlib.animation import save_gif, training_progress_gif  # noqa: E402
from ganlib.curves import plot_results, run_curves  # noqa: E402
from ganlib.data import EMNIST_CLASSES  # noqa: E402
from ganlib.explore import LatentExplorer, load_generator  # noqa: E402
from ganlib.latent import (interpolate, latent_grid, load_latent_points, pairwise_distance_boxplot,  # noqa: E402
                           pairwise_distances, render_text, save_latent_points, slerp, text_labels)
from ganlib.rundir import RunDirectory, RunDirectoryError  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from ganlib.run import train

    path = tmp_path_factory.mktemp("explore") / "run"
    # Glorot init: with the DCGAN init (N(0, 0.02)) and batch norm still at its initial moving statistics, a 4-step
    # tiny generator draws images within 1/255 of grey (inference mode), and uint8 images of different latent
    # points or classes are then equal or not by rounding alone.
    config = tiny(epochs=2, sample_interval=1, weight_init="glorot")
    assert train(config, path, verbose=0)["status"] == "completed"
    return path


@pytest.fixture(scope="module")
def loaded(run_dir):
    return load_generator(run_dir)  # (generator, class names)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class StubGenerator:
    """A conditional 'generator' that records the z and labels it is given; tile k is filled with label k."""

    def __init__(self, latent_dim=4, classes=26, size=5, conditional=True):
        z, label = SimpleNamespace(shape=(None, latent_dim)), SimpleNamespace(shape=(None,))
        self.input = [z, label] if conditional else z
        self.output = SimpleNamespace(shape=(None, size, size, 1))
        self.outputs = [self.output]  # like keras.Model (MSG-GAN generators have several)
        self.layers = [SimpleNamespace(input_dim=classes)]
        self.size, self.classes, self.calls = size, classes, []

    def __call__(self, inputs, training=False):
        z, labels = inputs if isinstance(self.input, list) else (inputs, np.zeros(len(inputs), np.int32))
        self.calls.append((np.array(z), np.array(labels)))
        value = np.asarray(labels, np.float32) / self.classes * 2 - 1 + 0.5
        return np.broadcast_to(value[:, None, None, None], (len(z), self.size, self.size, 1))


# ---------------------------------------------------------------------------------------------- latent helpers
def test_interpolation_endpoints_and_slerp_norms():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 16)).astype(np.float32)
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal norms
    for method in ("slerp", "linear"):
        points = interpolate(a, b, 9, method)
        assert points.shape == (9, 16)
        assert np.array_equal(points[0], a) and np.array_equal(points[-1], b)
    norms = np.linalg.norm(interpolate(a, b, 9, "slerp"), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-5)
    assert np.linalg.norm(interpolate(a, b, 9, "linear")[4]) < 0.9 * np.linalg.norm(a)  # the line cuts inside
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a, rtol=1e-6)  # parallel: falls back to the line
    with pytest.raises(ValueError, match="method"):
        interpolate(a, b, 5, "cubic")


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_latent_points_round_trip(tmp_path, suffix):
    z = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    path = save_latent_points(tmp_path / f"points{suffix}", z=z, label=np.int32(4), direction=None)
    points = load_latent_points(path)
    assert set(points) == {"z", "label"}  # None values are left out
    assert np.array_equal(points["z"], z) and int(points["label"]) == 4
    with pytest.raises(TypeError, match="not numeric"):
        save_latent_points(tmp_path / f"bad{suffix}", z=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="npz or .json"):
        save_latent_points(tmp_path / "points.pkl", z=z)


def test_text_labels_pick_the_classes():
    letters = EMNIST_CLASSES["letters"]
    assert text_labels(letters, "Hello World").tolist() == [[7, 4, 11, 11, 14, -1, 22, 14, 17, 11, 3]]
    balanced = EMNIST_CLASSES["balanced"]  # has both 'A' and 'a', but only 'C' (no 'c')
    assert text_labels(balanced, "aAc").tolist() == [[balanced.index("a"), balanced.index("A"), balanced.index("C")]]
    assert text_labels(list(string.digits), "20 24\n7").tolist() == [[2, 0, -1, 2, 4], [7, -1, -1, -1, -1]]
    with pytest.raises(ValueError, match=r"cannot draw 'A!'.*knows: '0123456789'"):
        text_labels(list(string.digits), "1A!")


def test_a_model_whose_classes_are_words_says_it_cannot_write():
    with pytest.raises(ValueError, match="classes are not single characters \\(stripes, suns\\)"):
        text_labels(["stripes", "suns"], "hi")


def test_render_text_draws_each_character_and_blank_spaces():
    g = StubGenerator(classes=26)
    image = render_text(g, EMNIST_CLASSES["letters"], "Ab C", variation=0.0)
    probe, (z, labels) = g.calls  # first the check that the generator does not ignore its labels, then the text
    assert len(np.unique(probe[1])) == 10
    assert labels.tolist() == [0, 1, 2]
    assert np.allclose(z, z[0])  # variation 0: one latent point for all characters
    assert image.shape == (5 + 2, 4 * 6 + 1)  # one row of 4 tiles of 5 pixels, padding 1
    assert (image[1:6, 13:18] == 0).all()  # the space is a blank (background, -1) tile
    assert image[1:6, 1:6].mean() != image[1:6, 7:12].mean()  # 'A' and 'b' drawn as different classes
    render_text(g, EMNIST_CLASSES["letters"], "Ab C", variation=0.5, seed=3)
    varied = g.calls[-1][0]
    render_text(g, EMNIST_CLASSES["letters"], "Ab C", variation=0.5, seed=3)
    again = g.calls[-1][0]
    assert not np.allclose(varied, varied[0]) and np.array_equal(varied, again)  # different per char, seeded
    with pytest.raises(ValueError, match="conditional"):
        render_text(StubGenerator(conditional=False), EMNIST_CLASSES["letters"], "A")


def test_latent_grid_sets_the_two_dimensions():
    g = StubGenerator(latent_dim=5, size=2)
    base = np.arange(5, dtype=np.float32)
    image = latent_grid(g, base, dim_x=1, dim_y=3, values=[-1.0, 0.0, 1.0], label=2)
    (z, labels), = g.calls
    assert image.shape == (3 * 3 + 1, 3 * 3 + 1) and labels.tolist() == [2] * 9
    assert z[:, 1].tolist() == [-1, 0, 1] * 3 and z[:, 3].tolist() == [-1] * 3 + [0] * 3 + [1] * 3
    assert (z[:, [0, 2, 4]] == base[[0, 2, 4]]).all()


def test_pairwise_distance_boxplot():
    images = np.zeros((3, 2, 2, 1), np.float32)
    images[1] += 1.0  # distance 2 (4 pixels of 1) from image 0
    images[2] -= 1.0
    assert pairwise_distances(images).tolist() == [2.0, 2.0, 4.0]
    fig = pairwise_distance_boxplot({"same": np.zeros((4, 2, 2, 1)), "spread": images})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["same", "spread"]
    levels = {float(y) for line in ax.lines for y in line.get_ydata()}  # boxes, whiskers, medians
    assert levels == {0.0, 2.0, 3.0, 4.0}  # "same": all 0; "spread": 2, 2, 4 (quartiles 2 and 3)


# ---------------------------------------------------------------------------------------------- explorer
def test_explorer_methods(loaded, tmp_path):
    generator, class_names = loaded
    e = LatentExplorer(generator, 16, class_names, seed=0)
    first = e.image
    assert first.shape == (28, 28) and first.dtype == np.uint8
    e.randomise()
    assert not np.array_equal(e.image, first)
    e.normalise()
    assert np.linalg.norm(e.z) == pytest.approx(4.0, rel=1e-5)  # sqrt(16)
    before = e.image
    e.set_class("3")
    assert e.label == 3 and not np.array_equal(e.image, before)
    e.save_base()
    base = e.z.copy()
    e.randomise()
    target = e.z.copy()
    e.save_direction()
    e.traverse(0.0)
    np.testing.assert_allclose(e.z, base)
    e.traverse(1.0)
    np.testing.assert_allclose(e.z, target, atol=1e-6)
    e.traverse(0.5)
    np.testing.assert_allclose(e.z, (base + target) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim=8"):
        LatentExplorer(generator, 8)

    gif = e.record_gif(tmp_path / "walk.gif", frames=6, scale=3)
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (6, 84, 84)
    assert Image.open(gif).n_frames == 6

    for suffix in (".npz", ".json"):
        e.save_points(tmp_path / f"points{suffix}")
        other = LatentExplorer(generator, class_names=class_names, seed=5)
        other.load_points(tmp_path / f"points{suffix}")
        for name in ("z", "base", "direction"):
            np.testing.assert_array_equal(getattr(other, name), getattr(e, name))
        assert other.label == 3 and np.array_equal(other.image, e.image)
    save_latent_points(tmp_path / "wrong.npz", z=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        e.load_points(tmp_path / "wrong.npz")


def test_explorer_widgets_call_the_methods(loaded, tmp_path):
    generator, class_names = loaded
    e = LatentExplorer(generator, class_names=class_names, sliders=6)
    ui = e.widget
    assert ui is e.widget and len(e.sliders) == 6
    e.buttons["save direction"].click()  # no base yet: the error is shown, not raised
    assert "error" in e._status.value and e.direction is None
    e.buttons["save base"].click()
    e.buttons["randomise"].click()
    assert not np.array_equal(e.z, e.base)
    e.buttons["save direction"].click()
    np.testing.assert_allclose(e.direction, e.z - e.base)
    e._t.value = 0.25
    np.testing.assert_allclose(e.z, e.base + 0.25 * e.direction, atol=1e-6)
    e._page.value = 2  # dims 12..17 of 16: two sliders hidden
    assert [s.description for s in e.sliders[:4]] == ["z[12]", "z[13]", "z[14]", "z[15]"]
    assert [s.layout.visibility for s in e.sliders] == ["visible"] * 4 + ["hidden"] * 2
    e.sliders[1].value = 1.5
    assert e.z[13] == pytest.approx(1.5)
    e._class.value = 7
    assert e.label == 7
    shown = np.asarray(Image.open(__import__("io").BytesIO(e._view.value)))
    assert shown.shape == (28 * 4, 28 * 4) and np.array_equal(shown[::4, ::4], e.image)
    e._gif_path.value = str(tmp_path / "button.gif")
    e.buttons["record GIF"].click()
    frames = e.traversal(30)  # Pillow stores identical consecutive frames once
    distinct = 1 + int(sum(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:])))
    assert Image.open(tmp_path / "button.gif").n_frames == distinct > 1
    e._points_path.value = str(tmp_path / "button.json")
    e.buttons["save points"].click()
    assert json.loads((tmp_path / "button.json").read_text())["label"] == 7
    e.buttons["normalise"].click()
    assert e.sliders[1].value == pytest.approx(float(e.z[13]), abs=0.01)  # sliders follow the state
    e.buttons["load points"].click()
    assert e.z[13] == pytest.approx(1.5)


def test_from_run(run_dir, tmp_path):
    e = LatentExplorer.from_run(run_dir)
    assert e.conditional and e.class_names == list(string.digits) and e.latent_dim == 16
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(RunDirectoryError, match="when a run completes"):
        LatentExplorer.from_run(tmp_path / "unfinished")


# ---------------------------------------------------------------------------------------------- GIFs
def test_save_gif_frames_and_size(tmp_path):
    frames = [np.full((4, 6), v, np.float32) for v in (-1.0, 0.0, 1.0)]  # floats are [-1, 1] images
    path = save_gif(frames, tmp_path / "a.gif", fps=5, scale=2)
    assert iio.imread(path, index=None).shape[:3] == (3, 8, 12)
    assert Image.open(path).info["duration"] == 200


def test_training_progress_gif(run_dir, tmp_path):
    grid = Image.open(RunDirectory(run_dir).sample_file(1)).size
    plain = Image.open(training_progress_gif(run_dir, tmp_path / "plain.gif", caption=False))
    assert plain.n_frames == 2 and plain.size == grid
    captioned = Image.open(training_progress_gif(run_dir, tmp_path / "epochs.gif"))
    assert captioned.n_frames == 2 and captioned.size == (grid[0], grid[1] + 14)
    with pytest.raises(RunDirectoryError, match="no sample grids"):
        training_progress_gif(tmp_path, tmp_path / "none.gif")


# ---------------------------------------------------------------------------------------------- plots
def _labels(ax):
    return [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]


def test_result_plots(run_dir, tmp_path):
    batches = RunDirectory(run_dir).read_batches()
    smooth = run_curves(run_dir, "batch", window=2)
    np.testing.assert_allclose(smooth["d_loss"], batches["d_loss"].rolling(2, min_periods=1).mean())
    np.testing.assert_allclose(run_curves(run_dir, "batch")["loss_diff"], batches["d_loss"] - batches["g_loss"])

    fig = plot_results(run_dir, window=2)
    assert [_labels(ax) for ax in fig.axes] == [["d_loss", "g_loss"], ["d_acc_real", "d_acc_fake"], ["loss_diff"], []]

    other = tmp_path / "seed1"  # a second run with FID logged on epoch 2
    shutil.copytree(run_dir, other)
    epochs = pd.read_csv(other / "metrics" / "epochs.csv")
    epochs["eval_fid"] = [np.nan, 123.0]
    epochs.to_csv(other / "metrics" / "epochs.csv", index=False)
    runs = {"a": run_dir, "b": other}
    fig = plot_results(runs, kinds=("loss", "fid"), combine="overlay")
    assert _labels(fig.axes[0]) == ["a: d_loss", "b: d_loss", "a: g_loss", "b: g_loss"]
    assert _labels(fig.axes[1]) == ["b: eval_fid"] and list(fig.axes[1].lines[0].get_ydata()) == [123.0]
    fig = plot_results(runs, kinds=("loss", "loss_diff"), combine="mean")  # one configuration, two copies
    assert _labels(fig.axes[0]) == ["d_loss (mean of 2 seeds)", "g_loss (mean of 2 seeds)"] and fig.axes[0].collections
    assert len(fig.axes[0].lines[0].get_xdata()) == len(batches)
    # two configurations x two seeds: a mean per configuration, never one over all four runs
    study = tmp_path / "study" / "runs"
    for variation, lr in (("base", None), ("fast", 1e-3)):
        for seed in (0, 1):
            folder = study / variation / f"seed{seed}"
            shutil.copytree(run_dir, folder)
            config = json.loads((folder / "config.json").read_text())
            config.update(seed=seed, **({"g_lr": lr, "d_lr": lr} if lr else {}))
            (folder / "config.json").write_text(json.dumps(config))
    fig = plot_results(sorted(study.glob("*/seed*")), kinds=("loss",), combine="mean")
    assert _labels(fig.axes[0]) == ["base: d_loss (mean of 2 seeds)", "fast: d_loss (mean of 2 seeds)",
                                    "base: g_loss (mean of 2 seeds)", "fast: g_loss (mean of 2 seeds)"]
    fig = plot_results(runs, kinds=("accuracy",), per="epoch", combine="side")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes][1].endswith("b")
    assert all(_labels(ax) == ["d_acc_real", "d_acc_fake"] for ax in fig.axes)


# ---------------------------------------------------------------------------------------------- notebook
PAPERMILL = os.path.join(os.path.dirname(sys.executable), "papermill")


@pytest.mark.slow
def test_explore_notebook_runs_under_papermill(run_dir, tmp_path):
    proc = subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "explore.py"), "out.ipynb",
                           "-p", "run_dir", str(run_dir)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = [o for c in json.loads((tmp_path / "out.ipynb").read_text())["cells"] for o in c.get("outputs", [])]
    kinds = [k for o in outputs for k in o.get("data", {})]
    assert kinds.count("application/vnd.jupyter.widget-view+json") == 2  # the explorer and the settings form
    assert kinds.count("image/gif") == 2 and kinds.count("image/png") >= 6
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "'0123456789'" in text  # a digits model writes digits
    made = tmp_path / "explore" / "run"
    assert {p.name for p in made.iterdir()} == {"traversal.gif", "training_progress.gif", "latent_points.npz"}

    missing = subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "explore.py"), "out2.ipynb",
                              "-p", "run_dir", "runs/nope"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
    assert missing.returncode != 0 and "No trained generator at runs/nope" in missing.stderr + missing.stdout
