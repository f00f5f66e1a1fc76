"""Build an offline, self-contained HTML preview of a study's report without Quarto.

    python -m analysis.report [STUDY_DIR] [--out _preview/<study>] [--pages index statistics ...]
    python -m analysis.report --export-notebooks [STUDY_DIR] [--out DIR]   # Quarto post-render step

Every page of `reports/` (the `.qmd` files listed in `_quarto.yml`) is turned into a notebook (its ```{python}
chunks become code cells, `#|` options are honoured), run with nbclient with the study as its parameter, and
converted to HTML with images embedded and no script loaded from the internet. The runs' executed training
notebooks are converted alongside (`notebooks/<variation>/seed<k>.html`) so the run listing's links work offline.
STUDY_DIR defaults to $GANLIB_STUDY, else studies/quick. See docs/report.md.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
CHUNK = re.compile(r"^```\{python[^}]*\}[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
FRONT = re.compile(r"\A---\n(.*?)\n---[ \t]*\n", re.S)

# nbconvert's "lab" template minus everything it would fetch from a CDN (require.js, MathJax, mermaid, widgets),
# plus the navigation bar. Outputs keep their inline scripts (the latent traversal slider).
TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}<style>""" + """
body.jp-Notebook{padding:0;margin:0;background:#fff}
main{max-width:1180px;margin:0 auto;padding:0 1.2em 3em}
nav.ganlib-nav{position:sticky;top:0;z-index:10;background:#1f2933;padding:.55em 1.2em;display:flex;gap:.3em 1.1em;
 flex-wrap:wrap;align-items:baseline;font:15px system-ui,-apple-system,"Segoe UI",sans-serif}
nav.ganlib-nav a{color:#d5dde5;text-decoration:none}
nav.ganlib-nav a:hover{color:#fff;text-decoration:underline}
nav.ganlib-nav a.active{color:#fff;font-weight:600;border-bottom:2px solid #7cc4fa}
nav.ganlib-nav .brand{color:#fff;font-weight:700;margin-right:.8em}
.jp-Cell{padding:0 !important}
.jp-MarkdownOutput{padding-left:0 !important}
.jp-RenderedHTMLCommon h1{font-size:2em;margin-top:.7em}
.jp-RenderedHTMLCommon h2{border-bottom:1px solid #e1e4e8;padding-bottom:.2em;margin-top:1.4em}
.jp-RenderedHTMLCommon table.ganlib-table{table-layout:auto}
.jp-RenderedHTMLCommon .ganlib-table td,.jp-RenderedHTMLCommon .ganlib-table th{max-width:36em}
.jp-OutputArea-output img{max-width:100%;height:auto}
.subtitle{color:#555;font-size:1.1em;margin-top:-.4em}
</style>{% endblock extra_css %}
{% block body_header %}<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.ganlib_nav }}<main>{% endblock body_header %}
"""


class ReportError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------- pages
def site_pages(root: Path = ROOT) -> list:
    """[(title, path of the .qmd)] in navbar order, from _quarto.yml: the single list of report pages."""
    import yaml

    config = yaml.safe_load((root / "_quarto.yml").read_text())
    pages = []
    for item in config["website"]["navbar"]["left"]:
        pages.append((item.get("text") or Path(item["href"]).stem, root / item["href"]))
    return pages


def parse_qmd(text: str):
    """(front matter dict, notebook) of a Quarto document: markdown between ```{python} chunks becomes markdown
    cells, chunks become code cells (`#|` option lines parsed as YAML; `eval: false` chunks are left out,
    `tags` become cell tags)."""
    import nbformat
    import yaml

    match = FRONT.match(text)
    meta = yaml.safe_load(match.group(1)) if match else {}
    body = text[match.end():] if match else text
    cells = []
    if meta.get("title"):
        head = f"# {meta['title']}" + (f"\n\n<p class='subtitle'>{html.escape(meta['subtitle'])}</p>"
                                      if meta.get("subtitle") else "")
        cells.append(nbformat.v4.new_markdown_cell(head))
    pos = 0
    for chunk in CHUNK.finditer(body):
        prose = body[pos:chunk.start()].strip()
        if prose:
            cells.append(nbformat.v4.new_markdown_cell(prose))
        pos = chunk.end()
        lines = chunk.group(1).splitlines()
        opts = [ln[3:] for ln in lines if ln.startswith("#| ")]
        options = yaml.safe_load("\n".join(opts)) or {} if opts else {}
        code = "\n".join(ln for ln in lines if not ln.startswith("#|")).strip("\n")
        if options.get("eval") is False:
            continue
        cell = nbformat.v4.new_code_cell(code)
        if options.get("tags"):
            cell.metadata["tags"] = list(options["tags"])
        cells.append(cell)
    prose = body[pos:].strip()
    if prose:
        cells.append(nbformat.v4.new_markdown_cell(prose))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update(title=meta.get("title", ""), kernelspec={"name": "python3", "display_name": "Python 3",
                                                                "language": "python"})
    return meta, nb


def inject_parameters(nb, parameters: dict):
    """Papermill-style: a cell tagged `injected-parameters` right after the `parameters` cell."""
    import nbformat

    code = "# injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(code, metadata={"tags": ["injected-parameters"]})
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), -1)
    if index < 0:
        raise ReportError("page has no chunk tagged parameters (#| tags: [parameters])")
    nb.cells.insert(index + 1, cell)
    return nb


def execute_all(notebooks, timeout: int = 600):
    """Run notebooks one after the other from the repository root (Quarto's execute-dir: project), yielding each.

    One kernel serves all pages: `%reset -f` between them gives every page an empty namespace (as its own
    kernel would) while imported modules stay warm, which saves seconds per page. A page that kills the
    kernel gets the error recorded in its notebook, and the next page a fresh kernel.
    """
    import subprocess

    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.util import run_sync

    km = None
    reset = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')")])
    try:
        for nb in notebooks:
            if km is None or not run_sync(km.is_alive)():
                km = AsyncKernelManager(kernel_name="python3")
                # stderr: the kernel process's own chatter (cell output goes through the kernel protocol)
                run_sync(km.start_kernel)(cwd=str(ROOT), stderr=subprocess.DEVNULL)
            else:
                NotebookClient(reset, km=km, timeout=60).execute()
            client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                                    resources={"metadata": {"path": str(ROOT)}})
            try:
                client.execute()
            except Exception as e:  # dead kernel, timeout: keep the page, say what happened
                nb.cells.append(nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
                    "error", ename=type(e).__name__, evalue=str(e).splitlines()[0] if str(e) else "", traceback=[])]))
                run_sync(km.shutdown_kernel)(now=True)
                km = None
            yield nb
    finally:
        if km is not None:
            run_sync(km.shutdown_kernel)(now=True)


def errors_of(nb) -> list:
    """'ename: evalue' of every error output."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _quiet(nb):
    """Drop stderr streams (warnings, TensorFlow chatter), as `warning: false` does in Quarto."""
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = [o for o in c.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


# ----------------------------------------------------------------------------------------------- HTML
# What a run's notebook may keep of its HTML (rendered Markdown, tables, images): prose, headings, lists, tables,
# images embedded as data: URIs (PNG, GIF, JPEG). Everything else is escaped to text; no attribute can hold script.
SAFE_TAGS = frozenset({"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
                       "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
                       "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong",
                       "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
SAFE_ATTRIBUTES = frozenset({"class", "id", "title", "alt", "width", "height", "colspan", "rowspan", "align"})


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    if name in SAFE_ATTRIBUTES:
        return True
    scheme = value.strip().lower().split(":", 1)[0] if ":" in value.split("/", 1)[0] else ""
    if tag == "a" and name == "href":
        return scheme in ("", "http", "https", "mailto")
    if tag == "img" and name == "src":  # embedded pictures only: a path would point into the run directory
        return value.strip().lower().startswith(("data:image/png", "data:image/gif", "data:image/jpeg"))
    return False


def safe_html(fragment) -> str:
    """`fragment` with only SAFE_TAGS and safe attributes (bleach): nbconvert's own `clean_html` escapes
    headings and paragraphs too, which made a run notebook's rendered Markdown show as raw HTML text."""
    import bleach

    fragment = fragment.decode() if isinstance(fragment, bytes) else str(fragment)
    return bleach.clean(fragment, tags=SAFE_TAGS, attributes=_safe_attribute,
                        protocols=["http", "https", "mailto", "data"], strip_comments=True)


def _exporter(exclude_input: bool, sanitize: bool = False):
    """`sanitize`: for notebooks the report did not write (each run's train.ipynb): their Markdown and HTML
    outputs keep headings, tables and embedded images but lose scripts, event handlers and other active markup
    (`safe_html`), and JavaScript outputs are dropped, so a run directory cannot inject code into the report."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"ganlib_offline.j2": TEMPLATE})],
                            embed_images=True, exclude_input=exclude_input, exclude_input_prompt=True,
                            exclude_output_prompt=True, sanitize_html=sanitize,
                            filters={"clean_html": safe_html} if sanitize else {})
    exporter.template_file = "ganlib_offline.j2"
    return exporter


def show_gifs(nb):
    """GIF outputs (training animations, latent traversals) as embedded <img>: nbconvert's templates render
    PNG, JPEG and SVG only, and printed the GIF's text fallback ("<IPython.core.display.Image object>")."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if "image/gif" in data and "text/html" not in data:
                gif = data["image/gif"]
                gif = "".join(gif) if isinstance(gif, list) else gif
                data["text/html"] = f'<img src="data:image/gif;base64,{gif.strip()}" alt="animation">'
    return nb


def nav_html(pages, current: Optional[str], prefix: str, study_name: str) -> str:
    links = "".join(f'<a href="{prefix}{html.escape(href)}"{" class=active" if href == current else ""}>'
                    f"{html.escape(title)}</a>" for title, href in pages)
    return (f'<nav class="ganlib-nav"><span class="brand">{html.escape(study_name)}</span>{links}</nav>')


def to_html(nb, nav: str, exclude_input: bool = True, sanitize: bool = False) -> str:
    body, _ = _exporter(exclude_input, sanitize).from_notebook_node(nb, resources={"ganlib_nav": nav})
    return body


def _out_name(qmd: Path) -> str:
    return qmd.with_suffix(".html").name


# ----------------------------------------------------------------------------------------------- notebooks
def export_notebooks(study_dir: Path, out: Path, pages=(), study_name: str = "") -> list:
    """Each run's executed `train.ipynb` as `out/notebooks/<variation>/seed<k>.html`; returns the written paths."""
    import nbformat

    written = []
    from analysis.studydir import StudyDirectory

    for variation, seed_number, run_dir in StudyDirectory(study_dir).run_dirs_on_disk():
        nb_path, seed = run_dir / "train.ipynb", f"seed{seed_number}"
        if not nb_path.exists():
            continue
        target = out / "notebooks" / variation / f"{seed}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            nb = nbformat.read(nb_path, as_version=4)
            nb.metadata["title"] = f"{variation}/{seed}"
        except Exception as e:  # an unreadable notebook must not stop the report
            target.write_text(f"<!DOCTYPE html><meta charset=utf-8><p>{html.escape(str(nb_path))} unreadable: "
                              f"{html.escape(f'{type(e).__name__}: {e}')}</p>")
            written.append(target)
            continue
        nav = nav_html([(title, _out_name(q)) for title, q in pages], None, "../../", f"{study_name} · {variation}/{seed}")
        target.write_text(to_html(show_gifs(nb), nav, exclude_input=False, sanitize=True))
        written.append(target)
    return written


# ----------------------------------------------------------------------------------------------- build
def build(study_dir, out=None, pages: Optional[list] = None, rolling_window: int = 5, log=print) -> dict:
    """Execute and convert every page; returns {"out": dir, "pages": {file: errors}, "notebooks": [...]}."""
    import nbformat

    from analysis.studydir import StudyDirectory

    study_dir = StudyDirectory(study_dir).check_ready().path.resolve()
    name = StudyDirectory(study_dir).display_name()
    out = Path(out or ROOT / "_preview" / study_dir.name).resolve()
    (out / "_executed").mkdir(parents=True, exist_ok=True)
    site = site_pages()
    chosen = [(t, q) for t, q in site if not pages or q.stem in pages]
    nav_pages = [(t, _out_name(q)) for t, q in site]
    parameters = {"study_dir": str(study_dir), "rolling_window": int(rolling_window)}
    old_env = os.environ.get("GANLIB_STUDY")
    os.environ["GANLIB_STUDY"] = str(study_dir)  # the kernels inherit it: page parameter and override agree
    result = {"out": out, "pages": {}, "notebooks": []}
    try:
        notebooks = (inject_parameters(parse_qmd(qmd.read_text())[1], parameters) for _, qmd in chosen)
        started = time.perf_counter()
        for (title, qmd), nb in zip(chosen, execute_all(notebooks)):
            nbformat.write(nb, out / "_executed" / f"{qmd.stem}.ipynb")
            errors = errors_of(nb)
            page = _out_name(qmd)
            (out / page).write_text(to_html(_quiet(nb), nav_html(nav_pages, page, "", name)))
            result["pages"][page] = errors
            log(f"{page:18s} {time.perf_counter() - started:5.1f}s" + (f"  ERRORS: {'; '.join(errors)}" if errors else ""))
            started = time.perf_counter()
    finally:
        if old_env is None:
            os.environ.pop("GANLIB_STUDY", None)
        else:
            os.environ["GANLIB_STUDY"] = old_env
    result["notebooks"] = export_notebooks(study_dir, out, site, name)
    log(f"{len(result['notebooks'])} run notebooks converted")
    return result


def main(argv=None, prog: str = "python -m analysis.report") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", nargs="?",
                        help="the study folder (default: $GANLIB_STUDY; with --export-notebooks, the study the "
                             "pages of the current Quarto render showed; else studies/quick)")
    parser.add_argument("--out", help="output folder (default: _preview/<study folder name>)")
    parser.add_argument("--pages", nargs="+", metavar="PAGE", help="only these pages (file stems, e.g. statistics)")
    parser.add_argument("--rolling-window", type=int, default=5, help="steps averaged in the training curves")
    parser.add_argument("--export-notebooks", action="store_true",
                        help="only convert the runs' notebooks, into OUT/notebooks (default OUT: "
                             "$QUARTO_PROJECT_OUTPUT_DIR/reports, for Quarto's post-render step)")
    args = parser.parse_args(argv)
    from analysis.studydir import StudyDirectory, StudyNotReady, rendered_study

    args.study_dir = (args.study_dir or os.environ.get("GANLIB_STUDY")
                      or (rendered_study() if args.export_notebooks else None) or "studies/quick")

    try:
        study_dir = StudyDirectory(args.study_dir).check_ready().path
    except StudyNotReady as e:
        print(f"{'warning' if args.export_notebooks else 'error'}: {e}", file=sys.stderr)
        return 0 if args.export_notebooks else 2  # a missing study must not fail a Quarto render afterwards
    if args.export_notebooks:
        out = Path(args.out or Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", "_site")) / "reports")
        written = export_notebooks(study_dir, out, site_pages(), study_dir.name)
        print(f"{len(written)} run notebooks written to {out / 'notebooks'}")
        return 0
    unknown = sorted(set(args.pages or ()) - {q.stem for _, q in site_pages()})
    if unknown:
        parser.error(f"unknown page(s) {unknown}; pages: {', '.join(q.stem for _, q in site_pages())}")
    result = build(study_dir, args.out, args.pages, args.rolling_window)
    failed = {p: e for p, e in result["pages"].items() if e}
    print(f"preview: {result['out'] / 'index.html'}")
    if failed:
        print(f"error: {len(failed)} page(s) raised errors: {', '.join(failed)} (shown in the pages; the executed "
              f"notebooks are in {result['out'] / '_executed'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
