"""One typed object holding every hyperparameter of a training run.

`Config` is validated as a whole before any data is loaded or any model is built, so a bad value costs
milliseconds, not a training run. Per-network values (`g_lr`, `d_lr`, ...) default to the shared value
(`lr`, ...), which is what lets `papermill notebooks/train.py out.ipynb -p lr 2e-4` mean the obvious thing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from . import registry
from .recipes import DEFAULT_RECIPE, RECIPE_FIELDS, RECIPES, adapt, recipe_values

# The choices that are extension points (datasets, models, losses) are registry entries: see ganlib.registry.
DATASETS = {name: (d.train_size, d.image_size, d.channels, d.classes) for name, d in registry.DATASETS.items()}
MODELS = tuple(registry.MODELS)
LOSSES = tuple(registry.LOSSES)
OPTIMIZERS = ("adam", "rmsprop", "sgd")
NORMALIZATIONS = ("none", "batch", "layer", "instance", "spectral", "conditional_batch")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
UPSAMPLINGS = ("transpose", "upsample")
LR_SCHEDULES = ("constant", "linear_decay", "cosine")
CHANNELS = (1, 3, 4)
D_CONDITIONINGS = ("concat", "projection")
# Fields added after runs were made: left out of the hash at the value that runs made before them trained with.
HASH_OMITTED_AT = {"d_conditioning": "concat", "ema_kimg": 0.0, "mbstd_group": 0, "mode_seeking": 0.0, "augment": "",
                   "ada_target": 0.0, "ada_kimg": 100.0}

# Fields that may be left as None and then take the shared value named here.
SHARED_DEFAULTS = {
    "g_lr": "lr", "d_lr": "lr",
    "g_beta1": "beta1", "d_beta1": "beta1",
    "g_beta2": "beta2", "d_beta2": "beta2",
    "g_optimizer": "optimizer", "d_optimizer": "optimizer",
    "g_leaky_slope": "leaky_slope", "d_leaky_slope": "leaky_slope",
    "g_norm": "norm", "d_norm": "norm",
    "g_filters": "filters", "d_filters": "filters",
    "g_depth": "depth", "d_depth": "depth",
}


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


# What can run on any machine: an epoch's image order is one int32 tensor of steps x batch (256 MiB at the
# limit), and 10^9 steps is centuries on a CPU. Larger values are typos (an extra 0, a float exponent).
MAX_EPOCHS = 100_000
MAX_STEPS_PER_EPOCH = 1_000_000
MAX_TOTAL_STEPS = 1_000_000_000
MAX_EPOCH_IMAGES = 1 << 26


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str):
        self.field = field_name
        self.value = value
        self.allowed = allowed
        from .safe_io import excerpt

        super().__init__(f"Invalid configuration: {field_name}={excerpt(value)}. Allowed: {allowed}.")


@dataclass
class Config:
    """Every hyperparameter of one GAN training run. See `docs/configuration.md` for the meaning of each."""

    # data
    dataset: str = "mnist_subset"
    data_dir: Optional[str] = None  # where dataset files live (folder datasets, EMNIST, Keras caches)
    subset: Optional[int] = None  # use only the first N training images (after a seeded shuffle)
    image_size: Optional[int] = None  # None: the dataset's native size; else images are resized
    channels: Optional[int] = None  # None: the dataset's native channels; 1, 3 or 4
    on_bad_image: str = "skip"  # folder datasets: "skip" (and count) or "error" on unreadable/odd-sized images
    # recipe: a named set of the fields marked "from the recipe" (None); explicit values override it
    recipe: str = DEFAULT_RECIPE
    # model
    model: Optional[str] = None
    latent_dim: int = 100
    conditional: bool = True
    embedding_dim: int = 50
    d_conditioning: Optional[str] = None  # how D sees the label: "concat" (an input channel) or "projection"
    filters: Optional[int] = None  # conv filters (dcgan) or hidden units / 4 (mlp) per network
    g_filters: Optional[int] = None
    d_filters: Optional[int] = None
    filter_growth: Optional[float] = None  # filters are multiplied by this per layer (2.0 = classic DCGAN doubling)
    depth: Optional[int] = None  # up/down-sampling layers (dcgan) or hidden layers (mlp)
    g_depth: Optional[int] = None
    d_depth: Optional[int] = None
    upsampling: Optional[str] = None
    leaky_slope: Optional[float] = None
    g_leaky_slope: Optional[float] = None
    d_leaky_slope: Optional[float] = None
    dropout: Optional[float] = None  # discriminator dropout before the output layer
    norm: Optional[str] = None
    g_norm: Optional[str] = None
    d_norm: Optional[str] = None
    weight_init: Optional[str] = None  # or "normal_0.02" (DCGAN paper)
    # loss and training tricks
    loss: Optional[str] = None
    gp_weight: Optional[float] = None
    clip_value: float = 0.01
    r1_weight: float = 0.0
    real_label: Any = 1.0  # a constant, or [low, high] drawn uniformly per sample
    fake_label: Any = 0.0
    d_steps: Any = None  # D updates per G update: a number, or a schedule [[epoch, d_steps], ...] (see d_steps_at)
    ema: float = 0.0  # generator weight EMA as a fixed decay per step (0 = off); ema_kimg is the usual way
    ema_kimg: Optional[float] = None  # generator EMA half-life in thousands of images (0 = off; StyleGAN2-ADA: 10)
    ema_rampup: float = 0.05  # the EMA half-life is at most this share of the images seen so far (0 = no ramp-up)
    mbstd_group: Optional[int] = None  # minibatch standard-deviation feature in D over groups of this size (0 = off)
    mode_seeking: Optional[float] = None  # weight of mode-seeking regularization of G (Mao et al. 2019; 0 = off)
    augment: Optional[str] = None  # DiffAugment policy for D's inputs: "" (off) or e.g. "translation,cutout"
    ada_target: float = 0.0  # adaptive augmentation (ADA): the target of E[sign(D(real))] (0 = off, always augment; 0.6)
    ada_kimg: float = 100.0  # ADA's speed: thousands of images for the probability to move from 0 to 1
    # optimization
    optimizer: Optional[str] = None
    g_optimizer: Optional[str] = None
    d_optimizer: Optional[str] = None
    lr: Optional[float] = None
    g_lr: Optional[float] = None
    d_lr: Optional[float] = None
    beta1: Optional[float] = None
    g_beta1: Optional[float] = None
    d_beta1: Optional[float] = None
    beta2: Optional[float] = None
    g_beta2: Optional[float] = None
    d_beta2: Optional[float] = None
    lr_schedule: str = "constant"
    batch_size: Optional[int] = None
    epochs: int = 20
    steps_per_epoch: Optional[int] = None  # None: one pass over the data per epoch
    seed: int = 0
    precision: str = "auto"  # auto: mixed_bfloat16 where the CPU has native bf16 (see resolved_precision)
    # outputs
    sample_interval: int = 1  # epochs between fixed-noise sample grids
    checkpoint_interval: int = 1  # epochs between checkpoints (resume points)
    metric_interval: int = 0  # epochs between FID/KID evaluations (0 = only at the end)
    metric_samples: int = 1000  # generated and real images per metric evaluation (0 = no metrics)
    grid_size: int = 10  # sample grids are grid_size x grid_size
    tensorboard: bool = False  # also log losses, metrics and sample grids for TensorBoard (run_dir/tensorboard)
    divergence_patience: int = 3  # consecutive non-finite or collapsed epochs before status "diverged"
    init_from: Optional[str] = None  # run directory whose final generator/discriminator start this run
    threads: int = 0  # intra-op threads for this run (0 = TensorFlow's default)

    def __post_init__(self):
        self._numbers_from_text()
        self._apply_recipe()
        followed = {}  # per-network field -> the shared field the user gave for it (g_lr -> lr)
        for name, shared in SHARED_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, getattr(self, shared))
                if getattr(self, shared) is not None:
                    followed[name] = shared
        if isinstance(self.d_steps, (list, tuple)):  # a schedule: tuples and lists alike, as JSON gives them back
            self.d_steps = [list(e) if isinstance(e, (list, tuple)) else e for e in self.d_steps]
        try:
            self.validate()
        except ConfigError as e:
            if e.field in followed:  # the user typed lr=..., not g_lr=...: name what they typed
                raise ConfigError(followed[e.field], e.value, e.allowed) from None
            raise

    def _numbers_from_text(self) -> None:
        """Numbers written as text become numbers: YAML 1.1 (papermill's `-f params.yaml`) reads `2e-4` as the
        string "2e-4", and a user who wrote a number meant one. Anything else is left for validation to refuse."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                continue
            kind = str(f.type).replace("Optional[", "").rstrip("]")
            text = value.strip()
            if kind == "float" and _FLOAT_TEXT.fullmatch(text):
                setattr(self, f.name, float(text))
            elif kind == "int" and re.fullmatch(r"[-+]?\d+", text):
                setattr(self, f.name, int(text))

    def _apply_recipe(self) -> None:
        """Fill the fields left as None from the recipe. A per-network field (g_norm) whose shared field (norm)
        was given follows the shared field instead, so `norm="layer"` means layer norm in both networks."""
        if not isinstance(self.recipe, str) or self.recipe not in RECIPES:
            raise ConfigError("recipe", self.recipe, "one of " + ", ".join(RECIPES) + " (see ganlib.recipes)")
        given = {name for name in RECIPE_FIELDS if getattr(self, name) is not None}
        values = adapt(recipe_values(self.recipe), {"conditional": self.conditional, "ema": self.ema,
                                                    **{name: getattr(self, name) for name in given}})
        for name, value in values.items():
            if name in given:
                continue
            shared = SHARED_DEFAULTS.get(name)
            if shared is not None and shared in given:
                continue
            setattr(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Build from a mapping; unknown keys are an error (a typo must not silently train the default)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            import difflib

            hints = [
                f"{u!r} (did you mean {difflib.get_close_matches(u, known, 1)[0]!r}?)"
                if difflib.get_close_matches(u, known, 1) else repr(u)
                for u in unknown
            ]
            raise ConfigError("unknown key", ", ".join(hints), "the fields of ganlib.Config: " + ", ".join(sorted(known)))
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> "Config":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed. Per-network fields follow a changed shared field unless given."""
        values = self.to_dict()
        new_recipe = changes.get("recipe", self.recipe)
        if new_recipe != self.recipe and new_recipe in RECIPES:
            # Values that came from the old recipe follow the new one; values that differ from it were chosen.
            for name, value in recipe_values(self.recipe).items():
                if name not in changes and values[name] == value:
                    values[name] = None
            for name, shared in SHARED_DEFAULTS.items():  # g_lr that followed lr follows it into the new recipe
                if values[shared] is None and name not in changes and values[name] == getattr(self, shared):
                    values[name] = None
        for name, shared in SHARED_DEFAULTS.items():
            if shared in changes and name not in changes:
                values[name] = None
        values.update(changes)
        return Config.from_dict(values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def hash(self) -> str:
        """A stable 10-character hash of the values that change what is trained (not output intervals).

        Shared fields (`lr`, `filters`, ...) are left out: their per-network fields hold the values trained with,
        so `lr=1e-4` and `g_lr=d_lr=1e-4` are the same run. So is `recipe`: the values it resolved to are hashed.
        """
        ignore = {"data_dir", "sample_interval", "checkpoint_interval", "metric_interval", "threads", "grid_size",
                  "tensorboard", "recipe", *SHARED_DEFAULTS.values()}
        if not self.ema_on:
            ignore.add("ema_rampup")  # changes nothing without an EMA
        payload = {k: v for k, v in sorted(self.to_dict().items())
                   if k not in ignore and not (k in HASH_OMITTED_AT and v == HASH_OMITTED_AT[k])}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]

    # ------------------------------------------------------------------ derived values
    @property
    def ema_on(self) -> bool:
        return bool(self.ema or self.ema_kimg)

    @property
    def dataset_info(self):
        return DATASETS[self.dataset]

    @property
    def resolved_image_size(self) -> Optional[int]:
        return self.image_size or self.dataset_info[1]

    @property
    def resolved_precision(self) -> str:
        """The Keras dtype policy trained with: `precision`, with "auto" resolved for this machine."""
        if self.precision != "auto":
            return self.precision
        from .device import native_bfloat16

        return "mixed_bfloat16" if native_bfloat16() else "float32"

    @property
    def d_steps_schedule(self) -> list:
        """`d_steps` as a schedule: [(first epoch, D updates per G update), ...]; a number n is [(0, n)]."""
        if isinstance(self.d_steps, list):
            return [(int(e), int(k)) for e, k in self.d_steps]
        return [(0, int(self.d_steps))]

    def d_steps_at(self, epoch: int) -> int:
        """D updates per G update during epoch `epoch` (0-based: the schedule entry [10, 1] applies once
        10 epochs are done)."""
        return [k for start, k in self.d_steps_schedule if start <= epoch][-1]

    @property
    def max_d_steps(self) -> int:
        return max(k for _, k in self.d_steps_schedule)

    @property
    def effective_batch(self) -> int:
        """Real images drawn per training step: one batch per discriminator update, for the largest number of
        updates the d_steps schedule asks for (steps with fewer updates leave the rest of the batch unused)."""
        return self.batch_size * self.max_d_steps

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError for the first invalid field. Cheap: touches no data and builds no model."""
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, getattr(self, name), "one of " + ", ".join(map(str, allowed)))

        def integer(name, low, high=None, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
                rng = f">= {low}" if high is None else f"{low}..{high}"
                raise ConfigError(name, v, f"an integer {rng}" + (" or None" if optional else ""))

        def number(name, low=None, high=None, low_open=False):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok and low is not None:
                ok = v > low if low_open else v >= low
            if ok and high is not None:
                ok = v <= high
            if not ok:
                lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
                hi = "" if high is None else f"<= {high}"
                raise ConfigError(name, v, "a finite number " + " and ".join(x for x in (lo, hi) if x))

        choice("recipe", tuple(RECIPES))
        choice("dataset", tuple(DATASETS))  # a tuple: `[..] in dict` would raise TypeError
        choice("model", MODELS)
        choice("loss", LOSSES)
        choice("precision", PRECISIONS)
        choice("upsampling", UPSAMPLINGS)
        choice("lr_schedule", LR_SCHEDULES)
        choice("on_bad_image", ("skip", "error"))
        choice("weight_init", ("glorot", "normal_0.02"))
        choice("d_conditioning", D_CONDITIONINGS)
        for net in ("g", "d"):
            choice(f"{net}_optimizer", OPTIMIZERS)
            choice(f"{net}_norm", NORMALIZATIONS)
            number(f"{net}_lr", 0, 10, low_open=True)
            number(f"{net}_beta1", 0, 1)
            number(f"{net}_beta2", 0, 1)
            number(f"{net}_leaky_slope", 0, 1)
            integer(f"{net}_filters", 1, 4096)
            integer(f"{net}_depth", 0, 8)
        if self.g_norm == "spectral":
            raise ConfigError("g_norm", self.g_norm, "none, batch, conditional_batch, layer or instance (spectral normalization is for the discriminator)")
        if self.channels is not None:
            choice("channels", CHANNELS)
        for flag in ("conditional", "tensorboard"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(flag, getattr(self, flag), "True or False")
        integer("latent_dim", 1, 4096)
        integer("embedding_dim", 1, 4096)
        number("filter_growth", 1, 4)
        number("dropout", 0, 0.95)
        number("gp_weight", 0)
        number("clip_value", 0, low_open=True)
        number("r1_weight", 0)
        number("ema", 0, 0.99999)
        number("ema_kimg", 0, 10 ** 6)
        number("ema_rampup", 0, 1)
        if self.ema and self.ema_kimg:
            raise ConfigError("ema", self.ema, f"0 when ema_kimg is set ({self.ema_kimg}): give the EMA as a "
                              "half-life (ema_kimg) or as a decay per step (ema), not both")
        integer("mbstd_group", 0, 64)
        number("mode_seeking", 0, 100)
        from .augment import parse_policy

        if not isinstance(self.augment, str):
            raise ConfigError("augment", self.augment, "a string: \"\" (off) or a comma-separated policy such as "
                              "\"translation,cutout\"")
        try:
            parse_policy(self.augment)
        except ValueError as e:
            raise ConfigError("augment", self.augment, str(e).split(": ", 1)[1]) from None
        number("ada_target", 0, 1)
        number("ada_kimg", 0, 10 ** 6, low_open=True)
        if self.ada_target and not self.augment:
            raise ConfigError("ada_target", self.ada_target, "0 without an augment policy: adaptive augmentation "
                              "adjusts how often the `augment` policy is applied (e.g. augment: translation,cutout)")
        if self.augment and self.model == "msggan":
            raise ConfigError("augment", self.augment, "\"\" with model msggan (its discriminator sees an image "
                              "pyramid, which one augmentation of the full-size image would make inconsistent)")
        if self.g_norm == "conditional_batch" and not self.conditional:
            raise ConfigError("g_norm", self.g_norm, "batch, layer, instance or none for an unconditional GAN "
                              "(conditional batch norm needs class labels)")
        if self.d_norm == "conditional_batch":
            raise ConfigError("d_norm", self.d_norm, "none, batch, layer, instance or spectral "
                              "(conditional batch norm is for the generator)")
        for name in ("real_label", "fake_label"):
            v = getattr(self, name)
            if isinstance(v, (list, tuple)):
                if len(v) != 2 or not all(isinstance(x, (int, float)) for x in v) or not 0 <= v[0] <= v[1] <= 1:
                    raise ConfigError(name, v, "a number in [0, 1] or a range [low, high] with 0 <= low <= high <= 1")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(name, v, "a number in [0, 1] or a range [low, high] with 0 <= low <= high <= 1")
        self._validate_d_steps()
        integer("batch_size", 1, 65536)
        if self.mbstd_group and self.batch_size % self.mbstd_group:
            raise ConfigError("mbstd_group", self.mbstd_group, f"a divisor of batch_size ({self.batch_size}), so "
                              "that no group mixes real and generated images, or 0 (off)")
        if self.mode_seeking and self.batch_size % 2:
            raise ConfigError("mode_seeking", self.mode_seeking, f"0 with an odd batch_size ({self.batch_size}): "
                              "mode seeking compares the two halves of each generated batch")
        integer("epochs", 1, MAX_EPOCHS)
        integer("steps_per_epoch", 1, MAX_STEPS_PER_EPOCH, optional=True)
        if self.steps_per_epoch and self.steps_per_epoch * self.effective_batch > MAX_EPOCH_IMAGES:
            raise ConfigError("steps_per_epoch", self.steps_per_epoch, f"at most {MAX_EPOCH_IMAGES // self.effective_batch:,} "
                              f"with {self.effective_batch} images per step (an epoch draws at most "
                              f"{MAX_EPOCH_IMAGES:,} images; use more epochs)")
        if self.steps_per_epoch and self.epochs * self.steps_per_epoch > MAX_TOTAL_STEPS:
            raise ConfigError("steps_per_epoch", self.steps_per_epoch, f"at most {MAX_TOTAL_STEPS:,} training steps "
                              f"in all: epochs x steps_per_epoch is {self.epochs * self.steps_per_epoch:,}")
        integer("seed", 0, 2**31 - 1)
        integer("subset", 1, optional=True)
        integer("sample_interval", 1)
        integer("checkpoint_interval", 1)
        integer("metric_interval", 0)
        integer("metric_samples", 0)
        integer("grid_size", 1, 32)
        integer("divergence_patience", 1)
        integer("threads", 0, 256)
        if self.dataset == "folder" and not self.data_dir:
            raise ConfigError("data_dir", self.data_dir, "a folder of images (required when dataset='folder')")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from
                                           or len(self.init_from) > 4096):
            raise ConfigError("init_from", self.init_from, "None or the path of a finished run directory (a string)")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ConfigError("data_dir", self.data_dir, "a path string or None")

        if self.image_size is not None:
            integer("image_size", 8, 256)
        if self.resolved_image_size is not None:
            self.check_image_shape((self.resolved_image_size, self.resolved_image_size))
        model = registry.MODELS[self.model]
        if model.equal_depths and self.g_depth != self.d_depth:
            raise ConfigError("d_depth", self.d_depth, f"equal to g_depth ({self.g_depth}) for {self.model}")
        if self.g_depth < model.min_depth:
            raise ConfigError("g_depth", self.g_depth, f"at least {model.min_depth} hidden layer for the {self.model} model")

        n_train = self.dataset_info[0]
        if self.subset is not None and n_train is not None and self.subset > n_train:
            raise ConfigError("subset", self.subset, f"at most {n_train} (the size of {self.dataset})")
        available = self.subset or n_train
        # One D batch must fit the data; the d_steps batches of a step may reuse images when the data are few
        # (each epoch's permutation is repeated), so d_steps does not depend on the dataset's size.
        if available is not None and self.batch_size > available:
            raise ConfigError(
                "batch_size", self.batch_size,
                f"at most {available}, the images available in {self.dataset}"
                + (f" (subset={self.subset})" if self.subset else ""))
        loss = registry.LOSSES[self.loss]
        if loss.lipschitz == "gradient_penalty" and self.d_norm == "batch":
            raise ConfigError("d_norm", self.d_norm, f"none, layer, instance or spectral with {self.loss} "
                              "(batch norm breaks the per-sample gradient penalty)")
        if not loss.uses_targets:  # a setting that would be silently ignored is an error
            with_targets = ", ".join(n for n, entry in registry.LOSSES.items() if entry.uses_targets)
            for name, default in (("real_label", 1.0), ("fake_label", 0.0)):
                if getattr(self, name) != default:
                    raise ConfigError(name, getattr(self, name), f"{default} with loss={self.loss!r} (label "
                                      f"smoothing applies to the losses with targets: {with_targets})")

    def _validate_d_steps(self) -> None:
        v = self.d_steps
        allowed = ("an integer 1..100, or a schedule [[0, k0], [epoch1, k1], ...]: pairs [first epoch (0-based), "
                   "D updates per G update 1..100], starting at epoch 0, epochs strictly increasing")

        def count(x):
            return isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 100

        if isinstance(v, list):
            pairs = all(isinstance(e, list) and len(e) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                   for x in e) for e in v)
            ok = pairs and v and v[0][0] == 0 and all(count(k) for _, k in v) \
                and all(a[0] < b[0] for a, b in zip(v, v[1:]))
            if not ok:
                raise ConfigError("d_steps", v, allowed)
        elif not count(v):
            raise ConfigError("d_steps", v, allowed)

    def check_image_shape(self, shape, source: str = "") -> None:
        """Refuse images the model cannot generate (before any model is built): square, at least 8 pixels, and
        for up-sampling models a size that 2**g_depth divides leaving at least 2 pixels."""
        height, width = int(shape[0]), int(shape[1])
        depth = self.g_depth if isinstance(self.g_depth, int) else 0
        ok = [s for s in (16, 28, 32, 48, 64, 96, 128) if s % 2 ** depth == 0 and s // 2 ** depth >= 2]
        where = f" ({source} holds {height}x{width} images)" if source else ""
        hint = f"set image_size to one of {ok} to resize the images (g_depth={depth}), or change g_depth"
        if height != width:
            raise ConfigError("image_size", self.image_size, f"a size for square images{where}: {hint}")
        if height < 8:
            raise ConfigError("image_size", self.image_size, f"at least 8 pixels{where}: {hint}")
        if registry.MODELS[self.model].upsamples:
            base = height / 2 ** depth
            if base != int(base) or base < 2:
                raise ConfigError("image_size", self.image_size if self.image_size else height,
                                  f"a size divisible by 2**g_depth = {2 ** depth} leaving at least 2 pixels{where}: "
                                  f"{hint}")

    def check_dataset_size(self, n_images: int) -> None:
        """Called once the real number of images is known (folder datasets)."""
        available = min(n_images, self.subset or n_images)
        if self.batch_size > available:
            raise ConfigError("batch_size", self.batch_size,
                              f"at most {available}, the images found for dataset {self.dataset!r}")
