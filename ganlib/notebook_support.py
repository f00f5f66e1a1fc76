"""Small helpers that keep the notebooks short: parameters -> Config, and displays of data and runs."""
from __future__ import annotations

import difflib
from dataclasses import fields
from pathlib import Path

from .config import Config, ConfigError


def check_parameters(values: dict, known, described: str = "") -> None:
    """Refuse parameter names a notebook does not take: a typo in `-p name value` must not be silently ignored."""
    known = set(known)
    unknown = sorted(set(values) - known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, 1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError("parameter", ", ".join(hints),
                          "the parameters of this notebook" + (f" ({described})" if described else
                                                               ": " + ", ".join(sorted(known))))


def finished_run_dir(run_dir, model: str = "generator", notebook: str = "notebooks/explore.py") -> str:
    """`run_dir`, or the most recently finished run under runs/ when None; an error if it has no final model."""
    if run_dir is None:
        finished = sorted(Path("runs").glob(f"*/models/{model}.keras"), key=lambda p: p.stat().st_mtime)
        run_dir = str(finished[-1].parent.parent) if finished else "runs/<none found>"
    path = Path(run_dir) / "models" / f"{model}.keras"
    if not path.exists():
        raise FileNotFoundError(
            f"No trained generator at {path}. Pass a completed run directory: `papermill {notebook} out.ipynb "
            "-p run_dir runs/<name>` (train one with notebooks/train.py; final models are written when a run "
            "completes).")
    return str(run_dir)


def config_from_namespace(values: dict, extra=("run_dir",)):
    """(Config, run_dir) from a notebook's parameters; unknown names (typos in `-p`) are an error."""
    known = {f.name for f in fields(Config)}
    check_parameters(values, known | set(extra), "the fields of ganlib.Config plus " + ", ".join(extra))
    from .config import ConfigError

    if "verbose" in values and values["verbose"] not in (0, 1, 2, "auto"):
        raise ConfigError("verbose", values["verbose"], "0 (silent), 1 (a progress bar) or 2 (a line per epoch)")
    run_dir = values.get("run_dir")
    if run_dir is not None and (not isinstance(run_dir, str) or not run_dir.strip() or len(run_dir) > 4096):
        raise ConfigError("run_dir", run_dir, "a folder path (a string), or None for runs/<dataset>-<config hash>")
    config = Config.from_dict({k: v for k, v in values.items() if k in known})
    run_dir = run_dir or str(Path("runs") / f"{config.dataset}-{config.hash}")
    return config, run_dir


def outcome_line(summary: dict) -> str:
    """One line saying how a run ended, and loudly whether it learned (see ganlib.verdict)."""
    line = f"status: {summary.get('status')}" + (f" ({summary['error']})" if summary.get("error") else "")
    verdict = summary.get("verdict")
    if verdict == "did_not_learn":
        line += "\n*** DID NOT LEARN *** " + "; ".join(summary.get("verdict_reasons") or [])
    elif verdict:
        line += f"; verdict: {verdict}" + (f" ({'; '.join(summary['verdict_reasons'])})"
                                            if summary.get("verdict_reasons") else "")
        if summary.get("verdict_cautions"):
            line += "\ncaution: " + "; ".join(summary["verdict_cautions"])
    return line


def show_dataset_preview(config: Config, n: int = 64):
    """A grid of real training images, to check the data before spending time on training."""
    from IPython.display import Image, display

    from .data import load_for_config
    from .plotting import save_grid
    import tempfile

    data = load_for_config(config).take(n, seed=config.seed)
    print(f"{data.name}: {data.source}; images {data.image_shape}; classes {len(data.class_names)}"
          + (f"; skipped unreadable files: {len(data.skipped)}" if data.skipped else ""))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_grid(data.as_float(), Path(tmp) / "preview.png", columns=16)
        display(Image(filename=str(path)))


def show_run(run_dir):
    """Final sample grid, learning curves and summary of a run directory."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from IPython.display import Image, display

    from .plotting import plot_curves
    from .rundir import RunDirectory

    run = RunDirectory(run_dir)
    samples = run.sample_files()
    if samples:
        print(f"samples at epoch {int(samples[-1].stem.split('_')[1])} (fixed benchmark noise):")
        display(Image(filename=str(samples[-1])))
    epochs = run.read_epochs()
    if len(epochs):
        plot_curves(epochs)
        plt.tight_layout()
        plt.show()
        display(epochs)
    summary = run.read_summary()
    metrics = summary.get("final_metrics") or {}
    if metrics:
        display(pd.Series(metrics, name="final metrics").to_frame())
    return summary
