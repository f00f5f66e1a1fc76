import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GANLIB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".cache", "ganlib"))

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**overrides):
    """A configuration that trains in about a second on 2 cores."""
    from ganlib import Config

    values = dict(dataset="mnist_subset", subset=64, batch_size=16, filters=8, latent_dim=16, embedding_dim=4,
                  epochs=2, steps_per_epoch=2, metric_samples=0, grid_size=4)
    values.update(overrides)
    return Config(**values)


@pytest.fixture
def tiny_config():
    return tiny
