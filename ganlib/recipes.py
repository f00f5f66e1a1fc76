"""Named starting points: sets of Config values known to learn on 28x28 data on a CPU.

A user picks one with one field (`Config(recipe="sngan")`, `-p recipe sngan`, `recipe: wgan_gp` in a study);
any field given explicitly overrides the recipe's value. Every recipe sets every field in `RECIPE_FIELDS`, so
switching recipes never leaves a value of the previous one behind. Plain Python: importable without TensorFlow.

What each was measured to reach is in `benchmarks/README.md` ("Quality at a fixed CPU budget",
`benchmarks/bench_quality.py`).
"""
from __future__ import annotations

_DCGAN = dict(model="dcgan", filters=32, depth=2, filter_growth=1.0, upsampling="transpose", leaky_slope=0.2,
              dropout=0.0, norm="none", g_norm="batch", d_norm="none", weight_init="normal_0.02",
              d_conditioning="projection", loss="bce", gp_weight=10.0, d_steps=1, optimizer="adam", lr=2e-4,
              beta1=0.5, beta2=0.999, batch_size=32, ema_kimg=0.0, mbstd_group=0, mode_seeking=0.0, augment="")

# The other recipes are written as their differences from DCGAN, so what each changes stands out.
RECIPES = {
    "balanced": dict(
        description="The default: DCGAN's networks with what measurably gave variety within classes at the "
                    "default study's CPU budget (benchmarks/README.md, 'Variety'): class-conditional batch norm "
                    "in G (de Vries et al. 2017), upsample + convolution instead of transposed convolutions, a "
                    "minibatch standard-deviation feature in D (Karras et al. 2018), mode-seeking "
                    "regularization 0.1 (Mao et al. 2019), an EMA of G (10k-image half-life with ramp-up), "
                    "a projection discriminator, BCE, Adam 4e-4 / 0.0 / 0.999, 32 filters, batch 32.",
        values={**_DCGAN, "upsampling": "upsample", "g_norm": "conditional_batch", "mbstd_group": 4,
                "mode_seeking": 0.1, "ema_kimg": 10.0, "lr": 4e-4, "beta1": 0.0}),
    "dcgan": dict(
        description="DCGAN (Radford et al. 2016): batch norm in G, a projection discriminator (Miyato & Koyama "
                    "2018) without dropout or norm, non-saturating BCE, Adam 2e-4 / 0.5, 32 filters, batch 32. "
                    "ganlib's default until the balanced recipe: its samples of a class look alike.",
        values=_DCGAN),
    "sngan": dict(
        description="SNGAN-style (Miyato et al. 2018): hinge loss, spectral normalization of every D layer, "
                    "batch norm in G, Adam 2e-4 / 0.5 / 0.999, one D step per G step.",
        values={**_DCGAN, "filters": 64, "leaky_slope": 0.1, "d_norm": "spectral", "weight_init": "glorot", "loss": "hinge"}),
    "wgan_gp": dict(
        description="WGAN-GP (Gulrajani et al. 2017): gradient penalty 10, layer norm in the critic, batch norm "
                    "in G, 5 critic steps per G step, Adam 1e-4 / 0.5 / 0.9.",
        values={**_DCGAN, "filters": 64, "d_norm": "layer", "weight_init": "glorot", "loss": "wgan_gp", "d_steps": 5, "lr": 1e-4,
                "beta2": 0.9}),
    "tutorial": dict(
        description="The seed study's conditional GAN (Brownlee, 'How to Develop a Conditional GAN from "
                    "Scratch'), kept as it is for replication: 128 filters, no normalization, D dropout 0.4, "
                    "BCE, Adam 2e-4 / 0.5, batch 128. Learns slowly on a CPU budget.",
        values={**_DCGAN, "filters": 128, "dropout": 0.4, "g_norm": "none", "weight_init": "glorot",
                "d_conditioning": "concat", "batch_size": 128}),
}
DEFAULT_RECIPE = "balanced"
RECIPE_FIELDS = tuple(_DCGAN)
assert all(tuple(r["values"]) == RECIPE_FIELDS for r in RECIPES.values()), "every recipe sets the same fields"


def recipe_values(name: str) -> dict:
    """The Config values of recipe `name` (a copy)."""
    return dict(RECIPES[name]["values"])


def adapt(values: dict, given: dict) -> dict:
    """A recipe's values fitted to the fields the user gave (`given`), for the settings that depend on them:
    class-conditional batch norm becomes plain batch norm in an unconditional GAN, the minibatch-stddev group
    shrinks to the largest divisor of the batch size (off when that is 1), and mode seeking (which pairs the
    halves of a batch) is off with an odd batch size; an EMA given as `ema` (a decay) replaces the recipe's
    `ema_kimg`. An explicit value is never changed: Config refuses it if
    it does not fit."""
    values = dict(values)
    if values.get("g_norm") == "conditional_batch" and given.get("conditional") is False:
        values["g_norm"] = "batch"
    group, batch = values.get("mbstd_group"), given.get("batch_size", values.get("batch_size"))
    if group and isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 and batch % group:
        group = max(d for d in range(1, group + 1) if batch % d == 0)
        values["mbstd_group"] = group if group > 1 else 0
    if values.get("mode_seeking") and isinstance(batch, int) and batch % 2:
        values["mode_seeking"] = 0.0
    if given.get("ema"):  # an EMA given as a decay per step replaces the recipe's half-life
        values["ema_kimg"] = 0.0
    return values


def describe(name: str) -> str:
    return RECIPES[name]["description"]
