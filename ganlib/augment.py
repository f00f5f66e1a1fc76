"""Differentiable augmentation of the images the discriminator sees (DiffAugment, Zhao et al. 2020).

The same kind of random transformation is applied to real and to generated images, inside the training step, in
both the discriminator's and the generator's update, and every operation is differentiable, so the generator is
trained through it. D then never sees an un-augmented image and cannot simply memorize the training set, and
the augmentations do not leak into the generated images (they would, if only real images were augmented).

Policies follow the reference implementation (github.com/mit-han-lab/data-efficient-gans, DiffAugment_tf.py):
`color` (brightness, saturation, contrast), `translation` (shift by up to 1/8 of the image, zero padded),
`cutout` (a square of half the image size set to zero). A policy string names them with commas:
"translation,cutout". Images are in [-1, 1], NHWC, any number of channels.
"""
from __future__ import annotations

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple:
    """("translation", "cutout") for "translation,cutout"; () for "" or "none". Raises ValueError naming
    what is allowed."""
    if policy in ("", "none", None):
        return ()
    names = tuple(p.strip() for p in str(policy).split(","))
    unknown = [p for p in names if p not in POLICIES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"augment={policy!r}: comma-separated, each once, from {', '.join(POLICIES)}")
    return names


def _uniform(seed, n, low=0.0, high=1.0):
    import keras

    return keras.random.uniform((n, 1, 1, 1), low, high, seed=seed)


def color(x, seed):
    from keras import ops

    n = ops.shape(x)[0]
    x = x + (_uniform(seed, n) - 0.5)  # brightness
    mean = ops.mean(x, axis=3, keepdims=True)
    x = (x - mean) * (_uniform(seed, n) * 2.0) + mean  # saturation (a no-op on one channel)
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (_uniform(seed, n) + 0.5) + mean  # contrast


def translation(x, seed, ratio: float = 0.125):
    """Shift each image by up to ratio x its size in each direction, filling with zeros (as the reference)."""
    import keras
    import tensorflow as tf

    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = keras.random.randint((n, 1), -sh, sh + 1, seed=seed, dtype="int32")
    tx = keras.random.randint((n, 1), -sw, sw + 1, seed=seed, dtype="int32")
    grid_y = tf.clip_by_value(tf.range(h, dtype=tf.int32)[None, :] + ty + 1, 0, h + 1)
    grid_x = tf.clip_by_value(tf.range(w, dtype=tf.int32)[None, :] + tx + 1, 0, w + 1)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    x = tf.gather(padded, grid_y, axis=1, batch_dims=1)
    return tf.gather(x, grid_x, axis=2, batch_dims=1)


def cutout(x, seed, ratio: float = 0.5):
    """Zero a square of ratio x the image size at a random place in each image (it may reach over the edge)."""
    import keras
    import tensorflow as tf

    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = keras.random.randint((n, 1, 1), 0, h + (1 - ch % 2), seed=seed, dtype="int32") - ch // 2
    ox = keras.random.randint((n, 1, 1), 0, w + (1 - cw % 2), seed=seed, dtype="int32") - cw // 2
    ys = tf.range(h, dtype=tf.int32)[None, :, None]
    xs = tf.range(w, dtype=tf.int32)[None, None, :]
    inside = (ys >= oy) & (ys < oy + ch) & (xs >= ox) & (xs < ox + cw)
    return x * tf.cast(~inside, x.dtype)[..., None]


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images, policy: tuple, seed, probability=None):
    """`images` (a batch, or an MSG-GAN pyramid of batches: only the full-size level is augmented) through each
    operation of `policy`, drawing from the Keras SeedGenerator `seed`. With `probability` (a scalar tensor, ADA),
    each operation is applied to each image with that probability (Karras et al. 2020); without it, always."""
    if not policy:
        return images
    if isinstance(images, (list, tuple)):
        return [*images[:-1], diff_augment(images[-1], policy, seed, probability)]
    for name in policy:
        changed = _OPS[name](images, seed)
        if probability is None:
            images = changed
        else:
            from keras import ops

            apply = ops.cast(_uniform(seed, ops.shape(images)[0]) < probability, images.dtype)
            images = apply * changed + (1.0 - apply) * images
    return images
