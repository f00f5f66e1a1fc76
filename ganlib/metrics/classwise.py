"""Class-aware metrics of a conditional generator: each class's images against the real images of that class.

A conditional generator that draws one good image per class scores well on label accuracy and can score a fair
global FID, yet draws none of the variety *within* a class. Comparing class by class exposes it:
intra-class FID (Miyato & Koyama 2018, the FID between the generated and the real images of each class,
averaged over classes) and, per class, recall and coverage (Kynkaanniemi et al. 2019; Naeem et al. 2020).

With ganlib's default 1,000 samples and 10 classes each class has ~100 images, fewer than the feature network's
128 dimensions: the per-class FID then carries a large small-sample bias (real images of a class score
`real_vs_real_reference(...)["intra_fid"]` against each other). Compare intra-class FIDs at the same sample
count only; every result records it (n_samples).
"""
from __future__ import annotations

import numpy as np

from .distances import density_coverage, feature_statistics, frechet_distance, precision_recall

MIN_PER_CLASS = 6  # k-nearest-neighbour radii need k + 1 points (k = 5 for coverage)


def class_metrics(real_features, fake_features, real_labels, fake_labels) -> dict:
    """{"class": [...], "fid": [...], "recall": [...], "coverage": [...], "n_real": [...], "n_fake": [...]}
    for every class with at least MIN_PER_CLASS real and generated images, in class order."""
    real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    out = {key: [] for key in ("class", "fid", "recall", "coverage", "n_real", "n_fake")}
    for c in np.unique(real_labels):
        r, f = real[real_labels == c], fake[fake_labels == c]
        if min(len(r), len(f)) < MIN_PER_CLASS:
            continue
        finite = np.isfinite(f).all()
        out["class"].append(int(c))
        out["fid"].append(frechet_distance(*feature_statistics(r), *feature_statistics(f)) if finite else np.nan)
        out["recall"].append(precision_recall(r, f)[1] if finite else np.nan)
        out["coverage"].append(density_coverage(r, f)[1] if finite else np.nan)
        out["n_real"].append(int(len(r)))
        out["n_fake"].append(int(len(f)))
    out["fid"] = [float(v) for v in out["fid"]]
    return out


def class_averages(per_class: dict) -> dict:
    """intra_fid, intra_recall, intra_coverage: the class means of `class_metrics` (NaN without classes)."""
    def mean(values):
        return float(np.mean(values)) if len(values) else float("nan")

    return {"intra_fid": mean(per_class["fid"]), "intra_recall": mean(per_class["recall"]),
            "intra_coverage": mean(per_class["coverage"])}


def worst_classes(per_class: dict, metric: str = "recall", n: int = 3, names=None) -> list:
    """The n classes with the lowest `metric` (highest for fid), as [(name or index, value)], worst first."""
    values = np.asarray(per_class.get(metric) or [], dtype=float)
    order = np.argsort(-values if metric == "fid" else values, kind="stable")[:n]
    label = [per_class["class"][i] for i in order]
    if names:
        label = [names[c] if 0 <= c < len(names) else c for c in label]
    return [(name, float(values[i])) for name, i in zip(label, order)]
