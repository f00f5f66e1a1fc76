"""Distances between two sets of feature vectors: FID, KID, improved precision/recall, density/coverage.

All take (N, d) arrays (any float dtype) and compute in float64. Definitions follow the reference
implementations (pytorch-fid / TF-GAN, torch-fidelity, Kynkaanniemi et al. 2019, Naeem et al. 2020).
"""
from __future__ import annotations

import warnings
from typing import Iterator, Tuple

import numpy as np

_BLOCK_ELEMENTS = 2 ** 23  # distance blocks of at most 8M float64 (64 MB), whatever the sample sizes


def _f64(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)  # images or features: one row per sample


# ---------------------------------------------------------------------------------------------- FID
def feature_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N-1 normalisation) of (N, d) features."""
    f = _f64(features)
    return f.mean(0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix via eigh."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # rounding can make zero eigenvalues slightly negative


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr sqrt(S1 S2), the Frechet distance of two Gaussians.

    Tr sqrt(S1 S2) = sum sqrt(eig(A S2 A)) with A = sqrt(S1): A S2 A is symmetric PSD and has the
    eigenvalues of S1 S2, so two symmetric eigendecompositions replace the non-symmetric `sqrtm` (faster,
    and never complex).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"Shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}.")
    a = _sqrt_psd(s1)
    m = a @ s2 @ a
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(features1, features2) -> float:
    """FID between two feature sets. Warns when a set has fewer samples than dimensions (rank-deficient
    covariance: the value is then dominated by sampling noise)."""
    f1, f2 = _f64(features1), _f64(features2)
    n, d = min(len(f1), len(f2)), f1.shape[1]
    if n < 2:
        raise ValueError("FID needs at least 2 samples per set.")
    if n < d:
        warnings.warn(f"FID from {n} samples of {d}-d features: fewer samples than dimensions, so the "
                      "covariances are rank-deficient and the FID is unreliable; use more samples.",
                      stacklevel=2)
    return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))


# ---------------------------------------------------------------------------------------------- KID
def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel k(a, b) = (a.b/d + 1)^3 (diagonals excluded)."""
    m, d = len(x), x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid_subset_size(n1: int, n2: int, subset_size: int = 1000) -> int:
    """Images per KID subset: `subset_size` (torch-fidelity's 1000), but at most half the smaller set.

    Subsets must be smaller than the sample for their spread to mean anything: at 1,000 vs 1,000 images, subsets
    of 1,000 are the whole sets every time and the "std" is 0."""
    return min(subset_size, min(n1, n2) // 2)


def kid(features1, features2, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> Tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of unbiased MMD^2 over `subsets` random subsets of each set
    (drawn without replacement, `kid_subset_size` images each).

    The std is the spread of the estimate at that subset size: an (upper-bound) uncertainty of the mean. The
    value can be slightly negative when the sets match.
    """
    f1, f2 = _f64(features1), _f64(features2)
    m = kid_subset_size(len(f1), len(f2), subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 4 samples per set (subsets of half the smaller set); got "
                         f"{len(f1)} and {len(f2)}.")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(f1), m, replace=False), rng.choice(len(f2), m, replace=False)) for _ in range(subsets)]
    if len(f1) * len(f2) > 4 * 10 ** 8:  # kernel matrices too big to keep: one subset at a time
        values = [_unbiased_mmd2(f1[i], f2[j]) for i, j in draws]
    else:  # each kernel value once, instead of again in every subset (same values; 4-5x faster at 1,000 images)
        d = f1.shape[1]
        kxx, kyy, kxy = ((f1 @ f1.T) / d + 1) ** 3, ((f2 @ f2.T) / d + 1) ** 3, ((f1 @ f2.T) / d + 1) ** 3
        u, v = np.zeros((subsets, len(f1))), np.zeros((subsets, len(f2)))  # each subset as 0/1 indicators
        for s_, (i, j) in enumerate(draws):
            u[s_, i], v[s_, j] = 1.0, 1.0
        sum_xx, sum_yy, sum_xy = ((u @ kxx) * u).sum(1), ((v @ kyy) * v).sum(1), ((u @ kxy) * v).sum(1)
        within = sum_xx - u @ np.diag(kxx) + sum_yy - v @ np.diag(kyy)
        values = within / (m * (m - 1)) - 2 * sum_xy / (m * m)
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------- nearest neighbours
def squared_distance_blocks(a, b) -> Iterator[Tuple[slice, np.ndarray]]:
    """(rows, squared Euclidean distances from a[rows] to all of b) in blocks of bounded memory.

    |a|^2 + |b|^2 - 2 a.b costs one matrix product per block; its rounding error (~1e-16 relative to the
    squared norms) cannot matter for thresholds, and `nearest_neighbours` recomputes exact distances. Squared
    distances compare like distances, so no square roots are taken.
    """
    a, b = _f64(a), _f64(b)
    bb = (b * b).sum(1)
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(b)))
    for i in range(0, len(a), rows):
        block = a[i:i + rows]
        sq = (block * block).sum(1)[:, None] + bb[None, :] - 2 * block @ b.T
        yield slice(i, i + len(block)), np.maximum(sq, 0, out=sq)


def _kth_sq_radii(x: np.ndarray, k: int) -> np.ndarray:
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs 1 <= k < number of points ({len(x)}).")
    radii = np.empty(len(x))
    for rows, d in squared_distance_blocks(x, x):
        d[np.arange(len(d)), np.arange(rows.start, rows.stop)] = np.inf  # exclude self by index: duplicates count
        radii[rows] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return radii


def kth_neighbour_radii(x, k: int) -> np.ndarray:
    """Distance from each point of x to its k-th nearest neighbour in x, the point itself excluded."""
    return np.sqrt(_kth_sq_radii(_f64(x), k))


def nearest_neighbours(a, b) -> Tuple[np.ndarray, np.ndarray]:
    """For each row of a: index of its nearest row in b and the exact Euclidean distance to it."""
    a, b = _f64(a), _f64(b)
    idx = np.empty(len(a), np.int64)
    for rows, d in squared_distance_blocks(a, b):
        idx[rows] = d.argmin(1)
    return idx, np.linalg.norm(a - b[idx], axis=1)


def _balls(points, centres, sq_radii, strict: bool):
    """Per point: how many balls (centre_i, radius_i) hold it; per centre: whether some point is in its ball."""
    counts, hit = np.zeros(len(points), np.int64), np.zeros(len(centres), bool)
    for rows, d in squared_distance_blocks(points, centres):
        inside = d < sq_radii if strict else d <= sq_radii
        counts[rows] = inside.sum(1)
        hit |= inside.any(0)
    return counts, hit


def precision_recall(real, fake, k: int = 3) -> Tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    precision: share of fakes inside the real manifold (the union of balls around real points, each with
    radius its k-th neighbour distance); recall: share of reals inside the fake manifold.
    """
    real, fake = _f64(real), _f64(fake)
    in_real, _ = _balls(fake, real, _kth_sq_radii(real, k), strict=False)
    in_fake, _ = _balls(real, fake, _kth_sq_radii(fake, k), strict=False)
    return float(np.mean(in_real > 0)), float(np.mean(in_fake > 0))


def density_coverage(real, fake, k: int = 5) -> Tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), from balls around the real points only.

    density = mean number of real balls holding a fake, / k (~1 for identical distributions, can exceed 1);
    coverage = share of real balls holding at least one fake (~1 - 2^-k for identical distributions).
    """
    real, fake = _f64(real), _f64(fake)
    counts, covered = _balls(fake, real, _kth_sq_radii(real, k), strict=True)
    return float(counts.sum() / (k * len(fake))), float(np.mean(covered))
