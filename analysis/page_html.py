"""HTML for the report pages: escaped text, tables, callouts, embedded images, a latent slider, and the
callouts every page shows about its study. Every string that comes from a study (names, descriptions,
errors) reaches the page through `esc` or `table`: nothing from a study file is ever emitted as raw HTML.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from ganlib.plotting import png_bytes  # noqa: F401  (pages use it as F.png_bytes)

if TYPE_CHECKING:
    from analysis.study_data import StudyData

STATUS_COLORS = {"completed": "#1a7f37", "diverged": "#b35900", "failed": "#c62828", "running": "#555"}
CSS = """<style>
.ganlib-table{border-collapse:collapse;font-size:.88em;margin:.4em 0 1.2em;font-variant-numeric:tabular-nums}
.ganlib-table th,.ganlib-table td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}
.ganlib-table th{background:#f3f5f7;border-bottom:2px solid #bbb}
.ganlib-table td.text,.ganlib-table th.text{text-align:left;white-space:normal}
.ganlib-table td{white-space:nowrap}
.ganlib-scroll{overflow-x:auto;max-width:100%}
.ganlib-table small{color:#666;font-weight:normal}
.ganlib-table tr.best td{background:#eaf6ec;font-weight:600}
.ganlib-table tr.flag td{background:#fff4e5}
.ganlib-callout{border-left:6px solid;border-radius:4px;padding:.6em 1em;margin:.8em 0}
.ganlib-callout.warning{border-color:#d9822b;background:#fff4e5}
.ganlib-callout.danger{border-color:#c62828;background:#fdecea}
.ganlib-callout.info{border-color:#2b6cb0;background:#ebf4ff}
.ganlib-callout.success{border-color:#1a7f37;background:#eaf6ec}
.ganlib-callout b.title{display:block;margin-bottom:.2em}
.ganlib-callout ul{margin:.2em 0 0;padding-left:1.2em}
.ganlib-figs{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
.ganlib-figs figure{margin:0;text-align:center;font-size:.8em}
.ganlib-traversal img{image-rendering:pixelated}
.ganlib-grid tbody th.text{white-space:nowrap}
.ganlib-grid td,.ganlib-grid thead th{text-align:center}
.ganlib-key{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.3em 0 1em}
.ganlib-key dt{font-weight:600}.ganlib-key dd{margin:0}
.ganlib-status{font-weight:600}
</style>"""


def esc(value) -> str:
    """HTML-escaped text of any value (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    """A number as a table shows it: NaN as an en dash, large values without decimals."""
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def interval(low, high, coverage=np.nan, digits: int = 4, nominal: float = 0.95) -> str:
    """"[low, high]" as the tables print an interval; where its exact coverage is more than 2.5 points from the
    nominal level (the range of 2-5 seeds, which is all an exact interval for a median can be; or the range of 8
    seeds, 99 %) the coverage it has is said: "[1, 3] (75 %)"."""
    if low is None or pd.isna(low):
        return "–"
    text = f"[{fmt(low, digits)},\u00a0{fmt(high, digits)}]"
    if coverage is not None and np.isfinite(coverage) and abs(coverage - nominal) > 0.025:
        text += f"\u00a0({coverage * 100:.0f}\u00a0%)"
    return text


def table(df: pd.DataFrame, raw=(), table_id: Optional[str] = None, highlight=None, digits: int = 4,
          mark: str = "best") -> str:
    """An HTML table; every cell is escaped except the columns named in `raw` (already-safe HTML).

    `highlight`: a sequence marking rows to emphasise: True for `mark` (green "best" or amber "flag"), or the
    class itself per row ("best", "flag"; False or "" for none).
    """
    numeric = {c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}
    cls = lambda c: "" if c in numeric else ' class="text"'  # noqa: E731
    head = "".join(f"<th{cls(c)}>{esc(c)}</th>" for c in df.columns)
    rows = []
    marks = list(highlight) if highlight is not None else [False] * len(df)
    for marked, (_, r) in zip(marks, df.iterrows()):
        cells = "".join(f"<td{cls(c)}>{r[c] if c in raw else esc(fmt(r[c], digits))}</td>" for c in df.columns)
        kind = marked if isinstance(marked, str) else (mark if marked else "")
        rows.append(f"<tr{f' class={kind}' if kind in ('best', 'flag') else ''}>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (f'<div class="ganlib-scroll"><table class="ganlib-table table table-sm"{ident}><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


WIDE_TABLE_METRICS = 8  # a summary with more metric columns than this is turned, so that it fits the page


def metric_summary(summary: pd.DataFrame, metrics, best: Optional[str], primary: str) -> str:
    """The Metrics page's summary (one row per configuration: "variation", "completed", then the `metrics`
    columns holding safe HTML) with its note; `best` is highlighted. With more than WIDE_TABLE_METRICS metrics
    it is turned: one row per metric, one column per configuration, the best one's header marked "(best)"."""
    note = direction_note(metrics)
    if len(metrics) <= WIDE_TABLE_METRICS:
        return (table(summary, raw=metrics, table_id="metric-summary", highlight=summary["variation"] == best)
                + "<p style='font-size:.85em;color:#555'>Highlighted: the best configuration by median "
                f"{esc(primary)}. {esc(note)}</p>")
    turned = summary.set_index("variation").T.rename_axis("metric").reset_index()
    turned.columns = ["metric", *(f"{c} (best)" if c == best else c for c in turned.columns[1:])]
    return (table(turned, raw=turned.columns[1:], table_id="metric-summary")
            + "<p style='font-size:.85em;color:#555'>One column per configuration; (best): the best configuration "
            f"by median {esc(primary)}. {esc(note)}</p>")


def callout(title: str, items=(), kind: str = "warning", text: str = "") -> str:
    """A coloured box (warning, danger, info, success) with an escaped title, text and bullet list."""
    body = f"<div>{esc(text)}</div>" if text else ""
    items = list(items)
    if items:
        body += "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
    return f'<div class="ganlib-callout {esc(kind)}" role="note"><b class="title">{esc(title)}</b>{body}</div>'


def direction_note(metrics) -> str:
    """"Lower is better for FID, KID; higher for precision, ..." for the metric names given, from the registry."""
    from ganlib.registry import metric

    entries = [metric(m) for m in metrics]
    lower = [e.label for e in entries if e.lower_is_better]
    higher = [e.label for e in entries if not e.lower_is_better]
    parts = ([f"lower is better for {', '.join(lower)}"] if lower else []) + \
        ([f"higher for {', '.join(higher)}"] if higher else [])
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:] if parts else ""


def status_html(status) -> str:
    color = STATUS_COLORS.get(str(status), "#555")
    return f'<span class="ganlib-status" style="color:{color}">{esc(status)}</span>'


def show(*parts) -> None:
    """Display HTML fragments (strings built with the helpers above) in the notebook / page.

    Under Quarto they go out as Markdown holding one raw HTML block: Quarto treats any text/html output as a
    "JavaScript widget" and then loads require.js and jQuery from a CDN into every page, which fails offline
    (a console error on every page) and fetches third-party scripts online. Backticks are written as entities,
    so no text from a study can close the raw block."""
    import os

    from IPython.display import HTML, Markdown, display

    fragment = "".join(parts)
    if os.environ.get("QUARTO_PROJECT_ROOT") or os.environ.get("QUARTO_DOCUMENT_PATH"):
        display(Markdown("```{=html}\n" + fragment.replace("`", "&#96;") + "\n```"))
    else:
        display(HTML(fragment))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def img(source, alt: str = "", width: Optional[int] = None, mime: str = "image/png") -> str:
    """<img> with the picture embedded as a data: URI (a file path or bytes), so pages work offline.

    `width` only ever shrinks a picture: sample grids are enlarged already, enlarging them again blurs them.
    """
    from PIL import Image

    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if width:
        width = min(int(width), Image.open(io.BytesIO(data)).width)
    style = f' style="width:{int(width)}px"' if width else ""
    return f'<img src="{data_uri(data, mime)}" alt="{esc(alt)}"{style}>'


def figure(source, caption: str, width: Optional[int] = None, mime: str = "image/png") -> str:
    return f"<figure>{img(source, caption, width, mime)}<figcaption>{esc(caption)}</figcaption></figure>"


def notebook_href(variation: str, seed) -> str:
    """Where the preview (and the Quarto post-render step) puts a run's executed notebook, relative to a page."""
    return f"notebooks/{urllib.parse.quote(str(variation), safe='')}/seed{int(seed)}.html"


def traversal_html(frames_png: list, caption: str = "") -> str:
    """A range slider switching between precomputed frames, with a few lines of inline JS (works offline)."""
    uris = [data_uri(f) for f in frames_png]
    uid = "lt-" + hashlib.sha1("".join(uris).encode()).hexdigest()[:10]
    n = len(uris)
    return f"""<div class="ganlib-traversal" id="{uid}" data-frames="0">
<img src="{uris[0]}" alt="latent interpolation, step 1 of {n}" style="max-width:100%">
<div><input type="range" min="0" max="{n - 1}" value="0" step="1" aria-label="interpolation step"
 style="width:min(100%,420px);vertical-align:middle"> <span class="lt-label">t = 0.00</span></div>
<div style="font-size:.85em;color:#555">{esc(caption)}</div>
<script>(function () {{
  var root = document.getElementById("{uid}"), frames = {json.dumps(uris)};
  var image = root.querySelector("img"), slider = root.querySelector("input"), label = root.querySelector(".lt-label");
  slider.addEventListener("input", function () {{
    image.src = frames[slider.value];
    image.alt = "latent interpolation, step " + (+slider.value + 1) + " of " + frames.length;
    label.textContent = "t = " + (slider.value / (frames.length - 1)).toFixed(2);
  }});
  root.setAttribute("data-frames", frames.length);
}})();</script></div>"""


# ----------------------------------------------------------------------------------------------- study callouts
def status_counts(runs: pd.DataFrame) -> str:
    return ", ".join(f"{n} {s}" for s, n in runs["status"].fillna("missing").value_counts().items())


def page_header(study: "StudyData") -> str:
    """The style sheet, one line saying which study this page reports, and the runs that did not learn."""
    return CSS + (f'<p class="ganlib-study" style="color:#444">Study <b>{esc(study.name)}</b> · '
                  f"{len(study.variations)} configurations × {len(study.seeds)} seeds · {len(study.runs)} runs "
                  f"({esc(status_counts(study.runs))}) · <code>{esc(study.dir)}</code></p>") + verdict_callout(study)


def _run_items(runs: pd.DataFrame, column: str, most: int = 12) -> list:
    """"run_id: text" for the first `most` runs, then how many more (the Runs page lists them all)."""
    items = [f"{run_id}: {text}" for run_id, text in zip(runs["run_id"].head(most), runs[column].head(most))]
    return items + ([f"… and {len(runs) - most} more (see Runs)"] if len(runs) > most else [])


def verdict_callout(study: "StudyData") -> str:
    """A prominent warning listing the completed runs that did not learn ("" when there are none)."""
    bad = study.did_not_learn
    if bad.empty:
        return ""
    return callout(f"{len(bad)} of {len(study.completed)} completed runs did not learn",
                   _run_items(bad, "verdict_reasons"), "danger",
                   "Their samples are no better than an untrained generator's by the checks of ganlib.verdict. "
                   "Rankings and 'best' picks leave them out; the statistical tests still include their metric "
                   "values (failing to learn is part of what a configuration does), so read a verdict about "
                   "configurations that mostly failed as a verdict about failures.")


def caution_callout(study: "StudyData") -> str:
    """A warning listing the runs that learned with a caution of ganlib.verdict (little variety, a memorizing
    discriminator; "" when none): they are ranked and tested like the others, with their metrics qualified."""
    if "verdict_cautions" not in study.runs:  # gathered before ganlib gave cautions
        return ""
    flagged = study.learned.dropna(subset=["verdict_cautions"])
    if flagged.empty:
        return ""
    said = " ".join(flagged["verdict_cautions"])
    explain = [words for start, words in CAUTION_WORDS.items() if start in said]
    return callout(f"{len(flagged)} of {len(study.learned)} runs that learned have a caution",
                   _run_items(flagged, "verdict_cautions"), "warning",
                   "They passed every check of ganlib.verdict, so they are ranked and tested, but read their "
                   "metrics with this in mind. " + " ".join(explain))


# What each kind of caution means, shown on the Overview when one of its runs has it (keyed by how it begins).
CAUTION_WORDS = {
    "little variety": "Little variety: recall (the share of real test images that lie near some generated image) "
                      "is below 0.1, where two sets of real images score ~0.9, so the samples of a class look "
                      "alike; label accuracy and FID can still look good. More training steps or a less "
                      "collapse-prone recipe usually help; compare the rows of the Gallery's grids.",
    "the discriminator memorized": "Memorized: the discriminator calls its training images real far more often "
                                   "than held-out ones (Training dynamics page): its judgement no longer carries "
                                   "over to new images. Quality need not suffer yet (on 500 Fashion-MNIST images "
                                   "FID kept improving after it): watch FID over the epochs.",
}


def _mixed_callout(runs, groups, title: str, text: str) -> str:
    """A warning listing the runs of each group when `groups` (one label per run) has more than one value."""
    if groups.nunique() < 2:
        return ""
    items = [f"{label}: {len(ids)} runs ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''})"
             for label, ids in runs.groupby(groups)["run_id"].apply(list).items()]
    return callout(title, items, "danger", text)


def extractor_callout(study: "StudyData") -> str:
    """A prominent warning when the runs' metrics come from different feature extractors, or from extractors
    of one name with different weights (fingerprints), e.g. networks trained on two machines ("" otherwise)."""
    if "extractor" not in study.runs:
        return ""
    runs = study.runs.dropna(subset=["extractor"])
    fingerprint = runs["extractor_fingerprint"] if "extractor_fingerprint" in runs else None
    scored_by = runs["extractor"] + ("" if fingerprint is None else " @ " + fingerprint.fillna("unrecorded"))
    return _mixed_callout(runs, scored_by, "Runs were scored by different feature networks",
                          "Their metrics are not comparable, and neither are the tests built on them: share one "
                          "feature cache (GANLIB_CACHE on a shared folder), re-evaluate every run with it "
                          "(ganlib.metrics.evaluate_run) and gather the study again.")


def precision_callout(study: "StudyData") -> str:
    """A prominent warning when the runs trained at different numeric precisions ("" otherwise): `precision:
    auto` is bfloat16 on CPUs with native bf16 and float32 elsewhere, under the same configuration hash, so a
    study run (or resumed) on machines of both kinds mixes them."""
    if "precision_used" not in study.runs:  # gathered before ganlib recorded it
        return ""
    runs = study.runs.dropna(subset=["precision_used"])
    return _mixed_callout(runs, runs["precision_used"], "Runs were trained at different precisions",
                          "Precision changes what a run learns in a fixed number of steps, so differences between "
                          "these groups are not only the studied factors. `precision: auto` picks mixed_bfloat16 "
                          "on CPUs with native bf16 and float32 elsewhere: run the study on machines of one kind, "
                          "or set `precision` in its baseline (a new configuration: its runs train again).")
