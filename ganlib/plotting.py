"""Pictures of a run: sample grids (PNG, via Pillow) and learning curves (matplotlib)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .data import to_uint8
from .rundir import atomic_path


def grid_image(images, columns: Optional[int] = None, padding: int = 1) -> np.ndarray:
    """Tile images (N, H, W, C) in [-1, 1] into one uint8 image (rows x columns), padded with white."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    fill = 255 if c != 4 else 0
    canvas = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), fill, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, columns)
        canvas[padding + r * (h + padding):padding + r * (h + padding) + h,
               padding + col * (w + padding):padding + col * (w + padding) + w] = img
    return canvas[..., 0] if c == 1 else canvas


def _picture(image: np.ndarray, scale: int = 1):
    """A Pillow image of a uint8 array, enlarged `scale` times (nearest neighbour: pixels stay sharp)."""
    from PIL import Image

    picture = Image.fromarray(np.asarray(image))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """A uint8 image (H, W) or (H, W, C) as PNG bytes, enlarged `scale` times (nearest neighbour)."""
    import io

    buffer = io.BytesIO()
    _picture(image, scale).save(buffer, format="PNG")
    return buffer.getvalue()


def save_grid(images, path, columns: Optional[int] = None, scale: int = 2) -> Path:
    """Write a grid PNG atomically, upscaled `scale` times (nearest) so small images stay legible."""
    with atomic_path(Path(path)) as tmp:
        _picture(grid_image(images, columns), scale).save(tmp, format="PNG")
    return Path(path)


def plot_curves(epochs, ax=None, columns=("d_loss", "g_loss", "d_acc_real", "d_acc_fake")):
    """Per-epoch curves of one run's epochs table on matplotlib axes (losses left, accuracies right)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for c in columns:
        if c in epochs:
            target = ax[0] if "loss" in c else ax[1]
            target.plot(epochs["epoch"], epochs[c], marker="o", ms=3, label=c)
    ax[0].set(xlabel="epoch", ylabel="loss", title="Losses")
    ax[1].set(xlabel="epoch", ylabel="accuracy", title="Discriminator accuracy", ylim=(-0.02, 1.02))
    for a in ax:
        a.legend(frameon=False)
        a.grid(alpha=0.3)
    return ax
