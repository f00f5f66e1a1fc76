import numpy as np
import pytest

from ganlib import Config
from ganlib.models import build_models


@pytest.mark.parametrize("model, size, channels, depth, conditional", [
    ("dcgan", 28, 1, 2, True),
    ("dcgan", 32, 3, 3, False),
    ("dcgan", 64, 4, 4, True),
    ("dcgan", 128, 3, 5, False),
    ("mlp", 28, 1, 2, True),
    ("mlp", 16, 3, 1, False),
])
def test_output_shapes(model, size, channels, depth, conditional):
    cfg = Config(model=model, image_size=size, channels=channels, depth=depth, conditional=conditional,
                 filters=4, latent_dim=8, embedding_dim=3, batch_size=2)
    g, d = build_models(cfg, (size, size, channels), num_classes=5)
    z = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    labels = np.array([0, 1, 4], "int32")
    images = np.asarray(g([z, labels] if conditional else z))
    assert images.shape == (3, size, size, channels)
    assert images.min() >= -1 and images.max() <= 1
    logits = np.asarray(d([images, labels] if conditional else images))
    assert logits.shape == (3, 1) and np.isfinite(logits).all()


def test_brownlee_conditional_gan_structure():
    # The EMNIST study's model: label embedding -> extra input channel of D and G.
    cfg = Config(recipe="tutorial", embedding_dim=50, latent_dim=100)
    g, d = build_models(cfg, (28, 28, 1), 47)
    assert g.get_layer("g_label_embedding").output.shape[-1] == 50
    assert d.get_layer("d_label_dense").output.shape[-1] == 28 * 28
    assert [g.get_layer(f"g_up{i}").filters for i in range(2)] == [128, 128]


def test_projection_discriminator_adds_a_class_dot_product():
    cfg = Config(filters=4, latent_dim=8, batch_size=2, d_conditioning="projection", d_norm="spectral")
    _, d = build_models(cfg, (28, 28, 1), 5)
    assert d.get_layer("d_projection").output.shape[-1] == d.get_layer("d_logit_input").output.shape[-1]
    x = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype("float32")
    a, b = d([x, np.array([0, 0])]), d([x, np.array([3, 3])])
    assert np.asarray(a).shape == (2, 1) and not np.allclose(a, b)  # the label changes the logit
    d.get_layer("d_projection").set_weights([np.zeros((5, d.get_layer("d_projection").output.shape[-1]))])
    np.testing.assert_allclose(d([x, np.array([0, 0])]), d([x, np.array([3, 3])]))  # ... only through it


def test_width_growth_and_normalizations():
    cfg = Config(filters=8, filter_growth=2.0, depth=3, image_size=32, norm="layer", d_norm="spectral")
    g, d = build_models(cfg, (32, 32, 1), 10)
    assert [d.get_layer(f"d_down{i}_sn").layer.filters for i in range(3)] == [8, 16, 32]
    assert [g.get_layer(f"g_up{i}").filters for i in range(3)] == [32, 16, 8]


def test_mixed_bfloat16_keeps_outputs_float32_and_does_not_leak_policy():
    import keras

    cfg = Config(precision="mixed_bfloat16", filters=4, latent_dim=8)
    g, d = build_models(cfg, (28, 28, 1), 10)
    assert g.get_layer("g_up0").compute_dtype == "bfloat16"
    assert g.output.dtype == "float32" and d.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("kernel,cout,padding", [(7, 1, "SAME"), (4, 3, "SAME"), (3, 2, "VALID"), (4, 1, "VALID")])
def test_depthwise_sum_conv_matches_conv2d(kernel, cout, padding):
    import numpy as np
    import tensorflow as tf

    from ganlib.layers import depthwise_sum_conv

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, 9, 10, 5)), tf.float32)
    k = tf.Variable(rng.standard_normal((kernel, kernel, 5, cout)) * 0.1, dtype=tf.float32)
    dy = tf.constant(rng.standard_normal((3, *tf.nn.conv2d(x, k, 1, padding).shape[1:])), tf.float32)
    grads = []
    for fn in (lambda a, b: tf.nn.conv2d(a, b, 1, padding), lambda a, b: depthwise_sum_conv(a, b, padding)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, k)
        grads.append((y, *tape.gradient(y, [x, k], output_gradients=dy)))
    for expected, got in zip(*grads):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_output_conv_layer_equals_conv2d_and_round_trips(tmp_path):
    import keras
    import numpy as np

    from ganlib.layers import OutputConv2D
    from ganlib.rundir import load_keras_model

    x = np.random.default_rng(1).standard_normal((2, 8, 8, 6)).astype("float32")
    fast = OutputConv2D(1, 5, padding="same", name="g_image")
    plain = keras.layers.Conv2D(1, 5, padding="same")
    fast.build(x.shape), plain.build(x.shape)
    plain.set_weights(fast.get_weights())  # the same variables: checkpoints of either load into the other
    np.testing.assert_allclose(fast(x), plain(x), rtol=1e-4, atol=1e-5)
    inp = keras.Input((8, 8, 6))
    model = keras.Model(inp, OutputConv2D(1, 5, padding="same")(inp))
    model.save(tmp_path / "m.keras")
    loaded = load_keras_model(tmp_path / "m.keras")
    assert type(loaded.layers[-1]).__name__ == "OutputConv2D"
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
