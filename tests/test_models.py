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
    cfg = Config(filters=128, embedding_dim=50, latent_dim=100)
    g, d = build_models(cfg, (28, 28, 1), 47)
    assert g.get_layer("g_label_embedding").output.shape[-1] == 50
    assert d.get_layer("d_label_dense").output.shape[-1] == 28 * 28
    assert [g.get_layer(f"g_up{i}").filters for i in range(2)] == [128, 128]


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
