"""ganlib.sampling: images from a generator, shared by metrics, callbacks, exploration and the report."""
import subprocess
import sys

import numpy as np

from ganlib import Config
from ganlib.sampling import generate, generate_at, is_conditional, latent_dim_of, num_classes_of, seeded_samples


def _generators():
    from ganlib.models import build_models

    config = dict(dataset="digits", filters=4, latent_dim=6, embedding_dim=2, depth=1)
    conditional, _ = build_models(Config(**config), (8, 8, 1), 10)
    unconditional, _ = build_models(Config(conditional=False, **config), (8, 8, 1), 10)
    return conditional, unconditional


def test_using_a_generator_does_not_import_the_training_step():
    code = ("import sys, ganlib.sampling, ganlib.metrics, ganlib.explore, ganlib.callbacks, analysis.figures; "
            "assert 'ganlib.trainer' not in sys.modules, 'ganlib.trainer was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_seeded_samples_are_reproducible_and_cycle_through_the_classes():
    conditional, unconditional = _generators()
    assert is_conditional(conditional) and not is_conditional(unconditional)
    assert latent_dim_of(conditional) == 6 and num_classes_of(conditional) == 10 and num_classes_of(unconditional) is None
    a, labels = seeded_samples(conditional, 12, seed=3)
    b, _ = seeded_samples(conditional, 12, seed=3)
    np.testing.assert_array_equal(a, b)
    assert labels.tolist() == [i % 10 for i in range(12)] and a.shape == (12, 8, 8, 1)
    z = np.random.default_rng(3).standard_normal((12, 6)).astype(np.float32)
    np.testing.assert_array_equal(a, generate(conditional, z, labels))  # exactly these latent points
    images, none = seeded_samples(unconditional, 5, seed=0)
    assert none is None and images.shape == (5, 8, 8, 1) and np.abs(images).max() <= 1


def test_generate_in_batches_equals_one_batch_and_generate_at_takes_one_point():
    conditional, _ = _generators()
    z = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    labels = np.arange(7) % 10
    np.testing.assert_allclose(generate(conditional, z, labels, batch_size=3), generate(conditional, z, labels),
                               atol=1e-6)
    np.testing.assert_allclose(generate_at(conditional, z[2], 2)[0], generate(conditional, z, labels)[2], atol=1e-6)
    assert generate(conditional, z[:0], labels[:0]).shape == (0, 8, 8, 1)


def test_a_generator_that_ignores_its_labels_is_named():
    """render_text from a generator whose label input has no effect warns (issue: HELLO WORLD from 10 identical
    glyphs without a word); an untrained but label-sensitive generator does not."""
    import pytest

    from ganlib.latent import render_text
    from ganlib.sampling import label_sensitivity

    conditional, _ = _generators()
    embedding = next(layer for layer in conditional.layers if hasattr(layer, "input_dim"))
    rng = np.random.default_rng(0)  # labels that matter, as after training (trained runs measured 1.1-1.4)
    embedding.set_weights([rng.normal(0, 30, w.shape).astype("float32") for w in embedding.get_weights()])
    assert label_sensitivity(conditional) > 0.05
    embedding.set_weights([np.zeros_like(w) for w in embedding.get_weights()])  # every label the same vector
    assert label_sensitivity(conditional) < 1e-3
    with pytest.warns(UserWarning, match="ignores its labels"):
        render_text(conditional, [str(i) for i in range(10)], "42")
    assert np.isnan(label_sensitivity(_generators()[1]))
