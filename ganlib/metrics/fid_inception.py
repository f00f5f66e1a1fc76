"""The FID Inception network of published FIDs, in Keras, from pytorch-fid's weights (no download, no pickle).

Published FIDs (Heusel et al. 2017; pytorch-fid, torch-fidelity) use the 2015 TensorFlow Inception graph, which
differs from `keras.applications.InceptionV3`: other weights, and the branch pool of its last block ("Mixed_7c",
pytorch-fid's `FIDInceptionE_2`) is a 3x3 *max* pool. Its other average pools exclude padding, which is what
Keras' `AveragePooling2D(padding="same")` already does. This module builds that network from Keras' InceptionV3
with the last block's pool swapped, and fills it from pytorch-fid's weights converted once to an `.npz`:

    pip install torch                                  # only for the conversion
    python -m ganlib.metrics.fid_inception convert pt_inception-2015-12-05-6726825d.pth ~/.keras/models/fid_inception.npz

(the .pth is pytorch-fid's FID_WEIGHTS_URL; the conversion reads it with `torch.load(weights_only=True)`).
Then `GANLIB_FEATURES=fid_inception`, or `FIDInceptionFeatures()`, scores with it: input in [-1, 1], grey
repeated to RGB, bilinear resize to 299 (as pytorch-fid), 2048-d pool3 features.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from .features import FeatureExtractor, _check_images, keras_models_dir, weights_candidates, weights_fingerprint

WEIGHTS_FILE = "fid_inception.npz"
SIZE = 299
BN_EPSILON = 1e-3  # torchvision's BasicConv2d and Keras' InceptionV3 agree


class FIDInceptionWeightsNotFoundError(FileNotFoundError):
    pass


def find_weights(weights=None) -> Path:
    """`weights`, else $GANLIB_FID_INCEPTION_WEIGHTS, else ~/.keras/models/fid_inception.npz."""
    found, candidates = weights_candidates(weights, "GANLIB_FID_INCEPTION_WEIGHTS", WEIGHTS_FILE)
    if found is not None:
        return found
    raise FIDInceptionWeightsNotFoundError(
        "The FID Inception weights were not found. Looked in:\n  " + "\n  ".join(map(str, candidates)) + "\n"
        "How to get them: download pytorch-fid's pt_inception-2015-12-05-6726825d.pth on a machine with internet "
        "(pytorch_fid.inception.FID_WEIGHTS_URL), then convert it here: `python -m ganlib.metrics.fid_inception "
        f"convert <that .pth> {keras_models_dir() / WEIGHTS_FILE}` (needs `pip install torch`).")


def _creation_index(layer) -> int:
    """Keras names layers conv2d, conv2d_1, ... in the order the code created them: the order of pytorch-fid's
    modules in every block (model.layers is topological, which interleaves branches)."""
    match = re.search(r"_(\d+)$", layer.name)
    return int(match.group(1)) if match else 0


def build_fid_inception():
    """The architecture (random weights): Keras InceptionV3 without top, global average pool, and a 3x3 max pool
    (stride 1, same padding) in place of the last block's branch average pool."""
    import keras

    base = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                          input_shape=(SIZE, SIZE, 3))
    last_pool = max((l for l in base.layers if isinstance(l, keras.layers.AveragePooling2D)), key=_creation_index)

    def clone(layer):
        if layer is last_pool:
            return keras.layers.MaxPooling2D(3, strides=1, padding="same", name=layer.name.replace("average", "max"))
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(base, clone_function=clone)


def conv_and_bn_layers(model):
    """(Conv2D, BatchNormalization) pairs in pytorch-fid's order (94 of them)."""
    import keras

    convs = sorted((l for l in model.layers if isinstance(l, keras.layers.Conv2D)), key=_creation_index)
    bns = sorted((l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)), key=_creation_index)
    return list(zip(convs, bns))


_BLOCKS = {  # the branches of each block type, in pytorch-fid's (torchvision's) module order
    "A": ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
          "branch_pool"],
    "B": ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
    "C": ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3"] + [f"branch7x7dbl_{i}" for i in range(1, 6)]
         + ["branch_pool"],
    "D": ["branch3x3_1", "branch3x3_2"] + [f"branch7x7x3_{i}" for i in range(1, 5)],
    "E": ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
          "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"],
}
TORCH_PREFIXES = (["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
                  + [f"Mixed_{block}.{branch}" for block, kind in
                     [("5b", "A"), ("5c", "A"), ("5d", "A"), ("6a", "B"), ("6b", "C"), ("6c", "C"), ("6d", "C"),
                      ("6e", "C"), ("7a", "D"), ("7b", "E"), ("7c", "E")] for branch in _BLOCKS[kind]])


def assign_pytorch_fid_weights(model, arrays: dict) -> None:
    """Fill `model` from pytorch-fid's state dict (as arrays). Checked whole before anything is assigned.

    Torch conv kernels (out, in, h, w) become Keras' (h, w, in, out). Keras' InceptionV3 batch norm has no
    scale (as the 2015 graph); a torch scale gamma != 1 is folded into the variance:
    gamma (x - m) / sqrt(v + e) = (x - m) / sqrt(v' + e) with v' = (v + e) / gamma^2 - e."""
    prefixes, pairs = TORCH_PREFIXES, conv_and_bn_layers(model)
    missing = [p for p in prefixes if f"{p}.conv.weight" not in arrays]
    if missing or len(prefixes) != len(pairs):
        raise ValueError(f"Not pytorch-fid's FID Inception weights: {len(missing)} of its {len(prefixes)} "
                         f"convolutions are missing (e.g. {missing[:2]}).")
    values = []
    for prefix, (conv, bn) in zip(prefixes, pairs):
        kernel = np.transpose(np.asarray(arrays[f"{prefix}.conv.weight"], np.float32), (2, 3, 1, 0))
        if kernel.shape != tuple(conv.kernel.shape):
            raise ValueError(f"{prefix}: kernel {kernel.shape}, layer {conv.name} expects {tuple(conv.kernel.shape)}.")
        gamma = np.asarray(arrays.get(f"{prefix}.bn.weight", np.ones(kernel.shape[-1])), np.float64)
        if (gamma <= 0).any():
            raise ValueError(f"{prefix}: a batch-norm scale <= 0 cannot be folded into the variance.")
        var = (np.asarray(arrays[f"{prefix}.bn.running_var"], np.float64) + BN_EPSILON) / gamma ** 2 - BN_EPSILON
        values.append((conv, [kernel], bn, [np.asarray(arrays[f"{prefix}.bn.bias"], np.float32),
                                           np.asarray(arrays[f"{prefix}.bn.running_mean"], np.float32),
                                           var.astype(np.float32)]))
    for conv, conv_weights, bn, bn_weights in values:
        conv.set_weights(conv_weights)
        bn.set_weights(bn_weights)


class FIDInceptionFeatures(FeatureExtractor):
    """2048-d pool3 features of the FID Inception network: FIDs comparable with published ones (same network,
    same resize; sample counts and the reference set must still match the paper's).

    `weights="auto"` finds the converted file (see `find_weights`) or raises; a path uses that file; None keeps
    random weights (only for testing the input path - its numbers mean nothing)."""

    dim = 2048
    size = SIZE

    def __init__(self, weights="auto", batch_size: int = 50):
        from ..rundir import load_arrays

        path = find_weights(None if weights == "auto" else weights) if weights is not None else None
        self.batch_size, self.weights = batch_size, path
        self.model = build_fid_inception()
        if path is not None:
            assign_pytorch_fid_weights(self.model, load_arrays(path))  # an .npz read without unpickling
        self.name = "fid_inception" if path else "fid_inception_untrained"
        self.kind = "FID Inception (pytorch-fid's weights): the network of published FIDs"
        self.fingerprint = weights_fingerprint(self.model)

    def preprocess(self, images):
        """[-1, 1] stays (pytorch-fid maps [0, 1] to it after resizing: the same, resizing being linear); grey ->
        RGB, RGBA -> RGB; bilinear to 299 with half-pixel centres (torch's align_corners=False), no antialias."""
        import tensorflow as tf

        images = _check_images(images)
        c = images.shape[-1]
        if c == 1:
            images = np.repeat(images, 3, axis=-1)
        elif c == 4:
            images = images[..., :3]
        elif c != 3:
            raise ValueError(f"Images need 1, 3 or 4 channels, got {c}.")
        return tf.image.resize(images, (self.size, self.size), method="bilinear", antialias=False)

    def features_and_probs(self, images):
        images = _check_images(images)
        return self._batched(lambda b: (np.asarray(self.model(self.preprocess(b), training=False), np.float32), None),
                             images)


def convert(pth: str, out: str) -> None:
    """pytorch-fid's .pth -> an .npz of its arrays (torch's weights-only loader: no code runs)."""
    import torch

    state = torch.load(pth, map_location="cpu", weights_only=True)
    arrays = {k: v.numpy() for k, v in state.items() if hasattr(v, "numpy")}
    Path(out).expanduser().parent.mkdir(parents=True, exist_ok=True)
    np.savez(Path(out).expanduser(), **arrays)
    print(f"wrote {out}: {len(arrays)} arrays")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "convert":
        sys.exit("usage: python -m ganlib.metrics.fid_inception convert PTH OUT.npz")
    convert(sys.argv[2], sys.argv[3])
