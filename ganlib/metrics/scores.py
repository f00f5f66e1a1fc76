"""Scores from a classifier's softmax outputs on generated images."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def classifier_score(probs, splits: int = 10) -> Tuple[float, float]:
    """Inception-Score-like exp(E_x KL(p(y|x) || p(y))): (mean, std) over `splits` equal parts.

    High when each image is confidently one class (sharp p(y|x)) and the classes are varied (flat p(y));
    between 1 and the number of classes. Computed with the domain classifier, so it is comparable only
    between runs scored by the same classifier.
    """
    p = np.asarray(probs, np.float64)
    n = len(p)
    splits = max(1, min(splits, n))
    eps = 1e-12  # log(0) guard: a zero probability contributes 0 to the KL sum
    scores = []
    # Parts [i*n//splits, (i+1)*n//splits), as the published Inception Score code (Salimans et al. 2016) splits:
    # for n not a multiple of `splits` its parts differ from numpy's array_split (which puts the larger first).
    for part in (p[i * n // splits:(i + 1) * n // splits] for i in range(splits)):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def label_accuracy(probs, requested_labels) -> float:
    """Share of generated images that the classifier assigns to the class the generator was asked for."""
    probs, labels = np.asarray(probs), np.asarray(requested_labels)
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probability rows but {len(labels)} labels.")
    return float(np.mean(probs.argmax(1) == labels))
