"""The real Quarto renders a small finished study, and every page works in a real browser.

The study (from test_report.make_study) has two configurations, a failed run, runs too short to learn and a
run directory holding hostile HTML. Quarto runs without an activated virtual environment, with only
QUARTO_PYTHON naming the interpreter, as the README tells users. The site is served on 127.0.0.1 and each page
is opened in headless Chromium: no console error, every image and navbar link resolves, no HTML shows as text,
no injected payload runs.

Quarto comes from ../shared/tools/quarto (scripts/setup.sh --test installs it into .venv/quarto) or from PATH.
In CI a missing Quarto fails this test; elsewhere it is skipped with the install step.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_report import CHROMIUM, make_study

pytestmark = pytest.mark.slow
INSTALL = "bash scripts/setup.sh --test (it installs Quarto from ../shared/tools/quarto into .venv/quarto)"


def find_quarto():
    for candidate in (os.environ.get("QUARTO"), os.path.join(ROOT, ".venv", "quarto", "bin", "quarto"),
                      shutil.which("quarto")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require(tool, path_exists, what):
    if path_exists:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: {INSTALL}")
    pytest.skip(f"{what} is not installed: {INSTALL}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    quarto = find_quarto()
    require("quarto", quarto, "Quarto")
    require("chromium", Path(CHROMIUM).exists(), "chromium")
    base = tmp_path_factory.mktemp("quarto")
    study = make_study(base)
    import pandas as pd

    runs = pd.read_parquet(study / "tables" / "runs.parquet")
    assert (runs["status"] == "failed").any() and (runs["verdict"] == "did_not_learn").any()  # what pages must show
    project = base / "project"  # the report's files only: the render writes _site/ and .quarto/ there
    project.mkdir()
    for name in ("_quarto.yml", "index.qmd"):
        shutil.copy(os.path.join(ROOT, name), project / name)
    for name in ("reports", "analysis"):
        shutil.copytree(os.path.join(ROOT, name), project / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "GANLIB_STUDY")}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", QUARTO_PYTHON=sys.executable)  # no venv on PATH
    proc = subprocess.run([quarto, "render", "-P", f"study_dir:{study}"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"dir": project / "_site", "log": proc.stdout + proc.stderr, "study": study}


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site["dir"]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.handle_error = lambda request, address: None  # a browser closing a connection early is not an error
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def pages():
    import yaml

    navbar = yaml.safe_load(Path(ROOT, "_quarto.yml").read_text())["website"]["navbar"]["left"]
    return [item["href"].replace(".qmd", ".html") for item in navbar]


def test_render_writes_every_page_and_run_notebook_without_framework_noise(site):
    for page in pages():
        assert (site["dir"] / page).is_file(), page
    notebooks = sorted((site["dir"] / "reports" / "notebooks").glob("*/*.html"))
    assert len(notebooks) >= 4  # the post-render step ran with QUARTO_PYTHON and found the rendered study
    for noise in ("oneDNN custom operations", "absl::InitializeLog", "ModuleNotFoundError"):
        assert noise not in site["log"], noise


def open_page(url, tmp_path):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", url]
    proc = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120)
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "favicon" not in line]
    return proc.stdout, console


def resolves(base_url, page_url, href) -> bool:
    if href.startswith(("data:", "#")):
        return True
    if re.match(r"^[a-z]+:", href) and not href.startswith(base_url):
        return False  # nothing may come from elsewhere
    url = urllib.request.urljoin(page_url, href.split("#")[0])
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("page", pages() + ["reports/notebooks/baseline/seed0.html"])
def test_page_works_in_chromium(site, server, page, tmp_path):
    url = f"{server}/{page}"
    dom, console = open_page(url, tmp_path)
    assert "</main>" in dom or 'id="quarto-content"' in dom or "jp-Notebook" in dom, page
    errors = [line for line in console if re.search(r"error|uncaught|failed|refused|blocked", line, re.I)]
    assert not errors, errors
    body = dom.split("<body", 1)[1]
    assert "data-xss" not in body.split(">", 1)[0]  # no injected payload ran
    prose = re.sub(r"<(pre|code)\b.*?</\1>", "", body, flags=re.S)  # code (the pages' own source) may hold HTML
    for raw in ("&lt;h1", "&lt;p&gt;", "&lt;div", "&lt;table", "&lt;img"):
        assert raw not in prose, (page, raw)  # HTML shown as text
    images = re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', body)
    assert all(resolves(server, url, src) for src in images), page
    links = re.findall(r'<a\b[^>]*class="nav-link[^"]*"[^>]*href="([^"]+)"', body) + \
        re.findall(r'<a\b[^>]*href="([^"]+)"[^>]*class="nav-link', body)
    assert all(resolves(server, url, href) for href in links if not href.startswith("#")), page
    if page.endswith("runs.html"):  # the links to the runs' notebooks resolve too
        notebook_links = re.findall(r'href="([^"]*notebooks/[^"]+\.html)"', body)
        assert notebook_links and all(resolves(server, url, href) for href in notebook_links)


def _content(html: str) -> dict:
    """What a page shows, renderer-independent: its tables (by id), callout titles and figure count."""
    return {"tables": sorted(set(re.findall(r'<table[^>]*\bid="([^"]+)"', html))),
            "callouts": sorted(re.sub(r"\s+", " ", t) for t in re.findall(r'<b class="title">(.*?)</b>', html, re.S)),
            "figures": len(re.findall(r'<img\b', re.sub(r"<(pre|code)\b.*?</\1>", "", html, flags=re.S)))}


def test_site_and_offline_preview_show_the_same_tables_warnings_and_figures(site, tmp_path):
    """Both are built from the same .qmd pages; only the frame differs (Quarto's theme, table of contents and
    code tools; the preview's embedded pictures)."""
    from analysis import report

    preview = report.build(site["study"], tmp_path / "preview")
    for page in pages():
        name = Path(page).name
        quarto_page = (site["dir"] / page).read_text()
        preview_page = (preview["out"] / name).read_text()
        q, p = _content(quarto_page), _content(preview_page)
        assert q["tables"] == p["tables"], name
        assert q["callouts"] == p["callouts"], name
        assert q["figures"] == p["figures"], (name, q["figures"], p["figures"])
