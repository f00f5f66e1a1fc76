"""Recipes (ganlib.recipes) as Config resolves them, and the notebook's parameters as Config's fields."""
import ast
import dataclasses
import os

import pytest

from ganlib import Config, ConfigError
from ganlib.recipes import DEFAULT_RECIPE, RECIPE_FIELDS, RECIPES

from conftest import ROOT


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_sets_every_recipe_field(name):
    c = Config(recipe=name)
    for field, value in RECIPES[name]["values"].items():
        assert getattr(c, field) == value, field
    # per-network fields follow the recipe's shared values
    assert (c.g_lr, c.d_lr, c.g_filters) == (c.lr, c.lr, c.filters)


def test_default_is_the_balanced_recipe():
    c = Config()
    assert c.recipe == DEFAULT_RECIPE == "balanced"
    assert (c.g_norm, c.d_norm, c.loss, c.mbstd_group, c.ema_kimg, c.mode_seeking) == \
        ("conditional_batch", "none", "bce", 4, 10.0, 0.1)
    assert Config(recipe="dcgan").g_norm == "batch"


def test_recipe_values_adapt_to_an_unconditional_gan_and_the_batch_size():
    c = Config(conditional=False)
    assert c.g_norm == "batch"  # class-conditional batch norm needs classes
    assert Config(batch_size=10).mbstd_group == 2  # the largest divisor of the batch within the recipe's group
    assert Config(batch_size=7).mbstd_group == 0  # no group of 2 or more fits: off
    assert Config(batch_size=7).mode_seeking == 0.0  # it pairs the halves of a batch
    with pytest.raises(ConfigError, match="mbstd_group"):
        Config(batch_size=10, mbstd_group=4)  # a value given explicitly is never changed
    with pytest.raises(ConfigError, match="g_norm"):
        Config(conditional=False, g_norm="conditional_batch")


def test_explicit_fields_override_the_recipe():
    c = Config(recipe="sngan", lr=1e-4, dropout=0.3)
    assert (c.loss, c.d_norm, c.g_lr, c.d_lr, c.dropout) == ("hinge", "spectral", 1e-4, 1e-4, 0.3)
    # a shared field given explicitly wins over the recipe's per-network values in both networks
    c = Config(recipe="dcgan", norm="layer")
    assert c.g_norm == c.d_norm == "layer"
    c = Config(recipe="dcgan", norm="layer", g_norm="batch")
    assert (c.g_norm, c.d_norm) == ("batch", "layer")


def test_replace_switches_recipe_but_keeps_chosen_values():
    c = Config(recipe="tutorial", dropout=0.25)
    w = c.replace(recipe="wgan_gp")
    assert (w.loss, w.d_steps, w.g_beta2, w.d_norm, w.batch_size) == ("wgan_gp", 5, 0.9, "layer", 32)
    assert w.dropout == 0.25  # chosen, not the tutorial's value: kept
    assert w.replace(recipe="tutorial").to_dict() == c.to_dict()


def test_recipe_name_is_not_hashed_but_its_values_are():
    assert Config(recipe="tutorial").hash != Config().hash
    same = Config(recipe="tutorial", **RECIPES["dcgan"]["values"])
    assert same.hash == Config(recipe="dcgan").hash
    assert Config.from_dict(Config(recipe="sngan").to_dict()).hash == Config(recipe="sngan").hash


def test_unknown_recipe_lists_the_recipes():
    with pytest.raises(ConfigError, match="sngan") as err:
        Config(recipe="stylegan")
    assert err.value.field == "recipe"


def test_recipe_values_are_valid_with_every_dataset_shape():
    for name in RECIPES:
        for dataset in ("mnist_subset", "fashion_mnist", "digits"):
            extra = dict(image_size=16) if dataset == "digits" else {}
            Config(recipe=name, dataset=dataset, **extra)


def test_precision_auto_resolves_to_a_keras_policy(monkeypatch):
    from ganlib import device

    assert Config(precision="float32").resolved_precision == "float32"
    for native, expected in ((True, "mixed_bfloat16"), (False, "float32")):
        monkeypatch.setattr(device, "native_bfloat16", lambda native=native: native)
        assert Config().resolved_precision == expected


def _notebook_parameters(path):
    """name -> value of the assignments in a jupytext notebook's `parameters` cell."""
    text = open(path).read()
    cell = text.split('# %% tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    out = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.Assign):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_train_notebook_parameters_are_configs_fields_with_its_defaults():
    params = _notebook_parameters(os.path.join(ROOT, "notebooks", "train.py"))
    fields = {f.name: f.default for f in dataclasses.fields(Config)}
    assert set(params) - {"run_dir", "verbose"} == set(fields)
    for name, default in fields.items():
        assert params[name] == default, name
    assert all(fields[name] is None for name in RECIPE_FIELDS)  # None: "from the recipe"
