"""Matplotlib figures of a study: learning curves, box plots of metrics, forest plots of effect sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ganlib.registry import lower_is_better


CURVES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


def _label(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def curve_figure(data: pd.DataFrame, columns, x: str, study, titles=None, ncols: int = 2,
                 lines=None):
    """One panel per column: the mean over seeds per variation, shaded between the min and max seed.
    `lines`: {column: (y, label)} draws a dashed reference line (a threshold) in that column's panel."""
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
        if col in (lines or {}):
            y, words = lines[col]
            ax.axhline(y, color="0.35", ls="--", lw=1)
            ax.annotate(words, (0.01, y), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="0.3")
        ax.set(title=(titles or {}).get(col, col), xlabel=x, ylabel=col)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
    fig.set_layout_engine("constrained")
    return fig


def _anchor_axis(ax, metric: str, values: np.ndarray) -> None:
    """A share (accuracy, recall, ...) on its whole range [0, 1] and a distance from 0, so that 0.097 vs 0.100
    does not fill a panel; a panel whose runs all score the same says so instead of drawing a flat line."""
    from ganlib.registry import metric as metric_entry

    try:
        low, high = metric_entry(metric).bounds
    except (KeyError, ValueError):  # not a registered metric: matplotlib's own limits
        low, high = None, None
    if low is not None and high is not None:
        ax.set_ylim(low - 0.03 * (high - low), high + 0.03 * (high - low))
    elif low is not None and len(values) and values.min() >= low:
        ax.set_ylim(bottom=low)
    if len(values) and np.ptp(values) == 0:
        ax.text(0.5, 0.9, f"every run: {values[0]:.4g}", transform=ax.transAxes, ha="center", color="#555")


def box_strip(runs: pd.DataFrame, metrics, study, ncols: int = 3):
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
        _anchor_axis(ax, m, np.concatenate(data) if data else np.array([]))
        ax.grid(axis="x", visible=False)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    return fig


def effect_plot(cmp: pd.DataFrame, study, name: str = "variation"):
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


def set_style() -> None:
    """One look for every figure of the report (PNG output in notebooks)."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
                         "legend.frameon": False, "figure.autolayout": True})
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # not in a kernel
        pass


def budget_figure(curves: pd.DataFrame, metric: str, lower_is_better: bool):
    """Expected best `metric` against the number of trials, one line per group of an
    `analysis.budget.budget_curves` table (the figure of Lucic et al. 2018), with the exact 95 % interval of the
    median best of k shaded; where one side of it does not exist, the other is drawn dashed."""
    import matplotlib
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    cmap = matplotlib.colormaps["tab10"]
    for i, (group, d) in enumerate(curves.groupby("group", sort=False)):
        color = "#333333" if group == "all trials" else cmap(i % 10)
        ax.plot(d["k"], d["expected"], color=color, lw=1.8, marker="o" if len(d) < 15 else None, ms=3,
                label=f"{_label(str(group))} ({int(d['trials'].iloc[0])} trials)")
        both = d["median_low"].notna() & d["median_high"].notna()
        ax.fill_between(d["k"], d["median_low"], d["median_high"], where=both, color=color, alpha=0.15, lw=0,
                        interpolate=False)
        for side in ("median_low", "median_high"):
            alone = d[side].where(~both)
            ax.plot(d["k"], alone, color=color, lw=1, ls="--", alpha=0.6)
    ax.set(xlabel="trials (budget)", ylabel=f"expected best {metric}",
           title=f"Expected best {metric} within a budget ({'lower' if lower_is_better else 'higher'} is better)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color="#999999", alpha=0.3, label="95 % interval of the median best of k"),
                Line2D([], [], color="#999999", ls="--", label="its one bound where the other needs more trials")]
    ax.legend(handles=handles, fontsize=8)
    return fig
