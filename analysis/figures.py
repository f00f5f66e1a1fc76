"""What the report pages in `reports/` call, as `from analysis import figures as F` (see `docs/report.md`).

The pages stay short by calling these helpers; everything works the same under Quarto and under the offline
preview (`python -m analysis.report`). This module only gathers them; each concern lives in its own module:

- `analysis.page_html`  escaped HTML: tables, callouts, embedded images, the latent slider, study callouts
- `analysis.study_data` `open_study` / `StudyData`: the study's definition, tables, run paths, rankings
- `analysis.plots`      matplotlib figures: learning curves, box plots, effect-size forest plots
- `analysis.run_media`  what is shown of single runs: sample GIFs, traversals, fresh samples, real images
Metric directions come from `ganlib.registry` (`lower_is_better`); generators are sampled by `ganlib.sampling`.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from analysis.page_html import (CSS, STATUS_COLORS, callout, caution_callout, data_uri, direction_note, esc,  # noqa: E402,F401
                                extractor_callout, figure, fmt, img, interval, metric_summary, notebook_href,
                                page_header, png_bytes,
                                precision_callout, show, status_counts, status_html, table, traversal_html,
                                verdict_callout)
from analysis.plots import CURVES, _label, box_strip, budget_figure, curve_figure, effect_plot, set_style  # noqa: E402,F401
from analysis.run_media import (benchmark_noise, epoch_of, generated_samples, grid_columns_caption, load_generator,  # noqa: E402,F401
                                sample_files, training_gif, training_images, traversal_frames)
from analysis.study_data import (BASELINE, METRIC_ORDER, StudyData, StudyNotReady,  # noqa: E402,F401
                                 check_study_dir, open_study, resolve_study_dir)
from ganlib.registry import lower_is_better  # noqa: E402,F401
