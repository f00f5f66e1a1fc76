"""Data access, HTML and plots for the report pages in `reports/` (see `docs/report.md`).

The pages stay short by calling these helpers; everything here works the same under Quarto and under the
offline preview (`python -m analysis.report`). Every string that comes from a study (names, descriptions,
errors) reaches the page through `esc` or `table`: nothing from a study file is ever emitted as raw HTML.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ganlib.registry import METRICS, lower_is_better  # noqa: F401  (lower_is_better: used by the pages as F.)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BASELINE = "baseline"
CURVES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
# Metric names in the registry's order; final_* columns of the others describe the evaluation, not the generator.
METRIC_ORDER = tuple(name for name, m in METRICS.items() if m.is_result)
NOT_METRICS = tuple(f"final_{name}" for name, m in METRICS.items() if not m.is_result)
STATUS_COLORS = {"completed": "#1a7f37", "diverged": "#b35900", "failed": "#c62828", "running": "#555"}
CSS = """<style>
.ganlib-table{border-collapse:collapse;font-size:.88em;margin:.4em 0 1.2em;font-variant-numeric:tabular-nums}
.ganlib-table th,.ganlib-table td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}
.ganlib-table th{background:#f3f5f7;border-bottom:2px solid #bbb}
.ganlib-table td.text,.ganlib-table th.text{text-align:left;white-space:normal}
.ganlib-table td{white-space:nowrap}
.ganlib-table small{color:#666;font-weight:normal}
.ganlib-table tr.best td{background:#eaf6ec;font-weight:600}
.ganlib-table tr.flag td{background:#fff4e5}
.ganlib-callout{border-left:6px solid;border-radius:4px;padding:.6em 1em;margin:.8em 0}
.ganlib-callout.warning{border-color:#d9822b;background:#fff4e5}
.ganlib-callout.danger{border-color:#c62828;background:#fdecea}
.ganlib-callout.info{border-color:#2b6cb0;background:#ebf4ff}
.ganlib-callout.success{border-color:#1a7f37;background:#eaf6ec}
.ganlib-callout b.title{display:block;margin-bottom:.2em}
.ganlib-callout ul{margin:.2em 0 0;padding-left:1.2em}
.ganlib-figs{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
.ganlib-figs figure{margin:0;text-align:center;font-size:.8em}
.ganlib-traversal img{image-rendering:pixelated}
.ganlib-grid tbody th.text{white-space:nowrap}
.ganlib-grid td,.ganlib-grid thead th{text-align:center}
.ganlib-key{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.3em 0 1em}
.ganlib-key dt{font-weight:600}.ganlib-key dd{margin:0}
.ganlib-status{font-weight:600}
</style>"""


# ----------------------------------------------------------------------------------------------- HTML
def esc(value) -> str:
    """HTML-escaped text of any value (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    """A number as a table shows it: NaN as an en dash, large values without decimals."""
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def table(df: pd.DataFrame, raw=(), table_id: Optional[str] = None, highlight=None, digits: int = 4,
          mark: str = "best") -> str:
    """An HTML table; every cell is escaped except the columns named in `raw` (already-safe HTML).

    `highlight`: a boolean sequence marking rows to emphasise, in green (mark="best") or amber (mark="flag").
    """
    numeric = {c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}
    cls = lambda c: "" if c in numeric else ' class="text"'  # noqa: E731
    head = "".join(f"<th{cls(c)}>{esc(c)}</th>" for c in df.columns)
    rows = []
    marks = list(highlight) if highlight is not None else [False] * len(df)
    for marked, (_, r) in zip(marks, df.iterrows()):
        cells = "".join(f"<td{cls(c)}>{r[c] if c in raw else esc(fmt(r[c], digits))}</td>" for c in df.columns)
        rows.append(f"<tr{f' class={mark}' if marked else ''}>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (f'<div style="overflow-x:auto"><table class="ganlib-table table table-sm"{ident}><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def callout(title: str, items=(), kind: str = "warning", text: str = "") -> str:
    """A coloured box (warning, danger, info, success) with an escaped title, text and bullet list."""
    body = f"<div>{esc(text)}</div>" if text else ""
    items = list(items)
    if items:
        body += "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
    return f'<div class="ganlib-callout {esc(kind)}" role="note"><b class="title">{esc(title)}</b>{body}</div>'


def status_html(status) -> str:
    color = STATUS_COLORS.get(str(status), "#555")
    return f'<span class="ganlib-status" style="color:{color}">{esc(status)}</span>'


def show(*parts) -> None:
    """Display HTML fragments (strings built with the helpers above) in the notebook / page."""
    from IPython.display import HTML, display

    display(HTML("".join(parts)))


def png_bytes(image) -> bytes:
    """PNG encoding of a uint8 image array (H, W) or (H, W, C)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def img(source, alt: str = "", width: Optional[int] = None, mime: str = "image/png") -> str:
    """<img> with the picture embedded as a data: URI (a file path or bytes), so pages work offline.

    `width` only ever shrinks a picture: sample grids are enlarged already, enlarging them again blurs them.
    """
    from PIL import Image

    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if width:
        width = min(int(width), Image.open(io.BytesIO(data)).width)
    style = f' style="width:{int(width)}px"' if width else ""
    return f'<img src="{data_uri(data, mime)}" alt="{esc(alt)}"{style}>'


def figure(source, caption: str, width: Optional[int] = None, mime: str = "image/png") -> str:
    return f"<figure>{img(source, caption, width, mime)}<figcaption>{esc(caption)}</figcaption></figure>"


def notebook_href(variation: str, seed) -> str:
    """Where the preview (and the Quarto post-render step) puts a run's executed notebook, relative to a page."""
    return f"notebooks/{urllib.parse.quote(str(variation), safe='')}/seed{int(seed)}.html"


# ----------------------------------------------------------------------------------------------- data
class StudyNotReady(FileNotFoundError):
    """The study folder or its gathered tables are missing."""


def resolve_study_dir(study_dir) -> Path:
    """The study to report: $GANLIB_STUDY when set (overrides the page parameter), else `study_dir`."""
    return Path(os.environ.get("GANLIB_STUDY") or study_dir).expanduser()


def check_study_dir(study_dir) -> Path:
    """`study_dir` as a Path, or StudyNotReady saying which command makes what is missing."""
    d = Path(study_dir).expanduser()
    definition = Path(__file__).parent / "studies" / f"{d.name}.yaml"
    sweep = (f"python -m analysis.sweep analysis/studies/{definition.name if definition.exists() else '<study>.yaml'}"
             f" --out {d.parent}")
    if not d.is_dir():
        raise StudyNotReady(f"study folder {d} does not exist: run `{sweep}` first")
    if not (d / "tables" / "runs.parquet").exists():
        raise StudyNotReady(f"{d} has no tables/runs.parquet: run `{sweep}` first (or `python -m analysis.gather "
                            f"{d}` if its runs are already trained)")
    return d


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


@dataclass
class StudyData:
    """Everything a page needs about one study: its definition, the gathered tables, paths and ordering."""
    dir: Path
    info: dict
    runs: pd.DataFrame
    epochs: pd.DataFrame
    stability: Optional[pd.DataFrame] = None
    summary: dict = field(default_factory=dict)

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
        return out

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
        local = self.dir / "runs" / str(variation) / f"seed{int(seed)}"
        if local.exists():
            return local
        row = self.runs[(self.runs["variation"] == variation) & (self.runs["seed"] == seed)]
        return Path(row["run_dir"].iloc[0]) if len(row) and isinstance(row["run_dir"].iloc[0], str) else local

    def metric_columns(self) -> list:
        """Numeric final metrics with at least one finite value, the primary metric first."""
        cols = [c for c in self.runs.columns if c.startswith("final_") and c not in NOT_METRICS
                and pd.api.types.is_numeric_dtype(self.runs[c]) and np.isfinite(self.runs[c].astype(float)).any()]
        known = [f"final_{m}" for m in METRIC_ORDER]
        return sorted(cols, key=lambda c: (c != self.primary_metric, known.index(c) if c in known else len(known), c))

    def has_metric(self, metric: Optional[str] = None) -> bool:
        metric = metric or self.primary_metric
        return metric in self.runs and np.isfinite(pd.to_numeric(self.completed[metric], errors="coerce")).any()

    def batches(self) -> pd.DataFrame:
        """Per-step logs of all runs (analysis.gather.load_batches)."""
        from analysis.gather import load_batches

        return load_batches(self.dir)

    def ranking(self, metric: Optional[str] = None) -> pd.DataFrame:
        """Per variation: runs, completed runs, runs that did not learn, and the median of `metric` with a
        bootstrap CI over the runs that learned (runs that did not learn are never ranked as results); best first."""
        from analysis.stats import bootstrap_median_ci

        metric = metric or self.primary_metric
        rows = []
        for v in self.variations:
            runs = self.runs[self.runs["variation"] == v]
            done = runs[runs["status"] == "completed"]
            ok = done[done["verdict"] != "did_not_learn"] if "verdict" in done else done
            values = pd.to_numeric(ok[metric], errors="coerce") if metric in ok else pd.Series(dtype=float)
            ci = bootstrap_median_ci(values.to_numpy(float))
            rows.append({"variation": v, "runs": len(runs), "completed": len(done),
                         "did not learn": len(done) - len(ok), "median": ci["median"],
                         "ci_low": ci["ci_low"], "ci_high": ci["ci_high"]})
        df = pd.DataFrame(rows)
        df["_key"] = df["median"] if lower_is_better(metric) else -df["median"]
        return df.sort_values("_key", na_position="last", kind="stable").drop(columns="_key").reset_index(drop=True)

    def best(self, metric: Optional[str] = None) -> Optional[dict]:
        """{variation, seed, value}: the best variation by median `metric` and its best completed run."""
        metric = metric or self.primary_metric
        if not self.has_metric(metric):
            return None
        top = self.ranking(metric).iloc[0]
        if pd.isna(top["median"]):
            return None  # no run that learned has a value
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


def status_counts(runs: pd.DataFrame) -> str:
    return ", ".join(f"{n} {s}" for s, n in runs["status"].fillna("missing").value_counts().items())


def page_header(study: StudyData) -> str:
    """The style sheet, one line saying which study this page reports, and the runs that did not learn."""
    return CSS + (f'<p class="ganlib-study" style="color:#444">Study <b>{esc(study.name)}</b> · '
                  f"{len(study.variations)} configurations × {len(study.seeds)} seeds · {len(study.runs)} runs "
                  f"({esc(status_counts(study.runs))}) · <code>{esc(study.dir)}</code></p>") + verdict_callout(study)


def verdict_callout(study: StudyData) -> str:
    """A prominent warning listing the completed runs that did not learn ("" when there are none)."""
    bad = study.did_not_learn
    if bad.empty:
        return ""
    items = [f"{r.run_id}: {r.verdict_reasons}" for r in bad.head(12).itertuples()]
    if len(bad) > 12:
        items.append(f"… and {len(bad) - 12} more (see Runs)")
    return callout(f"{len(bad)} of {len(study.completed)} completed runs did not learn", items, "danger",
                   "Their samples are no better than an untrained generator's by the checks of ganlib.verdict. "
                   "Rankings and 'best' picks leave them out; the statistical tests still include their metric "
                   "values (failing to learn is part of what a configuration does), so read a verdict about "
                   "configurations that mostly failed as a verdict about failures.")


def extractor_callout(study: StudyData) -> str:
    """A prominent warning when the runs' metrics come from different feature extractors, or from extractors
    of one name with different weights (fingerprints), e.g. networks trained on two machines ("" otherwise)."""
    runs = study.runs.dropna(subset=["extractor"]) if "extractor" in study.runs else study.runs.iloc[:0]
    fingerprint = runs["extractor_fingerprint"] if "extractor_fingerprint" in runs else None
    scored_by = runs["extractor"] + ("" if fingerprint is None else " @ " + fingerprint.fillna("unrecorded"))
    if scored_by.nunique() < 2:
        return ""
    items = [f"{ext}: {len(ids)} runs ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''})"
             for ext, ids in runs.groupby(scored_by)["run_id"].apply(list).items()]
    return callout("Runs were scored by different feature networks", items, "danger",
                   "Their metrics are not comparable, and neither are the tests built on them: share one feature "
                   "cache (GANLIB_CACHE on a shared folder), re-evaluate every run with it "
                   "(ganlib.metrics.evaluate_run) and gather the study again.")


def open_study(study_dir) -> StudyData:
    """Load a study for a report page (honours $GANLIB_STUDY) and set up consistent plot styles."""
    d = check_study_dir(resolve_study_dir(study_dir))
    tables = d / "tables"
    runs = pd.read_parquet(tables / "runs.parquet")
    runs["variation"] = runs["variation"].astype(str)
    epochs = pd.read_parquet(tables / "epochs.parquet") if (tables / "epochs.parquet").exists() else pd.DataFrame()
    stability = pd.read_parquet(tables / "stability.parquet") if (tables / "stability.parquet").exists() else None
    summary = {}
    if (d / "study_summary.json").exists():
        summary = json.loads((d / "study_summary.json").read_text())
    _style()
    return StudyData(d, _read_yaml(d / "study.yaml"), runs, epochs, stability, summary)


def _style() -> None:
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
                         "legend.frameon": False, "figure.autolayout": True})
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # not in a kernel
        pass


# ----------------------------------------------------------------------------------------------- plots
def _label(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def curve_figure(data: pd.DataFrame, columns, x: str, study: StudyData, titles=None, ncols: int = 2):
    """One panel per column: the mean over seeds per variation, shaded between the min and max seed."""
    import matplotlib.pyplot as plt

    columns = [c for c in columns if c in data and data[c].notna().any()]
    if not columns:
        return None
    from matplotlib.ticker import MaxNLocator

    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(5.2, 11 / ncols) * ncols, 3.2 * nrows), squeeze=False)
    for ax, col in zip(axes.flat, columns):
        for v in study.variations:
            d = data[data["variation"] == v].dropna(subset=[col])
            if d.empty:
                continue
            g = d.groupby(x)[col].agg(["mean", "min", "max", "count"])
            ax.plot(g.index, g["mean"], color=study.colors[v], lw=1.6, label=_label(v),
                    marker="o" if len(g) < 12 else None, ms=3)
            if g["count"].max() > 1:
                ax.fill_between(g.index, g["min"], g["max"], color=study.colors[v], alpha=0.15, lw=0)
        ax.set(title=(titles or {}).get(col, col), xlabel=x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
    fig.set_layout_engine("constrained")
    return fig


def box_strip(runs: pd.DataFrame, metrics, study: StudyData, ncols: int = 3):
    """Box plot per variation over its completed runs, every seed as a dot on top."""
    import matplotlib.pyplot as plt

    metrics = list(metrics)
    names = [v for v in study.variations if (runs["variation"] == v).any()]
    width = min(12.0, max(3.6, 0.6 * len(names) + 1.5))
    ncols = max(1, min(ncols, int(12 // width), len(metrics)))
    nrows = -(-len(metrics) // ncols)
    slanted = len(names) > 3 or max(map(len, names)) > 10
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, (3.4 + slanted) * nrows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, m in zip(axes.flat, metrics):
        data = [pd.to_numeric(runs.loc[runs["variation"] == v, m], errors="coerce").dropna().to_numpy()
                for v in names]
        pos = np.arange(len(data))
        ax.boxplot([d if len(d) else [np.nan] for d in data], positions=pos, widths=0.55, showfliers=False,
                   medianprops={"color": "black"}, patch_artist=True, boxprops={"facecolor": "#eef1f5"})
        for i, (v, d) in enumerate(zip(names, data)):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(d)), d, s=22, color=study.colors[v], zorder=3,
                       edgecolor="white", lw=0.5)
        ax.set_xticks(pos, [_label(v, 18) for v in names], rotation=25 if slanted else 0,
                      ha="right" if slanted else "center", rotation_mode="anchor")
        ax.set_title(f"{m} ({'lower' if lower_is_better(m) else 'higher'} is better)")
        ax.grid(axis="x", visible=False)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    return fig


def effect_plot(cmp: pd.DataFrame, study: StudyData, name: str = "variation"):
    """Forest plot of Cliff's delta with its 95 % interval per comparison (a `compare_to_baseline` table)."""
    import matplotlib.pyplot as plt

    d = cmp[cmp["cliffs_delta"].notna()].iloc[::-1]
    if d.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(d) + 1.4))
    y = np.arange(len(d))
    better_low = bool(d["lower_is_better"].iloc[0])
    ax.axvspan(-1 if better_low else 0, 0 if better_low else 1, color="#1a7f37", alpha=0.06, lw=0)
    ax.axvline(0, color="#888", lw=1)
    for i, r in zip(y, d.itertuples()):
        color = study.colors.get(getattr(r, name), "#333")
        ax.plot([r.cliffs_delta_ci_low, r.cliffs_delta_ci_high], [i, i], color=color, lw=2)
        ax.plot(r.cliffs_delta, i, "o", color=color, ms=7, mfc=color if r.significant else "white", mew=2)
    ax.set_yticks(y, [_label(str(v), 30) for v in d[name]])
    ax.set_ylim(-0.7, len(d) - 0.3)
    ax.set(xlim=(-1.05, 1.05), xlabel=f"Cliff's delta vs {study.baseline} (95% CI); shaded: better; filled: significant")
    ax.grid(axis="y", visible=False)
    return fig


# ----------------------------------------------------------------------------------------------- images
def sample_files(run_dir) -> list:
    from ganlib.rundir import RunDirectory

    return RunDirectory(run_dir).sample_files()


def epoch_of(png: Path) -> int:
    from ganlib.rundir import RunDirectory

    return RunDirectory.sample_epoch(png)


def training_gif(run_dir, max_frames: int = 40, ms_per_frame: int = 400) -> Optional[bytes]:
    """An animated GIF (imageio) of a run's benchmark-noise grids over the epochs, each frame labelled."""
    import imageio.v3 as iio

    from ganlib.animation import progress_frames

    if not sample_files(run_dir):
        return None
    frames = progress_frames(run_dir, max_frames=max_frames)  # ganlib's frames: colour runs stay in colour
    # Pause on the final epoch. A single frame takes a plain number: imageio's GIF writer divides a one-frame
    # duration list by an int (TypeError), e.g. for a run of one epoch.
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 4] if len(frames) > 1 else ms_per_frame
    return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=durations, loop=0)


def load_generator(run_dir):
    """A completed run's final generator (its EMA copy when present), through ganlib's one safe loader."""
    from ganlib.rundir import RunDirectory

    run = RunDirectory(run_dir)
    return run.load_model(run.final_generator_name)


def benchmark_noise(run_dir):
    with np.load(Path(run_dir) / "samples" / "benchmark_noise.npz", allow_pickle=False) as f:
        return f["z"], f["labels"]


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: Gaussian latent points keep a typical norm all along the path."""
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(a * b, -1, keepdims=True) / (na * nb), -1, 1))
    so = np.sin(omega)
    safe = np.where(so < 1e-6, 1.0, so)
    out = np.where(so < 1e-6, (1 - t) * a + t * b, (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / safe)
    return out.astype(np.float32)


def traversal_frames(run_dir, frames: int = 16, columns: int = 4, scale: int = 4) -> list:
    """PNG bytes of `frames` images, each a row of `columns` samples, moving from benchmark latent points
    z[i] to z[columns + i] (label i for a conditional generator) along great circles."""
    from ganlib.plotting import grid_image
    from ganlib.trainer import generate

    generator = load_generator(run_dir)
    z, labels = benchmark_noise(run_dir)
    columns = max(1, min(columns, len(z) // 2))
    a, b = z[:columns], z[columns:2 * columns]
    ts = np.linspace(0, 1, frames)
    zs = np.concatenate([_slerp(a, b, t) for t in ts])
    images = generate(generator, zs, np.tile(labels[:columns], frames))
    out = []
    for k in range(frames):
        grid = grid_image(images[k * columns:(k + 1) * columns], columns=columns)
        grid = np.kron(grid, np.ones((scale, scale) + (1,) * (grid.ndim - 2), np.uint8))
        out.append(png_bytes(grid))
    return out


def traversal_html(frames_png: list, caption: str = "") -> str:
    """A range slider switching between precomputed frames, with a few lines of inline JS (works offline)."""
    uris = [data_uri(f) for f in frames_png]
    uid = "lt-" + hashlib.sha1("".join(uris).encode()).hexdigest()[:10]
    n = len(uris)
    return f"""<div class="ganlib-traversal" id="{uid}" data-frames="0">
<img src="{uris[0]}" alt="latent interpolation, step 1 of {n}" style="max-width:100%">
<div><input type="range" min="0" max="{n - 1}" value="0" step="1" aria-label="interpolation step"
 style="width:min(100%,420px);vertical-align:middle"> <span class="lt-label">t = 0.00</span></div>
<div style="font-size:.85em;color:#555">{esc(caption)}</div>
<script>(function () {{
  var root = document.getElementById("{uid}"), frames = {json.dumps(uris)};
  var image = root.querySelector("img"), slider = root.querySelector("input"), label = root.querySelector(".lt-label");
  slider.addEventListener("input", function () {{
    image.src = frames[slider.value];
    image.alt = "latent interpolation, step " + (+slider.value + 1) + " of " + frames.length;
    label.textContent = "t = " + (slider.value / (frames.length - 1)).toFixed(2);
  }});
  root.setAttribute("data-frames", frames.length);
}})();</script></div>"""


# ----------------------------------------------------------------------------------------------- diagnostics
_DATA_CACHE: dict = {}


def training_images(config, split: str = "train"):
    """The real images (uint8, as stored) of a run's dataset split, cached per dataset settings."""
    from ganlib.data import load_for_config

    key = (split, config.dataset, config.data_dir, config.subset, config.image_size, config.channels)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_for_config(config, split)
    return _DATA_CACHE[key]


def generated_samples(run_dir, n: int = 64, seed: int = 1234):
    """n samples of a run's final generator from seeded latent points (labels cycling through the classes)."""
    from ganlib.rundir import RunDirectory
    from ganlib.trainer import generate

    generator = load_generator(run_dir)
    z = np.random.default_rng(seed).standard_normal((n, generator.inputs[0].shape[-1])).astype(np.float32)
    classes = len(RunDirectory(run_dir).read_summary().get("dataset", {}).get("classes") or []) or 1
    return generate(generator, z, np.arange(n) % classes)
