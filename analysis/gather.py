"""Read a study's run directories into tidy tables, and save them as Parquet for the report.

    python -m analysis.gather studies/quick [--window 50] [--no-batches]

`gather(study_dir)` returns `StudyTables` (`runs`: one row per run; `epochs`: one row per run and epoch;
`stability` / `rolling`: per-run summaries of the per-batch logs) and writes them to `<study_dir>/tables/`.
Per-batch logs can be large, so they are only read on demand (`load_batches`) or one run at a time
(`batch_summaries`). A run whose files are missing or unreadable becomes a row saying so, never a crash.
The run directory format is defined in `docs/run-directory.md`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ganlib.config import Config
from analysis.studydir import TABLE_NAMES, StudyDirectory
from ganlib.rundir import RunDirectory
from ganlib.verdict import caution

ID_COLUMNS = ["study", "variation", "seed", "run_id"]
BATCH_COLUMNS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
CONFIG_FIELDS = [f.name for f in fields(Config)]


@dataclass
class StudyTables:
    runs: pd.DataFrame
    epochs: pd.DataFrame
    stability: Optional[pd.DataFrame] = None
    rolling: Optional[pd.DataFrame] = None
    classes: Optional[pd.DataFrame] = None  # class-aware final metrics: one row per (run, class)


def study_runs(study_dir) -> list:
    """[{study, variation, seed, run_id, run_dir, config}] of every run the study defines (or, without a
    readable study.yaml, every run directory found under runs/)."""
    directory = StudyDirectory(study_dir)
    try:
        study = directory.read_study()
        return [dict(study=study.name, variation=r.variation, seed=r.seed, run_id=r.run_id,
                     run_dir=directory.run_dir(r.variation, r.seed), config=r.config) for r in study.runs()]
    except Exception as e:
        if directory.definition_file.exists():
            print(f"warning: {directory.definition_file} unreadable ({e}); reading the runs found on disk",
                  file=sys.stderr)
    return [dict(study=directory.name, variation=variation, seed=seed, run_id=f"{variation}/seed{seed}",
                 run_dir=path, config=None) for variation, seed, path in directory.run_dirs_on_disk()]


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def read_run(info: dict):
    """(row of the runs table, epochs DataFrame, class rows) of one run; problems go into `status`/`read_error`.
    The class rows are the run's `final_class_metrics` in long form (class, class_name, fid, recall, ...)."""
    run = RunDirectory(info["run_dir"])
    problems = []
    row = {k: info[k] for k in ID_COLUMNS}
    row.update(run_dir=str(run.path), notebook=str(run.path / "train.ipynb")
               if (run.path / "train.ipynb").exists() else None)
    try:
        summary = run.read_summary()
        status = summary.get("status") or "missing"
    except Exception as e:
        summary, status = {}, "corrupt"
        problems.append(f"summary.json unreadable: {type(e).__name__}: {e}")
    error = (summary.get("error") if summary else problems[0] if problems
             else "not started" if not run.path.exists() else "no summary.json")
    config = info.get("config")
    if run.config_file.exists():
        try:
            config = run.read_config()
        except Exception as e:
            problems.append(f"config.json unreadable: {type(e).__name__}: {e}")
    row.update(status=status, error=error, config_hash=summary.get("config_hash") or (config.hash if config else None))
    row.update({k: v for k, v in (config.to_dict() if config else {}).items() if k not in row})
    try:
        epochs = run.read_epochs()
    except Exception as e:
        epochs = None
        problems.append(f"epochs.csv unreadable: {type(e).__name__}: {e}")
    row.update(attempts=summary.get("attempts"), finished_at=summary.get("finished_at"),
               epochs_completed=summary.get("epochs_completed", len(epochs) if epochs is not None else None),
               train_seconds=summary.get("train_seconds_total"))
    final = summary.get("final_metrics") or {}
    row.update({f"final_{k}": float(v) for k, v in final.items() if _number(v)})
    row["extractor"] = final.get("extractor")
    row["extractor_fingerprint"] = final.get("extractor_fingerprint")  # None: scored before ganlib recorded it
    row["extractor_kind"] = final.get("extractor_kind")  # in words: classifier, self-supervised, ImageNet
    row["verdict"] = summary.get("verdict")  # ganlib.verdict: learned, did_not_learn, unverified (None: older runs)
    row["verdict_reasons"] = "; ".join(summary.get("verdict_reasons") or []) or None
    cautions = summary.get("verdict_cautions")
    if cautions is None and summary.get("verdict"):  # judged before ganlib gave cautions: from its metrics
        cautions = caution(final, epochs=epochs)
    row["verdict_cautions"] = "; ".join(cautions or []) or None  # e.g. little variety
    row["precision_used"] = summary.get("precision")
    row["device"] = (summary.get("device") or {}).get("kind")  # GPU or CPU (None: trained before it was recorded)
    untrained = summary.get("untrained_metrics") or {}
    row.update({f"untrained_{k}": float(v) for k, v in untrained.items() if k in ("fid", "label_accuracy")
                and _number(v)})
    best = (np.nan, np.nan)
    if epochs is not None and "eval_fid" in epochs and epochs["eval_fid"].notna().any():
        i = epochs["eval_fid"].astype(float).idxmin()
        best = (float(epochs.loc[i, "eval_fid"]), int(epochs.loc[i, "epoch"]))
    row["best_fid"], row["best_fid_epoch"] = best
    row["read_error"] = "; ".join(problems) or None
    if epochs is not None and len(epochs):
        epochs = epochs.copy()
        for i, k in enumerate(ID_COLUMNS):
            epochs.insert(i, k, info[k])
    return row, epochs, _class_rows(info, summary)


def _class_rows(info: dict, summary: dict) -> list:
    per_class = summary.get("final_class_metrics") or {}
    names = (summary.get("dataset") or {}).get("classes") or []
    try:
        columns = {k: list(v) for k, v in per_class.items() if isinstance(v, list)}
        rows = []
        for i, c in enumerate(columns.get("class", [])):
            row = {k: info[k] for k in ID_COLUMNS}
            row.update(class_index=int(c), class_name=str(names[c]) if 0 <= c < len(names) else str(c))
            row.update({k: v[i] for k, v in columns.items() if k != "class"})
            rows.append(row)
        return rows
    except (TypeError, ValueError, IndexError):  # a damaged summary: its runs-table row says what is wrong
        return []


def read_tables(study_dir) -> tuple:
    """(runs, epochs, classes) DataFrames of a study."""
    rows, frames, class_rows = [], [], []
    for info in study_runs(study_dir):
        row, epochs, classes = read_run(info)
        rows.append(row)
        class_rows.extend(classes)
        if epochs is not None and len(epochs):
            frames.append(epochs)
    runs = pd.DataFrame(rows)
    if len(runs):  # metric columns last, in a stable order, whichever run happened to have them first
        metric_cols = sorted(c for c in runs if c.startswith("final_"))
        tail = metric_cols + ["best_fid", "best_fid_epoch", "extractor", "extractor_kind", "extractor_fingerprint",
                              "read_error"]
        runs = runs[[c for c in runs if c not in tail] + tail]
    epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS + ["epoch"])
    classes = pd.DataFrame(class_rows, columns=None if class_rows else ID_COLUMNS + ["class_index", "class_name"])
    return runs, epochs, classes


def load_batches(study_dir, run_ids=None) -> pd.DataFrame:
    """The per-batch logs of the chosen runs (all by default) in one long table (ID columns + batches.csv)."""
    frames = []
    for info in study_runs(study_dir):
        if run_ids is not None and info["run_id"] not in run_ids:
            continue
        batches = _read_batches(info)
        if batches is not None:
            frames.append(batches)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS + ["epoch", "step"])


def _read_batches(info) -> Optional[pd.DataFrame]:
    try:
        batches = RunDirectory(info["run_dir"]).read_batches()
    except Exception as e:
        print(f"warning: {info['run_id']}: batches.csv unreadable ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    if not len(batches) or "d_acc_fake" not in batches:
        return None
    for i, k in enumerate(ID_COLUMNS):
        batches.insert(i, k, info[k])
    return batches


def batch_summaries(study_dir, window: int = 50, every: Optional[int] = None, band=(0.3, 0.7)) -> tuple:
    """(stability, rolling) from the per-batch logs, reading one run at a time so memory stays small.

    stability: one row per run, `analysis.stats.stability_table`. rolling: the trailing `window`-step rolling
    means of d_loss, g_loss, d_acc_real, d_acc_fake (as `analysis.stats.rolling_mean`), kept every `every`
    steps (default: `window`) and at each run's last step, for learning-curve plots.
    """
    from analysis.stats import stability_table

    every = every or window
    stability, rolling = [], []
    for info in study_runs(study_dir):
        batches = _read_batches(info)
        if batches is None:
            continue
        stability.append(stability_table(batches, band=band, window=window, by=ID_COLUMNS))
        batches = batches.sort_values(["epoch", "step"], kind="stable").reset_index(drop=True)
        cols = [c for c in BATCH_COLUMNS if c in batches]
        means = batches[cols].rolling(window, min_periods=1).mean().add_suffix("_rolling_mean")
        keep = (batches["step"] % every == 0) | (batches.index == len(batches) - 1)
        rolling.append(pd.concat([batches[ID_COLUMNS + ["epoch", "step"]], means], axis=1)[keep])
    stability = pd.concat(stability, ignore_index=True) if stability else pd.DataFrame(columns=ID_COLUMNS)
    rolling = pd.concat(rolling, ignore_index=True) if rolling else pd.DataFrame(columns=ID_COLUMNS + ["epoch", "step"])
    return stability, rolling


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of mixed Python types (real_label 1.0 in one run, [0.7, 1.0] in another) become text: Parquet
    columns have one type."""
    df = df.copy()
    for c in df.columns[df.dtypes == object]:
        values = [v for v in df[c] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        kinds = {type(v) for v in values}
        if kinds and all(_number(v) for v in values):
            df[c] = pd.to_numeric(df[c])
        elif len(kinds) > 1 or kinds & {list, tuple, dict}:
            df[c] = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in df[c]]
    return df


def save_tables(tables: StudyTables, study_dir) -> Path:
    directory = StudyDirectory(study_dir)
    for name in TABLE_NAMES:
        df = getattr(tables, name)
        if df is not None:
            directory.write_table(name, _parquet_safe(df))
    return directory.tables_dir


def gather(study_dir, save: bool = True, batches: bool = True, window: int = 50) -> StudyTables:
    """All tables of a study; saved to `<study_dir>/tables/*.parquet` unless save=False."""
    runs, epochs, classes = read_tables(study_dir)
    tables = StudyTables(runs, epochs, *(batch_summaries(study_dir, window) if batches else (None, None)), classes)
    if save:
        save_tables(tables, study_dir)
    return tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.gather", description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", help="a study's output folder, e.g. studies/quick")
    parser.add_argument("--window", type=int, default=50, help="rolling window (steps) for batch summaries")
    parser.add_argument("--no-batches", action="store_true", help="skip the per-batch logs")
    args = parser.parse_args(argv)
    if not Path(args.study_dir).is_dir():
        print(f"error: {args.study_dir} is not a directory", file=sys.stderr)
        return 2
    tables = gather(args.study_dir, batches=not args.no_batches, window=args.window)
    runs = tables.runs
    if not len(runs):
        print(f"no runs found in {args.study_dir}")
        return 1
    print(runs.groupby(["variation", "status"], sort=False).size().unstack(fill_value=0).to_string())
    metric = next((c for c in ("final_fid", "best_fid") if c in runs and runs[c].notna().any()), None)
    if metric:
        done = runs[runs["status"] == "completed"]
        print(f"\nmedian {metric} of completed runs:")
        print(done.groupby("variation", sort=False)[metric].agg(["median", "count"]).to_string())
    for _, r in runs[runs["read_error"].notna()].iterrows():
        print(f"warning: {r['run_id']}: {r['read_error']}")
    print(f"\ntables written to {StudyDirectory(args.study_dir).tables_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
