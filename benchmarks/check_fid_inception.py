"""Check ganlib's Keras FID Inception against pytorch-fid's own network, without its (undownloadable) weights.

pytorch-fid's architecture (`FIDInceptionA/C/E_1/E_2` in torchvision's InceptionV3) is built with random weights
and randomised batch-norm statistics and scales, its features computed for random images as pytorch-fid computes
them (bilinear resize of [0, 1] images to 299, then 2x - 1); the same weights go through ganlib's converter into
`FIDInceptionFeatures`, and the features are compared. Two processes, because ganlib's environment has no torch:

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch pytorch-fid
    /tmp/torchenv/bin/python benchmarks/check_fid_inception.py torch /tmp/fidcheck      # weights, images, features
    .venv/bin/python benchmarks/check_fid_inception.py keras /tmp/fidcheck              # compares, prints
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def torch_side(out: Path) -> None:
    import torch
    import torch.nn.functional as F
    from pytorch_fid.inception import (FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2,
                                       _inception_v3)

    torch.manual_seed(0)
    net = _inception_v3(num_classes=1008, aux_logits=False, weights=None)  # as pytorch_fid.fid_inception_v3
    net.Mixed_5b, net.Mixed_5c = FIDInceptionA(192, pool_features=32), FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b, net.Mixed_6c = FIDInceptionC(768, channels_7x7=128), FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d, net.Mixed_6e = FIDInceptionC(768, channels_7x7=160), FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b, net.Mixed_7c = FIDInceptionE_1(1280), FIDInceptionE_2(2048)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # not the trivial 1/0/0/1 of a fresh network
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
    net.eval()
    blocks = [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2), net.Conv2d_3b_1x1,
              net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2), net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
              net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c,
              torch.nn.AdaptiveAvgPool2d(1)]  # pytorch_fid.inception.InceptionV3, up to pool3
    images = np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)  # ganlib's range
    x = torch.from_numpy((images.transpose(0, 3, 1, 2) + 1) / 2)  # pytorch-fid's input: [0, 1], NCHW
    x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    with torch.no_grad():
        for block in blocks:
            x = block(x)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    np.savez(out / "reference.npz", images=images, features=x[:, :, 0, 0].numpy())
    print(f"torch side: {len(net.state_dict())} arrays, features {tuple(x.shape[:2])} -> {out}")


def keras_side(out: Path) -> None:
    from ganlib.metrics.fid_inception import FIDInceptionFeatures

    reference = np.load(out / "reference.npz")
    net = FIDInceptionFeatures(weights=str(out / "weights.npz"), batch_size=4)
    features = net(reference["images"])
    expected = reference["features"]
    error = np.abs(features - expected).max() / np.abs(expected).max()
    print(f"ganlib FIDInceptionFeatures vs pytorch-fid (random weights, randomised batch norm): "
          f"max |difference| / max |feature| = {error:.2e} over {features.size} values")
    sys.exit(0 if error < 1e-3 else 1)


if __name__ == "__main__":
    {"torch": torch_side, "keras": keras_side}[sys.argv[1]](Path(sys.argv[2]))
