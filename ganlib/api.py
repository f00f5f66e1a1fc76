"""`GAN`: the one-object workflow for notebooks — build from a config, train, sample, plot, save, load.

    gan = GAN(dataset="fashion_mnist", epochs=5)   # any ganlib.Config field
    gan.train()                                    # into runs/<dataset>-<hash>, resumable
    gan.plot_grid()                                # samples from the fixed benchmark noise
    images = gan.sample(16, labels=[3] * 16)
    gan = GAN.load("runs/fashion_mnist-1a2b3c4d5e")
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .config import Config
from .rundir import RunDirectory
from .safe_io import excerpt


class GAN:
    def __init__(self, config: Optional[Config] = None, run_dir=None, **fields):
        if config is not None and fields:
            config = config.replace(**fields)
        # from_dict, not Config(**fields): a typo gets "did you mean", not a bare TypeError
        self.config = config if config is not None else Config.from_dict(fields)
        if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"GAN(run_dir={excerpt(run_dir)}): give a folder path (a string or pathlib.Path), or "
                            "leave it out for runs/<dataset>-<config hash>.")
        self.run_dir = Path(run_dir or Path("runs") / f"{self.config.dataset}-{self.config.hash}")
        self.generator = None
        self.discriminator = None
        self._class_names = None

    def __repr__(self):
        return f"GAN({self.config.model}, dataset={self.config.dataset!r}, run_dir={str(self.run_dir)!r})"

    @property
    def run(self) -> RunDirectory:
        return RunDirectory(self.run_dir)

    # ------------------------------------------------------------------ workflow
    def train(self, verbose=2, callbacks: Sequence = ()) -> dict:
        """Train (or resume, or just load a finished run) and keep the final models in memory."""
        from .run import train

        summary = train(self.config, self.run_dir, verbose=verbose, callbacks=callbacks)
        if summary["status"] == "completed":
            self._load_models()
        return summary

    @classmethod
    def load(cls, run_dir) -> "GAN":
        """A finished run's GAN (models loaded in Keras safe mode: the files cannot run code)."""
        run = RunDirectory(run_dir)
        gan = cls(run.read_config(), run_dir=run.path)
        gan._load_models()
        return gan

    def _load_models(self):
        from .run import load_models_from

        self.generator, self.discriminator = load_models_from(self.run_dir)
        if self.run.final_generator_name != "generator":
            self.generator = self.run.load_model(self.run.final_generator_name)

    def _require_models(self):
        if self.generator is None:
            raise RuntimeError(f"No trained generator yet: call .train() or GAN.load(run_dir) "
                               f"({self.run_dir} status: {self.run.status or 'not started'}).")

    # ------------------------------------------------------------------ using the generator
    @property
    def class_names(self):
        if self._class_names is None:
            self._class_names = self.run.read_summary().get("dataset", {}).get("classes")
        return self._class_names

    def sample(self, n: int = 16, labels=None, seed: Optional[int] = None) -> np.ndarray:
        """n images in [-1, 1] (N, H, W, C); for conditional models `labels` picks classes (default: cycle)."""
        from .sampling import generate

        self._require_models()
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.config.latent_dim)).astype(np.float32)
        if labels is None:
            labels = np.arange(n) % max(1, len(self.class_names or [0]))
        return generate(self.generator, z, np.asarray(labels, np.int32))

    def plot_grid(self, path=None, n: int = 16, labels=None, seed: int = 0):
        """Show (and optionally save) a grid of samples; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        from .plotting import grid_image, save_grid

        images = self.sample(n, labels, seed)
        if path is not None:
            save_grid(images, path)
        grid = grid_image(images)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None)
        ax.axis("off")
        return fig

    def save(self, path) -> Path:
        """Copy the final models (`.keras`) and config to another folder."""
        import shutil

        self._require_models()
        target = Path(path)
        (target / "models").mkdir(parents=True, exist_ok=True)
        for name in ("generator", "discriminator", "generator_ema"):
            source = self.run.model_file(name)
            if source.exists():
                shutil.copy2(source, target / "models" / source.name)
        for name in ("config.json", "summary.json"):
            shutil.copy2(self.run.path / name, target / name)
        return target

    def summary(self, print_fn=print) -> dict:
        """Run status, timings and final metrics; model summaries when loaded."""
        info = self.run.read_summary()
        print_fn(f"{self!r}: status {info.get('status', 'not started')}, epochs {info.get('epochs_completed', 0)}"
                 f"/{self.config.epochs}, config hash {self.config.hash}")
        for key, value in (info.get("final_metrics") or {}).items():
            print_fn(f"  {key}: {value}")
        if self.generator is not None:
            self.generator.summary(print_fn=print_fn)
            self.discriminator.summary(print_fn=print_fn)
        return info
