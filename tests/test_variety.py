"""The collapse-countering options and the class-aware metrics (issue: samples with the data's variety)."""
import math

import numpy as np
import pytest

from ganlib import Config, ConfigError
from test_losses import SMALL, batch, make_trainer


# ---------------------------------------------------------------------------------------------- EMA
def test_ema_half_life_ramps_up_with_the_images_seen():
    trainer = make_trainer(Config(ema_kimg=10.0, ema_rampup=0.05, **SMALL))
    decays = []
    for step in range(3):
        decays.append(float(trainer.ema_decay()))
        trainer.train_on_batch(*batch(8, seed=step), return_dict=True)
    # before the first step no image was seen: the average takes the current weights (decay ~0)
    assert decays[0] < 1e-6
    # after k steps of batch 8 the half-life is 0.05 * 8k images: decay 0.5 ** (8 / (0.4 k))
    for k in (1, 2):
        assert decays[k] == pytest.approx(0.5 ** (8 / (0.4 * k)), rel=1e-4)
    cfg = Config(ema_kimg=0.001, ema_rampup=0.05, **SMALL)  # a 1-image half-life caps the ramp-up
    trainer = make_trainer(cfg)
    trainer.g_optimizer.iterations.assign(1000)
    assert float(trainer.ema_decay()) == pytest.approx(0.5 ** 8, rel=1e-4)


def test_ema_decay_per_step_is_the_half_life_it_implies():
    trainer = make_trainer(Config(ema=0.999, ema_rampup=0, **SMALL))
    assert float(trainer.ema_decay()) == pytest.approx(0.999, rel=1e-6)


def test_ema_options_are_checked():
    with pytest.raises(ConfigError, match="ema.*not both"):
        Config(ema=0.99, ema_kimg=10.0, **SMALL)
    with pytest.raises(ConfigError, match="ema_rampup"):
        Config(ema_kimg=1.0, ema_rampup=2.0, **SMALL)
    assert Config(recipe="dcgan", **SMALL).hash == Config(recipe="dcgan", ema_rampup=0.1, **SMALL).hash  # no EMA: no matter
    assert Config(ema_kimg=1.0, **SMALL).hash != Config(ema_kimg=1.0, ema_rampup=0.1, **SMALL).hash


def test_ema_generator_gets_batch_norm_statistics_of_its_own_weights():
    """The EMA copy is frozen; its moving statistics must still be recomputed (a frozen Keras batch norm ignores
    training=True: the bug that made EMA samples grey squares)."""
    trainer = make_trainer(Config(ema_kimg=1.0, g_norm="batch", **SMALL))
    for step in range(3):
        trainer.train_on_batch(*batch(8, seed=step), return_dict=True)
    g = trainer.sampling_generator
    norms = [layer for layer in g.layers if "norm" in layer.name]
    assert norms
    for layer in norms:
        assert not np.allclose(layer.moving_mean.numpy(), 0.0)  # no longer the initial statistics
    # with statistics of its own, the EMA generator's inference output matches its batch statistics
    from ganlib.trainer import refresh_batch_norm_statistics

    z = np.random.default_rng(0).standard_normal((256, 8)).astype("float32")
    labels = (np.arange(256) % 10).astype("int32")
    inference = np.asarray(g([z, labels], training=False))
    refresh_batch_norm_statistics(g, 10, True, batches=1, batch_size=256, seed=1)
    again = np.asarray(g([z, labels], training=False))
    assert np.abs(inference - again).mean() < 0.05  # other noise, nearly the same statistics


# ---------------------------------------------------------------------------------------------- layers
def test_minibatch_stddev_uses_consecutive_groups_that_never_mix_real_and_fake():
    from ganlib.layers import MinibatchStdDev

    real = np.zeros((4, 2, 2, 3), "float32")  # no spread
    fake = np.random.default_rng(0).standard_normal((4, 2, 2, 3)).astype("float32")
    out = np.asarray(MinibatchStdDev(4)(np.concatenate([real, fake])))
    assert out.shape == (8, 2, 2, 4)
    np.testing.assert_allclose(out[:4, ..., 3], 1e-4, atol=1e-4)  # sqrt(1e-8): the real group has none
    expected = np.sqrt(fake.var(axis=0) + 1e-8).mean()
    np.testing.assert_allclose(out[4:, ..., 3], expected, rtol=1e-5)
    np.testing.assert_array_equal(out[..., :3], np.concatenate([real, fake]))
    dense = np.asarray(MinibatchStdDev(2)(np.ones((4, 5), "float32")))
    assert dense.shape == (4, 6)
    odd = np.asarray(MinibatchStdDev(4)(np.concatenate([real[:3], fake[:3]])))  # 6 images: groups of 3
    np.testing.assert_allclose(odd[:3, ..., 3], 1e-4, atol=1e-4)
    np.testing.assert_allclose(odd[3:, ..., 3], np.sqrt(fake[:3].var(axis=0) + 1e-8).mean(), rtol=1e-5)
    assert np.asarray(MinibatchStdDev(4)(fake[:3])).shape == (3, 2, 2, 4)  # a prime batch: groups of 1


def test_minibatch_stddev_needs_a_group_that_divides_the_batch():
    with pytest.raises(ConfigError, match="mbstd_group.*divisor of batch_size"):
        Config(mbstd_group=3, **SMALL)
    cfg = Config(mbstd_group=4, **SMALL)
    trainer = make_trainer(cfg)
    assert any(layer.name == "d_mbstd" for layer in trainer.discriminator.layers)
    logs = trainer.train_on_batch(*batch(8), return_dict=True)
    assert all(math.isfinite(v) for v in logs.values())


def test_conditional_batch_norm_gives_each_class_its_own_scale_and_offset():
    from ganlib.layers import ConditionalBatchNormalization

    layer = ConditionalBatchNormalization(3)
    x = np.random.default_rng(0).standard_normal((6, 4, 4, 2)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2], "int32")
    start = np.asarray(layer([x, labels], training=True))
    plain = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3)
    np.testing.assert_allclose(start, plain, atol=1e-4)  # starts as plain batch norm
    layer.gamma.embeddings.assign(np.array([[0, 0], [1, 1], [0, 0]], "float32"))
    layer.beta.embeddings.assign(np.array([[0, 0], [0, 0], [5, 5]], "float32"))
    out = np.asarray(layer([x, labels], training=True))
    np.testing.assert_allclose(out[labels == 0], plain[labels == 0], atol=1e-4)
    np.testing.assert_allclose(out[labels == 1], 2 * plain[labels == 1], atol=1e-4)
    np.testing.assert_allclose(out[labels == 2], plain[labels == 2] + 5, atol=1e-4)


def test_conditional_batch_norm_is_for_conditional_generators_and_saves(tmp_path):
    import keras

    with pytest.raises(ConfigError, match="g_norm.*unconditional"):
        Config(g_norm="conditional_batch", conditional=False, **SMALL)
    with pytest.raises(ConfigError, match="d_norm"):
        Config(d_norm="conditional_batch", **SMALL)
    trainer = make_trainer(Config(g_norm="conditional_batch", **SMALL))
    trainer.train_on_batch(*batch(8), return_dict=True)
    path = tmp_path / "g.keras"
    trainer.generator.save(path)
    loaded = keras.models.load_model(path)
    z, labels = np.ones((2, 8), "float32"), np.array([1, 2], "int32")
    np.testing.assert_allclose(np.asarray(loaded([z, labels])), np.asarray(trainer.generator([z, labels])),
                               atol=1e-6)


# ---------------------------------------------------------------------------------------------- mode seeking
def test_mode_seeking_pairs_the_halves_of_a_batch_and_adds_its_term():
    trainer = make_trainer(Config(mode_seeking=1.0, **SMALL))
    z, labels = trainer.sample_noise(16)
    labels = np.asarray(labels)
    np.testing.assert_array_equal(labels[:4], labels[4:8])  # per batch of 8: the second half repeats the first
    np.testing.assert_array_equal(labels[8:12], labels[12:16])
    fake = np.zeros((8, 8, 8, 1), "float32")
    fake[4:] = 1.0  # the halves differ by 1 per pixel
    z = np.zeros((8, 8), "float32")
    z[4:] = 2.0  # and their latent points by 2
    assert float(trainer.mode_seeking_term(fake, z)) == pytest.approx(1 / (0.5 + 1e-5), rel=1e-5)
    logs = trainer.train_on_batch(*batch(8), return_dict=True)
    assert math.isfinite(logs["g_loss"])
    with pytest.raises(ConfigError, match="mode_seeking.*odd batch_size"):
        Config(mode_seeking=1.0, **{**SMALL, "batch_size": 7})


# ---------------------------------------------------------------------------------------------- DiffAugment
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diff_augment_changes_images_and_passes_gradients(policy):
    import keras
    import tensorflow as tf

    from ganlib.augment import diff_augment, parse_policy

    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32"))
    seed = keras.random.SeedGenerator(0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = diff_augment(x, parse_policy(policy), seed)
        total = tf.reduce_sum(y)
    assert y.shape == x.shape
    assert not np.allclose(y.numpy(), x.numpy())
    grad = tape.gradient(total, x)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0


def test_translation_shifts_and_cutout_zeroes_a_square():
    import keras

    from ganlib.augment import cutout, translation

    x = np.arange(64, dtype="float32").reshape(1, 8, 8, 1) + 1
    seed = keras.random.SeedGenerator(3)
    for _ in range(5):
        y = np.asarray(translation(x, seed))[0, ..., 0]
        kept = y[y > 0]  # the shifted image: its values are a contiguous block of the original's
        assert set(kept.astype(int)) <= set(x.ravel().astype(int))
        z = np.asarray(cutout(x, seed))[0, ..., 0]
        assert 0 < (z == 0).sum() <= 16  # at most a 4x4 square
        assert np.array_equal(z[z > 0], x[0, ..., 0][z > 0])


def test_augment_policy_is_checked_and_runs_in_training():
    with pytest.raises(ConfigError, match="augment.*comma-separated"):
        Config(augment="flip", **SMALL)
    with pytest.raises(ConfigError, match="augment"):
        Config(augment=["color"], **SMALL)
    with pytest.raises(ConfigError, match="augment.*msggan"):
        Config(augment="color", model="msggan", **SMALL)
    trainer = make_trainer(Config(augment="color,translation,cutout", r1_weight=1.0, **SMALL))
    logs = trainer.train_on_batch(*batch(8), return_dict=True)
    assert all(math.isfinite(v) for v in logs.values())


# ---------------------------------------------------------------------------------------------- class-aware metrics
def test_class_metrics_see_collapse_within_classes_that_global_metrics_miss():
    from ganlib.metrics import precision_recall
    from ganlib.metrics.classwise import class_averages, class_metrics, worst_classes

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 8)) * 10
    labels = np.repeat(np.arange(3), 60)
    real = centres[labels] + rng.standard_normal((180, 8))
    other = centres[labels] + rng.standard_normal((180, 8))  # the same distribution
    per_class = class_metrics(real, other, labels, labels)
    assert per_class["class"] == [0, 1, 2] and per_class["n_real"] == [60, 60, 60]
    assert min(per_class["recall"]) > 0.7 and min(per_class["coverage"]) > 0.7
    collapsed = other.copy()
    collapsed[labels == 1] = centres[1] + 0.01 * rng.standard_normal((60, 8))  # class 1: one image
    bad = class_metrics(real, collapsed, labels, labels)
    assert bad["recall"][1] < 0.1 and bad["fid"][1] > 5 * per_class["fid"][1]
    assert worst_classes(bad, "recall", 1, ["a", "b", "c"])[0][0] == "b"
    assert worst_classes(bad, "fid", 1)[0][0] == 1
    averages = class_averages(bad)
    assert averages["intra_recall"] == pytest.approx(np.mean(bad["recall"]))
    # the swapped-labels check: classes drawn from the wrong class are far within their class
    swapped = class_metrics(real, other, labels, (labels + 1) % 3)
    assert min(swapped["fid"]) > 10 * max(per_class["fid"])
    assert precision_recall(real, collapsed)[1] > 0.5  # globally, two of three classes still look varied


def test_evaluator_reports_class_aware_metrics_with_real_labels():
    from ganlib.metrics import Evaluator
    from ganlib.metrics.features import FeatureExtractor

    class Flat(FeatureExtractor):
        name, kind, dim, fingerprint, accuracy = "flat", "test", 64, "f", None

        def __call__(self, images, batch_size=500):
            return np.asarray(images, "float32").reshape(len(images), -1)

        def features_and_probs(self, images):
            return self(images), None

    import keras

    g_in, l_in = keras.Input((4,)), keras.Input((), dtype="int32")
    out = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="tanh")(
        keras.layers.Concatenate()([g_in, keras.layers.Embedding(2, 4)(l_in)])))
    generator = keras.Model([g_in, l_in], out)
    real = np.random.default_rng(0).uniform(-1, 1, (40, 8, 8, 1)).astype("float32")
    labels = np.arange(40) % 2
    with_labels = Evaluator(Flat(), real, n=40, num_classes=2, real_labels=labels)(generator)
    assert {"intra_fid", "intra_recall", "intra_coverage"} <= set(with_labels)
    assert with_labels["per_class"]["class"] == [0, 1]
    assert "intra_fid" not in Evaluator(Flat(), real, n=40, num_classes=2)(generator)


def test_little_variety_caution_names_the_worst_classes():
    from ganlib.verdict import caution

    per_class = {"class": [0, 1, 2], "recall": [0.3, 0.01, 0.05], "coverage": [0.5, 0.1, 0.2], "fid": [1, 9, 5]}
    text = caution({"recall": 0.05, "coverage": 0.2}, per_class, ["shirt", "shoe", "bag"])[0]
    assert "least within shoe (recall 0.01), bag (recall 0.05), shirt (recall 0.30)" in text
    assert caution({"recall": 0.5}, per_class) == []
