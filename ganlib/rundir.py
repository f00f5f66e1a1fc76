"""The run directory: the contract between training and analysis. Its format is documented in
`docs/run-directory.md`; this module is the only code that writes it.

Every file is written atomically (temporary file + `os.replace`) or appended in whole-epoch blocks that a resume
truncates back to the last checkpoint, so a run killed at any moment leaves a directory that can be read and resumed.
What fault was tried and what held is in `docs/reliability.md`.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
STATUSES = ("running", "completed", "failed", "diverged")
EPOCH_FILE = "metrics/epochs.csv"
BATCH_FILE = "metrics/batches.csv"
TEMP_MARK = ".tmp-"  # temporary files are ".<stem>.tmp-<random><suffix>": hidden, and never a reader's pattern
LOCK_FILE = ".train.lock"
SAMPLE_NAME = re.compile(r"epoch_(\d{4,})\.png")  # only ganlib's own grids; "epoch_0002 copy.png" is not one
# Files are created as a plain open() would (0666 less the umask), not mkstemp's 0600, so a cluster group can read them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class RunDirectoryError(RuntimeError):
    pass


class DiskFullError(OSError):
    """A write failed for lack of space (or a file-size limit); the file being written keeps its previous version."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _raise_if_disk_full(e: OSError, path) -> None:
    if isinstance(e, DiskFullError):
        return
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(e.errno, f"Disk full (no space left on device, or quota exceeded) while writing {path}; "
                            f"its previous version is intact. Free space on the disk holding {Path(path).parent} "
                            "and run again to resume") from e
    if e.errno == errno.EFBIG:
        raise DiskFullError(e.errno, f"File size limit exceeded while writing {path} (a limit set with `ulimit -f` "
                            "or by the job scheduler); its previous version is intact. Raise the limit and run again "
                            "to resume") from e


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}{TEMP_MARK}", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _raise_if_disk_full(e, path)
        raise
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


MAX_RUN_JSON_BYTES = 64 << 20  # summary.json of a long run with many evaluations is a few MB


def read_json(path: Path, default=None):
    """A run's JSON file (`default` when missing), bounded by `ganlib.safe_io`; a damaged one raises
    RunDirectoryError naming it."""
    from .safe_io import InputFileError, load_json

    try:
        return load_json(path, "run file", MAX_RUN_JSON_BYTES)
    except FileNotFoundError:
        return default
    except InputFileError as e:  # ganlib writes whole files, so it was damaged or replaced
        raise RunDirectoryError(f"{e} The file is damaged or was not written by ganlib. Restore or delete it.") from None


MAX_NPZ_BYTES = 8 << 30  # the state of the largest model ganlib builds (256 px, 4096 filters) is far below


def _check_npz_members(path, keys) -> None:
    """Read only the .npy headers of the members to be loaded: a header claiming more data than its member holds
    (a 7 TiB allocation from a 1 KB file), or more than MAX_NPZ_BYTES in all, is refused before any array is
    allocated."""
    if not zipfile.is_zipfile(path):
        return  # np.load says what it is
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as f:  # every header (a few bytes each), so a pickled entry is always named
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            if dtype.hasobject:
                raise ValueError("pickle: an entry holds Python objects")
            if keys is not None and name not in keys:
                continue
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if need > info.file_size:
                raise ValueError(f"entry {name!r} claims {need:,} bytes of data but holds {info.file_size:,}")
            total += need
            if total > MAX_NPZ_BYTES:
                raise ValueError(f"its arrays hold more than {MAX_NPZ_BYTES:,} bytes; ganlib's never do")


def load_arrays(path, keys=None) -> dict:
    """The arrays of an `.npz` file (only those named in `keys`, when given: other entries are never read).
    Pickled Python objects are refused: unpickling a file can run code. Sizes are checked from the headers before
    anything is allocated (`_check_npz_members`)."""
    with open(path, "rb") as f:  # FileNotFoundError as it is
        head = f.read(6)
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")) and not head.startswith(b"\x80"):
        # Not a zip, not .npy and not a pickle stream: numpy would call it pickled data, which it is not.
        raise RunDirectoryError(f"{path} is not an .npz file (it starts with {head!r}): it is damaged or was not "
                                "written by ganlib; delete it.")
    try:
        _check_npz_members(path, None if keys is None else set(keys))
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            return {key: data[key] for key in data.files if keys is None or key in keys}
    except FileNotFoundError:
        raise
    except ValueError as e:
        if "pickle" in str(e) or "Object arrays" in str(e):
            raise RunDirectoryError(f"{path} holds pickled Python objects; ganlib never unpickles a file (that could "
                                    "run code from it). Delete the file if you did not put it there.") from None
        raise RunDirectoryError(f"{path} is not a valid .npz file ({e}).") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise RunDirectoryError(f"{path} is damaged ({type(e).__name__}: {e}). ganlib replaces its files "
                                "atomically, so it was changed from outside; delete it.") from None


def load_keras_model(path):
    """A `.keras` file loaded without running code from it.

    `safe_mode=True` alone is overridden by a process-wide `keras.config.enable_unsafe_deserialization()` (which a
    notebook may have called for some other model), so the safe-mode scope is forced around the load too.
    """
    import keras

    from . import layers  # noqa: F401  registers ganlib's layers (OutputConv2D) for deserialization

    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # pragma: no cover - a Keras without the scope: safe_mode is then the only guard
        scope = contextlib.nullcontext()
    else:
        scope = SafeModeScope(True)
    if zipfile.is_zipfile(path):  # a .keras archive: its declared sizes first (a zip bomb is refused unread)
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > MAX_NPZ_BYTES:
            raise RunDirectoryError(f"{path} would unpack to {declared:,} bytes; ganlib's models are far smaller. "
                                    "It is damaged or not ganlib's; delete it.")
    try:
        with scope:
            return keras.models.load_model(path, safe_mode=True, compile=False)
    except (zipfile.BadZipFile, EOFError) as e:
        raise RunDirectoryError(f"{path} is damaged ({type(e).__name__}: {e}); ganlib writes models atomically, so "
                                "it was changed from outside. Delete it (a finished run: train again).") from None
    except (FileNotFoundError, OSError, ValueError) as e:
        if not Path(path).exists() or (isinstance(e, ValueError) and "File not found" not in str(e)):
            raise  # missing indeed, or Keras's own refusal (a Lambda, a non-Keras function): its words stand
        # Keras reports an unreadable archive as "File not found"; the file is there, so it is damaged
        raise RunDirectoryError(f"{path} exists but cannot be read as a Keras model ({type(e).__name__}: "
                                f"{str(e)[:200]}): it is damaged. Delete it (a finished run: train again).") from None


# What a run directory holds (papermill's executed notebook and the study runner's claim included); anything
# else means the folder is someone else's.
RUN_ENTRIES = {"config.json", "summary.json", "checkpoints", "metrics", "models", "samples", "tensorboard",
               "train.ipynb", ".train.lock", ".claim.lock"}


def foreign_entries(folder: Path, allowed) -> list:
    """Sorted names in `folder` that are neither in `allowed` nor ganlib's temporary files: a folder holding any is
    not one ganlib made (runs and studies are written only into folders of their own)."""
    return sorted(p.name for p in Path(folder).iterdir()
                  if p.name not in allowed and not (p.name.startswith(".") and TEMP_MARK in p.name))


class RunDirectory:
    """Paths and read/write helpers for one run's directory."""

    def __init__(self, path):
        self.given = Path(path).expanduser().absolute()  # before links are resolved: writes never follow one
        self.path = self.given.resolve()

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r})"

    def check_safe_to_write(self) -> None:
        """Refuse to train into a folder that ganlib did not make a run directory: a symbolic link (its target,
        a folder of the user's or /etc, would receive the run) or an existing folder holding anything but a
        run's files. Only reads; raises RunDirectoryError saying what to do."""
        if self.given.is_symlink():
            raise RunDirectoryError(f"{self.given} is a symbolic link (to {os.readlink(self.given)}); ganlib does not "
                                    "write a run through a link. Give the folder's real path, or a new folder.")
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} is a file, not a folder; give a new folder for the run.")
        if not self.path.is_dir():
            return
        foreign = foreign_entries(self.path, RUN_ENTRIES)
        summary = self.path / "summary.json"
        if not foreign and summary.is_file() and not self.config_file.exists():
            try:
                recorded = read_json(summary) or {}
            except RunDirectoryError:  # damaged: reading it later says so
                recorded = {"status": None}
            if not isinstance(recorded, dict) or not ({"config_hash", "status"} & set(recorded)):
                foreign = ["a summary.json that is not a ganlib run's"]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise RunDirectoryError(f"{self.path} is not a ganlib run directory (it holds {shown}); ganlib trains only "
                                    "into a new folder or a run directory of its own. Nothing was changed.")

    # paths
    config_file = property(lambda self: self.path / "config.json")
    summary_file = property(lambda self: self.path / "summary.json")
    epochs_file = property(lambda self: self.path / EPOCH_FILE)
    batches_file = property(lambda self: self.path / BATCH_FILE)
    samples_dir = property(lambda self: self.path / "samples")
    checkpoint_file = property(lambda self: self.path / "checkpoints" / "state.npz")
    models_dir = property(lambda self: self.path / "models")
    noise_file = property(lambda self: self.path / "samples" / "benchmark_noise.npz")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")

    def sample_file(self, epoch: int) -> Path:
        return self.samples_dir / f"epoch_{epoch:04d}.png"

    def sample_files(self):
        """The run's sample grids in epoch order (other files in samples/ are not grids and are ignored)."""
        return sorted(p for p in self.samples_dir.glob("epoch_*.png") if SAMPLE_NAME.fullmatch(p.name))

    @staticmethod
    def sample_epoch(path) -> int:
        return int(SAMPLE_NAME.fullmatch(Path(path).name).group(1))

    def model_file(self, name: str) -> Path:
        return self.models_dir / f"{name}.keras"

    def load_model(self, name: str = "generator"):
        """`models/<name>.keras` of a completed run, loaded without running code from it: the one model loader
        of ganlib and of the report (see `load_keras_model`)."""
        path = self.model_file(name)
        if not path.exists():
            raise RunDirectoryError(f"{path} does not exist: final models are written when a run completes "
                                    f"(status of {self.path}: {self.status or 'no summary.json'}).")
        return load_keras_model(path)

    @property
    def final_generator_name(self) -> str:
        """The generator that stands for the run: its EMA copy when it has one."""
        return "generator_ema" if self.model_file("generator_ema").exists() else "generator"

    # config and summary
    def read_config(self):
        from .config import Config, ConfigError

        if not self.config_file.exists():
            raise RunDirectoryError(f"{self.path} has no config.json: not a ganlib run directory.")
        values = read_json(self.config_file)
        if not isinstance(values, dict):
            raise RunDirectoryError(f"{self.config_file} holds a {type(values).__name__}, not a configuration.")
        try:
            return Config.from_dict(values)
        except (ConfigError, TypeError) as e:
            raise RunDirectoryError(f"{self.config_file} does not hold a valid configuration: {e}") from e

    def write_config(self, config) -> None:
        write_json(self.config_file, config.to_dict())

    def read_summary(self) -> dict:
        summary = read_json(self.summary_file, {})
        version = summary.get("format_version", FORMAT_VERSION) if isinstance(summary, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise RunDirectoryError(f"{self.summary_file} is not a ganlib run summary (format_version {version!r}).")
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

    # one writer at a time
    @contextlib.contextmanager
    def lock(self):
        """Hold the run's training lock; another process holding it is an error, not a wait. The OS releases
        it when the holder dies, so a killed run never stays locked."""
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunDirectoryError(f"{self.path} is being trained by another process (it holds "
                                    f"{self.path / LOCK_FILE}); wait for it to finish.") from None
        try:
            yield self
        finally:
            lock.release()

    def is_locked(self) -> bool:
        """Whether a live process holds the training lock now."""
        from filelock import FileLock, Timeout

        if not (self.path / LOCK_FILE).exists():
            return False
        lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return True
        lock.release()
        return False

    def temp_files(self):
        """Temporary files left by writes a kill interrupted (never read: each has a finished counterpart)."""
        return sorted(p for p in self.path.rglob(f".*{TEMP_MARK}*") if p.is_file())

    def remove_temp_files(self) -> None:
        for p in self.temp_files():
            p.unlink(missing_ok=True)

    # logs
    def append_rows(self, path: Path, rows: Iterable[dict]) -> None:
        """Append rows to a CSV in one write (a header is written with the first block).

        A failed write (disk full, ...) is cut back off, so the file keeps only whole blocks."""
        frame = pd.DataFrame(list(rows))
        if frame.empty:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not _has_header(path)
        if not new:  # keep the existing header's column order; a new column rewrites the file with it
            header = pd.read_csv(path, nrows=0).columns.tolist()
            missing = [c for c in frame.columns if c not in header]
            if missing:
                self._rewrite_with_columns(path, header + missing)
                header = header + missing
            frame = frame.reindex(columns=header)
        buffer = io.StringIO()
        frame.to_csv(buffer, header=new, index=False, lineterminator="\n")
        data = memoryview(buffer.getvalue().encode())
        # Unbuffered, so that nothing of a failed block is left in a buffer to be written later; O_TRUNC: a header
        # cut short by a kill is written anew.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if new else os.O_APPEND), 0o666)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError as e:
                os.ftruncate(fd, size)
                _raise_if_disk_full(e, path)
                raise
        finally:
            os.close(fd)

    def _rewrite_with_columns(self, path: Path, columns) -> None:
        frame = read_log(path).reindex(columns=columns)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n")

    def read_epochs(self) -> pd.DataFrame:
        return read_log(self.epochs_file)

    def read_batches(self) -> pd.DataFrame:
        return read_log(self.batches_file)

    def truncate_logs(self, last_epoch: int) -> None:
        """Drop log rows after `last_epoch` (and any line cut short by a kill) before training resumes."""
        for path in (self.epochs_file, self.batches_file):
            if not path.exists():
                continue
            if not _has_header(path):  # not even a whole header: start the file afresh
                path.unlink()
                continue
            frame = read_log(path)
            keep = frame[frame["epoch"] <= last_epoch]
            if len(keep) != len(frame) or len(_complete_lines(path)) != path.stat().st_size:
                with atomic_path(path) as tmp:
                    keep.to_csv(tmp, index=False, lineterminator="\n")
        for png in self.sample_files():
            if self.sample_epoch(png) > last_epoch:
                png.unlink()

    def check_logs(self, last_epoch: int) -> None:
        """Refuse to resume from a checkpoint at `last_epoch` whose epochs the logs do not all hold.

        ganlib logs an epoch before it checkpoints it, so a gap means a log was damaged or deleted from outside;
        training on would leave the run with holes in its curves for good."""
        if not last_epoch:
            return
        for path in (self.epochs_file, self.batches_file):
            logged = set(read_log(path)["epoch"].tolist()) if path.exists() else set()
            missing = sorted(set(range(1, last_epoch + 1)) - logged)
            if missing:
                what = "is missing" if not path.exists() else f"lacks epoch(s) {_ranges(missing)}"
                raise RunDirectoryError(
                    f"{path} {what}, but the checkpoint {self.checkpoint_file} is at epoch {last_epoch}: resuming "
                    "would leave permanent gaps in the run's logs. Restore the file from a backup, or delete "
                    f"{self.checkpoint_file} to train the run again from the start. Nothing was changed.")


def _ranges(numbers) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'"""
    out, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            out.append(f"{start}-{n}" if n != start else f"{n}")
            start = None
    return ", ".join(out)


def _has_header(path: Path) -> bool:
    """Whether the file has a whole first line (a header cut short by a kill does not count)."""
    try:
        with open(path, "rb") as f:
            return b"\n" in f.read(1 << 16)
    except FileNotFoundError:
        return False


def _complete_lines(path: Path) -> bytes:
    """The file's bytes up to its last newline: a line cut short by a kill is not part of the log."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return b""
    return data[:data.rfind(b"\n") + 1]


MAX_LOG_BYTES = 4 << 30  # 4 GiB: a per-step log of 10^7 steps is ~1.5 GB


def read_log(path: Path) -> pd.DataFrame:
    """A CSV log (a line cut short by a kill dropped); a damaged one raises RunDirectoryError naming it."""
    from .safe_io import InputFileError, regular_file_size

    try:
        if regular_file_size(path, "log") > MAX_LOG_BYTES:
            raise RunDirectoryError(f"{path} is larger than {MAX_LOG_BYTES:,} bytes; it is not a ganlib log.")
    except FileNotFoundError:
        pass
    except InputFileError as e:
        raise RunDirectoryError(str(e)) from None
    text = _complete_lines(path)
    if not text:
        return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
    try:
        frame = pd.read_csv(io.BytesIO(text))
        if "epoch" not in frame:
            raise ValueError("no 'epoch' column")
        frame = frame.dropna(subset=["epoch"])
        epochs = pd.to_numeric(frame["epoch"], errors="coerce")
        bad = frame.index[epochs.isna() | (epochs != epochs.round())]
        if len(bad):
            raise ValueError(f"row {int(bad[0]) + 2} has epoch {frame.loc[bad[0], 'epoch']!r}, not a whole number")
        frame["epoch"] = epochs.astype("int64")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise RunDirectoryError(f"{path} is not a ganlib log ({str(e)[:200]}): it is damaged or was edited; "
                                "delete the damaged rows or the file.") from None
    return frame
