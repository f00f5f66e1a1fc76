"""The interactive widgets as browser pages: the settings form and a run's latent explorer, served by Voila.

    ganlib form -p dataset fashion_mnist     # the settings form: edit, see errors as you type, press Train
    ganlib explore runs/<run> --serve        # the latent explorer of a finished run

Voila runs the notebook in a kernel and shows only its widgets (no code cells), which is what a user who wants
a form or an explorer expects; JupyterLab (`jupyter lab`, also installed by `pip install 'ganlib[notebook]'`)
is for people who want the notebook itself. Both are optional: `ganlib` says how to install them when missing.
Served on 127.0.0.1 only; the page is the user's, on the user's machine.
"""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from typing import Optional

INSTALL_HINT = "install the browser front end first: pip install 'ganlib[notebook]' (Voila and JupyterLab)"


def front_end_missing() -> Optional[str]:
    """None when Voila is importable, else what to do."""
    return None if importlib.util.find_spec("voila") else INSTALL_HINT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form_notebook(values: dict, folder: Path) -> Path:
    """A one-cell notebook showing `SettingsForm(**values)` (values already checked by the caller)."""
    import nbformat

    source = ("from ganlib.settings_form import SettingsForm\n"
              f"form = SettingsForm(**{json.dumps(values)})\n"
              "form.widget")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    path = Path(folder) / "ganlib-form.ipynb"
    nbformat.write(nb, path)
    return path


def start_voila(notebook: Path, port: Optional[int] = None, cwd: Optional[Path] = None) -> tuple:
    """(process, url) of Voila serving `notebook` on 127.0.0.1, once it answers (or RuntimeError with its log)."""
    port = port or free_port()
    log = tempfile.NamedTemporaryFile(prefix="ganlib-voila-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1",
         "--show_tracebacks=True"], cwd=str(cwd or Path(notebook).parent), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Voila exited ({process.returncode}): {Path(log.name).read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError(f"Voila did not answer on {url} within 120 s: {Path(log.name).read_text()[-2000:]}")


def serve(notebook: Path, port: Optional[int] = None, open_browser: bool = True, cwd: Optional[Path] = None) -> int:
    """Serve until Ctrl-C; returns an exit code."""
    missing = front_end_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    process, url = start_voila(notebook, port, cwd)
    print(f"serving {notebook.name} at {url} (Ctrl-C to stop)")
    if open_browser:
        webbrowser.open(url)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return 0
