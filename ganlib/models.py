"""Generator and discriminator architectures, built from a Config.

Discriminators output raw logits in float32 (losses apply their own link function, which is numerically
safer than a sigmoid layer, and keeps bf16 out of the loss). Conditional models take `[inputs, labels]`.
"""
from __future__ import annotations

import contextlib

import keras
from keras import layers

from .config import Config


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under a dtype policy without leaking it to code that runs later."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _init(config: Config):
    return keras.initializers.RandomNormal(0.0, 0.02) if config.weight_init == "normal_0.02" else "glorot_uniform"


def _normalize(x, kind: str, name: str):
    if kind == "batch":
        return layers.BatchNormalization(name=name)(x)
    if kind == "layer":
        return layers.LayerNormalization(name=name)(x)
    if kind == "instance":  # one group per channel = instance normalization
        return layers.GroupNormalization(groups=-1, name=name)(x) if len(x.shape) == 4 else \
            layers.LayerNormalization(name=name)(x)
    return x


def _maybe_spectral(layer, kind: str):
    return layers.SpectralNormalization(layer, name=f"{layer.name}_sn") if kind == "spectral" else layer


def _widths(base: int, growth: float, depth: int):
    """Per-layer widths, narrowest first (discriminator order)."""
    return [max(1, int(round(base * growth ** i))) for i in range(depth)]


def _label_input(config: Config, num_classes: int, units: int, name: str):
    """Label -> embedding -> dense map with `units` values (an extra channel or feature block)."""
    label = keras.Input((), dtype="int32", name="label")
    e = layers.Embedding(num_classes, config.embedding_dim, name=f"{name}_label_embedding")(label)
    e = layers.Dense(units, kernel_initializer=_init(config), name=f"{name}_label_dense")(e)
    return label, e


# ---------------------------------------------------------------------------------------------- DCGAN
def dcgan_generator(config: Config, image_shape, num_classes: int) -> keras.Model:
    size, channels = image_shape[0], image_shape[-1]
    depth = config.g_depth
    base = size // 2 ** depth
    widths = _widths(config.g_filters, config.filter_growth, depth)[::-1] or [config.g_filters]
    z = keras.Input((config.latent_dim,), name="z")
    x = layers.Dense(base * base * widths[0], kernel_initializer=_init(config), name="g_project")(z)
    x = _normalize(x, config.g_norm, "g_project_norm")
    x = layers.LeakyReLU(config.g_leaky_slope)(x)
    x = layers.Reshape((base, base, widths[0]))(x)
    inputs = [z]
    if config.conditional:
        label, e = _label_input(config, num_classes, base * base, "g")
        x = layers.Concatenate()([x, layers.Reshape((base, base, 1))(e)])
        inputs.append(label)
    for i, width in enumerate(widths[:depth]):
        if config.upsampling == "transpose":
            x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", kernel_initializer=_init(config),
                                       name=f"g_up{i}")(x)
        else:  # upsample + conv avoids the checkerboard artefacts of strided transposed convolutions
            x = layers.UpSampling2D(name=f"g_upsample{i}")(x)
            x = layers.Conv2D(width, 3, padding="same", kernel_initializer=_init(config), name=f"g_up{i}")(x)
        x = _normalize(x, config.g_norm, f"g_up{i}_norm")
        x = layers.LeakyReLU(config.g_leaky_slope)(x)
    kernel = 7 if size >= 28 else 3
    out = layers.Conv2D(channels, kernel, padding="same", activation="tanh", dtype="float32",
                        kernel_initializer=_init(config), name="g_image")(x)
    return keras.Model(inputs if config.conditional else z, out, name="generator")


def dcgan_discriminator(config: Config, image_shape, num_classes: int) -> keras.Model:
    size = image_shape[0]
    image = keras.Input(image_shape, name="image")
    x, inputs = image, image
    if config.conditional:
        label, e = _label_input(config, num_classes, size * size, "d")
        x = layers.Concatenate()([x, layers.Reshape((size, size, 1))(e)])
        inputs = [image, label]
    for i, width in enumerate(_widths(config.d_filters, config.filter_growth, config.d_depth)):
        conv = layers.Conv2D(width, 3, strides=2, padding="same", kernel_initializer=_init(config), name=f"d_down{i}")
        x = _maybe_spectral(conv, config.d_norm)(x)
        if i > 0:  # DCGAN convention: no normalization on the first layer
            x = _normalize(x, config.d_norm, f"d_down{i}_norm")
        x = layers.LeakyReLU(config.d_leaky_slope)(x)
    x = layers.Flatten()(x)
    if config.dropout:
        x = layers.Dropout(config.dropout)(x)
    out = _maybe_spectral(layers.Dense(1, dtype="float32", kernel_initializer=_init(config), name="d_logit"),
                          config.d_norm)(x)
    return keras.Model(inputs, out, name="discriminator")


# ---------------------------------------------------------------------------------------------- MLP
def mlp_generator(config: Config, image_shape, num_classes: int) -> keras.Model:
    z = keras.Input((config.latent_dim,), name="z")
    x, inputs = z, [z]
    if config.conditional:
        label, e = _label_input(config, num_classes, config.embedding_dim, "g")
        x = layers.Concatenate()([z, e])
        inputs.append(label)
    for i, units in enumerate(_widths(4 * config.g_filters, config.filter_growth, config.g_depth)):
        x = layers.Dense(units, kernel_initializer=_init(config), name=f"g_dense{i}")(x)
        x = _normalize(x, config.g_norm, f"g_dense{i}_norm")
        x = layers.LeakyReLU(config.g_leaky_slope)(x)
    n = int(image_shape[0] * image_shape[1] * image_shape[2])
    x = layers.Dense(n, activation="tanh", dtype="float32", kernel_initializer=_init(config), name="g_image")(x)
    out = layers.Reshape(image_shape, dtype="float32")(x)
    return keras.Model(inputs if config.conditional else z, out, name="generator")


def mlp_discriminator(config: Config, image_shape, num_classes: int) -> keras.Model:
    image = keras.Input(image_shape, name="image")
    x, inputs = layers.Flatten()(image), image
    if config.conditional:
        label, e = _label_input(config, num_classes, config.embedding_dim, "d")
        x = layers.Concatenate()([x, e])
        inputs = [image, label]
    widths = _widths(4 * config.d_filters, config.filter_growth, config.d_depth)[::-1]
    for i, units in enumerate(widths):
        x = _maybe_spectral(layers.Dense(units, kernel_initializer=_init(config), name=f"d_dense{i}"), config.d_norm)(x)
        if i > 0:
            x = _normalize(x, config.d_norm, f"d_dense{i}_norm")
        x = layers.LeakyReLU(config.d_leaky_slope)(x)
    if config.dropout:
        x = layers.Dropout(config.dropout)(x)
    out = _maybe_spectral(layers.Dense(1, dtype="float32", kernel_initializer=_init(config), name="d_logit"),
                          config.d_norm)(x)
    return keras.Model(inputs, out, name="discriminator")


BUILDERS = {
    "dcgan": (dcgan_generator, dcgan_discriminator),
    "mlp": (mlp_generator, mlp_discriminator),
}


def build_models(config: Config, image_shape, num_classes: int):
    """(generator, discriminator) for the config, under its precision policy."""
    if config.model not in BUILDERS:
        raise ValueError(f"model={config.model!r} has no builder; available: {sorted(BUILDERS)}")
    make_g, make_d = BUILDERS[config.model]
    with dtype_policy(config.precision):
        return make_g(config, tuple(image_shape), num_classes), make_d(config, tuple(image_shape), num_classes)
