"""Training tricks do what they say: clipping, d_steps (fixed and scheduled), EMA, lr schedules, bfloat16."""
import numpy as np
import pytest

from ganlib import Config, ConfigError
from test_losses import SMALL, batch, make_trainer
from tiny import tiny


def test_weight_clipping_keeps_every_discriminator_weight_within_the_clip_value():
    trainer = make_trainer(Config(loss="wgan", clip_value=0.01, **SMALL))
    trainer.train_on_batch(*batch(8), return_dict=True)
    weights = np.concatenate([np.ravel(w) for w in trainer.discriminator.get_weights()])
    trainable = np.concatenate([np.ravel(w.numpy()) for w in trainer.discriminator.trainable_weights])
    assert np.abs(trainable).max() <= 0.01 + 1e-7
    assert np.isclose(np.abs(trainable).max(), 0.01)  # the initial weights were larger: clipping happened
    assert weights.size >= trainable.size


@pytest.mark.parametrize("k", [1, 3])
def test_d_steps_updates_d_k_times_per_generator_update_on_k_real_batches(k):
    trainer = make_trainer(Config(d_steps=k, **SMALL))
    for step in range(2):
        trainer.train_on_batch(*batch(8 * k, seed=step), return_dict=True)
    assert int(trainer.g_optimizer.iterations.numpy()) == 2
    assert int(trainer.d_optimizer.iterations.numpy()) == 2 * k


def test_d_steps_draws_batch_size_times_d_steps_images_per_step():
    cfg = Config(d_steps=3, **SMALL)
    assert cfg.effective_batch == 24
    assert Config(d_steps=[[0, 3], [2, 1]], **SMALL).effective_batch == 24  # the schedule's largest batch
    with pytest.raises(ConfigError, match="d_steps"):
        Config(d_steps=[[1, 3]], **SMALL)  # a schedule starts at epoch 0


def test_constant_schedule_gives_exactly_the_fixed_results():
    results = []
    for d_steps in (2, [[0, 2]], [[0, 2], [5, 2]]):
        trainer = make_trainer(Config(d_steps=d_steps, **SMALL))
        logs = [trainer.train_on_batch(*batch(16, seed=s), return_dict=True) for s in range(2)]
        results.append((logs, trainer.generator.get_weights() + trainer.discriminator.get_weights()))
    for logs, weights in results[1:]:
        assert logs == results[0][0]
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_d_steps_schedule_follows_the_epochs():
    cfg = Config(d_steps=[[0, 3], [1, 1], [2, 3]], **SMALL)
    assert [cfg.d_steps_at(e) for e in range(4)] == [3, 1, 3, 3]
    trainer = make_trainer(cfg)
    trainer.steps_per_epoch = 2
    d_iterations = []
    for step in range(6):  # 3 epochs of 2 steps
        trainer.train_on_batch(*batch(24, seed=step), return_dict=True)
        d_iterations.append(int(trainer.d_optimizer.iterations.numpy()))
    assert d_iterations == [3, 6, 7, 8, 11, 14]


def test_d_steps_schedule_in_a_run_and_its_config_round_trip(tmp_path):
    import keras

    from conftest import tiny
    from ganlib.run import train

    class Count(keras.callbacks.Callback):
        seen = []

        def on_epoch_end(self, epoch, logs=None):
            model = self.model
            self.seen.append((int(model.g_optimizer.iterations.numpy()), int(model.d_optimizer.iterations.numpy())))

    cfg = tiny(dataset="digits", d_steps=[[0, 3], [1, 1]], epochs=2, steps_per_epoch=2, batch_size=8)
    assert Config.from_dict(cfg.to_dict()) == cfg
    summary = train(cfg, tmp_path / "run", verbose=0, callbacks=[Count()])
    assert summary["status"] == "completed"
    assert Count.seen == [(2, 6), (4, 8)]


def test_ema_weights_lag_the_raw_weights_by_the_decay():
    trainer = make_trainer(Config(ema=0.9, ema_rampup=0, **SMALL))  # no ramp-up: the fixed decay from step 1
    before = trainer.ema_generator.get_weights()
    for a, b in zip(before, trainer.generator.get_weights()):
        np.testing.assert_array_equal(a, b)  # the average starts at the initial weights
    trainer.train_on_batch(*batch(8), return_dict=True)
    trained = [w.trainable for w in trainer.generator.weights]
    raw, ema = trainer.generator.get_weights(), trainer.ema_generator.get_weights()
    for b, r, e, t in zip(before, raw, ema, trained):
        if t:  # trained weights are averaged; batch-norm statistics are recomputed for the average instead
            np.testing.assert_allclose(e, 0.9 * b + 0.1 * r, rtol=1e-5, atol=1e-7)
    assert trainer.sampling_generator is trainer.ema_generator
    assert any(not np.allclose(r, e) for r, e in zip(raw, ema))


@pytest.mark.parametrize("schedule, half, end", [("constant", 1.0, 1.0), ("linear_decay", 0.5, 0.0),
                                                 ("cosine", 0.5, 0.0)])
def test_lr_schedules_reach_the_expected_values_for_both_networks(schedule, half, end):
    # 4 generator steps; D is updated twice per step, so its schedule spans 8 updates
    cfg = Config(lr_schedule=schedule, g_lr=1e-3, d_lr=4e-3, d_steps=2, **SMALL)
    trainer = make_trainer(cfg, total_steps=4)

    def rates():
        return [float(np.asarray(opt.learning_rate)) for opt in (trainer.g_optimizer, trainer.d_optimizer)]

    np.testing.assert_allclose(rates(), (1e-3, 4e-3), rtol=1e-5)
    for step in range(4):
        trainer.train_on_batch(*batch(16, seed=step), return_dict=True)
        if step == 1:
            np.testing.assert_allclose(rates(), (half * 1e-3, half * 4e-3), rtol=1e-5)
    np.testing.assert_allclose(rates(), (end * 1e-3, end * 4e-3), rtol=1e-5, atol=1e-9)


def test_mixed_bfloat16_training_is_finite_and_keeps_float32_where_it_matters():
    import tensorflow as tf

    cfg = Config(precision="mixed_bfloat16", loss="wgan_gp", d_norm="spectral", ema=0.5, r1_weight=1.0, **SMALL)
    trainer = make_trainer(cfg)
    for step in range(2):
        logs = trainer.train_on_batch(*batch(8, seed=step), return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert trainer.generator.get_layer("g_up0").compute_dtype == "bfloat16"
    z, labels = tf.random.normal((4, 8)), tf.constant([0, 1, 2, 3])
    images = trainer.generator([z, labels])
    assert images.dtype == tf.float32
    assert trainer.discriminator([images, labels]).dtype == tf.float32
    real = tf.constant(batch(4)[0])
    assert trainer.gradient_penalty(real, images, labels).dtype == tf.float32
    assert all(w.dtype == "float32" for w in trainer.ema_generator.weights)
    # Spectral normalization keeps the float32 master kernel: not rounded to bfloat16 at each call
    kernel = trainer.discriminator.get_layer("d_down0_sn").layer.kernel.numpy()
    rounded = kernel.astype(tf.bfloat16.as_numpy_dtype).astype("float32")
    assert not np.array_equal(kernel, rounded)


def test_every_config_field_is_documented():
    from dataclasses import fields

    from conftest import ROOT

    with open(f"{ROOT}/docs/configuration.md") as f:
        table = f.read()
    missing = [f.name for f in fields(Config) if f"`{f.name}`" not in table]
    assert not missing


def test_d_steps_does_not_depend_on_the_dataset_size(tmp_path):
    """36 images, batch 8, 5 D steps per G step (40 images a step): trains, the step's D batches reusing images."""
    from ganlib.run import train
    from tiny import tiny

    config = tiny(subset=36, batch_size=8, d_steps=5, steps_per_epoch=None, epochs=1)
    summary = train(config, tmp_path / "run", verbose=0)
    assert summary["status"] == "completed" and summary["steps_per_epoch"] == 1
    with pytest.raises(ConfigError, match="batch_size=64.*at most 36"):
        tiny(subset=36, batch_size=64)


# ---------------------------------------------------------------------------------------------- ADA
def test_adaptive_augmentation_moves_its_probability_and_resumes_bit_identically(tmp_path):
    """ADA (ada_target): p rises while E[sign(D(real))] is above the target, falls below it (by batch /
    (ada_kimg x 1000) per D update, within [0, 1]); the checkpoint carries p, so a run interrupted after epoch 2
    and resumed logs exactly what an uninterrupted run logs."""
    import keras
    import numpy as np

    from ganlib.config import ConfigError
    from ganlib.rundir import RunDirectory, load_arrays
    from ganlib.run import train

    config = tiny(augment="translation,cutout", ada_target=0.6, ada_kimg=0.5, epochs=3)
    train(config, tmp_path / "straight", verbose=0)
    straight = RunDirectory(tmp_path / "straight").read_batches()
    p, rt = straight["augment_p"].to_numpy(), straight["ada_rt"].to_numpy()
    step = config.batch_size / (config.ada_kimg * 1000)
    expected = np.clip(np.concatenate([[0.0], p[:-1]]) + np.sign(rt - 0.6) * step, 0, 1)
    np.testing.assert_allclose(p, expected, atol=1e-6)  # the heuristic, step by step

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", verbose=0, callbacks=[Interrupt()])
    assert load_arrays(RunDirectory(tmp_path / "resumed").checkpoint_file)["epoch"] == 2
    train(config, tmp_path / "resumed", verbose=0)
    resumed = RunDirectory(tmp_path / "resumed").read_batches()
    np.testing.assert_array_equal(resumed[["d_loss", "g_loss", "ada_rt", "augment_p"]],
                                  straight[["d_loss", "g_loss", "ada_rt", "augment_p"]])
    with pytest.raises(ConfigError, match="ada_target.*without an augment policy"):
        tiny(ada_target=0.6, augment="")


def test_the_overfitting_signal_is_logged_each_epoch(tmp_path):
    """D's confidence on training vs held-out real images (E[sign(D(x))]) and their gap, per epoch."""
    import numpy as np

    from ganlib.rundir import RunDirectory
    from ganlib.run import train

    train(tiny(epochs=2), tmp_path / "run", verbose=0)
    epochs = RunDirectory(tmp_path / "run").read_epochs()
    for column in ("d_real_train", "d_real_heldout", "d_overfit_gap"):
        assert epochs[column].between(-2, 2).all(), column
    np.testing.assert_allclose(epochs["d_overfit_gap"], epochs["d_real_train"] - epochs["d_real_heldout"])
