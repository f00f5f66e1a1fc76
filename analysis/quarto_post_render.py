"""Quarto's post-render step (see _quarto.yml): converts the runs' executed notebooks into the site.

A `.py` script, so Quarto runs it with the same interpreter that rendered the pages (QUARTO_PYTHON, or the
activated virtual environment's python), not whatever `python` is first on PATH. The study is the one the pages
showed (they leave its path in .quarto/ganlib-study), or $GANLIB_STUDY.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root: `analysis` as a package

from analysis.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--export-notebooks"]))
