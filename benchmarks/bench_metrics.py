"""How long the metrics take: FID on n vs n images (features and distance timed apart), the eigh Frechet
distance against the textbook scipy `sqrtm` on 2048-d features, KID, precision/recall and density/coverage.

    python benchmarks/bench_metrics.py [--n 10000] [--dataset fashion_mnist] [--skip-sqrtm] [--blas-threads 1]
                                       [--folder-images 2000]

The domain classifier comes from the feature-network cache (trained first if missing: reported apart). The
self-supervised network of image folders without classes (rotation prediction) is trained fresh, into a
temporary cache, on a folder of `--folder-images` PNGs of one Fashion-MNIST class (0 skips it): its training
time, held-out rotation accuracy and extraction throughput.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import linalg

from ganlib.data import DatasetNotFoundError, load_dataset
from ganlib.metrics import (DomainClassifier, density_coverage, feature_statistics, frechet_distance, kid,
                            precision_recall)


class timed:
    """Call fn; keep wall and CPU seconds (CPU time shows the work when other jobs share the cores)."""

    def __init__(self, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        self.out = fn(*args, **kwargs)
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu

    def __str__(self):
        return f"{self.wall:7.2f} s wall {self.cpu:7.2f} s CPU"


def sqrtm_frechet(mu1, s1, mu2, s2):
    """The pytorch-fid formula: sqrtm of the non-symmetric product S1 S2."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000, help="samples per side")
    parser.add_argument("--dataset", default="fashion_mnist", help="falls back to mnist_subset if missing")
    parser.add_argument("--dim", type=int, default=2048, help="feature size of the eigh-vs-sqrtm comparison")
    parser.add_argument("--skip-sqrtm", action="store_true", help="skip the (slow) scipy sqrtm reference")
    parser.add_argument("--folder-images", type=int, default=2000,
                        help="images of the one-class folder for the rotation-net section (0: skip it)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="numpy/scipy BLAS threads, 0 = all cores (1 is steadier, and faster when other jobs "
                             "share the cores: waiting BLAS threads spin)")
    args = parser.parse_args()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)

    try:
        train, test = load_dataset(args.dataset, "train"), load_dataset(args.dataset, "test")
    except DatasetNotFoundError:
        print(f"{args.dataset} not found; using mnist_subset")
        args.dataset = "mnist_subset"
        train, test = load_dataset(args.dataset, "train"), load_dataset(args.dataset, "test")
    n = min(args.n, len(train), len(test))
    a, b = test.take(n, seed=0).as_float(), train.take(n, seed=1).as_float()

    t = timed(DomainClassifier, args.dataset)
    clf = t.out
    print(f"domain classifier {clf.key}: {'trained' if clf.trained_now else 'loaded'} in {t.wall:.1f} s, "
          f"test accuracy {clf.accuracy:.4f}")
    clf(a[:500])  # warm-up (graph tracing) outside the timing
    t = timed(lambda: (clf(a), clf(b)))
    fa, fb = t.out
    print(f"\nFID, {n} vs {n} images ({args.dataset} test vs train, {clf.dim}-d features)")
    print(f"  feature extraction   {t}   ({2 * n / t.wall:,.0f} images/s)")
    stats = timed(lambda: (feature_statistics(fa), feature_statistics(fb)))
    print(f"  mean + covariance    {stats}")
    t = timed(frechet_distance, *stats.out[0], *stats.out[1])
    print(f"  Frechet distance     {t}   FID = {t.out:.4f}")
    t = timed(kid, fa, fb)
    print(f"  KID (100 x 1000)     {t}   KID = {t.out[0]:.5f} +- {t.out[1]:.5f}")
    t = timed(precision_recall, fa, fb)
    print(f"  precision/recall k=3 {t}   P = {t.out[0]:.4f}, R = {t.out[1]:.4f}")
    t = timed(density_coverage, fa, fb)
    print(f"  density/coverage k=5 {t}   D = {t.out[0]:.4f}, C = {t.out[1]:.4f}")

    # Random correlated features of Inception's size: covariance from 1.5 d samples per side (full rank).
    rng = np.random.default_rng(0)
    dim, m = args.dim, int(1.5 * args.dim)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    s1 = feature_statistics(np.maximum(rng.normal(size=(m, dim)) @ mix, 0))  # ReLU: Inception-like, skewed
    s2 = feature_statistics(np.maximum(rng.normal(size=(m, dim)) @ mix + 0.05, 0))
    print(f"\nFrechet distance on {dim}-d covariances")
    eigh = timed(frechet_distance, *s1, *s2)
    print(f"  eigh (ganlib)        {eigh}   FID = {eigh.out:.8f}")
    if not args.skip_sqrtm:
        ref = timed(sqrtm_frechet, *s1, *s2)
        print(f"  scipy sqrtm          {ref}   FID = {ref.out:.8f}")
        print(f"  speed-up {ref.wall / eigh.wall:.1f}x wall, {ref.cpu / eigh.cpu:.1f}x CPU; "
              f"relative difference {abs(eigh.out - ref.out) / ref.out:.1e}")
    if args.folder_images:
        rotation_net(train, args.folder_images)


def rotation_net(data, n_images: int) -> None:
    """Train the self-supervised feature network of a one-class image folder and time it."""
    from PIL import Image

    images = data.images[data.labels == data.labels[0]][:n_images, ..., 0]  # one class: nothing to classify
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "one_class"
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{i:05d}.png")
        h = images.shape[1]
        t = timed(DomainClassifier, "folder", h, 1, data_dir=str(folder), cache=Path(tmp) / "cache")
        net = t.out
        print(f"\nself-supervised feature network, one-class folder of {len(images)} {h}x{h} images "
              f"({net.info['train_images']} to train, 4 rotations each)")
        print(f"  training (child, {net.info['threads']} thread)  {t.wall:7.2f} s wall  "
              f"({net.info['train_seconds']:.1f} s inside the child, {net.info['epochs_trained']} epochs)")
        print(f"  held-out rotation accuracy {net.accuracy:.4f} (chance {net.info['chance']:.2f}); "
              f"fingerprint {net.fingerprint}")
        x = data.take(min(5000, len(data)), seed=2).as_float()
        net(x[:500])  # warm-up
        e = timed(net, x)
        print(f"  feature extraction   {e}   ({len(x) / e.wall:,.0f} images/s)")


if __name__ == "__main__":
    main()
