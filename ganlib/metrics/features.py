"""Feature extractors: images in [-1, 1] (N, H, W, C) -> feature vectors (N, dim) for FID/KID/PRDC.

Two extractors share one small interface (`name`, `dim`, `accuracy`, `__call__`, `features_and_probs`):

* `DomainClassifier` - a small CNN trained on the dataset's own training split and cached on disk. The default,
  because it needs no download and suits 28x28 grey images better than an ImageNet network does.
* `KerasInceptionV3Features` - the 2048-d pool features of Keras' ImageNet InceptionV3, when its weights file is
  present. This is *not* the network behind published FIDs: those use the 2015 TensorFlow "FID Inception" graph
  (pytorch-fid's `FIDInceptionA/C/E`: other weights, a max-pool instead of an average pool in the last block,
  its own resizing), so a FID from these features is comparable only with other FIDs from these features. The
  published-FID network is `ganlib.metrics.fid_inception.FIDInceptionFeatures`.

Nothing here downloads anything.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..rundir import atomic_path, read_json, write_json

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_FILE


def cache_dir(path=None) -> Path:
    """Where trained feature networks live: `path`, else $GANLIB_CACHE, else ~/.cache/ganlib/feature_nets."""
    if path is None:
        path = os.environ.get("GANLIB_CACHE") or Path.home() / ".cache" / "ganlib" / "feature_nets"
    return Path(path).expanduser()


def _check_images(images, shape=None) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape (N, H, W, C), got {images.shape}.")
    if shape is not None and tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(f"This extractor takes images of shape {tuple(shape)}, got {tuple(images.shape[1:])}.")
    return images


class FeatureExtractor:
    """The interface: `extractor(images) -> (N, dim) float32` for float32 images in [-1, 1], NHWC."""

    name: str = "features"
    dim: int = 0
    accuracy: Optional[float] = None  # test accuracy of the classifier behind the features, when known
    fingerprint: Optional[str] = None  # of the weights: metrics are comparable only under one fingerprint
    kind: str = "features"  # what the features are, in words, for the run summary and the report
    batch_size: int = 500

    def __call__(self, images) -> np.ndarray:
        return self.features_and_probs(images)[0]

    def features_and_probs(self, images) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Features and class probabilities (None when the extractor has no classifier head) in one pass."""
        raise NotImplementedError

    def _batched(self, fn, images):
        """Run `fn` over batches; fn returns a tuple of arrays (or None), concatenated per position."""
        if not len(images):
            raise ValueError("No images to extract features from.")
        parts = [fn(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return tuple(None if ps[0] is None else np.concatenate(ps) for ps in zip(*parts))


def rotations(images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each image turned by 0, 90, 180 and 270 degrees (only 0 and 180 for non-square images), with the turn
    as its label: the pretext task of Gidaris et al. 2018, which needs no labels. A network can only tell the
    turns apart by recognising what the images show (up is where the sky, the head, the text's top is)."""
    turns = (0, 1, 2, 3) if images.shape[1] == images.shape[2] else (0, 2)
    x = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in turns])
    y = np.repeat(np.arange(len(turns), dtype=np.int32), len(images))
    return np.ascontiguousarray(x), y


def weights_fingerprint(model) -> str:
    """12 hex digits of SHA-256 over a model's weights: two extractors with the same name but other weights (e.g.
    trained under other thread settings) get different fingerprints."""
    import hashlib

    digest = hashlib.sha256()
    for w in model.weights:
        value = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w, np.float32))
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:12]


TRAINING_THREADS = 1  # the domain classifier is trained in a child process with this many TensorFlow threads


# ---------------------------------------------------------------------------------------------- domain classifier
class DomainClassifier(FeatureExtractor):
    """A small CNN trained on `dataset`'s training split; 128-d penultimate features, softmax probabilities.

    A dataset without classes to learn (an image folder with one class: cats, flags, faces) gets the same CNN
    trained *self-supervised*, by predicting which of 4 rotations was applied to each image (`rotations`). Its
    quality figure is the rotation accuracy on held-out images (chance 0.25), its `kind` says so, and it gives
    no class probabilities (label accuracy and the classifier score need real classes).

    The trained network is cached under a key of dataset, image size, channels, architecture version and the
    training settings, so every run of a study - in any process - is scored by the same network. Construction
    loads the cached network, or trains and caches it (under a file lock, written atomically).

    Training takes `epochs` passes over at most `max_train` images (a seeded subset); epochs=None means
    enough passes for ~300 steps of 128 images, between 2 and 20 (2 for Fashion-MNIST, 20 for sklearn digits).
    Fashion-MNIST: ~2 minutes on one CPU core, test accuracy ~0.88.

    Reproducible: float reductions differ between TensorFlow thread settings, so the network is trained in a
    child process with `TRAINING_THREADS` (1) thread, whatever the caller's settings (a network trained with 2
    threads scored the default study's generators up to 7% differently under the same cache key). Its weights'
    `fingerprint` goes with every metric, and the report warns when a comparison mixes fingerprints. A cluster
    shares one cache: point `GANLIB_CACHE` at a shared folder.
    """

    ARCH_VERSION = 3
    FOLDER_VERSION = 4  # 4: one-class folders learn by rotation prediction (3 trained a one-class "classifier")
    trainings = 0  # networks trained in this process (tests check that a cached network is not retrained)

    def __init__(self, dataset: str, image_size: Optional[int] = None, channels: Optional[int] = None,
                 data_dir: Optional[str] = None, cache: Optional[str] = None, epochs: Optional[int] = None,
                 max_train: int = 30000, seed: int = 0, feature_dim: int = 128, verbose: int = 0,
                 batch_size: int = 500):
        from filelock import FileLock

        self._setup(dataset, image_size, channels, data_dir, cache, epochs, max_train, seed, feature_dim, verbose,
                    batch_size)
        self.trained_now = False
        # The lock makes a second process wait for the first one's network instead of training its own.
        with FileLock(str(self.dir / f"{self.key}.lock")):
            if not (self.model_path.exists() and self.info_path.exists()):
                self._train_in_child()
        self._load()

    def _setup(self, dataset, image_size=None, channels=None, data_dir=None, cache=None, epochs=None,
               max_train=30000, seed=0, feature_dim=128, verbose=0, batch_size=500):
        """Settings, cache key and paths (no file is read or written)."""
        self._arguments = dict(dataset=dataset, image_size=image_size, channels=channels, data_dir=data_dir,
                               cache=None if cache is None else str(cache), epochs=epochs, max_train=max_train,
                               seed=seed, feature_dim=feature_dim, verbose=verbose, batch_size=batch_size)
        self.dataset, self.data_dir, self.verbose, self.batch_size = dataset, data_dir, verbose, batch_size
        self.settings = dict(epochs=epochs, max_train=max_train, seed=seed, feature_dim=feature_dim)
        if image_size is None or channels is None:  # the native shape decides the key, so resolve it now
            from ..registry import DATASETS

            native = DATASETS.get(dataset)
            image_size = image_size or (native.image_size if native else None)
            channels = channels or (native.channels if native else None)
            if image_size is None or channels is None:
                raise ValueError(f"Give image_size and channels for dataset {dataset!r}.")
        self.image_shape = (image_size, image_size, channels)
        self.key = self._key()
        self.dir = cache_dir(cache)
        self.model_path, self.info_path = self.dir / f"{self.key}.keras", self.dir / f"{self.key}.json"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _train_in_child(self):
        """Train in a child Python (`_train_here`) with TRAINING_THREADS threads (a process cannot change its
        own TensorFlow thread pools once they exist), the child's output passed through."""
        import json
        import subprocess

        from ..data import folder_cache_dir

        threads = str(TRAINING_THREADS)
        package_root = str(Path(__file__).resolve().parents[2])  # the child imports this very ganlib
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
               "OMP_NUM_THREADS": threads, "GANLIB_CACHE": str(self.dir),
               # the parent's decoded-folder cache: a folder dataset is decoded once, not again for the child
               "GANLIB_FOLDER_CACHE": str(folder_cache_dir()),
               "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        code = "import json, sys; from ganlib.metrics.features import _train_here; _train_here(json.loads(sys.argv[1]))"
        # Captured, then passed on: inside a Jupyter kernel sys.stderr has no file descriptor to hand to a child.
        done = subprocess.run([sys.executable, "-c", code, json.dumps(self._arguments)], env=env,
                              capture_output=True, text=True)
        sys.stderr.write(done.stdout + done.stderr)
        if done.returncode != 0 or not self.info_path.exists():
            raise RuntimeError(f"Training the {self.dataset} feature network failed (exit {done.returncode}): "
                               f"{done.stderr[-2000:]}")
        DomainClassifier.trainings += 1
        self.trained_now = True

    def _key(self) -> str:
        h, w, c = self.image_shape
        s = self.settings
        version = self.FOLDER_VERSION if self.dataset == "folder" else self.ARCH_VERSION
        key = (f"{self.dataset}_{h}x{w}x{c}_arch{version}_f{s['feature_dim']}_e{s['epochs'] or 'auto'}"
               f"_n{s['max_train']}_s{s['seed']}")
        if self.dataset == "folder":  # different folders are different datasets
            import hashlib

            key += "_" + hashlib.sha256(str(Path(self.data_dir).expanduser().resolve()).encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9_.-]", "-", key)

    def _build(self, num_classes: int):
        """Conv layers, halving the image until it is under 14 pixels, a dense feature layer, a softmax.

        Every random layer gets an explicit seed: training must not draw from (or disturb) Keras's global
        random state, or a GAN run's results would depend on whether the classifier was already cached.
        """
        import keras
        from keras import layers

        seed = self.settings["seed"]
        init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
        inputs = keras.Input(self.image_shape, name="images")  # [-1, 1]: already a good input range
        x, size, filters, block = inputs, self.image_shape[0], 32, 0
        while True:  # 28 px: conv 32 @ 28, conv 64 @ 14, conv 128 @ 7; 8 px (sklearn digits): one conv
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init(block),
                              name=f"conv{block}")(x)
            if size < 14:
                break
            x = layers.MaxPooling2D(name=f"pool{block}")(x)
            size, filters, block = size // 2, min(2 * filters, 128), block + 1
        x = layers.Flatten()(x)
        # Features are taken before the ReLU: closer to Gaussian (FID's assumption), and no dead all-zero dims.
        x = layers.Dense(self.settings["feature_dim"], kernel_initializer=init(10), name="features")(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(0.3, seed=seed + 11)(x)
        outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=init(12), name="probs")(x)
        return keras.Model(inputs, outputs, name=f"domain_classifier_{self.dataset}")

    def _train(self):
        import keras

        from ..data import DatasetNotFoundError, load_dataset

        h, _, c = self.image_shape
        s = self.settings
        started = time.perf_counter()
        print(f"ganlib.metrics: training the {self.dataset} feature network (once; cached as {self.model_path})",
              file=sys.stderr, flush=True)
        train = load_dataset(self.dataset, "train", self.data_dir, h, c).take(s["max_train"], seed=s["seed"])
        try:
            test = load_dataset(self.dataset, "test", self.data_dir, h, c)
        except DatasetNotFoundError:
            test = None
        objective = "classes" if train.num_classes >= 2 else "rotation"
        if objective == "rotation":
            x, y = rotations(train.as_float())
            test_x, test_y = rotations(test.as_float()) if test is not None and len(test) else (None, None)
            outputs = int(y.max()) + 1
        else:
            x, y = train.as_float(), train.labels
            test_x, test_y = (test.as_float(), test.labels) if test is not None and len(test) else (None, None)
            outputs = train.num_classes
        model = self._build(outputs)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        rng = np.random.default_rng(s["seed"])
        epochs = s["epochs"] or int(np.clip(np.ceil(300 * 128 / len(x)), 2, 20))
        for _ in range(epochs):  # our own seeded shuffle: fit(shuffle=True) would use global random state
            order = rng.permutation(len(x))
            model.fit(x[order], y[order], batch_size=128, epochs=1, shuffle=False, verbose=self.verbose)
        # Saved for inference: (features, probabilities), the features scaled to unit root-mean-square so
        # that KID's kernel (x.y/d + 1)^3 sees Inception-like magnitudes (large ones make KID very noisy).
        features = model.get_layer("features").output
        train_feats = keras.Model(model.inputs[0], features).predict(x[:5000], batch_size=self.batch_size, verbose=0)
        scale = float(1 / np.sqrt(np.mean(np.square(train_feats))))
        scaled = keras.layers.Rescaling(scale, name="scaled_features")(features)
        inference = keras.Model(model.inputs[0], [scaled, model.output], name=model.name)
        accuracy = None
        if test_x is not None:
            probs = model.predict(test_x, batch_size=self.batch_size, verbose=0)
            accuracy = float(np.mean(probs.argmax(1) == test_y))
        with atomic_path(self.model_path, suffix=".keras") as tmp:
            inference.save(tmp)  # a fresh, uncompiled Model: no optimizer state in the file
        # The JSON is written last: its presence marks a complete cache entry.
        write_json(self.info_path, dict(
            dataset=self.dataset, image_shape=list(self.image_shape), arch_version=self.ARCH_VERSION,
            classes=train.class_names, train_images=len(train), test_images=0 if test is None else len(test),
            test_accuracy=accuracy, feature_scale=scale, train_seconds=round(time.perf_counter() - started, 2), **s,
            epochs_trained=epochs, threads=TRAINING_THREADS, fingerprint=weights_fingerprint(inference),
            objective=objective, outputs=outputs, chance=1.0 / outputs))

    def _load(self):
        from ..rundir import load_keras_model

        # Loading a cached file never runs Python code from it (safe mode, forced).
        self.model = load_keras_model(self.model_path)
        self.info = read_json(self.info_path)
        self.accuracy = self.info["test_accuracy"]
        self.num_classes = int(self.model.outputs[1].shape[-1])
        self.dim = self.settings["feature_dim"]
        self.objective = self.info.get("objective", "classes")
        self.name = f"{'rotation_net' if self.objective == 'rotation' else 'domain_classifier'}:{self.key}"
        self.kind = ("self-supervised (rotation prediction; held-out rotation accuracy "
                     f"{self.accuracy if self.accuracy is None else round(self.accuracy, 3)}, chance "
                     f"{self.info.get('chance', 0.25):.2f})" if self.objective == "rotation" else
                     f"domain classifier (test accuracy {self.accuracy if self.accuracy is None else round(self.accuracy, 3)})")
        self.fingerprint = weights_fingerprint(self.model)

    def features_and_probs(self, images):
        images = _check_images(images, self.image_shape)

        def run(batch):
            feats, probs = self.model(batch, training=False)
            # A rotation net's outputs are rotation probabilities, not classes: none to give.
            return np.asarray(feats, np.float32), (np.asarray(probs, np.float32) if self.objective == "classes"
                                                   else None)

        return self._batched(run, images)

    def __repr__(self):
        return f"DomainClassifier({self.key!r}, test_accuracy={self.accuracy})"


# ---------------------------------------------------------------------------------------------- InceptionV3
class InceptionWeightsNotFoundError(FileNotFoundError):
    pass


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def weights_candidates(weights, env_var: str, file_name: str) -> Tuple[Optional[Path], list]:
    """(the first existing file, every place looked): `weights`, else $`env_var`, else the Keras model cache."""
    candidates = [Path(p).expanduser() for p in (weights, os.environ.get(env_var)) if p]
    candidates.append(keras_models_dir() / file_name)
    return next((c for c in candidates if c.is_file()), None), candidates


def find_inception_weights(weights=None) -> Path:
    """The ImageNet weights file: `weights`, else $GANLIB_INCEPTION_WEIGHTS, else the Keras model cache."""
    found, candidates = weights_candidates(weights, "GANLIB_INCEPTION_WEIGHTS", INCEPTION_FILE)
    if found is not None:
        return found
    where = "\n  ".join(str(c) for c in candidates)
    raise InceptionWeightsNotFoundError(
        f"InceptionV3 ImageNet weights not found. Looked in:\n  {where}\n"
        f"How to get them: on a machine with internet, download {INCEPTION_URL} (or run "
        "`python -c \"import keras; keras.applications.InceptionV3(include_top=False, weights='imagenet')\"`, "
        f"which stores it in ~/.keras/models/), copy the file to ~/.keras/models/{INCEPTION_FILE} here, or point "
        "GANLIB_INCEPTION_WEIGHTS (or the weights argument) at it. Without it, use the default domain classifier.")


class KerasInceptionV3Features(FeatureExtractor):
    """2048-d global-average-pool features of Keras' ImageNet InceptionV3 (`keras.applications`).

    Not the FID Inception network of published FIDs (see the module docstring): numbers from these features are
    comparable with each other, not with papers. Recorded as `extractor: keras_inception_v3`.

    `weights="auto"` finds the file (see `find_inception_weights`) or raises; a path uses that file;
    None builds untrained weights (only for testing the input path - its numbers mean nothing).
    """

    dim = 2048
    size = 299

    def __init__(self, weights="auto", batch_size: int = 50):
        import keras

        path = find_inception_weights(None if weights == "auto" else weights) if weights is not None else None
        self.batch_size, self.weights = batch_size, path
        # A file path (never "imagenet") so Keras cannot try to download.
        self.model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=path and str(path),
                                                    input_shape=(self.size, self.size, 3))
        self.name = "keras_inception_v3" if path else "keras_inception_v3_untrained"
        self.kind = "Keras ImageNet InceptionV3 (not the FID Inception of published FIDs)"
        self.fingerprint = weights_fingerprint(self.model)

    def preprocess(self, images):
        """[-1, 1] is already Inception's input range; grey -> 3 channels, RGBA -> RGB, bilinear to 299."""
        import tensorflow as tf

        images = _check_images(images)
        c = images.shape[-1]
        if c == 1:
            images = np.repeat(images, 3, axis=-1)
        elif c == 4:
            images = images[..., :3]  # drop alpha (generated RGBA has no meaningful background to blend on)
        elif c != 3:
            raise ValueError(f"Images need 1, 3 or 4 channels, got {c}.")
        return tf.image.resize(images, (self.size, self.size), method="bilinear")

    def features_and_probs(self, images):
        images = _check_images(images)
        # With include_top=False there is no ImageNet classifier head: no probabilities.
        return self._batched(lambda b: (np.asarray(self.model(self.preprocess(b), training=False), np.float32), None),
                             images)


InceptionV3Features = KerasInceptionV3Features  # the old name, kept so existing code keeps working


def _train_here(arguments: dict) -> None:
    """The child process of `DomainClassifier._train_in_child`: train and cache one network, nothing else."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(TRAINING_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(TRAINING_THREADS)
    net = DomainClassifier.__new__(DomainClassifier)
    net._setup(**arguments)
    net._train()

