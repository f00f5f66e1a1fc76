"""Result plots of one or several run directories: losses, discriminator accuracy, d_loss - g_loss and FID.

Per-batch logs are noisy (one minibatch per row), so they are smoothed with a rolling mean. Several runs (e.g.
seeds of one configuration) are either averaged, mean +- spread, or drawn side by side / overlaid, so a
difference between configurations can be told apart from seed noise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import pandas as pd

from .rundir import RunDirectory, RunDirectoryError, read_log

KINDS = {"loss": ("d_loss", "g_loss"), "accuracy": ("d_acc_real", "d_acc_fake"), "loss_diff": ("loss_diff",),
         "fid": ("eval_fid",)}
TITLES = {"loss": "Losses", "accuracy": "Discriminator accuracy", "loss_diff": "d_loss - g_loss",
          "fid": "FID (lower is better)"}
TRAINING_COLUMNS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "loss_diff")
LINE_STYLES = ("-", "--", ":", "-.")


def named_runs(runs) -> Dict[str, RunDirectory]:
    """{name: RunDirectory} from a path, a list of paths or a {name: path} mapping (names: folder names,
    with the parent folder added where two runs share a name)."""
    if isinstance(runs, Mapping):
        return {str(k): _run_or_log(v) for k, v in runs.items()}
    paths = [_run_or_log(runs)] if isinstance(runs, (str, Path, RunDirectory)) else [_run_or_log(r) for r in runs]
    names = [_name_of(r) for r in paths]
    names = [f"{_parent_name(r)}/{n}" if names.count(n) > 1 else n for r, n in zip(paths, names)]
    return dict(zip(names, paths))


def _run_or_log(item):
    """A RunDirectory, or the Path of a CSV log (a run's metrics/batches.csv or epochs.csv, or a copy of one)."""
    if isinstance(item, RunDirectory):
        return item
    path = Path(item)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return path
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is neither a run directory nor a CSV log (metrics/batches.csv, "
                                 "metrics/epochs.csv)")
    return RunDirectory(path)


def _name_of(run) -> str:
    # A run's log file is named after its run directory (metrics/ is the log folder inside it).
    if isinstance(run, RunDirectory):
        return run.path.name
    return run.parent.parent.name if run.parent.name == "metrics" else run.stem


def _parent_name(run) -> str:
    return run.path.parent.name if isinstance(run, RunDirectory) else run.parent.name


def _read_log(run, per: str) -> pd.DataFrame:
    if isinstance(run, RunDirectory):
        return run.read_batches() if per == "batch" else run.read_epochs()
    if not Path(run).exists():
        raise FileNotFoundError(f"{run} does not exist")
    try:
        frame = read_log(Path(run))
    except RunDirectoryError as e:
        raise ValueError(str(e)) from None
    if "step" in frame:  # a batch log (batches.csv); per epoch: the mean of each epoch's batches
        return frame if per == "batch" else frame.groupby("epoch", as_index=False).mean(numeric_only=True).drop(
            columns="step")
    if per == "batch" or "epoch" not in frame:
        raise ValueError(f"{run} has no 'step' column" + (": it is an epoch log, give per='epoch' for it"
                                                          if "epoch" in frame else " nor 'epoch' column"))
    return frame


def run_curves(run_dir, per: str = "batch", window: int = 1) -> pd.DataFrame:
    """A run's log (`per`="batch": metrics/batches.csv, x = step; "epoch": epochs.csv, x = epoch) with
    `loss_diff` = d_loss - g_loss, the training columns smoothed by a trailing rolling mean of `window` rows
    (shorter at the start) and, per epoch, the `eval_*` columns as logged."""
    if per not in ("batch", "epoch"):
        raise ValueError(f"per must be 'batch' or 'epoch' (got {per!r})")
    frame = _read_log(_run_or_log(run_dir), per).copy()
    frame = frame.sort_values("step" if per == "batch" else "epoch").reset_index(drop=True)
    if "d_loss" in frame and "g_loss" in frame:
        frame["loss_diff"] = frame["d_loss"] - frame["g_loss"]
    columns = [c for c in TRAINING_COLUMNS if c in frame]
    if window > 1 and columns:
        frame[columns] = frame[columns].rolling(window, min_periods=1).mean()
    return frame


def configurations(runs: Dict[str, object]) -> Dict[str, str]:
    """{run name: its configuration's label}: runs whose configurations differ only in the seed share one (a
    study's variation folder name when they all sit in runs/<variation>/seed<k>, else `config <hash>`); a CSV log,
    or a run without a readable config.json, is its own configuration."""
    keys = {}
    for name, run in runs.items():
        try:
            keys[name] = run.read_config().replace(seed=0).hash if isinstance(run, RunDirectory) else name
        except RunDirectoryError:
            keys[name] = name
    labels = {}
    for key in set(keys.values()):
        members = [runs[n] for n, k in keys.items() if k == key]
        if key in runs:  # a log or an unreadable run: its own name
            labels[key] = key
            continue
        in_study = all(r.path.name.startswith("seed") for r in members)
        folders = {r.path.parent.name for r in members}
        labels[key] = folders.pop() if in_study and len(folders) == 1 else f"config {key}"
    return {name: labels[key] for name, key in keys.items()}


def _plot_kind(ax, curves: Dict[str, pd.DataFrame], kind: str, x: str, combine: str, spread: Optional[str],
               groups: Optional[Dict[str, str]] = None):
    several = len(curves) > 1
    for j, column in enumerate(KINDS[kind]):
        present = {n: f[[x, column]].dropna() for n, f in curves.items() if column in f and f[column].notna().any()}
        if combine == "mean" and len(present) > 1:
            # one mean line per configuration (its seeds), never one over runs of different configurations
            by_group: Dict[str, list] = {}
            for n, f in present.items():
                by_group.setdefault((groups or {}).get(n, "all runs"), []).append(f)
            for g, (label, frames) in enumerate(by_group.items()):
                stats = pd.concat(frames).groupby(x)[column].agg(["mean", "std", "sem", "min", "max"])
                name = f"{label}: " if len(by_group) > 1 else ""
                (line,) = ax.plot(stats.index, stats["mean"], color=f"C{g}", ls=LINE_STYLES[j % len(LINE_STYLES)],
                                  label=f"{name}{column} (mean of {len(frames)} seed{'s' if len(frames) > 1 else ''})")
                if spread in ("std", "sem"):
                    low, high = stats["mean"] - stats[spread].fillna(0), stats["mean"] + stats[spread].fillna(0)
                elif spread == "minmax":
                    low, high = stats["min"], stats["max"]
                else:
                    continue
                ax.fill_between(stats.index, low, high, color=line.get_color(), alpha=0.2, lw=0)
            continue
        for name, f in present.items():  # one colour per run, one line style per column
            ax.plot(f[x], f[column], label=f"{name}: {column}" if several else column,
                    color=f"C{list(curves).index(name)}" if several else None,
                    ls=LINE_STYLES[j % len(LINE_STYLES)] if several else "-")
    if not ax.lines:
        hint = "\n(FID during training needs metric_interval > 0)" if kind == "fid" else ""
        ax.text(0.5, 0.5, f"no {', '.join(KINDS[kind])} logged{hint}", ha="center", va="center",
                transform=ax.transAxes)
    if kind == "loss_diff":
        ax.axhline(0.0, color="grey", lw=0.8, label="_nolegend_")  # D and G losses balanced
    if kind == "accuracy":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if any(not line.get_label().startswith("_") for line in ax.lines):
        ax.legend(frameon=False, fontsize="small")


def plot_results(runs, kinds: Sequence[str] = ("loss", "accuracy", "loss_diff", "fid"), per: str = "batch",
                 window: Optional[int] = None, combine: str = "overlay", spread: Optional[str] = "std"):
    """Result plots of one or several runs, one panel per kind; returns the matplotlib Figure.

    kinds: "loss" (d_loss, g_loss), "accuracy" (d_acc_real, d_acc_fake), "loss_diff" (d_loss - g_loss),
    "fid" (the `eval_fid` column of epochs.csv, always per epoch). per: "batch" or "epoch"; window: rolling mean
    over rows (default 20 for batches, 1 for epochs). combine: "overlay" (a line per run on shared axes),
    "mean" (per configuration, the mean over its seeds at each step, shaded by `spread`: "std", "sem", "minmax"
    or None; runs are seeds of one configuration when their configurations differ only in the seed), or "side"
    (a row of panels per run, shared y axes).
    """
    import matplotlib.pyplot as plt

    unknown = [k for k in kinds if k not in KINDS]
    if unknown or combine not in ("overlay", "mean", "side"):
        raise ValueError(f"kinds must be among {list(KINDS)} and combine one of overlay, mean, side "
                         f"(got kinds={list(kinds)}, combine={combine!r})")
    window = window if window is not None else (20 if per == "batch" else 1)
    runs = named_runs(runs)
    training = {n: run_curves(r, per, window) for n, r in runs.items()}
    evaluation = {n: run_curves(r, "epoch") for n, r in runs.items()}
    grouping = configurations(runs)
    groups = [{n: None} for n in runs] if combine == "side" else [{n: None for n in runs}]
    fig, axes = plt.subplots(len(groups), len(kinds), figsize=(4.2 * len(kinds), 3.2 * len(groups)),
                             squeeze=False, sharey="col" if combine == "side" else False)
    x_training = "step" if per == "batch" else "epoch"
    for row, group in zip(axes, groups):
        for ax, kind in zip(row, kinds):
            source, x = (evaluation, "epoch") if kind == "fid" else (training, x_training)
            _plot_kind(ax, {n: source[n] for n in group}, kind, x, combine, spread, grouping)
            smoothed = f" (rolling mean of {window})" if window > 1 and kind != "fid" else ""
            ax.set(xlabel=x + smoothed, title=TITLES[kind] + (f" - {next(iter(group))}" if combine == "side" else ""))
    fig.tight_layout()
    return fig
