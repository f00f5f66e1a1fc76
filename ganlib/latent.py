"""Walking the latent space of a trained generator: interpolation, grids over two dimensions, text from a
letters/digits model, how varied the images of a class are, and saving latent points.

Every function takes a generator (a Keras model; conditional ones take `[z, label]`) and returns numpy arrays,
uint8 images or matplotlib figures, so the notebook and the widget (`ganlib.explore`) share one implementation.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .plotting import grid_image
from .rundir import atomic_path, atomic_write
from .sampling import generate_at, is_conditional, latent_dim_of, num_classes_of, warn_if_labels_ignored  # noqa: F401


# ---------------------------------------------------------------------------------------------- interpolation
def lerp(a, b, t):
    """Straight line from a (t=0) to b (t=1); `t` a number or a 1-D array (one row per value)."""
    a, b = np.asarray(a), np.asarray(b)
    t = np.asarray(t, dtype=np.result_type(a, b, np.float32))
    return a + (t[..., None] if t.ndim else t) * (b - a)


def slerp(a, b, t):
    """Spherical interpolation: along the great circle between a and b, with norms blended as in lerp's angle.

    Gaussian latent points live near a sphere of radius sqrt(d); a straight line between two of them passes
    through low-norm points the generator rarely saw, slerp does not. Equal-norm endpoints keep that norm.
    """
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.result_type(a, b, np.float32)
    t = np.asarray(t, dtype=dtype)
    cos = np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:  # (anti)parallel: the circle is undefined (or any would do); use the line
        return lerp(a, b, t)
    tt = t[..., None] if t.ndim else t
    return ((np.sin((1 - tt) * omega) * a + np.sin(tt * omega) * b) / np.sin(omega)).astype(dtype)


def interpolate(a, b, steps: int, method: str = "slerp") -> np.ndarray:
    """`steps` points from a to b (rows); the first and last are exactly a and b."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (got {steps})")
    functions = {"slerp": slerp, "linear": lerp, "lerp": lerp}
    if method not in functions:
        raise ValueError(f"method must be one of {sorted(functions)} (got {method!r})")
    points = functions[method](a, b, np.linspace(0.0, 1.0, steps))
    points[0], points[-1] = a, b  # no rounding drift at the ends
    return points


def interpolation_image(generator, a, b, steps: int = 10, method: str = "slerp", label=None) -> np.ndarray:
    """One row of generated images along an interpolation (uint8 grid)."""
    return grid_image(generate_at(generator, interpolate(a, b, steps, method), label), columns=steps)


# ---------------------------------------------------------------------------------------------- grids
def latent_grid(generator, base_z, dim_x: int, dim_y: int, values: Sequence[float], label=None) -> np.ndarray:
    """Images of `base_z` with dimension `dim_x` set to each of `values` (columns) and `dim_y` to each of
    `values` (rows): what those two dimensions control, other dimensions held fixed. Returns a uint8 grid."""
    values = np.asarray(values, np.float32)
    z = np.tile(np.asarray(base_z, np.float32), (len(values) ** 2, 1))
    z[:, dim_y] = np.repeat(values, len(values))
    z[:, dim_x] = np.tile(values, len(values))
    return grid_image(generate_at(generator, z, label), columns=len(values))


# ---------------------------------------------------------------------------------------------- text
def text_labels(class_names: Sequence[str], text: str) -> np.ndarray:
    """Class index of every character of `text` as a (lines, longest line) array; -1 for blanks.

    Exact class names win (EMNIST balanced has both 'A' and 'a'); otherwise the other case is tried, so
    'hello' works with an uppercase-only letters model. Unknown characters raise a ValueError that lists
    the ones the model can draw.
    """
    index = {str(name): i for i, name in enumerate(class_names)}
    lines = text.split("\n")
    labels = np.full((len(lines), max(len(line) for line in lines)), -1, np.int32)
    unknown = []
    for r, line in enumerate(lines):
        for c, char in enumerate(line):
            if char.isspace():
                continue
            for candidate in (char, char.upper(), char.lower()):
                if candidate in index:
                    labels[r, c] = index[candidate]
                    break
            else:
                unknown.append(char)
    if unknown:
        names = [str(n) for n in class_names]
        if any(len(n) != 1 for n in names):  # not a letters/digits model: its classes are not characters
            raise ValueError(f"this model's classes are not single characters ({', '.join(names[:10])}"
                             f"{', …' if len(names) > 10 else ''}), so it cannot write text; use a model of "
                             "letters or digits (emnist_letters, emnist_balanced, mnist)")
        raise ValueError(f"the model cannot draw {''.join(dict.fromkeys(unknown))!r}; it knows: "
                         f"{''.join(names)!r} (and spaces)")
    return labels


def text_latents(latent_dim: int, n: int, variation: float = 0.0, seed: int = 0) -> np.ndarray:
    """n latent points: one shared style vector mixed with per-character noise.

    z_i = sqrt(1 - v^2) * base + v * noise_i keeps every z_i standard normal, so v=0 writes every character
    in the same style, v=1 draws them independently, and values between keep the images in distribution.
    """
    if not 0.0 <= variation <= 1.0:
        raise ValueError(f"variation must be in [0, 1] (got {variation})")
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(latent_dim)
    noise = rng.standard_normal((n, latent_dim))
    return (np.sqrt(1.0 - variation ** 2) * base + variation * noise).astype(np.float32)


def render_text(generator, class_names: Sequence[str], text: str, variation: float = 0.0, seed: int = 0,
                blank: float = -1.0, padding: int = 1) -> np.ndarray:
    """`text` written by a conditional letters/digits generator as one uint8 image (newlines start rows).

    Spaces are tiles filled with `blank` (in [-1, 1]; -1 is the black background of MNIST/EMNIST)."""
    if not is_conditional(generator):
        raise ValueError("render_text needs a conditional generator (one that takes [z, label])")
    labels = text_labels(class_names, text)
    warn_if_labels_ignored(generator, "render_text: this generator", num_classes=len(class_names))
    drawn = labels >= 0
    images = np.full((labels.size,) + tuple(generator.outputs[-1].shape[1:]), blank, np.float32)
    if drawn.any():
        z = text_latents(latent_dim_of(generator), int(drawn.sum()), variation, seed)
        images[drawn.ravel()] = generate_at(generator, z, labels[drawn])
    return grid_image(images, columns=labels.shape[1], padding=padding)


# ---------------------------------------------------------------------------------------------- diversity
def images_per_class(generator, class_names: Sequence[str], n: int = 32, seed: int = 0,
                     classes: Optional[Sequence] = None) -> Dict[str, np.ndarray]:
    """{class name: n generated images} from the same n latent points for every class."""
    z = np.random.default_rng(seed).standard_normal((n, latent_dim_of(generator))).astype(np.float32)
    names = [str(c) for c in (classes if classes is not None else class_names)]
    index = {str(c): i for i, c in enumerate(class_names)}
    return {name: generate_at(generator, z, index[name]) for name in names}


def pairwise_distances(images) -> np.ndarray:
    """Euclidean distances between all pairs of images (flattened, in [-1, 1])."""
    from scipy.spatial.distance import pdist

    images = np.asarray(images, np.float32)
    return pdist(images.reshape(len(images), -1))


def pairwise_distance_boxplot(groups: Mapping[str, np.ndarray], ax=None, title: Optional[str] = None):
    """Box plot of the pairwise distances within each group of generated images (a class or a configuration).

    Distances that collapse towards zero mean the generator draws the same image whatever z is (mode collapse);
    compare against the same plot for real images. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    names = [str(k) for k in groups]
    slanted = len(names) > 4 or max(map(len, names), default=0) > 6  # class names such as "T-shirt/top" collide
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(groups) + 2), 3.5 + 0.8 * slanted), layout="constrained")
    ax.boxplot([pairwise_distances(images) for images in groups.values()], showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), names, rotation=40 if slanted else 0, ha="right" if slanted else "center",
                  rotation_mode="anchor")
    ax.set(ylabel="Euclidean distance", title=title or "Pairwise distances between generated images")
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


# ---------------------------------------------------------------------------------------------- points
def save_latent_points(path, **arrays) -> Path:
    """Save named arrays (latent points, labels, ...) as `.npz` or `.json` (by suffix), atomically."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    for name, value in arrays.items():
        if value.dtype == object:  # object arrays would need pickle to load again
            raise TypeError(f"{name} is not numeric (dtype object); only numbers can be saved")
    if path.suffix == ".json":
        atomic_write(path, json.dumps({k: v.tolist() for k, v in arrays.items()}, indent=1) + "\n")
    elif path.suffix == ".npz":
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    else:
        raise ValueError(f"{path}: use a .npz or .json file name")
    return path


def load_latent_points(path) -> Dict[str, np.ndarray]:
    """The arrays saved by `save_latent_points` (nothing is unpickled)."""
    path = Path(path)
    if path.suffix == ".json":
        return {k: np.asarray(v) for k, v in json.loads(path.read_text()).items()}
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
