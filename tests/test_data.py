import os
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from ganlib.data import (CorruptDatasetError, DatasetNotFoundError, ImageData, load_dataset, read_idx,
                         training_dataset)


def write_idx(path, array, compress=True):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def fake_images(n, size=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def test_idx_round_trip_and_truncation(tmp_path):
    x = fake_images(5)
    write_idx(tmp_path / "a.gz", x)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), x)
    raw = gzip.open(tmp_path / "a.gz").read()
    (tmp_path / "b").write_bytes(raw[:-10])
    with pytest.raises(CorruptDatasetError, match="truncated"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(CorruptDatasetError, match="magic"):
        read_idx(tmp_path / "c")


def test_fashion_mnist_from_idx_files_in_data_dir(tmp_path):
    x, y = fake_images(12), np.arange(12) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    data = load_dataset("fashion_mnist", "train", data_dir=str(tmp_path))
    assert data.images.shape == (12, 28, 28, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[..., 0], x)
    assert data.class_names[9] == "Ankle boot"
    floats = data.as_float()
    assert floats.min() >= -1 and floats.max() <= 1


def test_mnist_from_keras_cache_npz(tmp_path):
    x = fake_images(6)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.arange(6), x_test=x[:2], y_test=np.arange(2))
    data = load_dataset("mnist", "test", data_dir=str(tmp_path))
    assert len(data) == 2 and data.num_classes == 10


def test_emnist_is_transposed_back_and_letters_start_at_zero(tmp_path):
    upright = np.zeros((2, 28, 28), np.uint8)
    upright[:, 2, 5] = 255  # a pixel in row 2, column 5
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", upright.transpose(0, 2, 1))
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", np.array([1, 26]))
    data = load_dataset("emnist_letters", "train", data_dir=str(tmp_path))
    assert data.images[0, 2, 5, 0] == 255 and data.images[0, 5, 2, 0] == 0
    assert list(data.labels) == [0, 25]
    assert data.class_names[data.labels[1]] == "Z"


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("emnist_balanced", data_dir=str(tmp_path))
    assert str(tmp_path) in str(err.value) and "NIST" in str(err.value)
    monkeypatch.setattr("ganlib.data.DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr("ganlib.data.KERAS_CACHE", tmp_path / "keras")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion_mnist")
    assert str(tmp_path / "debian") in str(err.value)


def _debian_fashion():
    from ganlib.data import DEBIAN_FASHION_MNIST
    return DEBIAN_FASHION_MNIST.exists()


def test_real_offline_datasets():
    subset = load_dataset("mnist_subset")
    test = load_dataset("mnist_subset", "test")
    assert len(subset) == 4000 and len(test) == 1000
    assert np.bincount(test.labels).tolist() == [100] * 10
    digits = load_dataset("digits", image_size=16)
    assert digits.images.shape[1:] == (16, 16, 1)


@pytest.mark.skipif(not _debian_fashion(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    data = load_dataset("fashion_mnist", "test")
    assert data.images.shape == (10000, 28, 28, 1)


def _save(path, mode, size, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), color).save(path)


def test_image_folder_modes_classes_resize_and_bad_files(tmp_path):
    for i in range(12):
        _save(tmp_path / "cats" / f"{i}.png", "RGBA", 40, (255, 0, 0, 128))
        _save(tmp_path / "dogs" / f"{i}.jpg", "RGB", 64, (0, 255, 0))
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not an image")
    data = load_dataset("folder", "train", data_dir=str(tmp_path), image_size=32, channels=4)
    assert data.images.shape[1:] == (32, 32, 4)
    assert data.class_names == ["cats", "dogs"]
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    assert len(data) + len(load_dataset("folder", "test", data_dir=str(tmp_path), image_size=32)) == 24
    gray = load_dataset("folder", data_dir=str(tmp_path), image_size=32, channels=1)
    assert gray.images.shape[-1] == 1
    with pytest.raises(CorruptDatasetError, match="broken.png"):
        load_dataset("folder", data_dir=str(tmp_path), image_size=32, on_bad_image="error")


def test_folder_without_resize_brings_odd_sizes_to_the_common_size(tmp_path):
    for i in range(3):
        _save(tmp_path / f"a{i}.png", "L", 16, 10)
    _save(tmp_path / "odd.png", "L", 20, 10)
    data = load_dataset("folder", data_dir=str(tmp_path))
    assert data.images.shape == (4, 16, 16, 1) and data.skipped == [] and data.resized == 1


def test_training_batches_are_a_function_of_seed_and_epoch():
    images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
    data = ImageData(images, np.zeros(20, np.int32), ["x"], "t")

    def batches(initial, seed=3):
        ds = training_dataset(data, batch_size=4, seed=seed, initial_epoch=initial, epochs=3, steps_per_epoch=5)
        return [tuple(np.round((x.numpy().ravel() + 1) * 127.5).astype(int)) for x, _ in ds]

    full, resumed = batches(0), batches(2)
    assert resumed == full[10:]  # epoch 3 is identical whether or not training was interrupted
    epoch1 = sorted(v for b in full[:5] for v in b)
    assert epoch1 == list(range(20))  # each epoch is a permutation of the data
    assert full[:5] != full[5:10] and batches(0, seed=4) != full


def _cifar_batches(folder, python=True, n=4):
    import pickle

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = list(range(n))
        if python:
            with open(folder / name, "wb") as f:
                pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f, protocol=2)
        else:
            np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1).tofile(folder / f"{name}.bin")


@pytest.mark.parametrize("python", [True, False])
def test_cifar10_from_the_keras_cache_or_the_binary_batches(tmp_path, python):
    from ganlib.data import load_dataset

    _cifar_batches(tmp_path / ("cifar-10-batches-py" if python else "cifar-10-batches-bin"), python)
    train, test = load_dataset("cifar10", "train", str(tmp_path)), load_dataset("cifar10", "test", str(tmp_path))
    assert train.images.shape == (20, 32, 32, 3) and len(test) == 4 and train.class_names[0] == "airplane"
    assert train.labels.tolist()[:4] == [0, 1, 2, 3]


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    import os
    import pickle

    from ganlib.data import CorruptDatasetError, load_dataset

    _cifar_batches(tmp_path / "cifar-10-batches-py")

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": Payload(), b"labels": []}, f)
    with pytest.raises(CorruptDatasetError, match="refusing to unpickle"):
        load_dataset("cifar10", "test", str(tmp_path))
    assert not (tmp_path / "pwned").exists()


def test_cifar10_missing_says_where_it_looked_and_how_to_get_it(tmp_path):
    from ganlib.data import DatasetNotFoundError, load_dataset

    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", "train", str(tmp_path))


def test_a_folder_is_decoded_once_then_read_from_its_memory_mapped_copy(tmp_path, monkeypatch):
    from PIL import Image

    from ganlib import data as data_module

    monkeypatch.setenv("GANLIB_FOLDER_CACHE", str(tmp_path / "cache"))
    for i in range(30):
        _save(tmp_path / "imgs" / ("a" if i % 2 else "b") / f"{i}.png", "L", 12, i * 8)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    train = load_dataset("folder", "train", data_dir=str(tmp_path / "imgs"))
    decoded = len(opened)
    assert decoded == 60  # headers, then pixels: each file twice, once
    test = load_dataset("folder", "test", data_dir=str(tmp_path / "imgs"))
    again = load_dataset("folder", "train", data_dir=str(tmp_path / "imgs"))
    assert len(opened) == decoded  # the test split and the next run open no image
    assert isinstance(again.images, np.memmap) and np.array_equal(again.images, train.images)
    assert len(train) + len(test) == 30 and set(train.labels) | set(test.labels) == {0, 1}
    assert not set(map(bytes, train.images.reshape(len(train), -1))) & set(map(bytes, test.images.reshape(len(test), -1)))
    # A changed file is a new decoding; so is another image size.
    _save(tmp_path / "imgs" / "a" / "1.png", "L", 12, 255)
    changed = load_dataset("folder", "train", data_dir=str(tmp_path / "imgs"))
    assert len(opened) == 2 * decoded and changed.images.max() == 255
    load_dataset("folder", "train", data_dir=str(tmp_path / "imgs"), image_size=8)
    assert len(opened) == 3 * decoded


def test_a_folder_decodes_in_memory_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "not_a_dir").write_text("x")
    monkeypatch.setenv("GANLIB_FOLDER_CACHE", str(tmp_path / "not_a_dir"))
    for i in range(4):
        _save(tmp_path / "imgs" / f"{i}.png", "RGB", 8, (i * 60, 0, 0))
    data = load_dataset("folder", data_dir=str(tmp_path / "imgs"))
    assert data.images.shape == (4, 8, 8, 3) and not isinstance(data.images, np.memmap)


def test_streamed_batches_are_the_in_memory_batches(tmp_path):
    images = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, (37, 3, 3, 1))
    images[:] = np.arange(37, dtype=np.uint8).reshape(37, 1, 1, 1)
    images.flush()
    data = ImageData(np.load(tmp_path / "x.npy", mmap_mode="r"), np.arange(37, dtype=np.int32) % 5, list("abcde"), "t")

    def batches(stream):
        ds = training_dataset(data, batch_size=8, seed=1, initial_epoch=1, epochs=3, steps_per_epoch=6, stream=stream)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    streamed, in_memory = batches(True), batches(False)
    assert len(streamed) == 12
    for (xs, ys), (xm, ym) in zip(streamed, in_memory):
        assert xs.shape == (8, 3, 3, 1) and np.array_equal(xs, xm) and np.array_equal(ys, ym)


def test_cifar100_from_the_keras_cache_with_its_class_names(tmp_path):
    import pickle

    from ganlib.data import DatasetNotFoundError, load_dataset

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("test", 100)):
        with open(folder / split, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"fine_labels": [i % 100 for i in range(n)], b"coarse_labels": [0] * n}, f, protocol=2)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python.tar.gz"):
        load_dataset("cifar100", "train", str(tmp_path / "elsewhere"))
    assert load_dataset("cifar100", "train", str(tmp_path)).class_names[7] == "class07"  # without the meta file
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"n{i}".encode() for i in range(100)], b"coarse_label_names": []}, f)
    train = load_dataset("cifar100", "train", str(tmp_path))
    assert train.images.shape == (200, 32, 32, 3) and train.num_classes == 100 and train.class_names[7] == "n7"
    assert len(load_dataset("cifar100", "test", str(tmp_path))) == 100 and train.labels[:3].tolist() == [0, 1, 2]


def test_emnist_in_nist_gzip_folder_under_a_home_relative_data_dir(tmp_path, monkeypatch):
    """The shipped emnist.yaml says data_dir: ~/datasets/emnist; NIST's zip unpacks into gzip/ below it."""
    import gzip

    import numpy as np

    from ganlib.data import load_dataset

    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "emnist" / "gzip"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        with gzip.open(folder / f"emnist-balanced-{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\0\0\x08\x03" + np.array([2, 28, 28], ">u4").tobytes() + bytes(2 * 784))
        with gzip.open(folder / f"emnist-balanced-{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\0\0\x08\x01" + np.array([2], ">u4").tobytes() + bytes([0, 1]))
    data = load_dataset("emnist_balanced", "train", "~/datasets/emnist")
    assert data.images.shape == (2, 28, 28, 1) and str(folder) in data.source


def test_emoji_flags_a_small_colour_dataset_drawn_from_the_noto_font(tmp_path):
    import numpy as np
    import pytest

    from ganlib.data import DatasetNotFoundError, load_dataset

    try:
        train = load_dataset("emoji_flags", "train")
    except DatasetNotFoundError as e:
        if os.environ.get("CI"):
            raise  # setup installs fonts-noto-color-emoji
        pytest.skip(str(e))
    test = load_dataset("emoji_flags", "test")
    assert train.images.shape == (200, 64, 64, 3) and test.images.shape == (50, 64, 64, 3)
    assert train.class_names == ["flag"] and set(train.labels.tolist()) == {0}
    both = np.concatenate([train.images, test.images]).reshape(250, -1)
    assert len(np.unique(both, axis=0)) == 250  # every flag once (Norway's three codes drawn once)
    colour = train.images.astype(int)
    assert np.abs(colour[..., 0] - colour[..., 1]).mean() > 10  # in colour, not grey
    assert load_dataset("emoji_flags", "train", image_size=32).images.shape == (200, 32, 32, 3)
    with pytest.raises(DatasetNotFoundError, match="fonts-noto-color-emoji"):
        load_dataset("emoji_flags", "train", str(tmp_path))
