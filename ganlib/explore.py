"""An interactive latent space explorer (ipywidgets) for a trained generator.

All state lives in plain attributes (`z`, `label`, `base`, `direction`, `t`) and every button or slider calls a
plain method (`randomise()`, `normalise()`, `set_class(i)`, `save_base()`, `save_direction()`, `traverse(t)`,
`record_gif(path)`, `save_points(path)`, `load_points(path)`), so the explorer can be driven from code and tests
without a browser; the widgets only mirror that state. The widget tree is built on first display (`widget`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from .data import to_uint8
from .latent import load_latent_points, save_latent_points
from .plotting import png_bytes  # noqa: F401  (notebooks/explore.py imports it from here)
from .sampling import generate_at, is_conditional, latent_dim_of, load_generator, num_classes_of


class LatentExplorer:
    """Explore a generator's latent space: one slider per latent dimension (`sliders` at a time, with a page
    selector for large latent spaces), a class selector for conditional models, and a traversal along a saved
    direction that can be recorded as a GIF."""

    def __init__(self, generator, latent_dim: Optional[int] = None, class_names: Optional[Sequence] = None,
                 seed: int = 0, sliders: int = 16, slider_range: float = 3.0, scale: int = 4):
        self.generator = generator
        self.latent_dim = latent_dim_of(generator)
        if latent_dim is not None and latent_dim != self.latent_dim:
            raise ValueError(f"latent_dim={latent_dim} but the generator takes {self.latent_dim} values")
        self.conditional = is_conditional(generator)
        n_classes = num_classes_of(generator)
        self.class_names = [str(c) for c in class_names] if class_names is not None else (
            [str(i) for i in range(n_classes)] if self.conditional and n_classes else [])
        self.scale, self.slider_range = scale, slider_range
        self.sliders_per_page = max(1, min(sliders, self.latent_dim))
        self.page = 0
        self._rng = np.random.default_rng(seed)
        self.z = self._rng.standard_normal(self.latent_dim).astype(np.float32)
        self.label = 0
        self.base: Optional[np.ndarray] = None
        self.direction: Optional[np.ndarray] = None
        self.t = 0.0
        self._image: Optional[np.ndarray] = None
        self._ui = None
        self._syncing = False

    @classmethod
    def from_run(cls, run_dir, model: Optional[str] = None, **kwargs) -> "LatentExplorer":
        """An explorer of a completed run's final generator (its EMA copy when it has one; class names from its
        summary). `model="generator"` or `"generator_ema"` picks one."""
        generator, class_names = load_generator(run_dir, model)
        kwargs.setdefault("class_names", class_names)
        return cls(generator, **kwargs)

    # ------------------------------------------------------------------ state and images
    @property
    def image(self) -> np.ndarray:
        """The current image, uint8 (H, W) or (H, W, C)."""
        if self._image is None:
            self._image = self._images(self.z[None])[0]
        return self._image

    def _images(self, z) -> np.ndarray:
        images = to_uint8(generate_at(self.generator, z, self.label if self.conditional else None))
        return images[..., 0] if images.shape[-1] == 1 else images

    def _changed(self, message: str = "") -> None:
        self._image = None
        self._sync(message)

    def set_z(self, z) -> None:
        z = np.asarray(z, np.float32).reshape(-1)
        if z.shape != (self.latent_dim,):
            raise ValueError(f"a latent point has {self.latent_dim} values (got {z.size})")
        self.z = z.copy()
        self._changed()

    def set_dim(self, i: int, value: float) -> None:
        self.z[i] = value
        self._changed()

    def randomise(self) -> None:
        """A new standard normal latent point (the distribution the generator was trained on)."""
        self.z = self._rng.standard_normal(self.latent_dim).astype(np.float32)
        self._changed("random point")

    def normalise(self) -> None:
        """Scale z to norm sqrt(d), where almost all standard normal points lie in high dimensions."""
        norm = float(np.linalg.norm(self.z))
        if norm > 0:
            self.z = (self.z * (np.sqrt(self.latent_dim) / norm)).astype(np.float32)
        self._changed(f"norm {norm:.2f} -> {np.sqrt(self.latent_dim):.2f}")

    def set_class(self, c) -> None:
        """Class by index or name (conditional generators only)."""
        if not self.conditional:
            raise ValueError("this generator is unconditional: it has no classes")
        if isinstance(c, str) and c not in self.class_names:
            raise ValueError(f"no class {c!r}; classes: {self.class_names}")
        i = self.class_names.index(c) if isinstance(c, str) else int(c)
        if self.class_names and not 0 <= i < len(self.class_names):
            raise ValueError(f"class index {i} out of range (classes: {self.class_names})")
        self.label = i
        self._changed()

    def save_base(self) -> None:
        self.base = self.z.copy()
        self._sync("base saved")

    def save_direction(self) -> None:
        """direction = current point - base; traverse(t) then walks base + t * direction (t=1: here)."""
        if self.base is None:
            raise ValueError("save a base point first (save_base), then move and save the direction")
        self.direction = self.z - self.base
        self.t = 1.0
        self._sync(f"direction saved (length {np.linalg.norm(self.direction):.2f})")

    def _require_direction(self) -> None:
        if self.base is None or self.direction is None:
            raise ValueError("save a base and a direction first (save_base, move, save_direction)")

    def traverse(self, t: float) -> None:
        self._require_direction()
        self.t = float(t)
        self.z = (self.base + self.t * self.direction).astype(np.float32)
        self._changed()

    def traversal(self, frames: int = 30, t_range: Tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
        """uint8 images along base + t * direction for `frames` values of t (the state is left unchanged)."""
        self._require_direction()
        t = np.linspace(t_range[0], t_range[1], frames, dtype=np.float32)
        return self._images(self.base[None] + t[:, None] * self.direction[None])

    def record_gif(self, path, frames: int = 30, t_range: Tuple[float, float] = (0.0, 1.0), fps: float = 10,
                   scale: Optional[int] = None) -> Path:
        """The traversal as a GIF of `frames` frames, each enlarged `scale` times (default: the display's)."""
        from .animation import save_gif

        path = save_gif(self.traversal(frames, t_range), path, fps=fps, scale=self.scale if scale is None else scale)
        self._sync(f"saved {path}")
        return path

    def save_points(self, path) -> Path:
        """z, label, and base/direction when saved, as .npz or .json."""
        path = save_latent_points(path, z=self.z, label=np.int32(self.label), base=self.base,
                                  direction=self.direction)
        self._sync(f"saved {path}")
        return path

    def load_points(self, path) -> None:
        points = load_latent_points(path)
        for name in ("z", "base", "direction"):
            if name in points and points[name].shape != (self.latent_dim,):
                raise ValueError(f"{path}: {name} has shape {points[name].shape}, this generator takes "
                                 f"({self.latent_dim},)")
        self.z = points["z"].astype(np.float32)
        self.base = points["base"].astype(np.float32) if "base" in points else None
        self.direction = points["direction"].astype(np.float32) if "direction" in points else None
        if self.conditional and "label" in points:
            self.label = int(points["label"])
        self._changed(f"loaded {path}")

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ipywidgets user interface (built on first use)."""
        if self._ui is None:
            self._build()
        return self._ui

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _safe(self, action):
        """Run a callback, reporting errors in the status line rather than in an unseen console."""
        def run(*_):
            try:
                action()
            except Exception as e:  # noqa: BLE001 - shown to the user, the explorer keeps working
                self._status.value = f"error: {e}"
        return run

    def _bind(self, widget, method) -> None:
        """Call method(new value) when the user moves `widget` (not when _sync sets it)."""
        def changed(change):
            if not self._syncing:
                self._safe(lambda: method(change["new"]))()
        widget.observe(changed, "value")

    def _build(self) -> None:
        import ipywidgets as w

        def narrow():  # a Layout per widget: a shared one would hide all sliders when one is hidden
            return w.Layout(width="320px")

        self._view = w.Image(format="png", value=png_bytes(self.image, self.scale))
        self.sliders = [w.FloatSlider(min=-self.slider_range, max=self.slider_range, step=0.05, layout=narrow(),
                                      continuous_update=False, readout_format=".2f")
                        for _ in range(self.sliders_per_page)]
        for k, slider in enumerate(self.sliders):
            self._bind(slider, lambda value, k=k: self.set_dim(self.page * self.sliders_per_page + k, value))
        pages = range(int(np.ceil(self.latent_dim / self.sliders_per_page)))
        self._page = w.Dropdown(description="dims", layout=narrow(), options=[
            (f"z[{p * self.sliders_per_page}:{min((p + 1) * self.sliders_per_page, self.latent_dim)}]", p)
            for p in pages])
        self._page.observe(lambda ch: self._set_page(ch["new"]), "value")
        self._class = w.Dropdown(description="class", options=[(n, i) for i, n in enumerate(self.class_names)],
                                 layout=narrow(), disabled=not self.conditional)
        self._bind(self._class, self.set_class)
        self._t = w.FloatSlider(description="traverse t", min=-2.0, max=3.0, step=0.05, value=self.t,
                                continuous_update=False, layout=narrow())
        self._bind(self._t, self.traverse)
        self._gif_path = w.Text(value="traversal.gif", description="GIF file", layout=narrow())
        self._points_path = w.Text(value="latent_points.npz", description="points", layout=narrow())
        self._status = w.Label()
        actions = {
            "randomise": self.randomise, "normalise": self.normalise, "save base": self.save_base,
            "save direction": self.save_direction,
            "record GIF": lambda: self.record_gif(self._gif_path.value),
            "save points": lambda: self.save_points(self._points_path.value),
            "load points": lambda: self.load_points(self._points_path.value),
        }
        self.buttons = {}
        for name, action in actions.items():
            self.buttons[name] = w.Button(description=name, layout=w.Layout(width="110px"))
            self.buttons[name].on_click(self._safe(action))
        b = self.buttons
        controls = w.VBox([
            w.HBox([b["randomise"], b["normalise"]]), self._class,
            w.HBox([b["save base"], b["save direction"]]), self._t, w.HBox([self._gif_path, b["record GIF"]]),
            w.HBox([self._points_path]), w.HBox([b["save points"], b["load points"]]), self._status])
        dims = w.VBox(([self._page] if len(pages) > 1 else []) + self.sliders)
        self._ui = w.HBox([w.VBox([self._view, controls]), dims])
        self._sync()

    def _set_page(self, page: int) -> None:
        self.page = int(page)
        self._sync()

    def _sync(self, message: str = "") -> None:
        """Mirror the state in the widgets (without their callbacks firing back)."""
        if self._ui is None:
            return
        self._syncing = True
        try:
            first = self.page * self.sliders_per_page
            for k, slider in enumerate(self.sliders):
                i = first + k
                slider.layout.visibility = "visible" if i < self.latent_dim else "hidden"
                if i < self.latent_dim:
                    slider.description = f"z[{i}]"
                    slider.value = float(np.clip(self.z[i], slider.min, slider.max))
            if self.conditional:
                self._class.value = self.label
            self._t.value = float(np.clip(self.t, self._t.min, self._t.max))
            self._view.value = png_bytes(self.image, self.scale)
            self._status.value = message
        finally:
            self._syncing = False
