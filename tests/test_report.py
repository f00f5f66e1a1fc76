"""The report: Quarto project file, pages executed against a real tiny study, offline preview in Chromium.

One module-scoped study (2 configurations x 2 seeds of tiny runs with metrics, plus one failing run) is trained
in-process and gathered with analysis.gather; the preview is built once and every test inspects it.
"""
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, tiny

XSS = "lr=1e-3<script>alert(1)"  # a hostile variation name (also a valid directory name)
DESCRIPTION = 'Does a larger learning rate help? <script>alert("description")</script> & <b>not bold</b>'
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Stored XSS through a run's train.ipynb: each payload would mark the page's <body> if it ran.
HOSTILE_HTML = ("<b>fine</b><script>document.body.setAttribute('data-xss', 'script')</script>"
                "<img src=x onerror=\"document.body.setAttribute('data-xss', 'onerror')\">")
HOSTILE_JS = "document.body.setAttribute('data-xss', 'javascript')"
HOSTILE_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' onload=\"document.body.setAttribute('data-xss', 'svg')\">"
               "<script>document.body.setAttribute('data-xss', 'svg-script')</script></svg>")


def make_study(out: Path) -> Path:
    """A study in the layout of `analysis.sweep`, trained directly with ganlib.run.train (fast, in-process)."""
    import nbformat

    from ganlib.run import train

    study_dir = out / "tiny"
    metrics = dict(metric_samples=64, metric_interval=1)
    configs = {"baseline": {}, XSS: {"lr": 1e-3}}
    for variation, changes in configs.items():
        for seed in (0, 1):
            train(tiny(seed=seed, **metrics, **changes), study_dir / "runs" / variation / f"seed{seed}", verbose=0)
    broken = tiny(dataset="folder", data_dir=str(out / "no <such> folder"), image_size=28, channels=1)
    with pytest.raises(Exception):
        train(broken, study_dir / "runs" / "broken" / "seed0", verbose=0)
    for run in (study_dir / "runs").glob("*/seed*"):  # stand-ins for the executed notebooks papermill writes
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Train one GAN configuration"),
                                             nbformat.v4.new_code_cell("print('trained')")])
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"run {run.parent.name}\n"),
                               nbformat.v4.new_output("display_data", data={  # a 1x1 GIF, as IPython shows one
                                   "image/gif": "R0lGODlhAQABAAAAACw=", "text/plain": "<IPython.core.display.Image object>"})]
        if run.parent.name == "baseline" and run.name == "seed0":  # a run directory someone tampered with
            nb.cells[0].source += HOSTILE_HTML
            nb.cells[1].outputs += [nbformat.v4.new_output("display_data", data={"text/html": HOSTILE_HTML}),
                                    nbformat.v4.new_output("display_data", data={"application/javascript": HOSTILE_JS}),
                                    nbformat.v4.new_output("display_data", data={"image/svg+xml": HOSTILE_SVG})]
        nbformat.write(nb, run / "train.ipynb")
    baseline = {k: v for k, v in tiny(**metrics).to_dict().items() if k != "seed"}
    study = dict(name="tiny", description=DESCRIPTION, question="Is lr=1e-3 better than 2e-4 <really>?",
                 baseline=baseline, seeds=[0, 1], primary_metric="final_fid", factors=["lr"],
                 variations=[{"name": XSS, "lr": 1e-3},
                             {"name": "broken", "dataset": "folder", "data_dir": broken.data_dir}])
    (study_dir / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    from analysis.gather import gather

    gather(study_dir)
    return study_dir


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def preview(study, tmp_path_factory):
    from analysis import report

    out = tmp_path_factory.mktemp("preview")
    result = report.build(study, out)
    return result


def executed(preview, page):
    import nbformat

    return nbformat.read(preview["out"] / "_executed" / f"{page}.ipynb", as_version=4)


def html_outputs(nb) -> str:
    return "\n".join(o["data"]["text/html"] if isinstance(o["data"]["text/html"], str) else "".join(o["data"]["text/html"])
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.get("data", {}))


def count_png(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def table_by_id(fragment: str, table_id: str) -> tuple:
    """(header cells, rows of cells) of the table with this id, as (escaped) text."""
    m = re.search(rf'<table[^>]*id="{table_id}".*?</table>', fragment, re.S)
    assert m, f"table {table_id} missing"
    head = [html.unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", m.group(0))]
    rows = [re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", r, re.S)
            for r in re.findall(r"<tr(?:\s[^>]*)?>(.*?)</tr>", m.group(0), re.S)]
    return head, [r for r in rows if r]


# ----------------------------------------------------------------------------------------------- project files
def test_quarto_yml_lists_every_page():
    from analysis.report import parse_qmd, site_pages

    config = yaml.safe_load((Path(ROOT) / "_quarto.yml").read_text())
    assert config["project"]["type"] == "website" and config["project"]["output-dir"] == "_site"
    listed = {Path(item["href"]).name for item in config["website"]["navbar"]["left"]}
    pages = {p.name for p in (Path(ROOT) / "reports").glob("*.qmd")}
    assert pages and listed == pages
    for _, qmd in site_pages():
        meta, nb = parse_qmd(qmd.read_text())
        assert meta.get("title")
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "study_dir = " in params[0].source and "rolling_window = " in params[0].source


def test_parse_qmd_chunks_and_options():
    from analysis.report import inject_parameters, parse_qmd

    text = ('---\ntitle: "T <x>"\n---\n\nIntro\n\n```{python}\n#| tags: [parameters]\na = 1\n```\n\nMiddle\n\n'
            '```{python}\n#| eval: false\nskipped()\n```\n\n```{python}\n#| echo: false\nprint(a)\n```\nEnd\n')
    meta, nb = parse_qmd(text)
    assert meta["title"] == "T <x>"
    kinds = [(c.cell_type, c.source) for c in nb.cells]
    assert kinds[1:] == [("markdown", "Intro"), ("code", "a = 1"), ("markdown", "Middle"), ("code", "print(a)"),
                         ("markdown", "End")]
    inject_parameters(nb, {"a": "x'y"})
    assert nb.cells[3].source.endswith("a = \"x'y\"") and nb.cells[3].metadata["tags"] == ["injected-parameters"]


def test_missing_study_fails_with_instructions(tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "nope", tmp_path / "empty"):
        proc = subprocess.run([sys.executable, "-m", "analysis.report", str(target), "--out", str(tmp_path / "o")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "python -m analysis.sweep" in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------------------------- executed pages
def test_pages_execute_without_errors(preview):
    assert set(preview["pages"]) == {"index.html", "dynamics.html", "metrics.html", "statistics.html",
                                     "budget.html", "gallery.html", "diagnostics.html", "runs.html"}
    assert {p: e for p, e in preview["pages"].items() if e} == {}


def test_overview(preview):
    out = html_outputs(executed(preview, "index"))
    head, rows = table_by_id(out, "design")
    assert [r[0] for r in rows] == ["baseline", "lr=1e-3&lt;script&gt;alert(1)", "broken"]
    assert "lr=0.001" in rows[1][1]
    head, rows = table_by_id(out, "ranking")
    assert "median final_fid" in head and "did not learn" in head and len(rows) == 3
    # 4 training steps learn nothing, and ganlib.verdict says so: no "best", a warning on the page
    assert [r[head.index("did not learn")] for r in rows[:2]] == ["2", "2"]
    assert "4 of 4 completed runs did not learn" in out and "No configuration can be ranked" in out
    assert "Best configuration" not in out
    assert "did not complete" in out and "&lt;such&gt;" in out  # the failed run's error, escaped
    assert out.count('src="data:image/png;base64,') >= 2  # the first configuration's samples, both seeds


def test_overview_ranks_only_runs_that_learned(study, tmp_path):
    """Mark the baseline's runs as learned (as their summary.json would say after a longer run), gather again:
    the baseline is ranked and named best, the other configuration is not ranked."""
    from analysis import report
    from analysis.gather import gather

    copy = tmp_path / "tiny"
    shutil.copytree(study, copy)
    for summary_file in (copy / "runs" / "baseline").glob("seed*/summary.json"):
        summary = json.loads(summary_file.read_text())
        cautions = ["little variety: recall 0.010 < 0.1"] if summary_file.parent.name == "seed0" else []
        summary.update(verdict="learned", verdict_reasons=[], verdict_cautions=cautions)
        summary_file.write_text(json.dumps(summary))
    gather(copy)
    result = report.build(copy, tmp_path / "preview", pages=["index"], log=lambda *a: None)
    assert result["pages"] == {"index.html": []}
    import nbformat

    out = html_outputs(nbformat.read(tmp_path / "preview" / "_executed" / "index.ipynb", as_version=4))
    head, rows = table_by_id(out, "ranking")
    assert rows[0][0] == "baseline" and rows[0][head.index("did not learn")] == "0"
    assert rows[1][head.index(f"median final_fid")] in ("", "–", "nan", "NaN")  # nothing learned: no median
    assert "Best configuration by median final_fid: baseline" in out
    assert "2 of 4 completed runs did not learn" in out
    assert "1 of 2 runs that learned have a caution" in out and "baseline/seed0: little variety" in out


def test_statistics_tables(preview):
    out = html_outputs(executed(preview, "statistics"))
    head, rows = table_by_id(out, "compare-baseline")
    assert {"variation", "median baseline", "median variation", "Cliff's delta", "p", "p Holm", "p BH",
            "significant", "reachable"} <= set(head)
    assert sorted(r[0] for r in rows) == ["broken", "lr=1e-3&lt;script&gt;alert(1)"]
    head, rows = table_by_id(out, "kruskal")
    assert "p (permutation)" in head and len(rows) == 1
    # 2 vs 2 seeds: significance is unreachable, and the page says so prominently
    assert 'class="ganlib-callout danger"' in out and "unreachable" in out
    assert "no detectable difference" in out  # summarize_in_words


def test_figures_present(preview):
    dynamics, metrics = executed(preview, "dynamics"), executed(preview, "metrics")
    assert count_png(dynamics) >= 2  # losses/accuracies, and FID curves
    assert count_png(metrics) >= 1
    head, rows = table_by_id(html_outputs(metrics), "metric-summary")  # many metrics: turned, one row each
    assert head[0] == "metric" and len(head) == 4  # baseline, the XSS variation, broken
    assert {"fid", "kid", "best_fid"} <= {r[0] for r in rows}
    gallery = html_outputs(executed(preview, "gallery"))
    assert gallery.count('src="data:image/png;base64,') >= 4 + 2  # final grids of 4 runs + evolution
    assert 'src="data:image/gif;base64,' in gallery
    assert 'class="ganlib-traversal"' in gallery and 'type="range"' in gallery
    frames = json.loads(re.search(r"frames = (\[.*?\]);", gallery).group(1))
    assert len(frames) == 16 and all(f.startswith("data:image/png;base64,") for f in frames)
    diagnostics = executed(preview, "diagnostics")
    out = html_outputs(diagnostics)
    head, rows = table_by_id(out, "unfinished")
    assert [r[0] for r in rows] == ["broken/seed0"] and "failed" in rows[0][1] and "&lt;such&gt;" in rows[0][-1]
    assert count_png(diagnostics) >= 2  # nearest neighbours, diversity
    head, rows = table_by_id(out, "memorization")
    # one verdict on every page: runs that did not learn are not called collapsed or memorising here
    assert "verdict" in head and {r[head.index("verdict")] for r in rows} == {"did_not_learn"}
    assert {r[head.index("flag")] for r in rows} == {""} and "mode collapse in" not in out


def test_runs_listing_links_notebooks(preview):
    out = html_outputs(executed(preview, "runs"))
    head, rows = table_by_id(out, "runs")
    assert len(rows) == 5
    links = re.findall(r'href="(notebooks/[^"]+)"', out)
    assert len(links) == 5 and "notebooks/lr%3D1e-3%3Cscript%3Ealert%281%29/seed0.html" in links
    from urllib.parse import unquote

    for link in links:
        assert (preview["out"] / unquote(link)).exists(), link


def test_hostile_strings_are_escaped(preview):
    for page in list(preview["out"].glob("*.html")) + list(preview["out"].glob("notebooks/*/*.html")):
        text = page.read_text()
        assert "<script>alert" not in text and "<b>not bold</b>" not in text and "<such>" not in text, page
    index = (preview["out"] / "index.html").read_text()
    assert "&lt;script&gt;alert(1)" in index and "&lt;b&gt;not bold&lt;/b&gt;" in index
    assert re.search(r'&lt;script&gt;alert\((&quot;|")description', index)


def test_run_notebooks_are_sanitized(preview):
    page = (preview["out"] / "notebooks" / "baseline" / "seed0.html").read_text()
    assert "<b>fine</b>" in page  # harmless markup stays
    assert re.search(r"<h1[^>]*>Train one GAN configuration", page)  # rendered Markdown, not escaped as text
    assert "&lt;h1" not in page
    assert 'src="data:image/gif;base64,R0lGODlhAQABAAAAACw="' in page  # GIFs shown, not their text fallback
    assert not re.search(r"<script\b", page, re.I)  # escaped as text (&lt;script&gt;) at most
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", page, re.I)  # no event handler inside a real tag
    assert "data-xss', 'javascript" not in page  # the JavaScript output is dropped


def test_preview_is_offline(preview):
    for page in preview["out"].glob("*.html"):
        text = page.read_text()
        assert not re.search(r'<script[^>]+src=', text), page  # no external (or any) script files
        assert not re.search(r'<link[^>]+href="https?:', text) and "cdnjs" not in text, page
        assert 'class="ganlib-nav"' in text and 'href="statistics.html"' in text


# ----------------------------------------------------------------------------------------------- browser
def chromium(args, tmp_path, timeout=90):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_pages_render_in_chromium(preview, tmp_path):
    pages = sorted(preview["out"].glob("*.html")) + sorted(preview["out"].glob("notebooks/*/*.html"))[:1]
    for page in pages:
        dom = chromium(["--virtual-time-budget=3000", "--dump-dom", page.as_uri()], tmp_path).stdout
        assert "</main>" in dom, page
        # error outputs and stderr render as stderr output areas (a failed run's error in a table is fine)
        assert "Traceback" not in dom and not re.search(r'<[^>]+data-mime-type="application/vnd.jupyter.stderr', dom), page
        images = re.findall(r"<img\b[^>]*>", dom)
        assert all('src="data:' in i for i in images if "src=" in i), page  # embedded: nothing to fetch
        # (an <img> of a run notebook whose src was not an embedded picture keeps no src at all)
        # pages without pictures: the run list, run notebooks, the Budget page of a study without a sampled design
        assert images or page.name in ("runs.html", "budget.html") or page.parent.parent.name == "notebooks", page
        if page.name == "gallery.html":
            assert 'data-frames="16"' in dom  # the slider's inline script ran, offline
    hostile = preview["out"] / "notebooks" / "baseline" / "seed0.html"
    dom = chromium(["--virtual-time-budget=3000", "--dump-dom", hostile.as_uri()], tmp_path).stdout
    assert "</main>" in dom and "<b>fine</b>" in dom and "data-xss" not in dom.split("<body", 1)[1].split(">", 1)[0]
    for name in ("index", "statistics"):
        shot = tmp_path / f"{name}.png"
        chromium([f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars",
                  (preview["out"] / f"{name}.html").as_uri()], tmp_path)
        assert shot.exists() and shot.stat().st_size > 20_000


# ----------------------------------------------------------------------------------------------- edge cases
def test_pages_of_a_study_with_one_single_epoch_run_per_configuration(tmp_path):
    """One completed run per configuration (no spread to test) and runs of a single epoch: every page still
    executes, and the Statistics page says why it cannot test."""
    from analysis import report
    from analysis.gather import gather
    from ganlib.run import train

    study_dir = tmp_path / "edge"
    metrics = dict(metric_samples=64, metric_interval=1)
    for variation, changes in {"baseline": {}, "lr=1e-3": {"lr": 1e-3}}.items():
        train(tiny(epochs=1, seed=0, **metrics, **changes), study_dir / "runs" / variation / "seed0", verbose=0)
    baseline = {k: v for k, v in tiny(epochs=1, **metrics).to_dict().items() if k != "seed"}
    (study_dir / "study.yaml").write_text(yaml.safe_dump(dict(
        name="edge", baseline=baseline, seeds=[0], primary_metric="final_fid",
        variations=[{"name": "lr=1e-3", "lr": 1e-3}])))
    gather(study_dir)
    result = report.build(study_dir, tmp_path / "preview", log=lambda *a: None)
    assert {p: e for p, e in result["pages"].items() if e} == {}


def test_the_training_gif_of_a_colour_run_is_in_colour(tmp_path):
    import imageio.v3 as iio

    from PIL import Image

    from analysis import figures
    from ganlib.rundir import RunDirectory

    run = RunDirectory(tmp_path / "run")  # the grids a colour run writes
    run.samples_dir.mkdir(parents=True)
    for epoch in (1, 2):
        colours = np.random.default_rng(epoch).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(np.kron(colours, np.ones((8, 8, 1), np.uint8))).save(run.sample_file(epoch))
    frames = iio.imread(figures.training_gif(run.path), index=None, extension=".gif")
    assert frames.ndim == 4 and frames.shape[-1] >= 3
    assert np.abs(frames[..., 0].astype(int) - frames[..., 1].astype(int)).max() > 10  # not grey


def test_budget_page_of_a_sampled_design(tmp_path):
    """A sampled study (4 Sobol trials over lr and loss, trained directly): the Budget page draws the curves,
    compares the two losses and lists every trial with its drawn values; the grid study's page says it has none."""
    import nbformat

    from analysis import report
    from analysis.gather import gather
    from analysis.study import study_from_dict
    from analysis.studydir import StudyDirectory
    from ganlib.run import train

    metrics = dict(metric_samples=64, metric_interval=0)
    baseline = {k: v for k, v in tiny(epochs=1, **metrics).to_dict().items() if k != "seed"}
    definition = dict(name="sampled", baseline=baseline, seeds=[0], primary_metric="final_fid",
                      search=dict(design="sobol", trials=4, space={"lr": {"loguniform": [1e-4, 1e-3]},
                                                                    "loss": {"choice": ["bce", "hinge"]}}))
    study = study_from_dict(definition)
    directory = StudyDirectory(tmp_path / "sampled")
    for run in study.runs():
        train(run.config, directory.run_dir(run.variation, run.seed), verbose=0)
    directory.write_definition(study)
    gather(directory.path)

    def budget_page():
        result = report.build(directory.path, tmp_path / "preview", pages=["budget", "statistics"], log=lambda *a: None)
        assert result["pages"] == {"budget.html": [], "statistics.html": []}
        return nbformat.read(tmp_path / "preview" / "_executed" / "budget.ipynb", as_version=4)

    # one training epoch learns nothing, and the verdict says so: nothing is ranked or highlighted
    out = html_outputs(budget_page())
    assert "No trial can be ranked" in out and "<tr class=best>" not in out
    head, rows = table_by_id(out, "trials")
    assert [r[head.index("note")] for r in rows] == ["no seed learned"] * 4
    # as if all but the last trial had learned (their summary.json after a longer run): those are ranked
    last = study.trials[-1].name
    for summary_file in (directory.path / "runs").glob("*/seed*/summary.json"):
        if summary_file.parent.parent.name != last:
            summary = json.loads(summary_file.read_text())
            summary.update(verdict="learned", verdict_reasons=[], verdict_cautions=[])
            summary_file.write_text(json.dumps(summary))
    gather(directory.path)
    nb = budget_page()
    out = html_outputs(nb)
    head, rows = table_by_id(out, "trials")
    assert [r[0] for r in rows] == [t.name for t in study.trials] and "drawn values" in head
    assert all("lr=" in r[1] and "loss=" in r[1] for r in rows)
    assert rows[-1][head.index("note")] == "no seed learned" and "1 of 4 trials do not count" in out
    assert out.count("<tr class=best>") == 1 and '<tr class=best><td class="text">' + last not in out
    losses = [t.config.loss for t in study.trials[:-1]]
    head, rows = table_by_id(out, "budget-compare")
    assert head[0] == "k" and len(rows) == min(losses.count("bce"), losses.count("hinge"))
    assert count_png(nb) >= 1
    # one seed per trial: the Statistics page says what can and cannot be concluded, and tests nothing
    stats_page = html_outputs(nbformat.read(tmp_path / "preview" / "_executed" / "statistics.ipynb", as_version=4))
    assert "One seed per configuration: nothing here can be tested" in stats_page
    assert 'id="compare-baseline"' not in stats_page and 'id="seed-plan"' not in stats_page


def test_budget_page_of_a_grid_study_says_it_has_no_sampled_design(preview):
    out = html_outputs(executed(preview, "budget"))
    assert "This study has no sampled design" in out


def test_metrics_page_shows_per_class_recall_coverage_and_fid(preview):
    out = html_outputs(executed(preview, "metrics"))
    for metric in ("recall", "coverage", "fid"):
        head, rows = table_by_id(out, f"class-{metric}")
        assert head[0] == "class" and "baseline" in head
        assert rows and all(r[0] in [str(d) for d in range(10)] for r in rows)  # mnist_subset's class names


def test_metric_panels_are_anchored_to_the_metrics_range():
    """Label accuracy 0.0967-0.100 filled a whole panel; shares now span [0, 1], distances start at 0, and a
    panel whose runs all score the same says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import _anchor_axis

    fig, (a, b, c) = plt.subplots(1, 3)
    a.plot([0, 1], [0.0967, 0.100])
    _anchor_axis(a, "final_label_accuracy", np.array([0.0967, 0.100]))
    assert a.get_ylim()[0] < 0 and a.get_ylim()[1] > 1
    b.plot([0, 1], [30.0, 31.0])
    _anchor_axis(b, "final_fid", np.array([30.0, 31.0]))
    assert b.get_ylim()[0] == 0
    c.plot([0, 1], [0.0, 0.0])
    _anchor_axis(c, "final_recall", np.array([0.0, 0.0]))
    assert any("every run: 0" in t.get_text() for t in c.texts)
    plt.close(fig)


def test_the_gallery_says_which_class_each_grid_column_shows(preview):
    out = html_outputs(executed(preview, "gallery"))
    # mnist_subset has 10 classes, the tiny grid 4 columns: the cells cycle through the digits row by row
    assert "Cells cycle through the classes row by row (0, 1, 2, 3, 4, 5, …)" in out


def test_a_summary_of_many_metrics_turns_to_fit_the_page():
    """15 metric columns scrolled off a 1280-pixel page; past WIDE_TABLE_METRICS the summary has one row per
    metric and one column per configuration, the best one's header marked."""
    from analysis.page_html import WIDE_TABLE_METRICS, metric_summary

    def summary(n_metrics):
        names = ["fid", "kid", "recall", "coverage", "precision", "density", "label_accuracy", "intra_fid",
                 "intra_recall", "intra_coverage"][:n_metrics]
        rows = [{"variation": v, "completed": "5 / 5", **{m: f"{i}.0<br><small>[0, 1]</small>" for m in names}}
                for i, v in enumerate(["baseline", "lr=1e-3<b>"])]
        return pd.DataFrame(rows), names

    few, names = summary(WIDE_TABLE_METRICS)
    head, rows = table_by_id(metric_summary(few, names, "baseline", "final_fid"), "metric-summary")
    assert head[:3] == ["variation", "completed", "fid"] and len(rows) == 2
    many, names = summary(WIDE_TABLE_METRICS + 1)
    out = metric_summary(many, names, "lr=1e-3<b>", "final_fid")
    head, rows = table_by_id(out, "metric-summary")
    assert head == ["metric", "baseline", "lr=1e-3<b> (best)"]  # names escaped in the page, read back unescaped
    assert [r[0] for r in rows] == ["completed", *names] and rows[1][2] == "1.0<br><small>[0, 1]</small>"
    assert "<b>" not in out.split("<tbody>")[0]


def test_the_overfitting_panel_draws_the_cautions_threshold(study):
    """The dashed line on the gap panel is the verdict's MEMORIZED_GAP, so the figure and the caution agree."""
    import matplotlib

    matplotlib.use("Agg")
    from analysis.plots import curve_figure
    from analysis.study_data import open_study
    from ganlib.verdict import MEMORIZED_GAP

    S = open_study(study)
    fig = curve_figure(S.epochs, ["d_real_train", "d_overfit_gap"], "epoch", S,
                       lines={"d_overfit_gap": (MEMORIZED_GAP, "caution")})
    train_panel, gap_panel = fig.axes[:2]
    dashed = [line for line in gap_panel.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and set(dashed[0].get_ydata()) == {MEMORIZED_GAP}
    assert not [line for line in train_panel.get_lines() if line.get_linestyle() == "--"]
    assert "caution" in [t.get_text() for t in gap_panel.texts]


def test_the_caution_box_explains_only_the_cautions_its_runs_have():
    from types import SimpleNamespace

    from analysis.page_html import caution_callout

    def box(cautions):
        runs = pd.DataFrame({"run_id": [f"baseline/seed{i}" for i in range(len(cautions))], "verdict": "learned",
                             "verdict_cautions": cautions})
        return caution_callout(SimpleNamespace(runs=runs, learned=runs))

    memorized = "the discriminator memorized the training images: E[sign D] 0.60 ... (gap 0.64 >= 0.5)"
    variety = "little variety: recall 0.010 < 0.1 (real images ~0.9)"
    only_memorized = box([memorized, None])
    assert "1 of 2 runs that learned have a caution" in only_memorized
    assert "Memorized:" in only_memorized and "Little variety:" not in only_memorized
    both = box([memorized, variety])
    assert "Memorized:" in both and "Little variety:" in both
    assert box([None, None]) == ""
