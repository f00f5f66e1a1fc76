"""Did a finished run learn? A verdict from its metrics, its training log and an untrained generator's scores.

A run that trains is not a run that learns: a generator of black images "completes" like any other. Each check
below compares the run with what a *freshly initialized generator of the same configuration* scores (measured at
the end of every run with the same evaluator, so the threshold is grounded in this dataset and feature network,
not guessed), or reads the training log. Any failed check gives the verdict "did_not_learn" with its reason.

Thresholds (see `docs/run-directory.md`, "verdict"; the measurements behind them are in `benchmarks/README.md`):
- label accuracy of a conditional model <= max(chance, untrained) + LABEL_MARGIN
- FID >= FID_RATIO x the untrained generator's FID
- samples nearly identical: mean per-pixel std across the benchmark samples < MIN_SAMPLE_STD at the end
- the discriminator winning: it tells real from fake on >= D_WIN_ACCURACY of both in more than D_WIN_SHARE of
  the epochs
A run that learned can still draw little variety: its samples of a class nearly alike. That does not fail it, but
gives a *caution* (listed beside the verdict): recall < LOW_RECALL, i.e. fewer than one real test image in ten
lies near any generated one (two sets of real images score ~0.87-0.89 against each other with ganlib's domain
classifiers on Fashion-MNIST and MNIST; the dcgan recipe's runs in the default study 0.00-0.09).
A second caution: the discriminator memorized its training images, i.e. at the last epoch it calls them real far
more often than held-out images of the same dataset (d_overfit_gap >= MEMORIZED_GAP; small datasets).
Rankings use the verdict too: a configuration is ranked when at least MIN_LEARNED_SHARE of its runs learned.
Pure Python + pandas: no TensorFlow, so analysis code can re-judge runs.
"""
from __future__ import annotations

import math
from typing import Optional

LABEL_MARGIN = 0.1
FID_RATIO = 0.8
MIN_SAMPLE_STD = 0.05
D_WIN_ACCURACY = 0.95
D_WIN_SHARE = 0.5
LOW_RECALL = 0.1
# D's E[sign(D(x))] on 256 training images minus 256 held-out ones at the last epoch (epochs.csv d_overfit_gap).
# Full Fashion-MNIST (no image seen twice) stays within +-0.15 (30 epochs of 10 runs); sampling noise alone has
# SD <= 0.16 even with emoji_flags' 50 held-out images, so 0.5 is > 3 SD from no memorization. 500 images pass
# it after ~2,250 steps and reach 0.98 by 4,500 (benchmarks/README.md, "Small data").
MEMORIZED_GAP = 0.5
# A configuration (or a sampled trial) is ranked only when at least this share of its runs learned: otherwise its
# median would be a lone survivor's, and the setting did not work. One rule for every page that ranks.
MIN_LEARNED_SHARE = 0.5


def enough_learned(learned: int, runs: int) -> bool:
    """Whether a configuration (or trial) with `learned` of its `runs` learned (and holding a value) is ranked."""
    return learned > 0 and learned >= MIN_LEARNED_SHARE * runs

LEARNED, DID_NOT_LEARN, UNVERIFIED = "learned", "did_not_learn", "unverified"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def caution(metrics: Optional[dict], per_class: Optional[dict] = None, class_names=None, epochs=None) -> list:
    """Sentences that qualify a run's final metrics without failing it (see the module's docstring).
    `per_class` (the run's `final_class_metrics`) names the classes with the least variety; `epochs` (its
    metrics/epochs.csv) shows whether the discriminator memorized its training images."""
    return [c for c in (_little_variety(metrics or {}, per_class, class_names), _memorized(epochs)) if c]


def _memorized(epochs) -> Optional[str]:
    """The caution when, at the last epoch, D calls its training images real far more often than held-out ones."""
    if epochs is None or "d_overfit_gap" not in epochs:
        return None
    logged = epochs.dropna(subset=["d_overfit_gap"])
    if not len(logged):
        return None
    last = logged.iloc[-1]
    gap = float(last["d_overfit_gap"])
    if not gap >= MEMORIZED_GAP:
        return None
    return (f"the discriminator memorized the training images: E[sign D] {float(last['d_real_train']):.2f} on "
            f"training images, {float(last['d_real_heldout']):.2f} on held-out ones (gap {gap:.2f} >= "
            f"{MEMORIZED_GAP:g}): watch FID over the epochs, and compare `augment` where it stalls")


def _little_variety(metrics: dict, per_class, class_names) -> Optional[str]:
    recall, coverage = metrics.get("recall"), metrics.get("coverage")
    if not (_finite(recall) and recall < LOW_RECALL):
        return None
    worst = ""
    if per_class and per_class.get("recall"):
        from .metrics.classwise import worst_classes

        worst = "; least within " + ", ".join(f"{name} (recall {value:.2f})" for name, value in
                                             worst_classes(per_class, "recall", 3, class_names))
    return (f"little variety: recall {recall:.3f} < {LOW_RECALL:g} (real images ~0.9)"
            + (f", coverage {coverage:.2f}" if _finite(coverage) else "") + ": samples of a class look alike"
            + worst)


def judge(metrics: Optional[dict], untrained: Optional[dict], epochs=None, num_classes: Optional[int] = None,
          conditional: bool = True, per_class: Optional[dict] = None, class_names=None) -> dict:
    """{"verdict": learned | did_not_learn | unverified, "reasons": [...], "checks": {...}, "cautions": [...]}.

    `metrics` / `untrained`: final metrics of the run and of an untrained generator (ganlib.metrics evaluator
    output; None when metrics are off); `epochs`: the run's metrics/epochs.csv as a DataFrame."""
    reasons, checks = [], {}
    metrics, untrained = metrics or {}, untrained or {}

    acc, acc0 = metrics.get("label_accuracy"), untrained.get("label_accuracy")
    if conditional and num_classes and num_classes > 1 and _finite(acc):
        chance = 1.0 / num_classes
        limit = max(chance, acc0 if _finite(acc0) else chance) + LABEL_MARGIN
        checks["label_accuracy"] = {"value": acc, "limit": round(limit, 4), "chance": round(chance, 4),
                                    "untrained": acc0}
        if acc <= limit:
            reasons.append(f"label accuracy {acc:.3f} is at chance (<= {limit:.3f}: chance {chance:.3f}"
                           + (f", untrained generator {acc0:.3f}" if _finite(acc0) else "") + ")")

    fid, fid0 = metrics.get("fid"), untrained.get("fid")
    if _finite(fid0):
        checks["fid"] = {"value": fid, "limit": round(FID_RATIO * fid0, 4), "untrained": fid0}
        if not _finite(fid):
            reasons.append("FID is not finite")
        elif fid >= FID_RATIO * fid0:
            reasons.append(f"FID {fid:.1f} is no better than an untrained generator's ({fid0:.1f}; needs "
                           f"< {FID_RATIO:g}x)")

    if epochs is not None and len(epochs):
        if "sample_std" in epochs and epochs["sample_std"].notna().any():
            std = float(epochs["sample_std"].dropna().iloc[-1])
            checks["sample_std"] = {"value": std, "limit": MIN_SAMPLE_STD}
            if std < MIN_SAMPLE_STD:
                reasons.append(f"samples are nearly identical (pixel std across samples {std:.4f} < "
                               f"{MIN_SAMPLE_STD:g})")
        if {"d_acc_real", "d_acc_fake"} <= set(epochs):
            wins = (epochs["d_acc_real"] >= D_WIN_ACCURACY) & (epochs["d_acc_fake"] >= D_WIN_ACCURACY)
            share = float(wins.mean())
            checks["d_wins_share"] = {"value": round(share, 4), "limit": D_WIN_SHARE}
            if share > D_WIN_SHARE:
                reasons.append(f"the discriminator won for {wins.sum()} of {len(wins)} epochs (it told >= "
                               f"{D_WIN_ACCURACY:.0%} of real and fake images apart)")

    cautions = caution(metrics, per_class, class_names, epochs)
    if reasons:
        verdict = DID_NOT_LEARN
    elif not _finite(fid):
        verdict = UNVERIFIED
        reasons.append("no quality metrics (metric_samples=0): only the training log was checked")
    else:
        verdict = LEARNED
    return {"verdict": verdict, "reasons": reasons, "checks": checks, "cautions": cautions}
