# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a trained generator
#
# Run headless with papermill, e.g. `papermill notebooks/explore.py out.ipynb -p run_dir runs/<name>`, or open it
# in Jupyter for the interactive explorer. `run_dir` is a *completed* run directory (its final generator is in
# `models/generator.keras`, see `docs/run-directory.md`); GIFs and latent points are written to `output_dir`.

# %%
_names_before_parameters = set(globals())

# %% tags=["parameters"]
run_dir = None        # a completed run directory; None: the most recently finished run under runs/
model = "generator"   # "generator_ema" for runs trained with ema > 0
text = None           # None: "HELLO WORLD" for letter models, the digits for digit models
variation = 0.3       # 0: every character from the same latent point; 1: independent points
seed = 0
window = 20           # rolling mean over this many training steps in the per-batch plots
output_dir = None     # None: explore/<run name>

# %%
_given = {k: v for k, v in globals().items() if k not in _names_before_parameters and not k.startswith("_")}
from pathlib import Path

from ganlib.notebook_support import check_parameters, finished_run_dir

check_parameters(_given, ["run_dir", "model", "text", "variation", "seed", "window", "output_dir"])
run_dir = finished_run_dir(run_dir, model, notebook="notebooks/explore.py")
output_dir = Path(output_dir or Path("explore") / Path(run_dir).resolve().name)
output_dir.mkdir(parents=True, exist_ok=True)
print(f"run {run_dir}; outputs in {output_dir}")

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from ganlib.animation import training_progress_gif
from ganlib.curves import plot_results
from ganlib.explore import LatentExplorer, png_bytes
from ganlib.latent import (images_per_class, interpolate, interpolation_image, latent_grid,
                           pairwise_distance_boxplot, render_text)


def show(image, title="", scale=3):
    """A uint8 image, shown as PNG (stays sharp; no matplotlib resampling)."""
    if title:
        print(title)
    display(Image(png_bytes(image, scale)))


explorer = LatentExplorer.from_run(run_dir, model=model, seed=seed)
generator, class_names = explorer.generator, explorer.class_names
print(f"latent dimensions: {explorer.latent_dim}; "
      + (f"conditional on {len(class_names)} classes: {' '.join(class_names)}" if explorer.conditional
         else "unconditional"))

# %% [markdown]
# ## Latent space explorer
# One slider per latent dimension (a page selector for large latent spaces), the class, randomise / normalise
# (to norm sqrt(d), where standard normal points concentrate). *save base*, move, *save direction*, then the
# *traverse t* slider walks base + t * direction (t=1 is where the direction was saved) and *record GIF* writes
# that walk. Every control calls a method, used here directly to record a traversal without a browser.

# %%
display(explorer)
explorer.save_base()
explorer.randomise()
explorer.save_direction()
gif = explorer.record_gif(output_dir / "traversal.gif", frames=24, t_range=(-0.5, 1.5))
explorer.save_points(output_dir / "latent_points.npz")
print(f"traversal from the base (t=0) past the saved point (t=1): {gif}")
display(Image(filename=str(gif)))

# %% [markdown]
# ## Interpolation: spherical (slerp) vs linear
# A straight line between two Gaussian points passes close to the origin, where latent points are rare in
# training; slerp follows the sphere. The norms along both paths show the difference.

# %%
rng = np.random.default_rng(seed)
a, b = rng.standard_normal((2, explorer.latent_dim)).astype(np.float32)
label = 0 if explorer.conditional else None
for method in ("slerp", "linear"):
    show(interpolation_image(generator, a, b, steps=10, method=method, label=label), f"{method}:")
fig, ax = plt.subplots(figsize=(5, 2.5))
for method in ("slerp", "linear"):
    ax.plot(np.linspace(0, 1, 50), np.linalg.norm(interpolate(a, b, 50, method), axis=1), label=method)
ax.axhline(np.sqrt(explorer.latent_dim), color="grey", lw=0.8, ls="--", label="sqrt(d)")
ax.set(xlabel="t", ylabel="|z|", title="Norm along the path")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# ## Two latent dimensions over a grid
# Dimension 0 across, dimension 1 down, every other dimension fixed at the explorer's random point.

# %%
values = np.linspace(-3, 3, 7)
show(latent_grid(generator, explorer.z, 0, 1, values, label=label), f"z[0] (columns), z[1] (rows) in {values}")

# %% [markdown]
# ## Writing text, and how varied each class is
# For letter and digit models: each character is drawn by its class (case-insensitive where the model only has
# one case; spaces are blank). The box plots show Euclidean distances between images generated for one class
# from different latent points: a box near zero means the class collapsed to one image.

# %%
names = {n.upper() for n in class_names}
if text is None:
    text = ("HELLO WORLD" if set("HELOWRD") <= names
            else "0123456789" if set("0123456789") <= names else None)
if explorer.conditional and text:
    show(render_text(generator, class_names, text, variation=0.0, seed=seed), f"{text!r}, one latent point:")
    show(render_text(generator, class_names, text, variation=variation, seed=seed),
         f"{text!r}, variation {variation}:")
else:
    print("no text: the model is unconditional or its classes are not characters")
if explorer.conditional:
    pairwise_distance_boxplot(images_per_class(generator, class_names, n=32, seed=seed))
    plt.show()

# %% [markdown]
# ## Training progress
# The sample grids saved after each epoch, all from the same fixed latent points.

# %%
progress = training_progress_gif(run_dir, output_dir / "training_progress.gif")
display(Image(filename=str(progress)))

# %% [markdown]
# ## Learning curves
# Per training step (rolling mean of `window` steps), then per epoch with FID where it was computed.

# %%
plot_results(run_dir, per="batch", window=window)
plt.show()
plot_results(run_dir, per="epoch")
plt.show()

# %% [markdown]
# ## Train a variation of this run (in Jupyter)
# Every configuration field, starting from this run's values, validated as you type; Train writes the changed
# configuration to its own `runs/<dataset>-<hash>` with live progress (see `ganlib.settings_form`).

# %%
from ganlib.settings_form import SettingsForm

SettingsForm.from_run(run_dir).widget
