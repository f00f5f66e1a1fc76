"""A study: one question, a baseline configuration, named variations of it, and seeds.

A study file (YAML, see `docs/studies.md`) is turned into a `Study` and validated as a whole before any training:
every variation becomes a full `ganlib.Config`, so a typo or a bad value costs milliseconds and names the
variation it is in. Each (variation, seed) pair is one run, trained into `runs/<variation>/seed<k>/`.
"""
from __future__ import annotations

import difflib
import itertools
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from analysis.design import DesignError, SearchDesign, parse_search
from ganlib.config import Config, ConfigError
from ganlib.registry import METRICS, UnknownMetricError, metric as metric_entry

STUDY_KEYS = ("name", "description", "question", "baseline", "variations", "grid", "search", "seeds", "resources",
              "metrics", "primary_metric", "factors")
RESOURCE_KEYS = ("workers", "threads_per_run")
# threads_per_run: ganlib.Config's `threads` allows at most 256; workers: more than a cluster of this size would
# be a typo (each worker is a process holding a TensorFlow runtime).
MAX_RESOURCES = {"workers": 1024, "threads_per_run": 256}
CONFIG_FIELDS = tuple(f.name for f in fields(Config))
# Names become directory names: only these characters, so a name can never leave the study's directory.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.=,+-]+$")
# Bounds checked before anything is built: a study file is read in milliseconds or refused.
MAX_FILE_BYTES = 1 << 20  # 1 MiB: hand-written study files are a few KiB
MAX_RUNS = 100_000  # variations x seeds; the runner also asks before a plan of more than LARGE_PLAN runs
LARGE_PLAN = 200


class StudyError(ValueError):
    """The study definition is invalid; the message says where and what is allowed."""


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `1e-4` as a number (YAML 1.1 wants `1.0e-4`; a string lr is a trap)."""


def _construct_mapping(loader, node, deep=False):
    """Mappings refuse a repeated key (YAML would silently keep the last one: a second `baseline:`)."""
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found the key {key!r} a second time (first at "
                    f"line {first.start_mark.line + 1}); each key may appear once", key_node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.construct_mapping = _construct_mapping
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"), list("-+0123456789."))


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(keys, known, where: str) -> None:
    unknown = [k for k in keys if k not in known]
    if unknown:
        hints = ", ".join(f"{k!r}{_did_you_mean(str(k), known)}" for k in unknown)
        raise StudyError(f"{where}: unknown key {hints}. Allowed: {', '.join(known)}.")


MAX_NAME = 100  # names become directory names; file systems allow 255 bytes per name


def check_name(name, what: str = "variation name") -> str:
    from ganlib.safe_io import excerpt

    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name or name == ".":
        raise StudyError(f"Invalid {what} {excerpt(name)}: use only letters, digits and _ . = , + - "
                         "(no '/', no '..'), because it becomes a directory name.")
    if len(name) > MAX_NAME:
        raise StudyError(f"Invalid {what} {excerpt(name)}: {len(name)} characters; at most {MAX_NAME} (it becomes a "
                         "directory name).")
    return name


def format_value(value) -> str:
    """A value as it appears in a generated variation name, e.g. 1e-4, 0.05, 64, spectral."""
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            mantissa, exponent = f"{value:.6e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(format_value(v) for v in value)
    return str(value)


def variation_name(overrides: dict) -> str:
    return ",".join(f"{k}={format_value(v)}" for k, v in overrides.items())


@dataclass
class Variation:
    name: str
    overrides: dict  # the fields given in the study file (shared fields reset their g_/d_ fields, see Config.replace)
    config: Config  # the full configuration, with seed = 0 (each run sets its own)


@dataclass
class Run:
    """One training run of a study: a variation with one seed."""
    study: str
    variation: str
    seed: int
    config: Config

    @property
    def run_id(self) -> str:
        return f"{self.variation}/seed{self.seed}"


@dataclass
class Study:
    name: str
    description: str
    question: str
    baseline: Config
    variations: list  # of Variation; the first is the baseline itself
    seeds: list
    resources: dict = field(default_factory=dict)
    metrics: Optional[list] = None
    primary_metric: str = "final_fid"
    factors: list = field(default_factory=list)
    search: Optional[SearchDesign] = None  # a sampled design: its trials are variations named trial000, ...

    @property
    def trials(self) -> list:
        """The variations drawn by the search design, in its order (empty without one)."""
        names = {name for name, _ in self.search.trials_overrides()} if self.search else set()
        return [v for v in self.variations if v.name in names]

    def variation(self, name: str) -> Variation:
        for v in self.variations:
            if v.name == name:
                return v
        raise StudyError(f"Study {self.name!r} has no variation {name!r}"
                         f"{_did_you_mean(name, [v.name for v in self.variations])}.")

    def runs(self, only=None) -> list:
        """All runs (variation-major, then seed), or those of the variations named in `only`."""
        chosen = [self.variation(n) for n in only] if only else self.variations
        return [Run(self.name, v.name, s, v.config.replace(seed=s)) for v in chosen for s in self.seeds]

    def to_dict(self) -> dict:
        """The resolved study: a valid study file whose grid is expanded and whose baseline lists every field."""
        trials = {t.name for t in self.trials}  # kept as the search block, not as variations
        return {
            "name": self.name, "description": self.description, "question": self.question,
            "baseline": {k: v for k, v in self.baseline.to_dict().items() if k != "seed"},
            "variations": [{"name": v.name, **v.overrides} for v in self.variations[1:] if v.name not in trials],
            **({"search": self.search.to_dict()} if self.search else {}),
            "seeds": list(self.seeds), "resources": dict(self.resources), "metrics": self.metrics,
            "primary_metric": self.primary_metric, "factors": list(self.factors),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


def load_study(path) -> Study:
    """Read and validate a study file (bounded: a regular file of at most MAX_FILE_BYTES expanding to at most
    ganlib.safe_io.MAX_VALUES values)."""
    from ganlib.safe_io import InputFileError, load_yaml

    path = Path(path)
    try:
        data = load_yaml(path, "Study file", MAX_FILE_BYTES, _Loader)  # a SafeLoader: builds only plain data
    except FileNotFoundError:
        raise StudyError(f"Study file {path} does not exist.") from None
    except InputFileError as e:
        raise StudyError(str(e)) from None
    try:
        return study_from_dict(data)
    except StudyError as e:
        raise StudyError(f"{path}: {e}") from None


def _config_of(baseline: Optional[Config], values: dict, where: str) -> Config:
    try:  # replace: a changed shared field (lr) also resets the per-network fields (g_lr, d_lr) not given
        return baseline.replace(**values) if baseline else Config.from_dict(values)
    except ConfigError as e:
        raise StudyError(f"{where}: {e}") from None
    except TypeError as e:  # e.g. a list where Config compares numbers
        raise StudyError(f"{where}: invalid configuration ({e}).") from None


def _overrides(values, where: str) -> dict:
    if not isinstance(values, dict):
        raise StudyError(f"{where}: expected a mapping of ganlib.Config fields, got {values!r}.")
    _unknown(values, CONFIG_FIELDS, where)
    if "seed" in values:
        raise StudyError(f"{where}: 'seed' is not set per configuration; list the seeds in the study's `seeds`.")
    return dict(values)


def _grid_variations(grid) -> list:
    """[(name, overrides)] for the cartesian product of each grid (a mapping, or a list of mappings)."""
    grids = grid if isinstance(grid, list) else [grid]
    out = []
    for i, g in enumerate(grids):
        where = f"grid[{i}]" if isinstance(grid, list) else "grid"
        g = _overrides(g, where)
        if not g or not all(isinstance(v, list) and v for v in g.values()):
            raise StudyError(f"{where}: expected a mapping of field -> non-empty list of values, got {g!r}.")
        points = math.prod(len(v) for v in g.values())
        if points + len(out) > MAX_RUNS:
            raise StudyError(f"{where}: {' x '.join(str(len(v)) for v in g.values())} = {points:,} grid points; "
                             f"a study has at most {MAX_RUNS:,} runs. Use fewer values per field.")
        for combo in itertools.product(*g.values()):
            overrides = dict(zip(g, combo))
            out.append((variation_name(overrides), overrides))
    return out


def _seeds(given) -> list:
    seeds = None if isinstance(given, bool) else given
    if isinstance(seeds, int):
        if seeds < 1:
            raise StudyError(f"seeds: {seeds} is fewer than 1 seed.")
        if seeds > MAX_RUNS:
            raise StudyError(f"seeds: {seeds:,} seeds; a study has at most {MAX_RUNS:,} runs.")
        return list(range(seeds))
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and
                                                 0 <= s < 2**31 for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise StudyError(f"seeds: {seeds} repeats a seed.")
        return list(seeds)
    from ganlib.safe_io import excerpt

    raise StudyError(f"seeds: expected a count >= 1 or a non-empty list of distinct integers >= 0, got {excerpt(given)}.")


def _resources(resources) -> dict:
    resources = resources or {}
    if not isinstance(resources, dict):
        raise StudyError(f"resources: expected a mapping, got {resources!r}.")
    _unknown(resources, RESOURCE_KEYS, "resources")
    for k, v in resources.items():
        most = MAX_RESOURCES[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
            raise StudyError(f"resources: {k}={v!r}; expected an integer from 1 to {most}.")
    return dict(resources)


def study_from_dict(data) -> Study:
    if not isinstance(data, dict):
        raise StudyError(f"A study is a mapping with keys {', '.join(STUDY_KEYS)}; got {type(data).__name__}.")
    _unknown(data, STUDY_KEYS, "study")
    name = check_name(data.get("name"), "study name")
    for key in ("description", "question"):
        if not isinstance(data.get(key) or "", str):
            raise StudyError(f"{key}: expected text, got {data[key]!r}.")
    if not data.get("baseline"):
        raise StudyError("baseline: missing. Every study needs a baseline configuration (a mapping of "
                         "ganlib.Config fields) that its variations change.")
    baseline = _config_of(None, _overrides(data["baseline"], "baseline"), "baseline")
    seeds = _seeds(data.get("seeds"))

    # (name, overrides) of every variation: the baseline, then the explicit list, then the grid(s).
    entries = []
    explicit = data.get("variations") or []
    if not isinstance(explicit, list):
        raise StudyError("variations: expected a list of mappings {name: ..., <field>: <value>, ...}.")
    for i, item in enumerate(explicit):
        if not isinstance(item, dict):
            raise StudyError(f"variations[{i}]: expected a mapping {{name: ..., <field>: <value>}}, got {item!r}.")
        overrides = _overrides({k: v for k, v in item.items() if k != "name"}, f"variations[{i}]")
        if not overrides:
            raise StudyError(f"variations[{i}]: changes nothing; the baseline is already a variation.")
        entries.append((item.get("name") or variation_name(overrides), overrides, True))
    if data.get("grid"):
        entries += [(n, o, False) for n, o in _grid_variations(data["grid"])]
    search = None
    if data.get("search") is not None:
        try:
            search = parse_search(data["search"], CONFIG_FIELDS)
        except DesignError as e:
            raise StudyError(str(e)) from None
        entries += [(n, o, "trial") for n, o in search.trials_overrides()]

    if (len(entries) + 1) * len(seeds) > MAX_RUNS:
        raise StudyError(f"{len(entries) + 1:,} variations x {len(seeds):,} seeds = "
                         f"{(len(entries) + 1) * len(seeds):,} runs; a study has at most {MAX_RUNS:,}.")
    variations = [Variation("baseline", {}, baseline)]
    seen = {baseline.hash: "baseline"}
    for vname, overrides, explicit_entry in entries:
        check_name(vname)
        config = _config_of(baseline, overrides, f"variation {vname!r}")
        if vname in {v.name for v in variations}:
            raise StudyError(f"Duplicate variation name {vname!r}.")
        key = config.hash  # shared fields are not hashed: {lr: x} and {g_lr: x, d_lr: x} collide
        if key in seen:
            if explicit_entry == "trial":
                raise StudyError(f"search: {vname} draws the same configuration as {seen[key]!r} ({overrides}); "
                                 "the space has too few distinct points for this many trials: widen a range, use "
                                 "ranges instead of choices, or draw fewer trials.")
            if not explicit_entry and seen[key] == "baseline":
                continue  # a grid point equal to the baseline is the baseline, trained once
            raise StudyError(f"Duplicate variation: {vname!r} trains the same configuration as {seen[key]!r}.")
        seen[key] = vname
        variations.append(Variation(vname, overrides, config))

    metrics = data.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)):
        raise StudyError(f"metrics: expected a list of metric names (e.g. [fid, kid]), got {metrics!r}.")
    primary = data.get("primary_metric", "final_fid")
    if not isinstance(primary, str) or not primary:
        raise StudyError(f"primary_metric: expected a column name such as 'final_fid', got {primary!r}.")
    for metric_name in metrics or []:
        if metric_name not in METRICS or not METRICS[metric_name].is_result:
            raise StudyError(f"metrics: {metric_name!r} is not a metric; use some of "
                             f"{', '.join(n for n, m in METRICS.items() if m.is_result and m.compute)}.")
    try:  # the registry gives the direction a ranking needs: an unregistered column cannot be ranked
        registered = metric_entry(primary)
    except UnknownMetricError as e:
        raise StudyError(f"primary_metric: {e}") from None
    if not registered.is_result:
        raise StudyError(f"primary_metric: {primary!r} describes the evaluation, not the generator; use e.g. "
                         "final_fid or final_label_accuracy.")
    if metrics and primary.startswith("final_") and primary[len("final_"):] not in metrics:
        raise StudyError(f"primary_metric: {primary!r} is not among the metrics {metrics}.")
    varied = list(dict.fromkeys(k for v in variations for k in v.overrides))
    factors = data.get("factors", varied)
    if not isinstance(factors, list):
        raise StudyError(f"factors: expected a list of ganlib.Config fields, got {factors!r}.")
    _unknown(factors, CONFIG_FIELDS, "factors")
    return Study(name=name, description=(data.get("description") or "").strip(),
                 question=(data.get("question") or "").strip(), baseline=baseline, variations=variations, seeds=seeds,
                 resources=_resources(data.get("resources")), metrics=metrics, primary_metric=primary,
                 factors=factors, search=search)


def default_workers(threads_per_run: int) -> int:
    return max(1, len(os.sched_getaffinity(0)) // max(1, threads_per_run))
