"""The run directory: the contract between training and analysis. Its format is documented in
`docs/run-directory.md`; this module is the only code that writes it.

Every file is written atomically (temporary file + `os.replace`) or appended in whole-epoch blocks that a resume
truncates back to the last checkpoint, so a run killed at any moment leaves a directory that can be read and resumed.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
STATUSES = ("running", "completed", "failed", "diverged")
EPOCH_FILE = "metrics/epochs.csv"
BATCH_FILE = "metrics/batches.csv"


class RunDirectoryError(RuntimeError):
    pass


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data)


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def read_json(path: Path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


class RunDirectory:
    """Paths and read/write helpers for one run's directory."""

    def __init__(self, path):
        self.path = Path(path).expanduser().resolve()

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r})"

    # paths
    config_file = property(lambda self: self.path / "config.json")
    summary_file = property(lambda self: self.path / "summary.json")
    epochs_file = property(lambda self: self.path / EPOCH_FILE)
    batches_file = property(lambda self: self.path / BATCH_FILE)
    samples_dir = property(lambda self: self.path / "samples")
    checkpoint_file = property(lambda self: self.path / "checkpoints" / "state.npz")
    models_dir = property(lambda self: self.path / "models")
    noise_file = property(lambda self: self.path / "samples" / "benchmark_noise.npz")

    def sample_file(self, epoch: int) -> Path:
        return self.samples_dir / f"epoch_{epoch:04d}.png"

    def sample_files(self):
        return sorted(self.samples_dir.glob("epoch_*.png"))

    def model_file(self, name: str) -> Path:
        return self.models_dir / f"{name}.keras"

    # config and summary
    def read_config(self):
        from .config import Config

        values = read_json(self.config_file)
        if values is None:
            raise RunDirectoryError(f"{self.path} has no config.json: not a ganlib run directory.")
        return Config.from_dict(values)

    def write_config(self, config) -> None:
        write_json(self.config_file, config.to_dict())

    def read_summary(self) -> dict:
        summary = read_json(self.summary_file, {})
        version = summary.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise RunDirectoryError(f"{self.path} was written by a newer ganlib (run format {version}; this "
                                    f"ganlib reads up to {FORMAT_VERSION}). Upgrade ganlib to read it.")
        return summary

    def update_summary(self, **fields) -> dict:
        summary = self.read_summary()
        summary.update(fields, format_version=FORMAT_VERSION, updated_at=now())
        write_json(self.summary_file, summary)
        return summary

    @property
    def status(self) -> Optional[str]:
        return self.read_summary().get("status")

    # logs
    def append_rows(self, path: Path, rows: Iterable[dict]) -> None:
        """Append rows to a CSV in one write (a header is written with the first block)."""
        frame = pd.DataFrame(list(rows))
        if frame.empty:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or path.stat().st_size == 0
        if not new:  # keep the existing header's column order; a new column is an error, not silent drift
            header = pd.read_csv(path, nrows=0).columns.tolist()
            missing = [c for c in frame.columns if c not in header]
            if missing:
                self._rewrite_with_columns(path, header + missing)
                header = header + missing
            frame = frame.reindex(columns=header)
        buffer = io.StringIO()
        frame.to_csv(buffer, header=new, index=False, lineterminator="\n")
        with open(path, "a") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def _rewrite_with_columns(self, path: Path, columns) -> None:
        frame = pd.read_csv(path).reindex(columns=columns)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n")

    def read_epochs(self) -> pd.DataFrame:
        return _read_log(self.epochs_file)

    def read_batches(self) -> pd.DataFrame:
        return _read_log(self.batches_file)

    def truncate_logs(self, last_epoch: int) -> None:
        """Drop log rows after `last_epoch` (and any line cut short by a kill) before training resumes."""
        for path in (self.epochs_file, self.batches_file):
            if not path.exists():
                continue
            frame = _read_log(path)
            keep = frame[frame["epoch"] <= last_epoch]
            if len(keep) != len(frame) or _has_partial_line(path):
                with atomic_path(path) as tmp:
                    keep.to_csv(tmp, index=False, lineterminator="\n")
        for png in self.sample_files():
            if int(png.stem.split("_")[1]) > last_epoch:
                png.unlink()


def _has_partial_line(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _read_log(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
    frame = pd.read_csv(path, on_bad_lines="skip")
    if _has_partial_line(path) and len(frame):
        frame = frame.iloc[:-1]  # the last line was cut short by a kill
    frame = frame.dropna(subset=["epoch"])
    frame["epoch"] = frame["epoch"].astype("int64")
    return frame
