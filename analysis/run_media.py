"""What the report shows of single runs: sample grids and their GIF, latent traversals and fresh samples
from the final generator, real training images. Generators are loaded and sampled through ganlib itself
(`ganlib.sampling`, `ganlib.latent`, `ganlib.animation`), never re-implemented here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ganlib.device import import_tensorflow_quietly
from ganlib.plotting import png_bytes


def sample_files(run_dir) -> list:
    from ganlib.rundir import RunDirectory

    return RunDirectory(run_dir).sample_files()


def epoch_of(png: Path) -> int:
    from ganlib.rundir import RunDirectory

    return RunDirectory.sample_epoch(png)


def training_gif(run_dir, max_frames: int = 40, ms_per_frame: int = 400) -> Optional[bytes]:
    """An animated GIF (imageio) of a run's benchmark-noise grids over the epochs, each frame labelled."""
    import imageio.v3 as iio

    from ganlib.animation import progress_frames

    if not sample_files(run_dir):
        return None
    frames = progress_frames(run_dir, max_frames=max_frames)  # ganlib's frames: colour runs stay in colour
    # Pause on the final epoch. A single frame takes a plain number: imageio's GIF writer divides a one-frame
    # duration list by an int (TypeError), e.g. for a run of one epoch.
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 4] if len(frames) > 1 else ms_per_frame
    return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=durations, loop=0)


def load_generator(run_dir):
    """A completed run's final generator (its EMA copy when present), through ganlib's one safe loader."""
    from ganlib.sampling import load_generator as load

    import_tensorflow_quietly()
    return load(run_dir)[0]


def benchmark_noise(run_dir):
    """The fixed latent points and labels of a run's sample grids."""
    from ganlib.rundir import RunDirectory

    with np.load(RunDirectory(run_dir).noise_file, allow_pickle=False) as f:
        return f["z"], f["labels"]


def grid_columns_caption(run_dir, class_names) -> str:
    """"Columns: T-shirt/top, Trouser, ..." when every column of the run's sample grids shows one class (the
    grids themselves carry no captions), "Classes cycle row by row" when there are more classes than columns, ""
    for an unconditional run or one without recorded noise."""
    try:
        z, labels = benchmark_noise(run_dir)
    except (OSError, KeyError, ValueError):
        return ""
    side = int(round(np.sqrt(len(labels))))
    if not class_names or side * side != len(labels) or len(set(labels.tolist())) < 2:
        return ""
    cells = labels.reshape(side, side)
    if all(len(set(cells[:, j])) == 1 for j in range(side)):
        return "Columns, left to right: " + ", ".join(str(class_names[i]) for i in cells[0]) + "; rows: other latent points."
    return "Cells cycle through the classes row by row (" + ", ".join(map(str, class_names[:6])) + \
        (", …" if len(class_names) > 6 else "") + ")."


def traversal_frames(run_dir, frames: int = 16, columns: int = 4, scale: int = 4) -> list:
    """PNG bytes of `frames` images, each a row of `columns` samples, moving from benchmark latent points
    z[i] to z[columns + i] (label i for a conditional generator) along great circles (ganlib.latent)."""
    from ganlib.latent import interpolate
    from ganlib.plotting import grid_image
    from ganlib.sampling import generate

    generator = load_generator(run_dir)
    z, labels = benchmark_noise(run_dir)
    columns = max(1, min(columns, len(z) // 2))
    paths = np.stack([interpolate(z[i], z[columns + i], frames) for i in range(columns)], axis=1)
    images = generate(generator, paths.reshape(frames * columns, -1), np.tile(labels[:columns], frames))
    return [png_bytes(grid_image(images[k * columns:(k + 1) * columns], columns=columns), scale)
            for k in range(frames)]


_DATA_CACHE: dict = {}


def training_images(config, split: str = "train"):
    """The real images (uint8, as stored) of a run's dataset split, cached per dataset settings."""
    from ganlib.data import load_for_config

    key = (split, config.dataset, config.data_dir, config.subset, config.image_size, config.channels)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_for_config(config, split)
    return _DATA_CACHE[key]


def generated_samples(run_dir, n: int = 64, seed: int = 1234):
    """n samples of a run's final generator from seeded latent points (labels cycling through the classes)."""
    from ganlib.sampling import load_generator, seeded_samples

    import_tensorflow_quietly()
    generator, class_names = load_generator(run_dir)
    return seeded_samples(generator, n, seed, len(class_names or []) or 1)[0]
