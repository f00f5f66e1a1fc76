"""Does augmenting what the discriminator sees pay on small data? Baseline vs DiffAugment, side by side.

    python benchmarks/bench_small_data.py [--regimes s500,s2000,full,flags32,flags64] [--seeds 5] [--out DIR]
    python benchmarks/bench_small_data.py --regimes long500 --seeds 1      # FID every 2 epochs over 9,000 steps
    python benchmarks/bench_small_data.py --summarize --out DIR            # print the tables of finished studies

Each regime is a study (`analysis.sweep`, resumable: finished runs are kept) of ganlib's default recipe with and
without `augment: translation,cutout`, run in parallel pairs, so both arms get (nearly) the same CPU time; the
study files are written to DIR/<study>.yaml. Printed per regime: FID per seed, medians of FID, intra-class FID,
coverage and recall, training seconds, D's train/held-out gap (`d_overfit_gap`) at the last epoch and its
maximum, and the exact two-sided Mann-Whitney test of FID, intra-class FID and coverage against the baseline (the
report's test). With --regimes long500: FID and the gap per logged epoch of every run (learning curves).
With --copying: whether each final generator copies its training images (`copying`, below).
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis import stats  # noqa: E402
from analysis.studydir import StudyDirectory  # noqa: E402

AUGMENT = {"name": "diffaugment", "augment": "translation,cutout"}
FASHION = dict(recipe="balanced", dataset="fashion_mnist", metric_samples=1000)
FLAGS = dict(recipe="balanced", dataset="emoji_flags", conditional=False, metric_samples=500)
CLASS_METRICS = ["fid", "intra_fid", "coverage", "recall", "label_accuracy", "precision"]
ONE_CLASS_METRICS = ["fid", "coverage", "recall", "precision"]
REGIMES = {  # name: (baseline, variations, metrics); 450 steps of 32 images per epoch on Fashion-MNIST
    "s500": (dict(FASHION, subset=500, epochs=3, steps_per_epoch=450), [AUGMENT], CLASS_METRICS),
    "s2000": (dict(FASHION, subset=2000, epochs=3, steps_per_epoch=450), [AUGMENT], CLASS_METRICS),
    "full": (dict(FASHION, epochs=3, steps_per_epoch=450), [AUGMENT], CLASS_METRICS),
    "flags32": (dict(FLAGS, image_size=32, epochs=3, steps_per_epoch=300), [AUGMENT], ONE_CLASS_METRICS),
    "flags64": (dict(FLAGS, epochs=2, steps_per_epoch=200), [AUGMENT], ONE_CLASS_METRICS),
    "long500": (dict(FASHION, subset=500, epochs=20, steps_per_epoch=450, metric_interval=2),
                [{"name": "translation", "augment": "translation"},
                 {"name": "ada", "augment": "translation,cutout", "ada_target": 0.6, "ada_kimg": 20},
                 {"name": "dcgan", "recipe": "dcgan"}], CLASS_METRICS),
}


def study_file(regime: str, seeds: int, prefix: str, out: Path) -> Path:
    baseline, variations, metrics = REGIMES[regime]
    study = dict(name=f"{prefix}{regime}", baseline=baseline, variations=variations, seeds=seeds,
                 resources={"workers": 2, "threads_per_run": 1}, metrics=metrics, primary_metric="final_fid")
    path = out / f"{prefix}{regime}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _fmt(x, digits=2) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def summarize(study_dir: Path) -> str:
    directory = StudyDirectory(study_dir)
    runs, epochs = directory.read_table("runs"), directory.read_table("epochs")
    runs = runs[runs["status"] == "completed"]
    runs = runs.assign(first=runs["variation"] != "baseline").sort_values(["first", "variation", "seed"])
    last = epochs.sort_values("epoch").groupby(["variation", "seed"]).tail(1).set_index(["variation", "seed"])
    peak = epochs.groupby(["variation", "seed"])["d_overfit_gap"].max()
    lines = [f"### {study_dir.name}", "",
             "| configuration | FID per seed | FID median | intra-class FID | coverage | recall | train s | "
             "gap at end (max) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, group in runs.groupby("variation", sort=False):
        keys = list(zip(group["variation"], group["seed"]))
        med = lambda c: float(np.nanmedian(group[c])) if c in group else float("nan")  # noqa: E731
        gaps = last.loc[keys, "d_overfit_gap"]
        lines.append(f"| {name} | {' / '.join(_fmt(v) for v in group['final_fid'])} | {_fmt(med('final_fid'))} | "
                     f"{_fmt(med('final_intra_fid'))} | {_fmt(med('final_coverage'), 3)} | "
                     f"{_fmt(med('final_recall'), 3)} | {_fmt(med('train_seconds'), 0)} | "
                     f"{_fmt(float(gaps.median()))} ({_fmt(float(peak.loc[keys].max()))}) |")
    base = runs[runs["variation"] == "baseline"]
    for name, group in runs[runs["variation"] != "baseline"].groupby("variation", sort=False):
        if min(len(group), len(base)) < 2:
            lines.append(f"- {name} vs baseline: no test with {min(len(group), len(base))} seed")
            continue
        for metric in ("final_fid", "final_intra_fid", "final_coverage"):
            if metric in group and group[metric].notna().any():
                test = stats.mann_whitney(group[metric], base[metric])
                ratio = np.nanmedian(group[metric]) / np.nanmedian(base[metric])
                lines.append(f"- {name} vs baseline, {metric.removeprefix('final_')}: median x{ratio:.2f}, "
                             f"exact Mann-Whitney p = {test['p']:.4f} ({len(group)} vs {len(base)} seeds)")
    if "eval_fid" in epochs and epochs["eval_fid"].notna().sum() > len(runs):  # learning curves were logged
        logged = epochs.dropna(subset=["eval_fid"])
        curve = logged.pivot_table(index="epoch", columns="variation", values=["eval_fid", "d_overfit_gap"])
        lines += ["", "FID / gap by epoch (mean over seeds):", "",
                  "| epoch | " + " | ".join(f"{v} FID / gap" for v in curve["eval_fid"].columns) + " |",
                  "| --- |" + " --- |" * len(curve["eval_fid"].columns)]
        for epoch, row in curve.iterrows():
            lines.append(f"| {epoch} | " + " | ".join(
                f"{_fmt(row[('eval_fid', v)])} / {_fmt(row[('d_overfit_gap', v)])}"
                for v in curve["eval_fid"].columns) + " |")
    return "\n".join(lines)


def copying(run_dir, n: int = 500) -> dict:
    """Does a run's final generator copy its training images? The feature-space distance of n samples to their
    nearest training image, against that of n held-out test images (a copying generator sits much closer to
    the training set than new real images do): medians, and the share of samples closer than the nearest 10 %
    of test images (0.10 when samples are as close as new images)."""
    from ganlib.api import GAN
    from ganlib.data import load_for_config
    from ganlib.metrics.evaluate import get_extractor
    from ganlib.metrics.memorization import nearest_training_neighbours

    gan = GAN.load(run_dir)
    train, test = load_for_config(gan.config, "train"), load_for_config(gan.config, "test").take(n, seed=1)
    extractor = get_extractor(gan.config.dataset, train.image_shape, gan.config.data_dir)
    _, fake = nearest_training_neighbours(gan.sample(n, seed=3), train.images, "feature", extractor)
    _, real = nearest_training_neighbours(test.images, train.images, "feature", extractor)
    return {"samples": float(np.median(fake)), "test images": float(np.median(real)),
            "share closer": float(np.mean(fake < np.quantile(real, 0.1)))}


def copying_table(study_dir: Path) -> str:
    runs = StudyDirectory(study_dir).read_table("runs")
    lines = ["| run | median distance to nearest training image: samples | test images | samples closer than "
             "the nearest 10 % of test images |", "| --- | --- | --- | --- |"]
    for r in runs[runs["status"] == "completed"].itertuples():
        c = copying(StudyDirectory(study_dir).run_dir(r.variation, r.seed))
        lines.append(f"| {r.variation}/seed{r.seed} | {c['samples']:.2f} | {c['test images']:.2f} | "
                     f"{c['share closer']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regimes", default="s500,s2000,full,flags32,flags64",
                        help=f"comma-separated, from {', '.join(REGIMES)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("studies/bench_small_data"))
    parser.add_argument("--prefix", default="small_", help="study names are <prefix><regime>")
    parser.add_argument("--summarize", action="store_true", help="only print the tables of finished studies")
    parser.add_argument("--copying", action="store_true", help="also test each final generator for copying")
    args = parser.parse_args(argv)
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        parser.error(f"unknown regime(s) {', '.join(unknown)}; choose from {', '.join(REGIMES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for regime in regimes:
        if not args.summarize:
            path = study_file(regime, args.seeds, args.prefix, args.out)
            subprocess.run([sys.executable, "-m", "analysis.sweep", str(path), "--out", str(args.out)], check=True,
                           cwd=Path(__file__).resolve().parent.parent)
        print(summarize(args.out / f"{args.prefix}{regime}"), "\n", flush=True)
        if args.copying:
            print(copying_table(args.out / f"{args.prefix}{regime}"), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
