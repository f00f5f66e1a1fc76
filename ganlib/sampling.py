"""Images from a trained generator: what metrics, callbacks, exploration and the report have in common.

Kept apart from the trainer so that using a generator never imports the training step. Generators are Keras
models as ganlib builds them: conditional ones take `[z, label]`, MSG-GAN ones output an image pyramid whose
last level is the full-size image.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def full_size(images):
    """The full-size images of a generator's output (the last level of an MSG-GAN pyramid)."""
    return images[-1] if isinstance(images, (list, tuple)) else images


def is_conditional(generator) -> bool:
    return isinstance(generator.input, (list, tuple))


def latent_dim_of(generator) -> int:
    z = generator.input[0] if is_conditional(generator) else generator.input
    return int(z.shape[-1])


def num_classes_of(generator) -> Optional[int]:
    """Classes a conditional generator knows: the size of its label embedding (None if unconditional)."""
    if not is_conditional(generator):
        return None
    sizes = [layer.input_dim for layer in generator.layers if hasattr(layer, "input_dim")]
    return int(sizes[0]) if sizes else None


def generate(generator, z, labels=None, batch_size: int = 500) -> np.ndarray:
    """Images in [-1, 1] for latent points z (and labels for a conditional generator), in batches.

    For an MSG-GAN generator these are its full-size images (the last of its outputs)."""
    z = np.asarray(z, np.float32)
    conditional = is_conditional(generator)
    out = []
    for i in range(0, len(z), batch_size):
        inputs = [z[i:i + batch_size], np.asarray(labels[i:i + batch_size], np.int32)] if conditional else z[i:i + batch_size]
        out.append(np.asarray(full_size(generator(inputs, training=False)), np.float32))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(generator.outputs[-1].shape[1:]), np.float32)


def generate_at(generator, z, labels=None) -> np.ndarray:
    """Images in [-1, 1] at latent points z (one point or rows); `labels` one class or one per row, ignored
    by unconditional generators (class 0 when a conditional one gets none)."""
    z = np.atleast_2d(np.asarray(z, np.float32))
    if is_conditional(generator):
        labels = np.broadcast_to(np.asarray(0 if labels is None else labels, np.int32), (len(z),))
    return generate(generator, z, labels)


def seeded_samples(generator, n: int, seed, num_classes: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(n images, their labels or None) from latent points drawn with numpy seed `seed`, labels cycling
    through `num_classes` classes (default: the classes the generator knows). The same call gives the same
    images, which is what fair comparisons of generators need."""
    z = np.random.default_rng(seed).standard_normal((n, latent_dim_of(generator))).astype(np.float32)
    if not is_conditional(generator):
        return generate(generator, z), None
    classes = num_classes or num_classes_of(generator)
    if not classes:
        raise ValueError("A conditional generator needs num_classes.")
    labels = (np.arange(n) % classes).astype(np.int32)
    return generate(generator, z, labels), labels


def load_generator(run_dir, model: Optional[str] = None) -> Tuple[object, Optional[list]]:
    """(generator, class names) of a completed run, through the run directory's one safe loader (Keras
    safe_mode: no code from the file runs). `model` None: the run's final generator, its EMA copy when it has
    one (the generator its metrics describe); or "generator" / "generator_ema" explicitly."""
    from .rundir import RunDirectory

    run = RunDirectory(run_dir)
    generator = run.load_model(model or run.final_generator_name)
    return generator, run.read_summary().get("dataset", {}).get("classes")


# A conditional generator whose images change less than this between labels, relative to how much they change
# between latent points, has learned to ignore its labels (render_text then writes one glyph for every letter).
LABEL_BLIND_RATIO = 0.05


def label_sensitivity(generator, n: int = 8, seed: int = 0, num_classes: Optional[int] = None) -> float:
    """How much a conditional generator's images depend on the label: the mean pixel spread across labels at a
    fixed latent point, divided by the spread across latent points at a fixed label. Near 0: the labels are
    ignored. NaN for unconditional generators."""
    classes = num_classes or num_classes_of(generator)
    if not is_conditional(generator) or not classes or classes < 2:
        return float("nan")
    z = np.random.default_rng(seed).standard_normal((n, latent_dim_of(generator))).astype(np.float32)
    k = min(int(classes), 10)
    images = generate(generator, np.repeat(z, k, axis=0), np.tile(np.arange(k), n)).reshape((n, k, -1))
    across_labels = images.std(axis=1).mean()
    across_latents = images.std(axis=0).mean()
    return float(across_labels / max(float(across_latents), 1e-8))


def warn_if_labels_ignored(generator, what: str = "this generator", **kwargs) -> float:
    """`label_sensitivity`, with a UserWarning when it is below LABEL_BLIND_RATIO."""
    import warnings

    ratio = label_sensitivity(generator, **kwargs)
    if ratio == ratio and ratio < LABEL_BLIND_RATIO:
        warnings.warn(f"{what} ignores its labels: its images change {ratio:.1%} as much between classes as between "
                      "latent points, so every class looks alike (a run that did not learn the conditioning; "
                      "check its label accuracy).", UserWarning, stacklevel=3)
    return ratio
