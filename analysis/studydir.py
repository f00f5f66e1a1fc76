"""The study directory: the one owner of the layout a study runner writes and gather and the report read.

What `ganlib.rundir.RunDirectory` is for one run, `StudyDirectory` is for a study: every path inside a study
folder (study.yaml, study_summary.json, runs/, logs/, tables/) is built here. The layout is documented once, in
docs/studies.md ("Outputs: the study directory").
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DEFINITION, SUMMARY, RUNS, LOGS, TABLES = "study.yaml", "study_summary.json", "runs", "logs", "tables"
TABLE_NAMES = ("runs", "epochs", "stability", "rolling", "classes")


class StudyNotReady(FileNotFoundError):
    """The study folder or its gathered tables are missing."""


class StudyDirectory:
    def __init__(self, path):
        self.path = Path(path).expanduser()

    def __repr__(self):
        return f"StudyDirectory({str(self.path)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def definition_file(self) -> Path:
        return self.path / DEFINITION

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY

    @property
    def tables_dir(self) -> Path:
        return self.path / TABLES

    def table_file(self, name: str) -> Path:
        if name not in TABLE_NAMES:
            raise ValueError(f"No table {name!r}; tables: {', '.join(TABLE_NAMES)}")
        return self.tables_dir / f"{name}.parquet"

    def run_dir(self, variation: str, seed: int) -> Path:
        return self.path / RUNS / str(variation) / f"seed{int(seed)}"

    def log_file(self, variation: str, seed: int) -> Path:
        return self.path / LOGS / str(variation) / f"seed{int(seed)}.log"

    def run_dirs_on_disk(self) -> list:
        """[(variation, seed, path)] of every run directory under runs/, whatever study.yaml says."""
        found = []
        for d in sorted(self.path.glob(f"{RUNS}/*/seed*")):
            if d.is_dir() and d.name[4:].isdigit():
                found.append((d.parent.name, int(d.name[4:]), d))
        return found

    # ------------------------------------------------------------------ the definition
    def read_study(self):
        """The validated `analysis.study.Study` of study.yaml (StudyError / OSError when it is not valid)."""
        from analysis.study import load_study

        return load_study(self.definition_file)

    def definition(self) -> dict:
        """study.yaml as a dict: the validated study (`Study.to_dict()`), or, when it no longer validates (e.g.
        written by another ganlib version), what the file says, so a report can still show its runs."""
        try:
            return self.read_study().to_dict()
        except Exception as e:
            if not self.definition_file.exists():
                return {}
            print(f"warning: {self.definition_file} does not validate ({e}); reporting what it says",
                  file=sys.stderr)
            from ganlib.safe_io import load_yaml

            try:
                data = load_yaml(self.definition_file, "study definition")
            except (OSError, ValueError):  # damaged, oversized or an alias bomb: nothing to show from it
                return {}
            return data if isinstance(data, dict) else {}

    def write_definition(self, study) -> None:
        from ganlib.rundir import atomic_write

        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.definition_file, study.to_yaml())

    # ------------------------------------------------------------------ summary and tables
    def read_summary(self) -> dict:
        """study_summary.json ({} when missing; a damaged one is warned about and read as {}, so every report
        page still shows the study's runs)."""
        from ganlib.safe_io import load_json

        try:
            data = load_json(self.summary_file, "study summary")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            print(f"warning: {e} Ignoring it; run the study again to rewrite it.", file=sys.stderr)
            return {}
        return data if isinstance(data, dict) else {}

    def write_summary(self, summary: dict) -> None:
        from ganlib.rundir import write_json

        write_json(self.summary_file, summary)

    def read_table(self, name: str):
        """A gathered table as a DataFrame, or None when it was not written."""
        import pandas as pd

        path = self.table_file(name)
        return pd.read_parquet(path) if path.exists() else None

    def write_table(self, name: str, df) -> None:
        """tables/<name>.parquet (what the report reads) and tables/<name>.csv (for spreadsheets and other
        tools), each written atomically: the report never reads half a table."""
        from ganlib.rundir import atomic_path

        self.tables_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.table_file(name)) as tmp:
            df.to_parquet(tmp, index=False)
        with atomic_path(self.table_file(name).with_suffix(".csv")) as tmp:
            df.to_csv(tmp, index=False)

    def check_ready(self) -> "StudyDirectory":
        """self, or StudyNotReady saying which command makes what is missing."""
        definition = Path(__file__).parent / "studies" / f"{self.name}.yaml"
        sweep = (f"python -m analysis.sweep analysis/studies/{definition.name if definition.exists() else '<study>.yaml'}"
                 f" --out {self.path.parent}")
        if not self.path.is_dir():
            raise StudyNotReady(f"study folder {self.path} does not exist: run `{sweep}` first")
        if not self.table_file("runs").exists():
            raise StudyNotReady(f"{self.path} has no {TABLES}/runs.parquet: run `{sweep}` first (or `python -m "
                                f"analysis.gather {self.path}` if its runs are already trained)")
        return self

    def display_name(self) -> str:
        """The study's name as study.yaml gives it (the folder's name otherwise)."""
        return str(self.definition().get("name") or self.name)


# Quarto runs the post-render step (which converts the runs' notebooks) without the pages' parameters, so the
# pages leave the study they showed in Quarto's scratch folder for it.
def _rendered_study_marker():
    import os

    root = os.environ.get("QUARTO_PROJECT_ROOT") or os.environ.get("QUARTO_PROJECT_DIR")
    return Path(root) / ".quarto" / "ganlib-study" if root else None


def remember_rendered_study(study_dir) -> None:
    """Under Quarto (the kernel has QUARTO_PROJECT_ROOT): note which study the pages are rendering."""
    marker = _rendered_study_marker()
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(Path(study_dir).resolve()))
    except OSError:  # a read-only project: the post-render step falls back to $GANLIB_STUDY or studies/quick
        pass


def rendered_study():
    """The study the pages of the current Quarto render showed (None outside a render or before any page)."""
    marker = _rendered_study_marker()
    if marker is None:
        return None
    try:
        return marker.read_text().strip() or None
    except OSError:
        return None
