"""Score generators against real images: fixed-seed samples -> features -> FID, KID, PRDC, classifier scores.

Every result records the extractor and the number of samples behind it: FIDs from different extractors or
sample sizes are not comparable (FID is biased upward by ~1/N).
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from typing import Optional

import numpy as np
from threadpoolctl import threadpool_limits

from ..rundir import read_json, write_json
from ..registry import METRICS, computed_metrics, resolve
from .classwise import class_averages, class_metrics
from .features import DomainClassifier, FeatureExtractor, KerasInceptionV3Features, cache_dir
from .memorization import _as_float_images

REAL_SUBSET_SEED = 0  # the same real images for every run of a study, so runs differ only by their generators
# The feature-distance metrics (the registry's, kept under the old name for code that imported it).
METRIC_NAMES = tuple(name for name, m in METRICS.items() if m.compute and "fake_probs" not in m.inputs)


def compare_features(real_features, fake_features, fake_probs=None, fake_labels=None, seed: int = 0) -> dict:
    """Every metric of `ganlib.registry.METRICS` that these inputs allow: distances between real and generated
    features, and classifier scores when probabilities (and requested labels) are given.

    Each registered computation runs once (precision and recall come from one call). A metric whose inputs are
    not finite (a diverged generator) is NaN rather than an error, so training can report it and go on.
    """
    given = dict(real_features=real_features, fake_features=fake_features, fake_probs=fake_probs,
                 fake_labels=fake_labels, seed=seed)
    out = {}
    for target, inputs, entries in computed_metrics():
        if any(given[name] is None for name in inputs):
            continue
        arrays = [given[name] for name in inputs if name not in ("seed", "fake_labels")]
        value = None
        if all(np.isfinite(a).all() for a in arrays):
            keyword = {"seed": seed} if "seed" in inputs else {}
            value = resolve(target)(*[given[name] for name in inputs if name != "seed"], **keyword)
        for entry in entries:
            out[entry.name] = math.nan if value is None else float(
                value if entry.output is None else value[entry.output])
    return out


class Evaluator:
    """`evaluator(generator) -> dict of metrics`; the real features are extracted once and reused.

    n generated images (latent points drawn from `seed`, labels cycling through the classes) are compared
    with n real images (a fixed subset of `real_images` when there are more). `threads` caps the BLAS threads
    of the distance computations (a run's `config.threads`: parallel runs must not oversubscribe the cores).
    With `real_labels` and a conditional generator it also gives the class-aware metrics (intra_fid,
    intra_recall, intra_coverage, and their values per class under "per_class"; `ganlib.metrics.classwise`).
    """

    def __init__(self, extractor: FeatureExtractor, real_images=None, n: int = 1000, num_classes: Optional[int] = None,
                 conditional: Optional[bool] = None, seed: int = 0, real_features=None, threads: int = 0,
                 real_labels=None):
        if real_images is None and real_features is None:
            raise ValueError("Give real_images or real_features.")
        available = len(real_features if real_features is not None else real_images)
        self.n = min(n, available)
        if self.n < 2:
            raise ValueError(f"Need at least 2 samples to evaluate (n={n}, {available} real images).")
        keep = np.sort(np.random.default_rng(REAL_SUBSET_SEED).permutation(available)[:self.n])
        self.real_images = None if real_images is None else np.asarray(real_images)[keep]
        self._real_features = None if real_features is None else np.asarray(real_features)[keep]
        self.extractor, self.num_classes, self.conditional, self.seed = extractor, num_classes, conditional, seed
        self.threads = threads
        # The real images' classes (when known) give the class-aware metrics of conditional generators.
        self.real_labels = None if real_labels is None else np.asarray(real_labels)[keep]

    @property
    def real_features(self) -> np.ndarray:
        if self._real_features is None:
            self._real_features = self.extractor(_as_float_images(self.real_images))
        return self._real_features

    def samples(self, generator):
        """(images, labels or None): the same latent points and labels at every call."""
        from ..sampling import is_conditional, seeded_samples

        conditional = is_conditional(generator)
        if self.conditional is not None and self.conditional != conditional:
            raise ValueError(f"conditional={self.conditional}, but the generator is "
                             f"{'' if conditional else 'un'}conditional.")
        if conditional and not self.num_classes:
            raise ValueError("A conditional generator needs num_classes.")
        return seeded_samples(generator, self.n, [self.seed, 31337], self.num_classes)

    def key(self, generator) -> Optional[str]:
        """A name for what `self(generator)` returns: the generator's architecture and weights, the evaluation's
        settings, the extractor's weights and the real features. None when the extractor has no fingerprint."""
        import hashlib

        if not self.extractor.fingerprint:
            return None
        # Layers by class and settings, not by name: Keras numbers unnamed layers per process.
        layers = [[type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"}]
                  for layer in generator.layers]
        h = hashlib.sha256(json.dumps([layers, self.n, self.seed, self.num_classes, self.conditional,
                                       self.extractor.name, self.extractor.fingerprint, 1], default=str).encode())
        for w in generator.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
        h.update(np.ascontiguousarray(self.real_features).tobytes())
        return h.hexdigest()[:20]

    def __call__(self, generator) -> dict:
        started = time.perf_counter()
        real = self.real_features
        images, labels = self.samples(generator)
        feats, probs = self.extractor.features_and_probs(images)
        with threadpool_limits(self.threads or None):
            out = compare_features(real, feats, probs, labels, seed=self.seed)
            if labels is not None and self.real_labels is not None:
                per_class = class_metrics(real, feats, self.real_labels, labels)
                out.update(class_averages(per_class), per_class=per_class)
        out.update(extractor=self.extractor.name, extractor_kind=self.extractor.kind,
                   extractor_fingerprint=self.extractor.fingerprint,
                   extractor_accuracy=self.extractor.accuracy, n_samples=self.n,
                   seconds=round(time.perf_counter() - started, 3))
        return out


def evaluate_generator(generator, extractor: FeatureExtractor, real_images=None, real_features=None, n: int = 1000,
                       num_classes: Optional[int] = None, conditional: Optional[bool] = None, seed: int = 0) -> dict:
    """One evaluation of `generator` (see `Evaluator`; keep an Evaluator to evaluate repeatedly)."""
    return Evaluator(extractor, real_images, n, num_classes, conditional, seed, real_features)(generator)


# ---------------------------------------------------------------------------------------------- defaults
_EXTRACTORS = {}  # one extractor per (kind, dataset, shape) per process: trained/loaded once


def get_extractor(dataset: str, image_shape, data_dir: Optional[str] = None, kind: Optional[str] = None
                  ) -> FeatureExtractor:
    """The domain classifier of a dataset (kind "domain", the default), the FID Inception of published FIDs
    ("fid_inception", from pytorch-fid's converted weights) or Keras' ImageNet InceptionV3 ("inception", not the
    published-FID network). Default kind: $GANLIB_FEATURES."""
    kind = (kind or os.environ.get("GANLIB_FEATURES") or "domain").lower()
    if kind not in ("domain", "inception", "fid_inception"):
        raise ValueError(f"Feature extractor {kind!r} unknown (GANLIB_FEATURES); use 'domain', 'fid_inception' "
                         "(the network of published FIDs) or 'inception' (Keras' ImageNet InceptionV3).")
    h, _, c = image_shape
    key = (kind, dataset, h, c, data_dir if dataset == "folder" else None)
    if key not in _EXTRACTORS:
        if kind == "fid_inception":
            from .fid_inception import FIDInceptionFeatures

            _EXTRACTORS[key] = FIDInceptionFeatures()
        elif kind == "inception":
            _EXTRACTORS[key] = KerasInceptionV3Features()
        else:
            _EXTRACTORS[key] = DomainClassifier(dataset, h, c, data_dir)
    return _EXTRACTORS[key]


MIN_REFERENCE = 200  # test images below which the metrics compare with all the dataset's images
MIN_SAMPLES = 10  # the fewest images FID/KID/PRDC can be computed from at all (PRDC's k = 5 neighbours)


def _real_test_images(config, test=None):
    """The real images the metrics compare with: the config's test split (`test` when the caller has loaded it);
    for a dataset whose test split is missing or has fewer than MIN_REFERENCE images (small image folders), all
    its images (with a warning: a reference that includes the training images favours generators that memorize)."""
    import dataclasses

    from ..data import DatasetNotFoundError, load_for_config

    try:
        test = load_for_config(config, "test") if test is None else test
    except DatasetNotFoundError:
        test = None
    if test is not None and len(test) >= MIN_REFERENCE:
        return test
    train = load_for_config(config.replace(subset=None), "train")
    warnings.warn(f"{config.dataset} has {len(test) if test is not None else 'no'} test images here: metrics "
                  "compare with its training images too, which favours generators that memorize.", stacklevel=3)
    if test is None or not len(test) or (len(test) == len(train) and np.array_equal(test.images, train.images)):
        return train  # (a folder too small to split gives the same images as both splits)
    return dataclasses.replace(train, images=np.concatenate([train.images, test.images]),
                               labels=np.concatenate([train.labels, test.labels]))


def default_evaluator(config, num_classes: int, n: Optional[int] = None, test=None) -> Evaluator:
    """The evaluator `ganlib.run.train` uses: `config.metric_samples` (or n) real images vs as many generated,
    fewer when the dataset has fewer. Built before training, so a dataset too small to score says so first.
    `test`: the config's test split when the caller has it loaded already."""
    from ..config import ConfigError

    real = _real_test_images(config, test)
    if len(real) < MIN_SAMPLES:
        raise ConfigError("metric_samples", config.metric_samples,
                          f"0 (no quality metrics) for {config.dataset} with {len(real)} images: FID, KID and "
                          f"precision/recall/density/coverage need at least {MIN_SAMPLES} real images")
    extractor = get_extractor(config.dataset, real.image_shape, config.data_dir)
    return Evaluator(extractor, real.images, n or config.metric_samples or 1000, num_classes, config.conditional,
                     config.seed, threads=config.threads, real_labels=real.labels)


def evaluate_run(run_dir, n: Optional[int] = None) -> dict:
    """Evaluate a finished run's final generator (its EMA copy when it has one) into metrics/final_eval.json."""
    from ..rundir import RunDirectory
    from ..sampling import load_generator

    run = RunDirectory(run_dir)
    config, name = run.read_config(), run.final_generator_name
    generator, class_names = load_generator(run_dir, name)
    num_classes = len(class_names or []) or None
    if num_classes is None:
        from ..data import load_for_config

        num_classes = load_for_config(config, "train").num_classes
    metrics = default_evaluator(config, num_classes, n)(generator)
    metrics["model"] = name
    write_json(run.path / "metrics" / "final_eval.json", metrics)
    return metrics


# ---------------------------------------------------------------------------------------------- reference floor
def real_vs_real_reference(dataset: str, n: int = 1000, image_size: Optional[int] = None,
                           channels: Optional[int] = None, data_dir: Optional[str] = None,
                           extractor: Optional[FeatureExtractor] = None, cache: Optional[str] = None,
                           seed: int = 0) -> dict:
    """The metrics between two disjoint sets of n real images: what a perfect generator would score.

    Two halves of the test split when it holds 2n images, else n test images vs n training images (split
    records which). Compare generators with this at the same n: FID's small-sample bias is in both.
    Cached as JSON beside the feature networks.
    """
    from ..data import load_dataset

    test = load_dataset(dataset, "test", data_dir, image_size, channels)
    h, _, c = test.image_shape
    extractor = extractor or DomainClassifier(dataset, h, c, data_dir, cache=cache)
    n = min(n, len(test))
    ident = getattr(extractor, "key", f"{dataset}_{h}x{h}x{c}_{extractor.name}")
    path = cache_dir(cache) / f"reference_{ident}_n{n}_s{seed}_v2.json"  # v2: with the class-aware metrics
    cached = read_json(path)
    if cached is not None:
        return cached
    order = np.random.default_rng(seed).permutation(len(test))
    if len(test) >= 2 * n:
        a, b = test.images[order[:n]], test.images[order[n:2 * n]]
        b_labels, split = test.labels[order[n:2 * n]], "test/test"
    else:
        train = load_dataset(dataset, "train", data_dir, h, c).take(n, seed=seed)
        a, b, b_labels, split = test.images[order[:n]], train.images, train.labels, "test/train"
    fa = extractor(_as_float_images(a))
    fb, pb = extractor.features_and_probs(_as_float_images(b))
    out = compare_features(fa, fb, pb, None if pb is None else b_labels, seed=seed)
    if test.labels is not None and b_labels is not None and test.num_classes > 1:
        out.update(class_averages(class_metrics(fa, fb, test.labels[order[:n]], b_labels)))
    out.update(extractor=extractor.name, extractor_accuracy=extractor.accuracy, n_samples=n, split=split,
               dataset=dataset)
    write_json(path, out)
    return out
