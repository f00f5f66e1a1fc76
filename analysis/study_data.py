"""One study as the report pages see it: its definition, gathered tables, run paths, ordering and rankings.

`open_study` reads everything through `analysis.studydir.StudyDirectory`, the owner of the study layout.
Metric directions come from `ganlib.registry`, never from a metric's name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from analysis.studydir import StudyDirectory, StudyNotReady, remember_rendered_study  # noqa: F401  (StudyNotReady: raised for pages)
from ganlib.registry import METRICS, lower_is_better

BASELINE = "baseline"
# The metrics that describe generators, in the registry's order (the others describe the evaluation).
METRIC_ORDER = tuple(name for name, m in METRICS.items() if m.is_result)


def resolve_study_dir(study_dir) -> Path:
    """The study to report: $GANLIB_STUDY when set (overrides the page parameter), else `study_dir`."""
    return Path(os.environ.get("GANLIB_STUDY") or study_dir).expanduser()


def check_study_dir(study_dir) -> Path:
    """`study_dir` as a Path, or StudyNotReady saying which command makes what is missing."""
    return StudyDirectory(study_dir).check_ready().path


@dataclass
class StudyData:
    """Everything a page needs about one study: its definition, the gathered tables, paths and ordering."""
    dir: Path
    info: dict
    runs: pd.DataFrame
    epochs: pd.DataFrame
    stability: Optional[pd.DataFrame] = None
    summary: dict = field(default_factory=dict)
    classes: Optional[pd.DataFrame] = None  # class-aware final metrics, one row per (run, class)

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.dir.name)

    @property
    def primary_metric(self) -> str:
        return str(self.info.get("primary_metric") or "final_fid")

    @property
    def seeds(self) -> list:
        return sorted(self.runs["seed"].dropna().astype(int).unique().tolist())

    @cached_property
    def overrides(self) -> dict:
        """{variation: {field: value}} as the study file gives them (the baseline changes nothing)."""
        out = {BASELINE: {}}
        for v in self.info.get("variations") or []:
            if isinstance(v, dict) and v.get("name") is not None:
                out[str(v["name"])] = {k: x for k, x in v.items() if k != "name"}
        if self.search:  # the trials of a sampled design, with the values drawn for them
            out.update(self.search.trials_overrides())
        return out

    @cached_property
    def search(self):
        """The study's sampled design (`analysis.design.SearchDesign`), or None for grids and lists."""
        from analysis.design import DesignError, parse_search
        from analysis.study import CONFIG_FIELDS

        try:
            return parse_search(self.info["search"], CONFIG_FIELDS) if self.info.get("search") else None
        except DesignError:
            return None

    @property
    def trials(self) -> list:
        """Names of the variations drawn by the sampled design, in its order (empty without one)."""
        return [name for name, _ in self.search.trials_overrides()] if self.search else []

    @cached_property
    def variations(self) -> list:
        """Variation names: the baseline, then the study file's order, then any other found in the tables."""
        found = list(dict.fromkeys(self.runs["variation"].astype(str)))
        order = [v for v in self.overrides if v in found] + [v for v in found if v not in self.overrides]
        return order

    @property
    def baseline(self) -> str:
        return BASELINE if BASELINE in self.variations else self.variations[0]

    @cached_property
    def colors(self) -> dict:
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        others = [v for v in self.variations if v != self.baseline]
        return {self.baseline: "#333333", **{v: cmap(i % 10) for i, v in enumerate(others)}}

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "completed"]

    @property
    def did_not_learn(self) -> pd.DataFrame:
        """Completed runs whose verdict (ganlib.verdict) says they did not learn."""
        done = self.completed
        return done[done["verdict"] == "did_not_learn"] if "verdict" in done else done.iloc[:0]

    @property
    def learned(self) -> pd.DataFrame:
        """Completed runs that may be ranked: all but those that did not learn."""
        done = self.completed
        return done[done["verdict"] != "did_not_learn"] if "verdict" in done else done

    def run_dir(self, variation, seed) -> Path:
        """The run's directory inside this study folder (so a moved study still finds its runs)."""
        local = StudyDirectory(self.dir).run_dir(variation, seed)
        if local.exists():
            return local
        row = self.runs[(self.runs["variation"] == variation) & (self.runs["seed"] == seed)]
        return Path(row["run_dir"].iloc[0]) if len(row) and isinstance(row["run_dir"].iloc[0], str) else local

    def metric_columns(self) -> list:
        """Final metrics of the registry that describe generators, with at least one finite value; the
        primary metric first, then the registry's order (a column no registry entry knows has no direction and
        is left out rather than ranked by a guess)."""
        cols = [c for c in self.runs.columns if c.startswith("final_") and c[len("final_"):] in METRIC_ORDER
                and pd.api.types.is_numeric_dtype(self.runs[c]) and np.isfinite(self.runs[c].astype(float)).any()]
        return sorted(cols, key=lambda c: (c != self.primary_metric, METRIC_ORDER.index(c[len("final_"):])))

    def class_table(self, metric: str) -> Optional[pd.DataFrame]:
        """Median of a class-aware metric ("recall", "coverage" or "fid") over the completed seeds: one row per
        class, one column per configuration; None when no run recorded class-aware metrics."""
        if self.classes is None or not len(self.classes) or metric not in self.classes:
            return None
        done = self.completed[["variation", "seed"]]
        rows = self.classes.merge(done, on=["variation", "seed"])
        if not len(rows):
            return None
        table = rows.pivot_table(index=["class_index", "class_name"], columns="variation", values=metric,
                                 aggfunc="median")
        table = table[[v for v in self.variations if v in table.columns]]
        return table.reset_index(level=0, drop=True).rename_axis(index="class", columns=None)

    def has_metric(self, metric: Optional[str] = None) -> bool:
        metric = metric or self.primary_metric
        return metric in self.runs and np.isfinite(pd.to_numeric(self.completed[metric], errors="coerce")).any()

    def batches(self) -> pd.DataFrame:
        """Per-step logs of all runs (analysis.gather.load_batches)."""
        from analysis.gather import load_batches

        return load_batches(self.dir)

    def ranking(self, metric: Optional[str] = None) -> pd.DataFrame:
        """Per variation: runs, completed runs, runs that did not learn, and the median of `metric` with its
        exact interval (`analysis.stats.median_ci`, `coverage` below 0.95 for 2-5 runs) over the runs that learned
        (runs that did not learn are never ranked as results). `ranked` is False where fewer than
        half of the runs learned (ganlib.verdict.enough_learned: the median would be a survivor's; `note` says so);
        ranked variations first, best first."""
        from analysis.stats import median_ci
        from ganlib.verdict import enough_learned

        metric = metric or self.primary_metric
        rows = []
        for v in self.variations:
            runs = self.runs[self.runs["variation"] == v]
            done = runs[runs["status"] == "completed"]
            ok = done[done["verdict"] != "did_not_learn"] if "verdict" in done else done
            values = pd.to_numeric(ok[metric], errors="coerce") if metric in ok else pd.Series(dtype=float)
            ci = median_ci(values.to_numpy(float))
            ranked = enough_learned(ci["n"], len(runs))
            note = "" if ranked else ("no run that learned has a value" if ci["n"] == 0 else
                                      f"only {ci['n']} of {len(runs)} runs learned: not ranked")
            rows.append({"variation": v, "runs": len(runs), "completed": len(done),
                         "did not learn": len(done) - len(ok), "median": ci["median"],
                         "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "coverage": ci["coverage"],
                         "ranked": ranked, "note": note})
        df = pd.DataFrame(rows)
        df["_key"] = (df["median"] if lower_is_better(metric) else -df["median"]).where(df["ranked"])
        return df.sort_values("_key", na_position="last", kind="stable").drop(columns="_key").reset_index(drop=True)

    def best(self, metric: Optional[str] = None) -> Optional[dict]:
        """{variation, seed, value}: the best ranked variation by median `metric` and its best run that learned
        (None when no variation can be ranked)."""
        metric = metric or self.primary_metric
        if not self.has_metric(metric):
            return None
        top = self.ranking(metric).iloc[0]
        if not top["ranked"]:
            return None
        variation = top["variation"]
        runs = self.learned[self.learned["variation"] == variation].dropna(subset=[metric])
        r = runs.sort_values(metric, ascending=lower_is_better(metric)).iloc[0]
        return {"variation": variation, "seed": int(r["seed"]), "value": float(r[metric])}

    def showcase_run(self, metric: Optional[str] = None) -> Optional[dict]:
        """The best run, or without metrics the first completed baseline run (for samples and traversals)."""
        best = self.best(metric)
        if best:
            return best
        done = self.completed.sort_values("variation", key=lambda s: s.map(self.variations.index), kind="stable")
        return None if done.empty else {"variation": done["variation"].iloc[0], "seed": int(done["seed"].iloc[0]),
                                         "value": np.nan}


def open_study(study_dir) -> StudyData:
    """Load a study for a report page (honours $GANLIB_STUDY) and set up consistent plot styles."""
    from analysis.plots import set_style

    directory = StudyDirectory(check_study_dir(resolve_study_dir(study_dir)))
    remember_rendered_study(directory.path)  # for Quarto's post-render step (analysis/quarto_post_render.py)
    runs = directory.read_table("runs")
    runs["variation"] = runs["variation"].astype(str)
    epochs = directory.read_table("epochs")
    set_style()
    return StudyData(directory.path, directory.definition(), runs, pd.DataFrame() if epochs is None else epochs,
                     directory.read_table("stability"), directory.read_summary(), directory.read_table("classes"))
