import numpy as np
import pytest

from ganlib import GAN
from conftest import tiny


def test_gan_workflow_train_sample_save_load(tmp_path):
    gan = GAN(tiny(), run_dir=tmp_path / "run")
    with pytest.raises(RuntimeError, match="call .train"):
        gan.sample(2)
    assert gan.train(verbose=0)["status"] == "completed"
    images = gan.sample(6, labels=[1] * 6, seed=0)
    assert images.shape == (6, 28, 28, 1) and -1 <= images.min() and images.max() <= 1
    np.testing.assert_allclose(images, gan.sample(6, labels=[1] * 6, seed=0))
    fig = gan.plot_grid(tmp_path / "grid.png", n=4)
    assert (tmp_path / "grid.png").exists() and fig is not None
    copy = gan.save(tmp_path / "copy")
    assert (copy / "models" / "generator.keras").exists()
    loaded = GAN.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.sample(6, labels=[1] * 6, seed=0), images, atol=1e-6)
    lines = []
    info = loaded.summary(print_fn=lines.append)
    assert info["status"] == "completed" and any("status completed" in l for l in lines)


def test_keyword_fields_and_default_run_dir():
    gan = GAN(dataset="digits", image_size=16, batch_size=8, epochs=1)
    assert gan.config.image_size == 16 and str(gan.run_dir).startswith("runs/digits-")
