"""The `ganlib` command: thin wrappers over the library for what people do from a shell.

    ganlib train -p lr 2e-4 -p epochs 5            # one configuration (the notebook's parameters)
    ganlib train -f params.yaml --run-dir runs/a    # the same from a YAML file
    ganlib sweep analysis/studies/quick.yaml        # a study (python -m analysis.sweep)
    ganlib report studies/quick                     # its HTML preview (python -m analysis.report)
    ganlib plan studies/quick --effect 10%          # seeds a follow-up needs (python -m analysis.plan)
    ganlib sample runs/<run> --out grid.png         # a grid of samples from a finished run
    ganlib text runs/<letters run> "HELLO WORLD"    # text from a letters/digits model
    ganlib plot runs/<run> [more runs or CSV files] --window 50 --out curves.png
    ganlib explore runs/<run>                       # the explorer notebook, executed for that run
    ganlib catalog                                  # datasets, models, losses, metrics, recipes

The papermill route (`papermill notebooks/train.py out.ipynb -p lr 2e-4`) stays the main one: it keeps an
executed notebook with every run. `ganlib <command> --help` shows each command's options.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORWARDED = {"sweep": ("analysis.sweep", "run a study"),
             "report": ("analysis.report", "build a study's HTML report preview"),
             "plan": ("analysis.plan", "seeds needed to detect an effect, from a pilot study")}


def _value(name: str, text: str):
    """A `-p` value as papermill reads one: YAML (numbers, true/false, null, lists), else the text; bounded like
    every input (`ganlib.safe_io`)."""
    from .safe_io import InputFileError, parse_yaml

    try:
        return parse_yaml(text, f"-p {name}")
    except InputFileError as e:
        if "valid YAML" in str(e):
            return text
        raise SystemExit(f"error: {e}") from None


def _config_values(args) -> dict:
    from .safe_io import InputFileError, load_yaml

    values = {}
    if args.file:
        try:
            loaded = load_yaml(args.file, "parameters file") or {}
        except FileNotFoundError:
            raise SystemExit(f"error: parameters file {args.file} does not exist") from None
        except InputFileError as e:
            raise SystemExit(f"error: {e}") from None
        if not isinstance(loaded, dict):
            raise SystemExit(f"error: {args.file} is not a mapping of ganlib.Config fields")
        values.update(loaded)
    values.update({key: _value(key, value) for key, value in args.parameter or []})
    return values


def bounded(kind, low, high):
    """An argparse type: `kind` (int or float) from `low` to `high`, or a clear usage error."""
    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if not (low <= value <= high):  # NaN fails this too
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value
    return parse


def cmd_train(args) -> int:
    from .config import ConfigError
    from .notebook_support import config_from_namespace, outcome_line

    values = _config_values(args)
    if args.run_dir:
        values["run_dir"] = args.run_dir
    try:
        config, run_dir = config_from_namespace(values)
    except (ConfigError, ValueError) as e:  # before any data is loaded
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"config hash {config.hash}; run directory {run_dir}")
    from .run import train

    from .data import CorruptDatasetError, DatasetNotFoundError
    from .rundir import RunDirectoryError

    try:
        summary = train(config, run_dir, verbose=args.verbose)
    except (ConfigError, RunDirectoryError, DatasetNotFoundError, CorruptDatasetError) as e:
        print(f"error: {e}", file=sys.stderr)  # what to change; summary.json records it too
        return 2
    print(outcome_line(summary))
    return 0 if summary.get("status") == "completed" else 1


def _forward(name: str, argv) -> int:
    import importlib

    return importlib.import_module(FORWARDED[name][0]).main(list(argv), prog=f"ganlib {name}") or 0


def _finished_generator(run_dir):
    from .rundir import RunDirectory

    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise SystemExit(f"error: {run_dir} is not a run directory")
    if run.status != "completed":
        raise SystemExit(f"error: {run_dir} has status {run.status or 'not started'}; its final generator is "
                         "written when training completes (train it, or resume it, first)")
    from .sampling import load_generator

    return load_generator(run.path)


def _write_png(image, out: str, scale: int) -> None:
    from .plotting import png_bytes

    Path(out).write_bytes(png_bytes(image, scale))
    print(f"wrote {out}")


def cmd_sample(args) -> int:
    from .plotting import grid_image
    from .sampling import seeded_samples

    generator, class_names = _finished_generator(args.run_dir)
    images, _ = seeded_samples(generator, args.n, args.seed, len(class_names or []) or None)
    _write_png(grid_image(images, columns=args.columns), args.out, args.scale)
    return 0


def cmd_text(args) -> int:
    from .latent import render_text

    if not args.text.strip():
        raise SystemExit("error: give some text to write, e.g. ganlib text RUN \"HELLO\"")
    generator, class_names = _finished_generator(args.run_dir)
    if not class_names:
        raise SystemExit(f"error: {args.run_dir} records no class names (summary.json: dataset.classes)")
    try:
        image = render_text(generator, class_names, args.text, variation=args.variation, seed=args.seed)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    _write_png(image, args.out, args.scale)
    return 0


def cmd_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .curves import plot_results
    from .rundir import RunDirectoryError

    try:
        fig = plot_results(args.runs, kinds=args.kinds, per=args.per, window=args.window, combine=args.combine)
    except (FileNotFoundError, NotADirectoryError, ValueError, RunDirectoryError) as e:
        raise SystemExit(f"error: {e}") from None
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


def cmd_explore(args) -> int:
    import papermill

    from .serve import INSTALL_HINT, front_end_missing, serve

    _finished_generator(args.run_dir)  # a clear error before a kernel starts
    if args.serve and front_end_missing():
        raise SystemExit(f"error: {front_end_missing()}")
    out = args.out or f"explore-{Path(args.run_dir).resolve().name}.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "explore.py"), out,
                               parameters={"run_dir": str(Path(args.run_dir).resolve())}, progress_bar=False)
    if args.serve:
        return serve(Path(out).resolve(), args.port, not args.no_browser)
    hint = "" if not front_end_missing() else f" ({INSTALL_HINT})"
    print(f"wrote {out}: `ganlib explore {args.run_dir} --serve` shows the explorer in your browser; "
          f"`jupyter lab {out}` opens the notebook{hint}")
    return 0


def cmd_form(args) -> int:
    import tempfile

    from .config import ConfigError
    from .serve import form_notebook, front_end_missing, serve
    from .settings_form import SettingsForm

    values = _config_values(args)
    try:
        SettingsForm(**values).config  # noqa: B018  (a clear error now, not in the browser)
    except (ConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if front_end_missing():
        print(f"error: {front_end_missing()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ganlib-form-") as folder:
        return serve(form_notebook(values, Path(folder)), args.port, not args.no_browser, cwd=Path.cwd())


def cmd_catalog(args) -> int:
    from .registry import main

    main()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganlib", description=__doc__.split("\n\n")[0],
                                epilog="Examples:\n" + __doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train one configuration", description="Train one ganlib.Config into a run "
                       "directory (resumes an interrupted one). Parameters as the training notebook takes them.",
                       epilog="Example: ganlib train -p dataset fashion_mnist -p lr 2e-4 -p epochs 5")
    t.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a Config field and its value (YAML: 2e-4, true, [0.8, 1.0]); repeatable")
    t.add_argument("-f", "--file", help="a YAML file of Config fields (as papermill -f)")
    t.add_argument("--run-dir", help="default: runs/<dataset>-<config hash>")
    t.add_argument("--verbose", type=bounded(int, 0, 2), default=2, help="Keras progress: 0 silent, 1 bar, 2 a line per epoch")
    t.set_defaults(run=cmd_train)

    for name, (module, what) in FORWARDED.items():  # listed for --help; main() hands their arguments on as given
        sub.add_parser(name, help=f"{what} (python -m {module}; see ganlib {name} --help)")

    for name, what in (("sample", "a grid of samples from a finished run"),
                       ("text", "text written by a letters/digits model")):
        s = sub.add_parser(name, help=what, description=what.capitalize() + ".",
                           epilog="Example: ganlib text runs/emnist_letters-0123456789 \"HELLO WORLD\""
                           if name == "text" else "Example: ganlib sample runs/mnist_subset-0123456789 -n 100")
        s.add_argument("run_dir")
        if name == "text":
            s.add_argument("text", help="letters of the model's classes; spaces and newlines allowed")
            s.add_argument("--variation", type=bounded(float, 0.0, 1.0), default=0.0, help="0: one style for all letters; up to 1")
        else:
            s.add_argument("-n", type=bounded(int, 1, 4096), default=64,
                           help="samples, 1-4096 (labels cycle through the classes)")
            s.add_argument("--columns", type=bounded(int, 1, 256), default=None)
        s.add_argument("--seed", type=bounded(int, 0, 2**31 - 1), default=0)
        s.add_argument("--scale", type=bounded(int, 1, 32), default=3, help="enlarge each pixel this many times (1-32)")
        s.add_argument("--out", default=f"{name}.png")
        s.set_defaults(run=cmd_sample if name == "sample" else cmd_text)

    pl = sub.add_parser("plot", help="learning curves of runs (or of their CSV logs)",
                        description="Losses, D accuracies, loss difference and FID of one or more runs.",
                        epilog="Example: ganlib plot runs/a runs/b --combine mean --window 50 --out curves.png")
    pl.add_argument("runs", nargs="+", help="run directories, or their metrics/batches.csv / epochs.csv files")
    pl.add_argument("--kinds", nargs="+", default=["loss", "accuracy", "loss_diff", "fid"])
    pl.add_argument("--per", choices=("batch", "epoch"), default="batch")
    pl.add_argument("--window", type=bounded(int, 1, 10**6), default=None, help="rolling window in rows (default 20 batches, 1 epoch)")
    pl.add_argument("--combine", choices=("overlay", "mean", "side"), default="overlay")
    pl.add_argument("--out", default="curves.png")
    pl.set_defaults(run=cmd_plot)

    e = sub.add_parser("explore", help="the explorer notebook, executed for a run",
                       description="Execute notebooks/explore.py for a finished run (papermill).")
    e.add_argument("run_dir")
    e.add_argument("--out", help="default: explore-<run name>.ipynb")
    e.add_argument("--serve", action="store_true", help="show it in the browser (Voila: widgets without code)")
    e.add_argument("--port", type=bounded(int, 1024, 65535), default=None)
    e.add_argument("--no-browser", action="store_true", help="only print the address")
    e.set_defaults(run=cmd_explore)

    fm = sub.add_parser("form", help="the settings form in the browser: edit a configuration, press Train",
                        description="Serve ganlib's settings form (ipywidgets) as a browser page with Voila.",
                        epilog="Example: ganlib form -p dataset fashion_mnist -p epochs 5")
    fm.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="a starting value of a Config field (YAML); repeatable")
    fm.add_argument("-f", "--file", help="a YAML file of starting values")
    fm.add_argument("--port", type=bounded(int, 1024, 65535), default=None)
    fm.add_argument("--no-browser", action="store_true", help="only print the address")
    fm.set_defaults(run=cmd_form)

    c = sub.add_parser("catalog", help="the registered datasets, models, losses, metrics and recipes")
    c.set_defaults(run=cmd_catalog)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FORWARDED:  # the study commands keep their own options and --help
        return _forward(argv[0], argv[1:])
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
