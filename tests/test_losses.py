"""Adversarial losses and the penalties on D: values by hand, float32 arithmetic, a few training steps each."""
import numpy as np
import pytest

from ganlib import Config
from ganlib.losses import get_loss

SMALL = dict(dataset="digits", batch_size=8, filters=4, latent_dim=8, embedding_dim=3, metric_samples=0)


def make_trainer(cfg, shape=(8, 8, 1), classes=10, total_steps=10, discriminator=None, seed=0):
    """A compiled trainer for `cfg` on images of `shape` (data-free: the tests feed synthetic batches)."""
    import keras

    from ganlib.models import build_models
    from ganlib.trainer import GANTrainer, make_optimizer

    keras.utils.set_random_seed(seed)
    g, d = build_models(cfg, shape, classes)
    trainer = GANTrainer(g, discriminator or d, cfg, classes)
    trainer.compile(make_optimizer(cfg, "g", total_steps), make_optimizer(cfg, "d", total_steps))
    return trainer


def batch(n, shape=(8, 8, 1), classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *shape)).astype("float32"), rng.integers(0, classes, n).astype("int32")


def linear_discriminator(shape, w):
    """D(x) = w . x + b: its input gradient is w everywhere, so |grad D| = |w|."""
    import keras

    image = keras.Input(shape)
    dense = keras.layers.Dense(1)
    model = keras.Model(image, dense(keras.layers.Flatten()(image)))
    dense.set_weights([np.asarray(w, "float32").reshape(-1, 1), np.array([0.3], "float32")])
    return model


# ---------------------------------------------------------------------------------------------- values by hand
def softplus(x):
    return np.logaddexp(0.0, x)


R, F = np.array([[2.0], [-0.5]], "float32"), np.array([[-1.0], [0.25]], "float32")


@pytest.mark.parametrize("name, d_expected, g_expected", [
    ("bce", softplus(-R).mean() + softplus(F).mean(), softplus(-F).mean()),
    ("minimax", softplus(-R).mean() + softplus(F).mean(), -softplus(F).mean()),
    ("wgan", F.mean() - R.mean(), -F.mean()),
    ("wgan_gp", F.mean() - R.mean(), -F.mean()),
    ("hinge", np.maximum(0, 1 - R).mean() + np.maximum(0, 1 + F).mean(), -F.mean()),
    ("lsgan", 0.5 * (((R - 1) ** 2).mean() + (F ** 2).mean()), 0.5 * ((F - 1) ** 2).mean()),
])
def test_loss_values_by_hand(name, d_expected, g_expected):
    loss = get_loss(name)
    np.testing.assert_allclose(float(loss.d_loss(R, F)), d_expected, rtol=1e-6)
    np.testing.assert_allclose(float(loss.g_loss(F)), g_expected, rtol=1e-6)


def test_smoothed_targets_enter_bce_and_lsgan():
    t_real, t_fake = np.array([[0.9], [0.8]], "float32"), np.array([[0.1], [0.0]], "float32")
    bce = t_real * softplus(-R) + (1 - t_real) * softplus(R)
    bce = bce.mean() + (t_fake * softplus(-F) + (1 - t_fake) * softplus(F)).mean()
    np.testing.assert_allclose(float(get_loss("bce").d_loss(R, F, t_real, t_fake)), bce, rtol=1e-6)
    ls = 0.5 * (((R - t_real) ** 2).mean() + ((F - t_fake) ** 2).mean())
    np.testing.assert_allclose(float(get_loss("lsgan").d_loss(R, F, t_real, t_fake)), ls, rtol=1e-6)


def test_losses_are_float32_and_stable_for_bfloat16_and_extreme_logits():
    import tensorflow as tf

    for name in ("bce", "minimax", "wgan", "hinge", "lsgan"):
        loss = get_loss(name)
        d = loss.d_loss(tf.constant(R, tf.bfloat16), tf.constant(F, tf.bfloat16))
        g = loss.g_loss(tf.constant(F, tf.bfloat16))
        assert d.dtype == tf.float32 and g.dtype == tf.float32
    extreme = np.array([[200.0], [-200.0]], "float32")
    assert np.isfinite(float(get_loss("bce").d_loss(extreme, -extreme)))
    assert np.isfinite(float(get_loss("minimax").g_loss(extreme)))


# ---------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("loss", ["bce", "minimax", "wgan", "wgan_gp", "hinge", "lsgan"])
def test_each_loss_trains_with_finite_losses(loss):
    cfg = Config(loss=loss, **SMALL)
    trainer = make_trainer(cfg)
    for step in range(2):
        logs = trainer.train_on_batch(*batch(8, seed=step), return_dict=True)
    assert set(logs) >= {"d_loss", "g_loss", "d_acc_real", "d_acc_fake", "d_total"}
    assert all(np.isfinite(v) for v in logs.values())
    assert int(trainer.g_optimizer.iterations.numpy()) == int(trainer.d_optimizer.iterations.numpy()) == 2


# ---------------------------------------------------------------------------------------------- penalties
def test_gradient_penalty_of_a_linear_critic_is_weight_times_norm_minus_one_squared():
    w = np.random.default_rng(1).normal(0, 0.05, 64)  # |w| ~ 0.4: a penalty clearly away from 0
    cfg = Config(loss="wgan_gp", gp_weight=10.0, conditional=False, dropout=0.0, **SMALL)
    trainer = make_trainer(cfg, discriminator=linear_discriminator((8, 8, 1), w))
    expected = 10.0 * (np.linalg.norm(w) - 1.0) ** 2
    real, _ = batch(8, seed=0)
    fake, _ = batch(8, seed=1)
    np.testing.assert_allclose(float(trainer.gradient_penalty(real, fake, None)), expected, rtol=1e-5)
    # ... and that is what the training step adds to D's loss
    logs = trainer.train_on_batch(real, np.zeros(8, "int32"), return_dict=True)
    np.testing.assert_allclose(logs["d_total"] - logs["d_loss"], expected, rtol=1e-4)


def test_gradient_penalty_on_an_image_pyramid_uses_the_gradient_over_all_levels():
    import keras

    from ganlib.models import image_pyramid

    w0, w1 = np.full(16, 0.1), np.full(64, 0.05)  # D(x0, x1) = w0 . x0 + w1 . x1
    small, full = keras.Input((4, 4, 1)), keras.Input((8, 8, 1))
    d0, d1 = keras.layers.Dense(1, use_bias=False), keras.layers.Dense(1, use_bias=False)
    out = keras.layers.Add()([d0(keras.layers.Flatten()(small)), d1(keras.layers.Flatten()(full))])
    critic = keras.Model([small, full], out)
    d0.set_weights([w0.reshape(-1, 1).astype("float32")])
    d1.set_weights([w1.reshape(-1, 1).astype("float32")])
    cfg = Config(model="msggan", depth=1, loss="wgan_gp", conditional=False, **SMALL)
    trainer = make_trainer(cfg, discriminator=critic)
    real, fake = image_pyramid(batch(8, seed=0)[0], 1), image_pyramid(batch(8, seed=1)[0], 1)
    expected = 10.0 * (np.sqrt(np.sum(w0 ** 2) + np.sum(w1 ** 2)) - 1.0) ** 2
    np.testing.assert_allclose(float(trainer.gradient_penalty(real, fake, None)), expected, rtol=1e-5)


def test_interpolation_factor_is_uniform_per_sample():
    trainer = make_trainer(Config(loss="wgan_gp", **SMALL))
    alpha = np.asarray(trainer.interpolation_alpha(20000))
    assert alpha.shape == (20000, 1, 1, 1)  # one factor per sample, shared by its pixels
    alpha = alpha.ravel()
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert abs(alpha.mean() - 0.5) < 0.01 and abs(alpha.std() - np.sqrt(1 / 12)) < 0.01
    # flat, not bell-shaped (a normal draw clipped to [0, 1] fails this): every tenth holds ~10%
    counts = np.histogram(alpha, bins=10, range=(0, 1))[0] / len(alpha)
    assert np.all(np.abs(counts - 0.1) < 0.015)


def test_r1_penalty_of_a_linear_discriminator_is_half_weight_times_squared_norm():
    w = np.random.default_rng(2).normal(0, 0.05, 64)
    cfg = Config(loss="bce", r1_weight=4.0, conditional=False, dropout=0.0, **SMALL)
    trainer = make_trainer(cfg, discriminator=linear_discriminator((8, 8, 1), w))
    expected = 0.5 * 4.0 * np.sum(w ** 2)
    real, _ = batch(8)
    np.testing.assert_allclose(float(trainer.r1_penalty(real, None)), expected, rtol=1e-5)
    logs = trainer.train_on_batch(real, np.zeros(8, "int32"), return_dict=True)
    np.testing.assert_allclose(logs["d_total"] - logs["d_loss"], expected, rtol=1e-4)


def test_label_smoothing_targets_are_per_sample_draws_in_range():
    cfg = Config(real_label=[0.7, 1.0], fake_label=[0.0, 0.3], **SMALL)
    real_t, fake_t = (np.asarray(t) for t in make_trainer(cfg).targets(5000))
    assert real_t.shape == fake_t.shape == (5000, 1)
    assert real_t.min() >= 0.7 and real_t.max() <= 1.0 and real_t.std() > 0.05
    assert fake_t.min() >= 0.0 and fake_t.max() <= 0.3 and fake_t.std() > 0.05
    assert make_trainer(Config(real_label=0.9, **SMALL)).targets(4) == (0.9, 0.0)  # one-sided constant


def test_label_smoothing_with_a_loss_without_targets_is_rejected():
    from ganlib import ConfigError

    with pytest.raises(ConfigError, match="label smoothing"):
        Config(loss="hinge", real_label=0.9)
