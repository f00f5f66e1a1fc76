"""Tests for ganlib.metrics: each metric against a textbook / brute-force reference, plus the evaluation path."""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import cdist

import ganlib.metrics as M
from ganlib.config import Config
from ganlib.data import load_dataset
from ganlib.metrics import distances as D
from ganlib.metrics import evaluate as E


# ---------------------------------------------------------------------------------------------- references
def textbook_fid(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def brute_mmd2(x, y):
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m ** 2


def brute_radii(x, k):
    d = cdist(x, x)
    return np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(d)])


def brute_precision_recall(real, fake, k):
    rr, rf = brute_radii(real, k), brute_radii(fake, k)
    precision = np.mean([any(np.linalg.norm(y - x) <= r for x, r in zip(real, rr)) for y in fake])
    recall = np.mean([any(np.linalg.norm(x - y) <= r for y, r in zip(fake, rf)) for x in real])
    return precision, recall


def brute_density_coverage(real, fake, k):
    r = brute_radii(real, k)
    density = sum(np.linalg.norm(y - x) < ri for y in fake for x, ri in zip(real, r)) / (k * len(fake))
    coverage = np.mean([min(np.linalg.norm(x - y) for y in fake) < ri for x, ri in zip(real, r)])
    return density, coverage


def two_samples(n1=300, n2=250, d=16, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return rng.normal(size=(n1, d)) @ mix, 1.3 * rng.normal(size=(n2, d)) @ mix + 0.4


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    # The arrays here are small: one BLAS thread is as fast, and avoids spin-waiting threads (10x slowdowns)
    # when other jobs share the machine's cores.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(params=[D._BLOCK_ELEMENTS, 1000], ids=["one-block", "many-blocks"])
def block_size(request, monkeypatch):
    monkeypatch.setattr(D, "_BLOCK_ELEMENTS", request.param)


# ---------------------------------------------------------------------------------------------- FID
def test_fid_matches_textbook_sqrtm():
    rng = np.random.default_rng(1)
    f1 = rng.normal(size=(600, 64)) @ rng.normal(size=(64, 64))
    f2 = rng.standard_t(5, size=(500, 64)) @ rng.normal(size=(64, 64)) + 0.5
    assert M.fid_from_features(f1, f2) == pytest.approx(textbook_fid(f1, f2), rel=1e-6)
    assert M.fid_from_features(f1, f2) == pytest.approx(M.fid_from_features(f2, f1), rel=1e-9)
    assert M.fid_from_features(f1, f1) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_of_known_gaussians():
    # Diagonal covariances: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fid_warns_when_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="fewer samples than dimensions"):
        value = M.fid_from_features(rng.normal(size=(20, 50)), rng.normal(size=(20, 50)))
    assert np.isfinite(value) and value > 0  # singular covariances still give a finite, real value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.fid_from_features(rng.normal(size=(60, 50)), rng.normal(size=(60, 50)))


# ---------------------------------------------------------------------------------------------- KID
def test_kid_matches_brute_force():
    f1, f2 = two_samples(40, 35, d=6)
    # subset_size larger than both sets: half the smaller set (17), drawn without replacement, in this order.
    mean, std = M.kid(f1, f2, subsets=4, subset_size=1000, seed=3)
    rng = np.random.default_rng(3)
    expected = [brute_mmd2(f1[rng.choice(40, 17, replace=False)], f2[rng.choice(35, 17, replace=False)])
                for _ in range(4)]
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert std == pytest.approx(np.std(expected), rel=1e-6)
    assert M.kid_subset_size(5000, 4000) == 1000 and M.kid_subset_size(1000, 1000) == 500
    with pytest.raises(ValueError, match="at least 4 samples"):
        M.kid(f1[:3], f2[:3])


def test_kid_std_is_the_sampling_spread_not_zero():
    """At 1,000 vs 1,000 the subsets are 500 each: their spread matches the spread of KID over independent samples
    of 500 (the truth here is known: fresh draws from the two distributions), within sampling error."""
    from ganlib.metrics.distances import _unbiased_mmd2  # equal to brute_mmd2 (test above)

    rng = np.random.default_rng(0)
    draw = lambda n, shift: rng.normal(shift, 1.0, size=(n, 8))  # noqa: E731
    _, std = M.kid(draw(1000, 0.0), draw(1000, 0.3), subsets=100)
    truth = np.std([_unbiased_mmd2(draw(500, 0.0), draw(500, 0.3)) for _ in range(100)])
    assert std > 0 and 0.6 < std / truth < 1.6, (std, truth)


# ---------------------------------------------------------------------------------------------- PRDC
def test_precision_recall_match_brute_force(block_size):
    real, fake = two_samples()
    for k in (1, 3, 5):
        assert M.precision_recall(real, fake, k) == pytest.approx(brute_precision_recall(real, fake, k), abs=1e-12)


def test_density_coverage_match_brute_force(block_size):
    real, fake = two_samples()
    for k in (2, 5):
        assert M.density_coverage(real, fake, k) == pytest.approx(brute_density_coverage(real, fake, k), abs=1e-12)


def test_radii_exclude_self_even_for_duplicates():
    x = np.array([[0.0], [0.0], [1.0], [3.0]])
    assert M.kth_neighbour_radii(x, 1).tolist() == [0.0, 0.0, 1.0, 2.0]
    assert M.kth_neighbour_radii(x, 2).tolist() == [1.0, 1.0, 1.0, 3.0]


def test_identical_distributions_score_as_identical():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4))
    assert M.fid_from_features(a, b) < 0.01
    kid_mean, _ = M.kid(a, b, subsets=20, subset_size=1000)
    assert abs(kid_mean) < 0.01  # sampling noise ~0.003 here; a shift by 1 below gives ~10
    density, coverage = M.density_coverage(a, b, k=5)
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(1 - 2 ** -5, abs=0.015)
    precision, recall = M.precision_recall(a, b)
    assert precision > 0.9 and recall > 0.9
    # and a shifted distribution is clearly worse on every metric
    c = b + 1.0
    assert M.fid_from_features(a, c) > 0.9 and M.kid(a, c, subsets=5)[0] > 1
    assert M.density_coverage(a, c)[1] < 0.8


# ---------------------------------------------------------------------------------------------- classifier scores
def test_classifier_score_and_label_accuracy():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert M.classifier_score(one_hot)[0] == pytest.approx(10, rel=1e-9)  # sharp and varied: the maximum
    assert M.classifier_score(np.tile(one_hot[:1], (1000, 1)))[0] == pytest.approx(1)  # collapsed to one class
    assert M.classifier_score(np.full((1000, 10), 0.1))[0] == pytest.approx(1)  # no confident class
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=200)
    marginal = p.mean(0)
    expected = np.exp(np.mean((p * np.log(p / marginal)).sum(1)))
    assert M.classifier_score(p, splits=1)[0] == pytest.approx(expected, rel=1e-9)
    # The published code's partition for n not a multiple of the splits: parts [i*n//10, (i+1)*n//10).
    q = np.random.default_rng(1).dirichlet(np.ones(5) * 0.3, size=1005)
    parts = [q[i * 1005 // 10:(i + 1) * 1005 // 10] for i in range(10)]
    published = [np.exp(np.mean((s * (np.log(s) - np.log(s.mean(0, keepdims=True)))).sum(1))) for s in parts]
    assert M.classifier_score(q) == pytest.approx((np.mean(published), np.std(published)), rel=1e-9)
    assert [len(s) for s in parts][:2] == [100, 101]  # numpy's array_split would give 101, 101, ...
    assert M.label_accuracy(one_hot, np.arange(1000) % 10) == 1.0
    assert M.label_accuracy(one_hot, (np.arange(1000) + 1) % 10) == 0.0


# ---------------------------------------------------------------------------------------------- domain classifier
@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("feature_nets")


@pytest.fixture(scope="module")
def digits_classifier(feature_cache):
    return M.DomainClassifier("digits", cache=feature_cache)  # default settings: also what default_evaluator uses


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


_TRAIN_WITH_THREADS = """
import sys, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
from ganlib import metrics as M
print("FINGERPRINT", M.DomainClassifier("digits", cache=sys.argv[2]).fingerprint)
"""


@pytest.mark.slow  # trains the digits classifier twice in child processes (~50 s)
def test_the_feature_network_does_not_depend_on_the_callers_threads(tmp_path, digits_classifier):
    """Trained with 1 and with 2 TensorFlow threads in the calling process: the same weights (bit for bit),
    because training runs in a child process with a fixed thread count."""
    import subprocess
    import sys

    prints = []
    for threads in (1, 2):
        done = subprocess.run([sys.executable, "-c", _TRAIN_WITH_THREADS, str(threads), str(tmp_path / f"t{threads}")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        prints.append(done.stdout.split("FINGERPRINT")[1].strip())
    assert prints[0] == prints[1] == digits_classifier.fingerprint
    info = json.loads((tmp_path / "t2" / f"{digits_classifier.key}.json").read_text())
    assert info["threads"] == 1 and info["fingerprint"] == prints[0]


def test_every_metric_records_the_fingerprint_of_its_features(digits_classifier, digits):
    assert re.fullmatch(r"[0-9a-f]{12}", digits_classifier.fingerprint)
    from ganlib.models import build_models

    generator, _ = build_models(Config(dataset="digits", filters=8, latent_dim=8), (8, 8, 1), 10)
    result = M.evaluate_generator(generator, digits_classifier, digits[1].images, n=64, num_classes=10)
    assert result["extractor_fingerprint"] == digits_classifier.fingerprint


def test_the_report_warns_when_runs_were_scored_by_different_weights():
    import pandas as pd

    from analysis.figures import extractor_callout

    class Study:
        runs = pd.DataFrame({"run_id": ["a/seed0", "a/seed1", "b/seed0"], "extractor": ["domain_classifier:x"] * 3,
                             "extractor_fingerprint": ["aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]})

    warning = extractor_callout(Study)
    assert "different feature networks" in warning and "bbbbbbbbbbbb: 1 runs (b/seed0)" in warning
    Study.runs = Study.runs.assign(extractor_fingerprint="aaaaaaaaaaaa")
    assert extractor_callout(Study) == ""
    Study.runs = Study.runs.drop(columns=["extractor", "extractor_fingerprint"])  # no run was scored
    assert extractor_callout(Study) == ""


def test_the_report_warns_when_runs_were_trained_at_different_precisions():
    """precision: auto is bf16 on CPUs with native bf16, float32 elsewhere, under one configuration hash."""
    import pandas as pd

    from analysis.figures import precision_callout

    class Study:
        runs = pd.DataFrame({"run_id": ["a/seed0", "a/seed1", "b/seed0", "b/seed1"],
                             "precision_used": ["mixed_bfloat16", "float32", "float32", None]})

    warning = precision_callout(Study)
    assert "different precisions" in warning and "float32: 2 runs (a/seed1, b/seed0)" in warning
    assert "mixed_bfloat16: 1 runs (a/seed0)" in warning
    Study.runs = Study.runs.assign(precision_used="float32")
    assert precision_callout(Study) == ""
    Study.runs = Study.runs.drop(columns="precision_used")  # gathered before ganlib recorded it
    assert precision_callout(Study) == ""


def test_domain_classifier_trains_caches_and_reloads(digits_classifier, feature_cache, digits):
    clf = digits_classifier
    assert clf.dim == 128 and clf.num_classes == 10
    assert clf.accuracy > 0.9, clf.info  # a feature network that cannot tell digits apart is useless
    assert json.loads(clf.info_path.read_text())["test_accuracy"] == clf.accuracy
    feats, probs = clf.features_and_probs(digits[1].as_float())
    assert feats.shape == (len(digits[1]), 128) and probs.shape == (len(digits[1]), 10)
    np.testing.assert_allclose(clf(digits[1].as_float()), feats, rtol=1e-6)
    mtime, trainings = clf.model_path.stat().st_mtime_ns, M.DomainClassifier.trainings
    again = M.DomainClassifier("digits", cache=feature_cache)
    assert not again.trained_now and M.DomainClassifier.trainings == trainings
    assert again.model_path.stat().st_mtime_ns == mtime and again.accuracy == clf.accuracy
    np.testing.assert_allclose(again(digits[1].as_float()), feats, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        clf(np.zeros((2, 28, 28, 1), np.float32))


def test_domain_classifier_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANLIB_CACHE", str(tmp_path / "env_cache"))
    assert M.cache_dir() == tmp_path / "env_cache"
    assert M.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("GANLIB_CACHE")
    assert M.cache_dir() == Path.home() / ".cache" / "ganlib" / "feature_nets"


def test_domain_classifier_training_is_seeded_and_leaves_global_rng_alone(tmp_path, digits):
    import keras

    def global_draws():
        return np.random.rand(), float(keras.random.uniform(()))

    keras.utils.set_random_seed(7)
    expected = global_draws()
    keras.utils.set_random_seed(7)
    a = M.DomainClassifier("digits", cache=tmp_path / "a", epochs=2, max_train=400)
    assert global_draws() == expected  # a GAN run must not depend on whether the classifier was cached
    b = M.DomainClassifier("digits", cache=tmp_path / "b", epochs=2, max_train=400)
    assert a.accuracy == b.accuracy
    x = digits[1].as_float()[:50]
    np.testing.assert_allclose(a(x), b(x), rtol=1e-5, atol=1e-5)


def test_fid_grows_with_corruption(digits_classifier, digits):
    train, test = digits
    reference = digits_classifier(train.as_float())
    clean = test.as_float()
    rng = np.random.default_rng(0)
    noisy = [np.clip(clean + s * rng.normal(size=clean.shape), -1, 1) for s in (0.0, 0.2, 0.5, 1.0)]
    blurred = [gaussian_filter(clean, sigma=(0, s, s, 0)) for s in (0.0, 0.6, 1.0, 2.0)]
    for series in (noisy, blurred):
        fids = [M.fid_from_features(reference, digits_classifier(x)) for x in series]
        assert all(a < b for a, b in zip(fids, fids[1:])), fids


# ---------------------------------------------------------------------------------------------- InceptionV3
def test_inception_missing_weights_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GANLIB_INCEPTION_WEIGHTS", str(tmp_path / "nope.h5"))
    with pytest.raises(M.InceptionWeightsNotFoundError) as err:
        M.InceptionV3Features()
    message = str(err.value)
    assert str(tmp_path / "nope.h5") in message
    assert str(tmp_path / "keras" / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "GANLIB_INCEPTION_WEIGHTS" in message and "https://" in message
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        M.InceptionV3Features(weights=str(tmp_path / "missing.h5"))


def test_inception_preprocessing_and_shapes():
    net = M.KerasInceptionV3Features(weights=None, batch_size=2)  # architecture only: no file, no download
    assert net.name == "keras_inception_v3_untrained"  # named for what it is: not the published-FID network
    assert M.InceptionV3Features is M.KerasInceptionV3Features  # the old name still works
    grey = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    x = np.asarray(net.preprocess(grey))
    assert x.shape == (3, 299, 299, 3) and np.allclose(x[..., 0], x[..., 2])
    assert x.min() >= -1.0001 and x.max() <= 1.0001  # bilinear keeps Inception's [-1, 1] range
    rgba = np.concatenate([np.repeat(grey, 3, -1), np.ones_like(grey)], -1)
    np.testing.assert_allclose(np.asarray(net.preprocess(rgba)), x, atol=1e-6)
    feats, probs = net.features_and_probs(grey)
    assert feats.shape == (3, 2048) and probs is None and np.isfinite(feats).all()


# ---------------------------------------------------------------------------------------------- memorization
def test_nearest_training_neighbours_find_exact_copies(digits_classifier, digits, tmp_path):
    train = digits[0].images
    rng = np.random.default_rng(0)
    generated = np.concatenate([train[[17, 400]].astype(np.float32) / 127.5 - 1,
                                rng.uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)])
    idx, dist = M.nearest_training_neighbours(generated, train)
    assert idx[:2].tolist() == [17, 400] and dist[:2].tolist() == [0.0, 0.0] and (dist[2:] > 1).all()
    brute = cdist(generated.reshape(5, -1), (train.astype(np.float32) / 127.5 - 1).reshape(len(train), -1))
    np.testing.assert_allclose(dist, brute.min(1), rtol=1e-9, atol=1e-9)
    idx_f, dist_f = M.nearest_training_neighbours(generated, train, "feature", digits_classifier)
    assert idx_f[:2].tolist() == [17, 400] and dist_f[:2].max() < 1e-3
    fig = M.plot_neighbours(generated, train, idx, tmp_path / "neighbours.png", distances=dist)
    assert (tmp_path / "neighbours.png").stat().st_size > 0
    assert sum(ax.has_data() for ax in fig.axes) == 10  # 5 pairs of images
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match="extractor"):
        M.nearest_training_neighbours(generated, train, "feature")


def test_pairwise_distances_summary():
    x = np.random.default_rng(0).normal(size=(30, 4, 4, 1))
    d = M.pairwise_distances_summary(x)
    assert d.shape == (30 * 29 // 2,)
    full = cdist(x.reshape(30, -1), x.reshape(30, -1))
    np.testing.assert_allclose(np.sort(d), np.sort(full[np.triu_indices(30, 1)]))
    assert (M.pairwise_distances_summary(np.zeros((10, 3))) == 0).all()  # total collapse
    assert M.pairwise_distances_summary(x, max_samples=10).shape == (45,)


# ---------------------------------------------------------------------------------------------- evaluation
def tiny_generator(conditional=True):
    from ganlib import Config
    from ganlib.models import build_models

    config = Config(dataset="digits", filters=8, latent_dim=8, batch_size=32, conditional=conditional,
                    metric_samples=200, epochs=1)
    return config, build_models(config, (8, 8, 1), 10)[0]


@pytest.fixture
def use_cache(monkeypatch, feature_cache):
    monkeypatch.setenv("GANLIB_CACHE", str(feature_cache))
    monkeypatch.delenv("GANLIB_FEATURES", raising=False)
    monkeypatch.setattr(E, "_EXTRACTORS", {})


def test_default_evaluator_on_tiny_generator(use_cache, digits_classifier):
    config, generator = tiny_generator()
    trainings = M.DomainClassifier.trainings
    evaluate = M.default_evaluator(config, 10)
    assert M.DomainClassifier.trainings == trainings  # the cached network from the fixture
    first = evaluate(generator)
    real = evaluate.real_features
    second = evaluate(generator)
    assert evaluate.real_features is real  # real features extracted once
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score",
                "label_accuracy"):
        assert isinstance(first[key], float) and np.isfinite(first[key]), key
        assert first[key] == pytest.approx(second[key], rel=1e-6), key  # fixed latent points
    assert first["n_samples"] == 200 and first["extractor"] == digits_classifier.name
    assert first["extractor_accuracy"] == digits_classifier.accuracy
    assert first["fid"] > 1  # an untrained generator is far from real digits
    _, unconditional = tiny_generator(conditional=False)
    result = M.evaluate_generator(unconditional, digits_classifier, load_dataset("digits", "test").images, n=100)
    assert "label_accuracy" not in result and result["n_samples"] == 100
    with pytest.raises(ValueError, match="unconditional"):
        M.evaluate_generator(unconditional, digits_classifier, load_dataset("digits", "test").images, n=10,
                             conditional=True)


def test_evaluator_reports_nan_for_a_diverged_generator(digits_classifier):
    import keras

    inputs = keras.Input((4,))
    broken = keras.Model(inputs, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(inputs) * np.inf))
    result = M.evaluate_generator(broken, digits_classifier, load_dataset("digits", "test").images, n=50)
    assert np.isnan(result["fid"]) and np.isnan(result["classifier_score"])


def test_real_vs_real_reference(digits_classifier, feature_cache):
    ref = M.real_vs_real_reference("digits", n=150, cache=feature_cache)
    assert ref["split"] == "test/test" and ref["n_samples"] == 150
    assert ref["extractor"] == digits_classifier.name and ref["label_accuracy"] > 0.85
    assert ref["precision"] > 0.5 and ref["coverage"] > 0.5
    cached = list(feature_cache.glob("reference_*_n150_s0*.json"))
    assert len(cached) == 1
    assert M.real_vs_real_reference("digits", n=150, cache=feature_cache) == ref
    other = M.real_vs_real_reference("digits", n=300, cache=feature_cache)  # 360 test images < 600
    assert other["split"] == "test/train"


def test_training_logs_metrics_and_evaluate_run(use_cache, tmp_path):
    from ganlib.run import train
    from ganlib.rundir import RunDirectory

    config = dict(dataset="digits", filters=8, latent_dim=8, batch_size=32, epochs=2, steps_per_epoch=2,
                  metric_samples=150, metric_interval=1, sample_interval=2, checkpoint_interval=2)
    summary = train(config, tmp_path / "run", verbose=0)
    assert summary["status"] == "completed"
    assert summary["final_metrics"]["n_samples"] == 150 and "fid" in summary["final_metrics"]
    epochs = RunDirectory(tmp_path / "run").read_epochs()
    assert "eval_fid" in epochs and epochs["eval_fid"].notna().all()
    result = M.evaluate_run(tmp_path / "run", n=100)
    saved = json.loads((tmp_path / "run" / "metrics" / "final_eval.json").read_text())
    assert saved["n_samples"] == 100 and saved["fid"] == pytest.approx(result["fid"])
    assert saved["model"] == "generator_ema"  # the default recipe keeps an EMA: its metrics describe that one


# ---------------------------------------------------------------------------------------------- verdict
def test_a_run_that_cannot_learn_gets_the_verdict(use_cache, digits_classifier, tmp_path):
    from ganlib.notebook_support import outcome_line
    from ganlib.run import train

    config = dict(dataset="digits", model="mlp", filters=8, latent_dim=8, embedding_dim=4, batch_size=32,
                  epochs=2, steps_per_epoch=3, lr=1e-9, metric_samples=150, grid_size=4)  # lr ~ 0: frozen
    summary = train(config, tmp_path / "frozen", verbose=0)
    assert summary["status"] == "completed" and summary["verdict"] == "did_not_learn"
    untrained = summary["untrained_metrics"]
    assert untrained["n_samples"] == 150 and untrained["fid"] > 1
    assert summary["final_metrics"]["fid"] == pytest.approx(untrained["fid"], rel=0.05)  # it never moved
    assert any("untrained generator" in r for r in summary["verdict_reasons"])
    assert "DID NOT LEARN" in outcome_line(summary)


def test_a_healthy_short_run_learned(use_cache, digits_classifier, tmp_path):
    from ganlib.run import train

    config = dict(dataset="digits", model="mlp", conditional=False, filters=32, latent_dim=16, batch_size=32,
                  epochs=12, metric_samples=150, grid_size=4, sample_interval=12, checkpoint_interval=12)
    summary = train(config, tmp_path / "healthy", verbose=0)
    assert summary["verdict"] == "learned", summary["verdict_reasons"]
    assert summary["final_metrics"]["fid"] < 0.5 * summary["untrained_metrics"]["fid"]
    recall = summary["final_metrics"]["recall"]
    assert bool(summary["verdict_cautions"]) == (recall < 0.1)  # written to summary.json by the run


# ---------------------------------------------------------------------------------------------- folders without classes
def _one_class_folder(root, n):
    """n of scikit-learn's 8x8 digits as PNGs in one folder: no classes, but an up and a down to learn."""
    from PIL import Image

    root.mkdir(parents=True)
    images = load_dataset("digits", "train").images[:n, ..., 0]
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / f"{i:04d}.png")
    return root


def test_a_one_class_folder_gets_a_self_supervised_feature_network(tmp_path):
    folder = _one_class_folder(tmp_path / "glyphs", 400)
    net = M.DomainClassifier("folder", 8, 1, data_dir=str(folder), cache=tmp_path / "cache")
    assert net.objective == "rotation" and net.name.startswith("rotation_net:") and "rotation" in net.kind
    assert net.info["chance"] == 0.25 and net.accuracy > 0.6  # it learned which way is up, far above chance
    initial = M.DomainClassifier.__new__(M.DomainClassifier)
    initial._setup("folder", 8, 1, str(folder), tmp_path / "other")
    untrained = initial._build(4).get_layer("conv0").get_weights()[0]
    assert not np.allclose(net.model.get_layer("conv0").get_weights()[0], untrained)  # trained, not random
    feats, probs = net.features_and_probs(load_dataset("folder", "test", str(folder)).as_float())
    assert feats.shape[1] == 128 and probs is None  # rotation probabilities are not classes


def test_a_small_folder_is_scored_against_all_its_images_and_says_so(tmp_path):
    from ganlib.run import train

    folder = _one_class_folder(tmp_path / "small", 40)
    config = dict(dataset="folder", data_dir=str(folder), conditional=False, batch_size=8, filters=8, latent_dim=8,
                  epochs=1, steps_per_epoch=1, metric_samples=1000, grid_size=2)
    with pytest.warns(UserWarning, match="compare with its training images too"):
        summary = train(Config(**config), tmp_path / "run", verbose=0)
    final = summary["final_metrics"]
    assert summary["status"] == "completed" and final["n_samples"] == 40 and np.isfinite(final["fid"])
    assert final["extractor"].startswith("rotation_net:") and "rotation" in final["extractor_kind"]


def test_a_folder_too_small_to_score_is_refused_before_training(tmp_path, monkeypatch):
    import ganlib.models
    from ganlib.config import ConfigError
    from ganlib.run import train

    folder = _one_class_folder(tmp_path / "tiny", 8)
    monkeypatch.setattr(ganlib.models, "build_models", lambda *a: pytest.fail("models built before the check"))
    with pytest.raises(ConfigError, match="metric_samples=1000.*0 \\(no quality metrics\\).*8 images"):
        train(Config(dataset="folder", data_dir=str(folder), conditional=False, batch_size=4, metric_samples=1000),
              tmp_path / "run", verbose=0)


# ---------------------------------------------------------------------------------------------- FID Inception
@pytest.fixture(scope="module")
def fid_inception():
    from ganlib.metrics import fid_inception as FI

    return FI, FI.FIDInceptionFeatures(weights=None, batch_size=2)  # architecture only: no file, no download


def test_fid_inception_architecture_is_the_published_one(fid_inception):
    import keras

    FI, net = fid_inception
    pools = [l for l in net.model.layers if isinstance(l, (keras.layers.AveragePooling2D, keras.layers.MaxPooling2D))]
    last_block = sorted((l for l in pools if l.strides == (1, 1)), key=FI._creation_index)
    # every branch pool averages (padding excluded, as pytorch-fid's count_include_pad=False) but Mixed_7c's: max
    assert [type(l).__name__ for l in last_block] == ["AveragePooling2D"] * 8 + ["MaxPooling2D"]
    pairs = FI.conv_and_bn_layers(net.model)
    assert len(pairs) == len(FI.TORCH_PREFIXES) == 94
    assert tuple(pairs[0][0].kernel.shape) == (3, 3, 3, 32) and tuple(pairs[-1][0].kernel.shape) == (1, 1, 2048, 192)
    assert net.name == "fid_inception_untrained" and net.dim == 2048


def test_fid_inception_takes_pytorch_fid_weights_with_scales_folded(fid_inception, tmp_path):
    FI, net = fid_inception
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, (conv, _) in zip(FI.TORCH_PREFIXES, FI.conv_and_bn_layers(net.model)):
        h, w, i, o = conv.kernel.shape
        arrays[f"{prefix}.conv.weight"] = rng.normal(0, 0.05, (o, i, h, w)).astype(np.float32)  # torch layout
        for name, value in (("weight", rng.uniform(0.5, 2, o)), ("bias", rng.normal(0, 0.1, o)),
                            ("running_mean", rng.normal(0, 0.1, o)), ("running_var", rng.uniform(0.5, 2, o))):
            arrays[f"{prefix}.bn.{name}"] = value.astype(np.float32)
    np.savez(tmp_path / "fid.npz", fc=np.zeros((1008, 2048), np.float32), **arrays)
    loaded = FI.FIDInceptionFeatures(weights=str(tmp_path / "fid.npz"), batch_size=2)
    assert loaded.name == "fid_inception" and loaded.fingerprint != net.fingerprint
    conv, bn = FI.conv_and_bn_layers(loaded.model)[7]
    prefix = FI.TORCH_PREFIXES[7]
    np.testing.assert_array_equal(np.asarray(conv.kernel), arrays[f"{prefix}.conv.weight"].transpose(2, 3, 1, 0))
    x = rng.normal(size=(4, 5, 5, int(bn.moving_mean.shape[0]))).astype(np.float32)
    torch_bn = (arrays[f"{prefix}.bn.weight"] * (x - arrays[f"{prefix}.bn.running_mean"])
                / np.sqrt(arrays[f"{prefix}.bn.running_var"] + 1e-3) + arrays[f"{prefix}.bn.bias"])
    np.testing.assert_allclose(np.asarray(bn(x, training=False)), torch_bn, rtol=1e-4, atol=1e-5)
    del arrays[f"{FI.TORCH_PREFIXES[3]}.conv.weight"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match="1 of its 94 convolutions are missing"):
        FI.FIDInceptionFeatures(weights=str(tmp_path / "partial.npz"))


def test_fid_inception_resizes_as_pytorch_fid(fid_inception):
    """Bilinear with align_corners=False (half-pixel centres), no antialiasing: a 2-pixel ramp [0, 1] becomes
    the samples of the line through the pixel centres, clamped at the edges."""
    _, net = fid_inception
    ramp = np.tile(np.array([[-1.0, 1.0]], np.float32), (2, 1))[None, ..., None]  # (1, 2, 2, 1)
    out = np.asarray(net.preprocess(ramp))
    centres = (np.arange(299) + 0.5) * 2 / 299 - 0.5
    expected = np.clip(centres, 0, 1) * 2 - 1
    np.testing.assert_allclose(out[0, 0, :, 0], expected, atol=1e-5)
    assert np.allclose(out[..., 0], out[..., 2])  # grey repeated to RGB
    feats, probs = net.features_and_probs(np.zeros((2, 28, 28, 1), np.float32))
    assert feats.shape == (2, 2048) and probs is None


def test_fid_inception_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    from ganlib.metrics import fid_inception as FI

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("GANLIB_FID_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(FI.FIDInceptionWeightsNotFoundError, match="convert .*fid_inception.npz"):
        FI.FIDInceptionFeatures()


def test_kid_from_whole_kernel_matrices_equals_kid_subset_by_subset():
    from ganlib.metrics import distances

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 16)), rng.normal(0.2, 1.1, size=(260, 16))
    fast = distances.kid(a, b, subsets=20, seed=5)
    draws = np.random.default_rng(5)
    m = distances.kid_subset_size(300, 260)
    slow = [distances._unbiased_mmd2(a[draws.choice(300, m, replace=False)], b[draws.choice(260, m, replace=False)])
            for _ in range(20)]
    assert np.allclose(fast, (np.mean(slow), np.std(slow)), rtol=1e-12, atol=0)


def test_a_subset_of_a_class_sorted_dataset_is_in_random_order_so_the_classifier_score_is_fair():
    """mnist_subset is stored sorted by class; `take` returned sorted subsets, and the classifier score's
    consecutive splits then each held one class (real images scored 1.33 instead of ~9)."""
    from ganlib.data import ImageData

    labels = np.repeat(np.arange(10), 100).astype(np.int32)
    data = ImageData(name="sorted", images=np.arange(1000, dtype=np.uint8).reshape(1000, 1, 1, 1) % 255,
                     labels=labels, class_names=[str(i) for i in range(10)], source="test")
    subset = data.take(500, seed=3)
    assert len(set(subset.labels[:50])) >= 8  # the first split sees most classes
    probs = np.eye(10)[subset.labels]  # a perfect classifier on real images
    assert M.classifier_score(probs)[0] > 8
    assert sorted(subset.labels.tolist()) == sorted(data.labels[np.random.default_rng(3).permutation(1000)[:500]].tolist())


def test_the_feature_network_child_decodes_folders_into_the_parents_cache(tmp_path, monkeypatch):
    """The child process that trains a feature network pointed GANLIB_CACHE elsewhere, so a folder dataset was
    decoded (and stored) twice; it now gets the parent's decoded-folder cache."""
    import subprocess

    from ganlib.data import folder_cache_dir
    from ganlib.metrics import features

    monkeypatch.setenv("GANLIB_FOLDER_CACHE", str(tmp_path / "decoded"))
    seen = {}

    def fake_run(args, env=None, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(args, 1, "", "stopped by the test")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="stopped by the test"):  # it trains when nothing is cached
        features.DomainClassifier("digits", cache=tmp_path / "nets")
    assert seen["GANLIB_FOLDER_CACHE"] == str(folder_cache_dir()) == str(tmp_path / "decoded")
    assert seen["GANLIB_CACHE"] == str(tmp_path / "nets")
