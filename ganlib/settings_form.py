"""A settings form for one training run (ipywidgets), generated from `ganlib.Config`'s fields.

    from ganlib.settings_form import SettingsForm
    form = SettingsForm(recipe="sngan", dataset="fashion_mnist")   # any Config fields as starting values
    form.widget                                                     # show it in Jupyter
    form.config                                                     # the validated Config (ConfigError if not)
    form.train()                                                    # or press "Train": live progress below

Every field of `Config` has one input, grouped as in docs/configuration.md. Fields with a fixed set of values
(registry entries, recipes, optimizers, norms, ...) are drop-downs; the rest are text boxes read as YAML (`2e-4`,
`[0.8, 1.0]`, `null`), so what a user types means what it means in a study file or a `-p` parameter. The form
validates on every change with `Config`'s own errors (field, value, what is allowed) and trains only a valid
configuration. Training reports each epoch's losses, a progress bar and the latest sample grid.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Optional

from . import config as C
from . import registry
from .recipes import RECIPES

# The groups of docs/configuration.md; every Config field is in exactly one (tests/test_settings_form.py).
GROUPS = {
    "data": ("dataset", "data_dir", "subset", "image_size", "channels", "on_bad_image"),
    "recipe and model": ("recipe", "model", "latent_dim", "conditional", "embedding_dim", "d_conditioning", "filters",
                         "g_filters", "d_filters", "filter_growth", "depth", "g_depth", "d_depth", "upsampling",
                         "leaky_slope", "g_leaky_slope", "d_leaky_slope", "dropout", "norm", "g_norm", "d_norm",
                         "weight_init"),
    "loss and tricks": ("loss", "gp_weight", "clip_value", "r1_weight", "real_label", "fake_label", "d_steps", "ema", "ema_kimg",
                        "ema_rampup", "mbstd_group", "mode_seeking", "augment", "ada_target", "ada_kimg"),
    "optimization": ("optimizer", "g_optimizer", "d_optimizer", "lr", "g_lr", "d_lr", "beta1", "g_beta1", "d_beta1",
                     "beta2", "g_beta2", "d_beta2", "lr_schedule", "batch_size", "epochs", "steps_per_epoch", "seed",
                     "precision"),
    "outputs": ("sample_interval", "checkpoint_interval", "metric_interval", "metric_samples", "grid_size",
                "tensorboard", "divergence_patience", "init_from", "threads"),
}
CHOICES = {
    "dataset": tuple(registry.DATASETS), "model": tuple(registry.MODELS), "loss": tuple(registry.LOSSES),
    "recipe": tuple(RECIPES), "on_bad_image": ("skip", "error"), "d_conditioning": C.D_CONDITIONINGS,
    "upsampling": C.UPSAMPLINGS, "weight_init": ("glorot", "normal_0.02"), "lr_schedule": C.LR_SCHEDULES,
    "precision": C.PRECISIONS, "channels": C.CHANNELS,
    **{f"{p}optimizer": C.OPTIMIZERS for p in ("", "g_", "d_")},
    **{f"{p}norm": C.NORMALIZATIONS for p in ("", "g_", "d_")},
}
# Fields whose None means "from the recipe" or "same as the shared value": their drop-downs offer that too.
_OPTIONAL = {f.name for f in fields(C.Config) if f.default is None}


def _text(value) -> str:
    import yaml

    return "" if value is None else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


class SettingsForm:
    def __init__(self, run_dir: Optional[str] = None, **values):
        unknown = sorted(set(values) - {f.name for f in fields(C.Config)})
        if unknown:
            C.Config.from_dict(values)  # raises the did-you-mean error
        self.values = {f.name: values.get(f.name, f.default if f.default is not MISSING else None)
                       for f in fields(C.Config)}
        self.run_dir = run_dir
        self.error: Optional[str] = None
        self._ui = None
        self._config: Optional[C.Config] = None
        self.validate()

    @classmethod
    def from_run(cls, run_dir, **values) -> "SettingsForm":
        """A form starting from a run's configuration, to train a variation of it (a new run directory).

        Values its recipe or a shared field gave are left "(from recipe / shared)", so changing `lr` or the recipe
        in the form moves them along; values that were chosen (a `d_lr` unlike `lr`) stay."""
        from .rundir import RunDirectory

        trained = RunDirectory(run_dir).read_config().to_dict()
        start = dict(trained)
        recipe = C.recipe_values(trained["recipe"]) if trained.get("recipe") in C.RECIPES else {}
        for name, value in recipe.items():
            if trained.get(name) == value:
                start[name] = None
        for name, shared in C.SHARED_DEFAULTS.items():
            if trained[name] == trained[shared]:
                start[name] = None
        return cls(**{**{k: v for k, v in start.items() if v is not None}, **values})

    # ------------------------------------------------------------------ state
    def set(self, **values) -> "SettingsForm":
        """Change fields as a user typing would (values, or text read as YAML); validates."""
        for name, value in values.items():
            if name not in self.values:
                C.Config.from_dict({name: value})  # the did-you-mean error
            self.values[name] = self._parse(name, value)
            if self._ui is not None:
                self._inputs[name].value = self._shown(name)
        return self.validate()

    def _parse(self, name, value):
        import yaml

        if not isinstance(value, str) or name in CHOICES or name in ("data_dir", "init_from"):
            return None if value in ("", "(from recipe / shared)") else value
        try:
            return yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            return value  # left for Config to refuse, naming the field

    def validate(self) -> "SettingsForm":
        """Build the Config; keep its error (or None) in `error`."""
        given = {k: v for k, v in self.values.items() if v is not None}
        try:
            self._config, self.error = C.Config.from_dict(given), None
        except (C.ConfigError, TypeError) as e:
            self._config, self.error = None, str(e)
        if self._ui is not None:
            self._show_status()
        return self

    @property
    def config(self) -> C.Config:
        """The validated configuration (ConfigError, naming the field, while the form holds an invalid one)."""
        if self._config is None:
            raise C.ConfigError("form", "", self.error or "valid values")
        return self._config

    @property
    def default_run_dir(self) -> str:
        return self.run_dir or str(Path("runs") / f"{self.config.dataset}-{self.config.hash}")

    # ------------------------------------------------------------------ training
    def train(self, verbose: int = 0) -> dict:
        """Train the form's configuration into `run_dir` (default runs/<dataset>-<hash>), with live progress."""
        from .run import train

        config = self.config
        progress = _Progress(self, config.epochs)
        return train(config, self.default_run_dir, verbose=verbose, callbacks=[progress.callback()])

    # ------------------------------------------------------------------ widgets
    def _shown(self, name):
        value = self.values[name]
        if name in CHOICES:
            return "(from recipe / shared)" if value is None else value
        if isinstance(self.values[name], bool):
            return value
        return _text(value)

    @property
    def widget(self):
        """The form: one accordion section per group, a status line, a Train button and the progress view."""
        if self._ui is None:
            self._build()
        return self._ui

    def _build(self):
        import ipywidgets as w

        self._inputs = {}
        sections = []
        for group, names in GROUPS.items():
            rows = []
            for name in names:
                style = {"description_width": "140px"}
                layout = w.Layout(width="380px")
                if name in CHOICES:
                    options = list(CHOICES[name]) + (["(from recipe / shared)"] if name in _OPTIONAL else [])
                    box = w.Dropdown(options=options, value=self._shown(name), description=name, style=style,
                                     layout=layout)
                elif isinstance(self.values[name], bool):
                    box = w.Checkbox(value=self.values[name], description=name, style=style)
                else:
                    box = w.Text(value=self._shown(name), description=name, style=style, layout=layout,
                                 placeholder="from recipe / shared" if name in _OPTIONAL else "", continuous_update=False)
                box.observe(lambda change, n=name: self._changed(n, change["new"]), names="value")
                self._inputs[name] = box
                rows.append(box)
            sections.append(w.GridBox(rows, layout=w.Layout(grid_template_columns="repeat(2, 390px)")))
        accordion = w.Accordion(children=sections, titles=tuple(GROUPS))
        self._status = w.HTML()
        self._button = w.Button(description="Train", button_style="primary", icon="play")
        self._button.on_click(lambda _: self._train_clicked())
        self._bar = w.IntProgress(min=0, max=1, description="epochs")
        self._log = w.HTML()
        self._picture = w.Image(format="png")
        self._ui = w.VBox([accordion, self._status, w.HBox([self._button, self._bar]), self._log, self._picture])
        self._show_status()

    def _changed(self, name, value):
        parsed = self._parse(name, value)
        if parsed != self.values[name]:
            self.values[name] = parsed
            self.validate()

    def _show_status(self):
        import html

        if self.error:
            self._status.value = f'<span style="color:#c62828">{html.escape(self.error)}</span>'
        else:
            self._status.value = (f'<span style="color:#1a7f37">valid: config hash {self._config.hash}; run directory '
                                  f"{html.escape(self.default_run_dir)}</span>")
        self._button.disabled = self.error is not None

    def _train_clicked(self):
        import html

        self._button.disabled = True
        try:
            summary = self.train()
            self._log.value += f"<p><b>{html.escape(str(summary.get('status')))}</b>; verdict " \
                               f"{html.escape(str(summary.get('verdict')))}</p>"
        except Exception as e:  # shown in the form: a notebook user should not have to find a traceback
            self._log.value += f'<p style="color:#c62828">{html.escape(f"{type(e).__name__}: {e}")}</p>'
        finally:
            self._button.disabled = self.error is not None


class _Progress:
    """Per epoch: the progress bar, a line of losses and the newest sample grid (when the form is shown)."""

    def __init__(self, form: SettingsForm, epochs: int):
        self.form, self.epochs, self.lines = form, epochs, []

    def callback(self):
        import keras

        progress = self

        class FormProgress(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.epoch_done(epoch + 1, logs or {})

        return FormProgress()

    def epoch_done(self, epoch: int, logs: dict):
        line = f"epoch {epoch}/{self.epochs}: " + ", ".join(
            f"{k} {float(v):.3f}" for k, v in logs.items() if k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"))
        self.lines.append(line)
        form = self.form
        if form._ui is None:
            return
        import html

        form._bar.max, form._bar.value = self.epochs, epoch
        form._log.value = "<br>".join(html.escape(x) for x in self.lines[-5:])
        from .rundir import RunDirectory

        grids = RunDirectory(form.default_run_dir).sample_files()
        if grids:
            form._picture.value = grids[-1].read_bytes()
