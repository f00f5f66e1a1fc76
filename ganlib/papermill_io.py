"""A papermill I/O handler that reads jupytext notebooks (`.py` percent format, `.md`, ...).

papermill reads only JSON notebooks and picks a handler by path prefix. Registered through the `papermill.io`
entry-point group (see pyproject.toml), this module makes `papermill notebooks/train.py out.ipynb -p lr 2e-4`
work: loading the entry point also registers the handler for plain local paths, where it converts text
notebooks with jupytext and hands everything else to the handler papermill would otherwise have used.
The explicit form `papermill jupytext://notebooks/train.py out.ipynb` works too.
"""
from __future__ import annotations

import os
import sys

PREFIX = "jupytext://"
TEXT_EXTENSIONS = (".py", ".md", ".markdown", ".Rmd", ".qmd", ".R", ".jl", ".pct.py")


def _is_text_notebook(path) -> bool:
    return isinstance(path, str) and path.endswith(TEXT_EXTENSIONS) and "://" not in path


def _fallback_handler(path):
    """The handler papermill would choose without us (first matching non-empty prefix, else 'local')."""
    from papermill.iorw import papermill_io

    for scheme, handler in papermill_io._handlers:
        if scheme and scheme not in ("local", "jupytext") and isinstance(path, str) and path.startswith(scheme):
            return handler
    # Like papermill: the first 'local' ever registered (the list is LIFO, so the last 'local' entry in it).
    return next(handler for scheme, handler in reversed(papermill_io._handlers) if scheme == "local")


def _is_parameters_file(path) -> bool:
    return isinstance(path, str) and path.endswith((".yaml", ".yml")) and "://" not in path


def _check_parameters_file(path) -> None:
    """papermill `-f FILE` is read through this handler: bound it (a regular file, 1 MiB, 100,000 values, ganlib's
    `safe_io`) before papermill parses and translates it, which never ends for a 435-byte alias bomb."""
    from .safe_io import InputFileError, load_yaml

    try:
        load_yaml(path, "parameters file")
    except FileNotFoundError:
        return  # papermill says so itself
    except InputFileError as e:
        raise SystemExit(f"error: {e}") from None


class JupytextHandler:
    """Reads text notebooks through jupytext; delegates every other read and all writes."""

    @staticmethod
    def _strip(path):
        return path[len(PREFIX):] if isinstance(path, str) and path.startswith(PREFIX) else path

    @classmethod
    def read(cls, path):
        path = cls._strip(path)
        if _is_parameters_file(path):
            _check_parameters_file(path)
        if not _is_text_notebook(path):
            return _fallback_handler(path).read(path)
        import jupytext
        import nbformat

        notebook = jupytext.read(path)
        # papermill needs a kernel; a .py notebook carries none, so use the running interpreter's.
        notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                                    "language": "python"})
        notebook.metadata.setdefault("language_info", {"name": "python"})
        return nbformat.writes(notebook)

    @classmethod
    def write(cls, buf, path):
        return _fallback_handler(cls._strip(path)).write(buf, cls._strip(path))

    @classmethod
    def listdir(cls, path):
        return _fallback_handler(cls._strip(path)).listdir(cls._strip(path))

    @classmethod
    def pretty_path(cls, path):
        return cls._strip(path)

    @classmethod
    def cwd(cls, new_path):
        # papermill sets the local handler's working directory through this; as the handler of plain
        # paths we are asked first, so pass it on.
        return _fallback_handler("local").cwd(new_path)


def _register_for_local_paths():
    # papermill.iorw is mid-import when it loads entry points; its `papermill_io` registry already exists.
    iorw = sys.modules.get("papermill.iorw")
    if iorw is not None and hasattr(iorw, "papermill_io"):
        # The empty prefix matches every path; the handler delegates whatever is not a text notebook.
        iorw.papermill_io.register("", JupytextHandler)


if os.environ.get("GANLIB_PAPERMILL_PLAIN_PATHS", "1") != "0":
    _register_for_local_paths()
