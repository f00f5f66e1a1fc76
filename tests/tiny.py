"""The one tiny training configuration of the test suite: trains in about a second on 2 cores.

Tests import it (`from tiny import TINY, tiny`); a test that needs something else says what it changes.
"""
TINY = dict(dataset="mnist_subset", subset=64, batch_size=16, filters=8, latent_dim=16, embedding_dim=4,
            epochs=2, steps_per_epoch=2, metric_samples=0, grid_size=4)


def tiny(**overrides):
    """`Config(**TINY)` with some fields changed."""
    from ganlib import Config

    return Config(**{**TINY, **overrides})
