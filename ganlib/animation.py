"""Animated GIFs: latent traversals and how the fixed-noise sample grids changed over training."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .data import to_uint8
from .rundir import RunDirectory, RunDirectoryError, atomic_path


def save_gif(frames: Sequence[np.ndarray], path, fps: float = 10, scale: int = 1, loop: int = 0) -> Path:
    """Write frames (uint8 (H, W) or (H, W, C); floats are taken as [-1, 1] images) as a GIF, atomically.

    `scale` enlarges each frame (nearest neighbour) so that 28-pixel images stay visible; `loop=0` repeats
    forever. Note: Pillow stores identical consecutive frames once, with their durations added.
    """
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    frames = np.stack([f if f.dtype == np.uint8 else to_uint8(f) for f in frames])
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    import imageio.v3 as iio

    with atomic_path(Path(path), suffix=".gif") as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=loop, is_batch=True)
    return Path(path)


def _caption(frame: np.ndarray, text: str, height: int = 14) -> np.ndarray:
    """The frame with a white strip on top holding `text` (so a viewer knows which epoch is showing)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(frame)
    out = Image.new(picture.mode, (picture.width, picture.height + height), "white")
    out.paste(picture, (0, height))
    ImageDraw.Draw(out).text((2, 1), text, fill="black")
    return np.asarray(out)


def progress_frames(run_dir, caption: bool = True, epochs: Optional[Sequence[int]] = None,
                    max_frames: Optional[int] = None) -> list:
    """A run's fixed-noise sample grids as frames (uint8; greyscale runs stay greyscale, colour runs colour).

    `caption` adds an "epoch N" strip on top; `epochs` picks a subset; `max_frames` spreads that many evenly
    over training (always keeping the first and the last grid)."""
    from PIL import Image

    run = RunDirectory(run_dir)
    files = run.sample_files()
    if epochs is not None:
        files = [f for f in files if run.sample_epoch(f) in set(epochs)]
    if not files:
        raise RunDirectoryError(f"{run.path} has no sample grids (samples/epoch_*.png) to animate")
    if max_frames and len(files) > max_frames:
        files = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, max_frames).round().astype(int))]
    frames = []
    for f in files:
        with Image.open(f) as picture:
            frame = np.asarray(picture.convert("L" if picture.mode in ("L", "I", "1") else "RGB"))
        frames.append(_caption(frame, f"epoch {run.sample_epoch(f)}") if caption else frame)
    return frames


def training_progress_gif(run_dir, path, fps: float = 2, caption: bool = True,
                          epochs: Optional[Sequence[int]] = None) -> Path:
    """GIF of a run's fixed-noise sample grids (`samples/epoch_*.png`), one frame per saved epoch.

    The grids all come from the same latent points, so the animation shows training itself, not sampling luck.
    """
    return save_gif(progress_frames(run_dir, caption, epochs), path, fps=fps)
