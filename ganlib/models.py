"""Generator and discriminator architectures, built from a Config.

Discriminators output raw logits in float32 (losses apply their own link function, which is numerically
safer than a sigmoid layer, and keeps bf16 out of the loss). Conditional models take `[inputs, labels]`.
MSG-GAN generators output a list of images, coarsest first, and MSG-GAN discriminators take such a list
(`image_pyramid` makes one from real images); the last image of the list is the full-size one.
"""
from __future__ import annotations

import contextlib

import keras
from keras import layers, ops

from .config import Config
from .layers import ConditionalBatchNormalization, MinibatchStdDev, OutputConv2D


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


def _normalize(x, kind: str, name: str, label=None, num_classes: int = 0):
    if kind == "conditional_batch":  # Config allows it only in a conditional generator
        return ConditionalBatchNormalization(num_classes, name=name)([x, label])
    if kind == "batch":
        return layers.BatchNormalization(name=name)(x)
    if kind == "layer":
        # Layer norm of a feature map normalizes over (H, W, C) per sample (Ba et al.; the WGAN-GP critic's
        # norm): GroupNormalization with one group. Keras' LayerNormalization would normalize each pixel's
        # channels only. Dense features: LayerNormalization.
        return layers.GroupNormalization(groups=1, name=name)(x) if len(x.shape) == 4 else \
            layers.LayerNormalization(name=name)(x)
    if kind == "instance":  # one group per channel = instance normalization
        return layers.GroupNormalization(groups=-1, name=name)(x) if len(x.shape) == 4 else \
            layers.LayerNormalization(name=name)(x)
    return x


def _maybe_spectral(layer, kind: str):
    if kind != "spectral":
        return layer
    # autocast=False: under mixed precision the wrapper would otherwise read the float32 kernel as bfloat16 and
    # write the normalized (rounded) kernel back every training call, erasing small optimizer updates. The
    # wrapped layer still computes in its own dtype.
    return layers.SpectralNormalization(layer, autocast=False, dtype=layer.dtype_policy, name=f"{layer.name}_sn")


def _logit(x, config: Config, norm: str, label=None, num_classes: int = 0):
    """The discriminator's float32 logit: its input is cast first, so no bfloat16 rounding reaches the loss.

    With `d_conditioning="projection"` (Miyato & Koyama 2018) the label enters here: logit + <embed(y), h>, a
    learned class vector dotted with D's features, which conditions far more strongly than an input channel."""
    x = layers.Activation("linear", dtype="float32", name="d_logit_input")(x)
    logit = _maybe_spectral(layers.Dense(1, dtype="float32", kernel_initializer=_init(config), name="d_logit"),
                            norm)(x)
    if label is None:
        return logit
    class_vector = layers.Embedding(num_classes, int(x.shape[-1]), dtype="float32", name="d_projection")(label)
    return layers.Add(dtype="float32", name="d_logit_projected")(
        [logit, layers.Dot(axes=1, dtype="float32", name="d_projection_dot")([class_vector, x])])


def _widths(base: int, growth: float, depth: int):
    """Per-layer widths, narrowest first (discriminator order)."""
    return [max(1, int(round(base * growth ** i))) for i in range(depth)]


def _label_input(config: Config, num_classes: int, units: int, name: str):
    """Label -> embedding -> dense map with `units` values (an extra channel or feature block)."""
    label = keras.Input((), dtype="int32", name="label")
    e = layers.Embedding(num_classes, config.embedding_dim, name=f"{name}_label_embedding")(label)
    e = layers.Dense(units, kernel_initializer=_init(config), name=f"{name}_label_dense")(e)
    return label, e


def _to_image(x, channels: int, kernel: int, config: Config, name: str):
    return OutputConv2D(channels, kernel, padding="same", activation="tanh", dtype="float32",
                        kernel_initializer=_init(config), name=name)(x)


def image_pyramid(images, levels: int):
    """[images average-pooled 2**levels times, ..., pooled once, images]: coarsest first, as MSG-GAN's
    generator emits them and its discriminator takes them."""
    pyramid = [images]
    for _ in range(levels):
        pyramid.insert(0, ops.average_pool(pyramid[0], 2, strides=2, padding="valid"))
    return pyramid


# ---------------------------------------------------------------------------------------------- DCGAN
def _generator_trunk(config: Config, image_shape, num_classes: int):
    """z (+ label) -> projection to base x base -> g_depth up-sampling blocks.

    Returns (inputs, feature maps at every resolution base, 2 base, ..., full size)."""
    size = image_shape[0]
    depth = config.g_depth
    base = size // 2 ** depth
    widths = _widths(config.g_filters, config.filter_growth, depth)[::-1] or [config.g_filters]
    z = keras.Input((config.latent_dim,), name="z")
    inputs, label = z, None
    if config.conditional:
        label, e = _label_input(config, num_classes, base * base, "g")
        inputs = [z, label]
    x = layers.Dense(base * base * widths[0], kernel_initializer=_init(config), name="g_project")(z)
    x = _normalize(x, config.g_norm, "g_project_norm", label, num_classes)
    x = layers.LeakyReLU(config.g_leaky_slope)(x)
    x = layers.Reshape((base, base, widths[0]))(x)
    if config.conditional:
        x = layers.Concatenate()([x, layers.Reshape((base, base, 1))(e)])
    features = [x]
    for i, width in enumerate(widths[:depth]):
        if config.upsampling == "transpose":
            x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", kernel_initializer=_init(config),
                                       name=f"g_up{i}")(x)
        else:  # upsample + conv avoids the checkerboard artefacts of strided transposed convolutions
            x = layers.UpSampling2D(name=f"g_upsample{i}")(x)
            x = layers.Conv2D(width, 3, padding="same", kernel_initializer=_init(config), name=f"g_up{i}")(x)
        x = _normalize(x, config.g_norm, f"g_up{i}_norm", label, num_classes)
        x = layers.LeakyReLU(config.g_leaky_slope)(x)
        features.append(x)
    return inputs, features


def dcgan_generator(config: Config, image_shape, num_classes: int) -> keras.Model:
    inputs, features = _generator_trunk(config, image_shape, num_classes)
    kernel = 7 if image_shape[0] >= 28 else 3
    return keras.Model(inputs, _to_image(features[-1], image_shape[-1], kernel, config, "g_image"), name="generator")


def _discriminator(config: Config, image_shape, num_classes: int, multiscale: bool) -> keras.Model:
    """Strided convolutions from the full-size image down to size / 2**d_depth, then a logit.

    multiscale (MSG-GAN): the inputs are the image pyramid (coarsest first, see `image_pyramid`), and each
    coarser image is concatenated to the feature maps of its resolution; a last 3x3 convolution sees the coarsest.
    """
    size, channels, depth = image_shape[0], image_shape[-1], config.d_depth
    image = keras.Input(image_shape, name="image")
    coarser = [keras.Input((size // 2 ** j, size // 2 ** j, channels), name=f"image_{size // 2 ** j}")
               for j in range(depth, 0, -1)] if multiscale else []  # MSG-GAN's pyramid levels, coarsest first
    images = coarser + [image]
    x, inputs, projected = image, (images if multiscale else image), None
    if config.conditional and config.d_conditioning == "projection":
        projected = keras.Input((), dtype="int32", name="label")
        inputs = images + [projected]
    elif config.conditional:
        label, e = _label_input(config, num_classes, size * size, "d")
        x = layers.Concatenate()([x, layers.Reshape((size, size, 1))(e)])
        inputs = images + [label]
    widths = _widths(config.d_filters, config.filter_growth, depth)
    for i, width in enumerate(widths):
        conv = layers.Conv2D(width, 3, strides=2, padding="same", kernel_initializer=_init(config), name=f"d_down{i}")
        x = _maybe_spectral(conv, config.d_norm)(x)
        if i > 0:  # DCGAN convention: no normalization on the first layer
            x = _normalize(x, config.d_norm, f"d_down{i}_norm")
        x = layers.LeakyReLU(config.d_leaky_slope)(x)
        if multiscale:
            x = layers.Concatenate(name=f"d_scale{i}")([x, coarser[depth - 1 - i]])  # same resolution
    if multiscale:
        conv = layers.Conv2D((widths or [config.d_filters])[-1], 3, padding="same", kernel_initializer=_init(config),
                             name="d_final")
        x = _maybe_spectral(conv, config.d_norm)(x)
        if depth > 0:
            x = _normalize(x, config.d_norm, "d_final_norm")
        x = layers.LeakyReLU(config.d_leaky_slope)(x)
    if config.mbstd_group:  # how much a group of images varies, as one more feature map (Karras et al. 2018)
        x = MinibatchStdDev(config.mbstd_group, name="d_mbstd")(x)
    x = layers.Flatten()(x)
    if config.dropout:
        x = layers.Dropout(config.dropout)(x)
    return keras.Model(inputs, _logit(x, config, config.d_norm, projected, num_classes), name="discriminator")


def dcgan_discriminator(config: Config, image_shape, num_classes: int) -> keras.Model:
    return _discriminator(config, image_shape, num_classes, multiscale=False)


# ---------------------------------------------------------------------------------------------- MSG-GAN
def msggan_generator(config: Config, image_shape, num_classes: int) -> keras.Model:
    """MSG-GAN (Karnewar & Wang 2020): the DCGAN generator with a 1x1 to-image convolution at every resolution.

    Outputs [base x base, ..., size x size] images (coarsest first); the last is the generated image."""
    inputs, features = _generator_trunk(config, image_shape, num_classes)
    outputs = [_to_image(f, image_shape[-1], 1, config, f"g_image_{f.shape[1]}") for f in features]
    return keras.Model(inputs, outputs, name="generator")


def msggan_discriminator(config: Config, image_shape, num_classes: int) -> keras.Model:
    return _discriminator(config, image_shape, num_classes, multiscale=True)


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
        x = _normalize(x, config.g_norm, f"g_dense{i}_norm", inputs[-1], num_classes)
        x = layers.LeakyReLU(config.g_leaky_slope)(x)
    n = int(image_shape[0] * image_shape[1] * image_shape[2])
    x = layers.Dense(n, activation="tanh", dtype="float32", kernel_initializer=_init(config), name="g_image")(x)
    out = layers.Reshape(image_shape, dtype="float32")(x)
    return keras.Model(inputs if config.conditional else z, out, name="generator")


def mlp_discriminator(config: Config, image_shape, num_classes: int) -> keras.Model:
    image = keras.Input(image_shape, name="image")
    x, inputs, projected = layers.Flatten()(image), image, None
    if config.conditional and config.d_conditioning == "projection":
        projected = keras.Input((), dtype="int32", name="label")
        inputs = [image, projected]
    elif config.conditional:
        label, e = _label_input(config, num_classes, config.embedding_dim, "d")
        x = layers.Concatenate()([x, e])
        inputs = [image, label]
    widths = _widths(4 * config.d_filters, config.filter_growth, config.d_depth)[::-1]
    for i, units in enumerate(widths):
        x = _maybe_spectral(layers.Dense(units, kernel_initializer=_init(config), name=f"d_dense{i}"), config.d_norm)(x)
        if i > 0:
            x = _normalize(x, config.d_norm, f"d_dense{i}_norm")
        x = layers.LeakyReLU(config.d_leaky_slope)(x)
    if config.mbstd_group:
        x = MinibatchStdDev(config.mbstd_group, name="d_mbstd")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout)(x)
    return keras.Model(inputs, _logit(x, config, config.d_norm, projected, num_classes), name="discriminator")


def build_models(config: Config, image_shape, num_classes: int):
    """(generator, discriminator) for the config, under its precision policy."""
    from .registry import MODELS, resolve

    if config.model not in MODELS:
        raise ValueError(f"model={config.model!r} is not registered; available: {', '.join(MODELS)}")
    make_g, make_d = resolve(MODELS[config.model].generator), resolve(MODELS[config.model].discriminator)
    with dtype_policy(config.resolved_precision):
        return make_g(config, tuple(image_shape), num_classes), make_d(config, tuple(image_shape), num_classes)
