"""Memorization and mode collapse: nearest training images of generated samples, and sample diversity."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .distances import _f64, nearest_neighbours


def _as_float_images(images) -> np.ndarray:
    """uint8 images (as stored by ganlib.data) to the generator's [-1, 1] range; floats pass through."""
    images = np.asarray(images)
    return images.astype(np.float32) / 127.5 - 1.0 if images.dtype == np.uint8 else images.astype(np.float32)


def nearest_training_neighbours(generated, train, space: str = "pixel", extractor=None
                                ) -> Tuple[np.ndarray, np.ndarray]:
    """(indices into train, Euclidean distances) of each generated image's nearest training image.

    space="pixel" compares the images themselves ([-1, 1] scale; uint8 input is converted), space="feature"
    compares `extractor` features (closer to perceived similarity, blind to small shifts). A distance near 0
    means the generator reproduced a training image.
    """
    generated, train = _as_float_images(generated), _as_float_images(train)
    if space == "feature":
        if extractor is None:
            raise ValueError('space="feature" needs an extractor (e.g. ganlib.metrics.DomainClassifier).')
        generated, train = extractor(generated), extractor(train)
    elif space != "pixel":
        raise ValueError(f'space={space!r}; use "pixel" or "feature".')
    return nearest_neighbours(generated, train)


def plot_neighbours(generated, train_images, indices, path=None, distances=None, pairs_per_row: int = 4):
    """A matplotlib figure showing each generated sample (left) beside its nearest training image (right)."""
    import matplotlib.pyplot as plt

    from ..data import to_uint8

    generated, train = to_uint8(_as_float_images(generated)), to_uint8(_as_float_images(train_images))
    n = len(generated)
    rows, cols = -(-n // pairs_per_row), 2 * min(n, pairs_per_row)
    # room above each image for its two-line caption: with 1.5 in per row the captions ran into the images above
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.9 * rows), squeeze=False, layout="constrained")
    grey = generated.shape[-1] == 1
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        row, col = divmod(i, pairs_per_row)
        left, right = axes[row, 2 * col], axes[row, 2 * col + 1]
        for ax, img in ((left, generated[i]), (right, train[indices[i]])):
            ax.imshow(img[..., 0] if grey else img, cmap="gray" if grey else None, vmin=0, vmax=255)
        left.set_title("generated", fontsize=7)
        right.set_title(f"train #{indices[i]}" + ("" if distances is None else f"\nd={distances[i]:.2f}"), fontsize=7)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def pairwise_distances_summary(samples, max_samples: Optional[int] = 1000, seed: int = 0) -> np.ndarray:
    """Euclidean distances between all pairs of generated samples (images or features), as a flat vector.

    Mode collapse shows as a distribution shifted towards 0 compared with real data. At most `max_samples`
    (seeded subset) are used, since pairs grow quadratically. For box plots per configuration:
    `pd.DataFrame({"config": name, "distance": pairwise_distances_summary(x)})`, concatenated over configs.
    """
    from scipy.spatial.distance import pdist

    x = _f64(samples)
    if max_samples is not None and len(x) > max_samples:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_samples, replace=False))]
    return pdist(x)
