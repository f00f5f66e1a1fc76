import pytest

from ganlib import Config, ConfigError


@pytest.mark.parametrize("changes, field, fragment", [
    (dict(lr=-1e-4), "lr", "> 0"),  # the field the user typed, not g_lr
    (dict(d_lr=0.0), "d_lr", "> 0"),
    (dict(dataset="cifar"), "dataset", "fashion_mnist"),
    (dict(model="resnet"), "model", "dcgan"),
    (dict(loss="focal"), "loss", "wgan_gp"),
    (dict(optimizer="adagrad"), "optimizer", "rmsprop"),  # the field the user typed
    (dict(image_size=30), "image_size", "divisible by 2**g_depth"),
    (dict(image_size=28, depth=3), "image_size", "g_depth=3"),
    (dict(batch_size=5000), "batch_size", "at most 4000"),
    (dict(subset=50, batch_size=64), "batch_size", "subset=50"),
    (dict(epochs=0), "epochs", "integer 1..100000"),
    (dict(epochs=10 ** 21), "epochs", "integer 1..100000"),
    (dict(steps_per_epoch=10 ** 12), "steps_per_epoch", "1..1000000"),
    (dict(epochs=1001, steps_per_epoch=10 ** 6), "steps_per_epoch", "training steps in all"),
    (dict(steps_per_epoch=10 ** 6, batch_size=1024), "steps_per_epoch", "images per step"),
    (dict(init_from=123), "init_from", "a string"),
    (dict(precision="float16"), "precision", "mixed_bfloat16"),
    (dict(dropout=1.5), "dropout", "<= 0.95"),
    (dict(real_label=[0.9, 0.7]), "real_label", "range"),
    (dict(dataset="folder"), "data_dir", "folder of images"),
    (dict(channels=2), "channels", "1, 3, 4"),
    (dict(g_leaky_slope=-0.1), "g_leaky_slope", ">= 0"),
    (dict(conditional="yes"), "conditional", "True or False"),
    (dict(loss="wgan_gp", norm="batch"), "norm", "gradient penalty"),
])
def test_invalid_values_name_field_value_and_allowed(changes, field, fragment):
    with pytest.raises(ConfigError) as err:
        Config(**changes)
    assert err.value.field == field
    message = str(err.value)
    assert field in message and fragment in message
    assert repr(err.value.value) in message


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean 'latent_dim'"):
        Config.from_dict({"latnt_dim": 10})


def test_per_network_values_default_to_shared_ones():
    c = Config(lr=1e-3, d_lr=4e-4, leaky_slope=0.1)
    assert (c.g_lr, c.d_lr) == (1e-3, 4e-4)
    assert c.g_leaky_slope == c.d_leaky_slope == 0.1
    # replace() lets a changed shared value flow into per-network fields that were not given
    c2 = c.replace(lr=5e-4)
    assert (c2.g_lr, c2.d_lr) == (5e-4, 5e-4)


def test_hash_is_stable_and_ignores_output_settings():
    a, b = Config(), Config()
    assert a.hash == b.hash and len(a.hash) == 10
    assert Config(sample_interval=5, threads=2).hash == a.hash
    assert Config(lr=1e-4).hash != a.hash
    assert Config(seed=1).hash != a.hash
    # a config round-trips through its dict without changing identity
    assert Config.from_dict(a.to_dict()).hash == a.hash


def test_valid_sizes_for_depth():
    assert Config(image_size=32, depth=3).resolved_image_size == 32
    assert Config(image_size=64, depth=4, dataset="mnist_subset").g_depth == 4
    assert Config(model="mlp", image_size=30).resolved_image_size == 30  # mlp has no size constraint


def test_an_error_names_the_field_the_user_typed():
    """lr sets g_lr and d_lr; a bad lr was reported as g_lr, a field the user never wrote."""
    with pytest.raises(ConfigError, match=r"Invalid configuration: lr='x'"):
        Config.from_dict({"lr": "x"})
    with pytest.raises(ConfigError, match=r"Invalid configuration: filters=0"):
        Config(filters=0)
    with pytest.raises(ConfigError, match=r"Invalid configuration: g_lr=-1"):
        Config(g_lr=-1)
