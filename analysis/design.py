"""Sampled study designs: hyperparameter settings drawn from ranges, as the large GAN studies do (Lucic et al.
2018; Kurach et al. 2019), instead of a grid.

A study file's `search` block names a search space (one entry per `ganlib.Config` field) and a design:

    search:
      design: sobol          # random | sobol | halton | lhs
      trials: 16             # settings drawn; each is trained with every seed of the study
      seed: 0                # the design's own seed (default 0)
      space:
        lr: {loguniform: [5.0e-5, 1.0e-3]}
        beta1: {uniform: [0.0, 0.9]}
        filters: {int: [16, 64]}
        loss: {choice: [bce, hinge]}

Points come from `scipy.stats.qmc` (scrambled Sobol / Halton, Latin hypercube) or numpy's generator (random),
all seeded, so a study file always gives the same trials. Random, Sobol and Halton designs are sequences:
raising `trials` keeps the trials already drawn (and trained) and adds new ones. A Latin hypercube depends on
its size, so raising `trials` redraws every point; the runner then refuses, because the trained runs would no
longer match (rename the study, or delete its runs). Real values are rounded to 4 significant digits so trial
names and configurations stay readable and hashes stable across machines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

DESIGNS = ("random", "sobol", "halton", "lhs")
EXTENDABLE = ("random", "sobol", "halton")
KINDS = ("choice", "uniform", "loguniform", "int", "logint")
MAX_TRIALS = 10_000
TRIAL_PREFIX = "trial"


class DesignError(ValueError):
    """The search block is invalid; the message says where and what is allowed."""


@dataclass(frozen=True)
class Dimension:
    field: str
    kind: str
    values: tuple  # choice: the options; otherwise (low, high)

    def value(self, u: float) -> Any:
        """The point of this dimension at u in [0, 1)."""
        if self.kind == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        low, high = self.values
        if self.kind == "uniform":
            return _round(low + u * (high - low))
        if self.kind == "loguniform":
            return _round(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
        if self.kind == "int":  # every integer of [low, high] equally likely
            return int(min(high, low + math.floor(u * (high - low + 1))))
        # logint: integers spread evenly in log space (16..31 as likely as 32..63). Each integer owns
        # [i - 0.5, i + 0.5) of the log-uniform draw, the ends too: drawing on [low, high] gave the end points
        # half their share ([1, 4] drew 4 only 9.6 % of the time, not 19 %).
        a, b = math.log(low - 0.5), math.log(high + 0.5)
        return int(min(high, max(low, math.floor(math.exp(a + u * (b - a)) + 0.5))))


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def _dimension(field: str, spec) -> Dimension:
    where = f"search.space.{field}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise DesignError(f"{where}: expected one of {{choice: [...]}}, {{uniform: [low, high]}}, "
                          f"{{loguniform: [low, high]}}, {{int: [low, high]}}, {{logint: [low, high]}}; got {spec!r}.")
    (kind, values), = spec.items()
    if kind not in KINDS:
        raise DesignError(f"{where}: {kind!r} is not a kind of range; use one of {', '.join(KINDS)}.")
    if not isinstance(values, list) or not values:
        raise DesignError(f"{where}: {kind} takes a non-empty list, got {values!r}.")
    if kind == "choice":
        if len(set(map(repr, values))) != len(values):
            raise DesignError(f"{where}: choice {values!r} repeats a value.")
        return Dimension(field, kind, tuple(values))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if len(values) != 2 or not numeric or not values[0] < values[1]:
        raise DesignError(f"{where}: {kind} takes [low, high] with low < high, got {values!r}.")
    if kind in ("loguniform", "logint") and values[0] <= 0:
        raise DesignError(f"{where}: {kind} needs low > 0 (a logarithmic range), got {values!r}.")
    if kind in ("int", "logint") and not all(isinstance(v, int) for v in values):
        raise DesignError(f"{where}: {kind} takes integer bounds, got {values!r}.")
    return Dimension(field, kind, (values[0], values[1]))


@dataclass(frozen=True)
class SearchDesign:
    design: str
    trials: int
    seed: int
    dimensions: tuple

    def unit_points(self) -> np.ndarray:
        """(trials, dimensions) points in [0, 1)^d: the first `trials` of the design's sequence."""
        d, n = len(self.dimensions), self.trials
        if self.design == "random":
            return np.random.default_rng(self.seed).random((n, d))
        from scipy.stats import qmc

        if self.design == "sobol":
            engine = qmc.Sobol(d, scramble=True, seed=self.seed)
        elif self.design == "halton":
            engine = qmc.Halton(d, scramble=True, seed=self.seed)
        else:
            engine = qmc.LatinHypercube(d, seed=self.seed)
        import warnings

        with warnings.catch_warnings():  # Sobol's balance warning for n not a power of 2: a prefix is still fine
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(n)

    def trials_overrides(self) -> list:
        """[(trial name, {field: value})] of every trial, in the design's order (drawn once per design)."""
        return self._trials

    @cached_property
    def _trials(self) -> list:
        width = max(3, len(str(self.trials - 1)))
        return [(f"{TRIAL_PREFIX}{i:0{width}d}", {dim.field: dim.value(u) for dim, u in zip(self.dimensions, row)})
                for i, row in enumerate(self.unit_points())]

    def to_dict(self) -> dict:
        return {"design": self.design, "trials": self.trials, "seed": self.seed,
                "space": {d.field: {d.kind: list(d.values)} for d in self.dimensions}}

    @property
    def choice_fields(self) -> list:
        return [d.field for d in self.dimensions if d.kind == "choice"]


def parse_search(data, config_fields) -> SearchDesign:
    """A `SearchDesign` from a study file's `search` block, validated (fields must be ganlib.Config's)."""
    if not isinstance(data, dict):
        raise DesignError(f"search: expected a mapping with design, trials, seed and space; got {data!r}.")
    unknown = sorted(set(data) - {"design", "trials", "seed", "space"})
    if unknown:
        raise DesignError(f"search: unknown key(s) {unknown}; use design, trials, seed, space.")
    design = data.get("design", "sobol")
    if design not in DESIGNS:
        raise DesignError(f"search.design: {design!r}; use one of {', '.join(DESIGNS)}.")
    trials, seed = data.get("trials"), data.get("seed", 0)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise DesignError(f"search.trials: expected an integer 1..{MAX_TRIALS:,}, got {trials!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise DesignError(f"search.seed: expected an integer >= 0, got {seed!r}.")
    space = data.get("space")
    if not isinstance(space, dict) or not space:
        raise DesignError("search.space: expected a mapping of ganlib.Config field -> range, e.g. "
                          "{lr: {loguniform: [5.0e-5, 1.0e-3]}}.")
    bad = [f for f in space if f not in config_fields]
    if bad:
        raise DesignError(f"search.space: {bad} are not ganlib.Config fields.")
    if "seed" in space:
        raise DesignError("search.space: 'seed' is not searched; list the seeds in the study's `seeds`.")
    return SearchDesign(design, trials, seed, tuple(_dimension(f, s) for f, s in space.items()))
