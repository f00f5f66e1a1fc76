"""The registry ties every extension point to its implementation, and is the one place that says so."""
import inspect
import subprocess
import sys

import numpy as np
import pytest

from ganlib import registry
from ganlib.config import Config, ConfigError


def test_registry_imports_without_tensorflow():
    code = "import sys, ganlib.registry, ganlib.config; assert 'tensorflow' not in sys.modules, 'tensorflow loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", [n for n, d in registry.DATASETS.items() if d.loader])
def test_every_dataset_entry_names_a_loader(name):
    loader = registry.resolve(registry.DATASETS[name].loader)
    assert list(inspect.signature(loader).parameters) == ["split", "data_dir"]


def test_dataset_entries_match_what_the_loaders_return():
    from ganlib.data import load_dataset

    for name in ("digits", "mnist_subset"):  # the two that are always available offline
        entry, data = registry.DATASETS[name], load_dataset(name)
        assert (len(data), data.images.shape[1], data.images.shape[-1], data.num_classes) == \
            (entry.train_size, entry.image_size, entry.channels, entry.classes)


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_every_model_entry_builds(name):
    from ganlib.models import build_models

    config = Config(dataset="digits", model=name, filters=4, latent_dim=4, embedding_dim=2, depth=1)
    g, d = build_models(config, (8, 8, 1), 10)
    assert g.outputs[-1].shape[1:] == (8, 8, 1) and d.outputs[0].shape[-1] == 1


def test_every_loss_class_is_registered_and_every_entry_resolves():
    from ganlib import losses

    classes = {c for c in vars(losses).values() if isinstance(c, type) and issubclass(c, losses.Loss)
               and c is not losses.Loss}
    registered = {registry.resolve(e.implementation) for e in registry.LOSSES.values()}
    assert registered == classes
    for name, entry in registry.LOSSES.items():
        assert entry.lipschitz in (None, "clip", "gradient_penalty")
        assert isinstance(losses.get_loss(name), losses.Loss)


def test_loss_entries_drive_config_checks():
    """Label smoothing is refused exactly for the losses whose entries say they use no targets."""
    for name, entry in registry.LOSSES.items():
        if entry.uses_targets:
            Config(loss=name, real_label=0.9)
        else:
            with pytest.raises(ConfigError, match="real_label"):
                Config(loss=name, real_label=0.9, d_norm="layer")


def test_metric_entries_resolve_and_have_valid_inputs():
    for m in registry.METRICS.values():
        assert set(m.inputs) <= set(registry.METRIC_INPUTS)
        if m.compute:
            assert callable(registry.resolve(m.compute))


def test_compare_features_reports_exactly_the_computed_metrics():
    from ganlib.metrics.evaluate import compare_features

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    probs = rng.dirichlet(np.ones(10), 60)
    out = compare_features(real, fake, probs, np.arange(60) % 10)
    assert set(out) == {m.name for m in registry.METRICS.values() if m.compute}
    assert set(compare_features(real, fake)) == {m.name for m in registry.METRICS.values()
                                                 if m.compute and "fake_probs" not in m.inputs}
    fake[0, 0] = np.nan  # a diverged generator: NaN, not an error
    assert all(np.isnan(v) for k, v in compare_features(real, fake).items())


def test_metric_direction_comes_from_the_registry_not_the_name():
    assert registry.lower_is_better("final_fid") and registry.lower_is_better("best_fid")
    assert not registry.lower_is_better("final_label_accuracy") and not registry.lower_is_better("final_recall")
    assert registry.lower_is_better("train_seconds")
    with pytest.raises(registry.UnknownMetricError, match="register it in ganlib.registry.METRICS"):
        registry.lower_is_better("final_sharpness")  # unknown: an error, never a guess


def test_a_new_metric_is_computed_ranked_and_reported_from_its_entry_alone(monkeypatch):
    """What 'a new metric in two files' means: its entry (and its function) is all the code needs."""
    from analysis import figures
    from ganlib.metrics.evaluate import compare_features

    entry = registry.Metric("mean_gap", "mean gap", True, "numpy:ptp", ("fake_features",))
    monkeypatch.setitem(registry.METRICS, "mean_gap", entry)
    rng = np.random.default_rng(0)
    out = compare_features(rng.normal(size=(30, 3)), rng.normal(size=(30, 3)))
    assert "mean_gap" in out and out["mean_gap"] > 0
    assert figures.lower_is_better("final_mean_gap")


def test_catalog_lists_every_kind():
    catalog = registry.catalog()
    assert set(catalog) == {"datasets", "models", "losses", "metrics", "recipes", "tricks"}
    assert set(catalog["losses"]) == set(registry.LOSSES) and "fid" in catalog["metrics"]
    out = subprocess.run([sys.executable, "-m", "ganlib.registry"], capture_output=True, text=True, check=True).stdout
    assert "wgan_gp" in out and "lower is better" in out


def _row(table: str, field: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"| `{field}` |"))


def test_configuration_docs_list_every_registered_choice():
    """docs/configuration.md's allowed values of dataset, model, loss and recipe are the registry's names."""
    from pathlib import Path

    from ganlib.recipes import RECIPES

    table = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for field, names in (("dataset", registry.DATASETS), ("model", registry.MODELS), ("loss", registry.LOSSES),
                         ("recipe", RECIPES)):
        row = _row(table, field)
        assert [n for n in names if f"`{n}`" not in row] == [], field


def test_extending_docs_name_every_kind_and_file():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "extending.md").read_text()
    for needle in ("ganlib/registry.py", "ganlib/losses.py", "ganlib/metrics/", "ganlib/data.py", "ganlib/models.py",
                   "ganlib/recipes.py", "python -m ganlib.registry"):
        assert needle in text, needle


@pytest.mark.parametrize("values, expected", [
    ({"recipe": "dcgan"}, "ccd70d537d"), ({"recipe": "sngan"}, "25d37b9b92"), ({"recipe": "wgan_gp"}, "deb3bfb958"),
    ({"recipe": "tutorial"}, "2e838481b2"),
    ({"recipe": "dcgan", "dataset": "digits", "model": "mlp", "loss": "lsgan", "real_label": [0.8, 1.0]}, "9ead1e4413"),
    ({"recipe": "dcgan", "dataset": "fashion_mnist", "lr": 1e-4, "d_steps": [[0, 2], [5, 1]]}, "f7b7be991c"),
    ({}, "ab3c41ba8e"),  # the balanced recipe (the default since 2026-12-07)
])
def test_config_hashes_do_not_change(values, expected):
    """Run directories and studies find their runs by Config.hash: a refactor must leave every hash as it was
    (these values were computed before the registry existed, at commit 313ad0e)."""
    assert Config(**values).hash == expected


def test_every_trick_names_a_config_field_and_a_valid_value():
    import yaml

    from ganlib import Config

    for name, trick in registry.TRICKS.items():
        settings = dict(part.split(": ", 1) for part in trick.setting.split(" + "))  # "a: 1 + b: 2": together
        Config(**{f: yaml.safe_load(v) if f != "augment" else v for f, v in settings.items()})  # accepted values
        assert set(settings) <= {f for f in Config.__dataclass_fields__}, name
