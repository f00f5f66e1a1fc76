"""The settings form (ganlib.settings_form): generated from Config, validated live, trains with progress."""
from dataclasses import fields

import pytest

from ganlib import Config, ConfigError
from ganlib.settings_form import CHOICES, GROUPS, SettingsForm
from tiny import TINY


def test_every_config_field_has_exactly_one_input():
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(f.name for f in fields(Config)) and len(grouped) == len(set(grouped))
    for name, options in CHOICES.items():
        assert name in grouped and len(options) >= 2


def test_typed_text_is_read_as_yaml_and_validated_with_configs_errors():
    form = SettingsForm(**TINY)
    assert form.error is None and form.config.hash == Config(**TINY).hash
    form.set(lr="2e-4", real_label="[0.8, 1.0]")
    assert form.config.g_lr == 2e-4 and form.config.real_label == [0.8, 1.0]
    form.set(batch_size="0")
    assert "batch_size=0" in form.error
    with pytest.raises(ConfigError):
        form.config
    form.set(batch_size="16", loss="hinge")  # label smoothing with a loss without targets: refused, named
    assert "real_label" in form.error
    form.set(real_label="1.0")
    assert form.error is None
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        form.set(lrr=1e-3)


def test_the_widget_shows_the_error_and_trains_a_valid_config(tmp_path):
    form = SettingsForm(run_dir=str(tmp_path / "run"), **TINY)
    ui = form.widget
    assert len(ui.children[0].children) == len(GROUPS)
    form._inputs["epochs"].value = "-1"  # as typed in the box
    assert "epochs=-1" in form._status.value and form._button.disabled
    form._inputs["epochs"].value = "2"
    assert "valid: config hash" in form._status.value and not form._button.disabled
    form._inputs["loss"].value = "lsgan"  # a drop-down of the registry's losses
    assert form.config.loss == "lsgan"
    form._train_clicked()
    assert "completed" in form._log.value and form._bar.value == 2 == form._bar.max
    assert form._picture.value[:4] == b"\x89PNG"  # the newest sample grid


def test_a_form_from_a_run_is_that_run_and_changes_like_config_replace(tmp_path):
    from ganlib.rundir import RunDirectory

    trained = Config(**{**TINY, "recipe": "sngan", "d_lr": 4e-4})
    RunDirectory(tmp_path / "run").write_config(trained)
    form = SettingsForm.from_run(tmp_path / "run")
    assert form.config.hash == trained.hash and form.run_dir is None  # a variation goes to a new run directory
    assert form.values["g_lr"] is None and form.values["d_lr"] == 4e-4 and form.values["loss"] is None
    form.set(lr="1e-4")
    assert (form.config.g_lr, form.config.d_lr) == (1e-4, 4e-4)  # g_lr followed lr; d_lr had been chosen
    form.set(recipe="dcgan")
    assert form.config.loss == "bce" and form.config.d_lr == 4e-4  # recipe values follow; a chosen one stays
    assert SettingsForm.from_run(tmp_path / "run", epochs=5).config.epochs == 5
