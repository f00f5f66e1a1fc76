"""Adversarial losses on discriminator logits, each a small object with `d_loss` and `g_loss`.

All arithmetic is float32 even under mixed precision (the discriminator's logit layer is float32).
Targets for real/fake may be smoothed (constants or per-sample uniform draws) for the losses that use targets.
Penalties that need the discriminator itself (gradient penalty, R1, clipping) live in the trainer.
"""
from __future__ import annotations

from keras import ops


def _bce(logits, target):
    # BCE on logits: target * softplus(-x) + (1 - target) * softplus(x), stable for large |x|.
    return ops.mean(target * ops.softplus(-logits) + (1.0 - target) * ops.softplus(logits))


class Loss:
    name = "base"
    uses_targets = False  # whether label smoothing applies
    accuracy_threshold = 0.0  # logit above which D says "real"

    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        raise NotImplementedError

    def g_loss(self, fake):
        raise NotImplementedError


class NonSaturatingBCE(Loss):
    """Goodfellow et al.'s practical loss: G maximizes log D(G(z))."""
    name, uses_targets = "bce", True

    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        return _bce(real, real_target) + _bce(fake, fake_target)

    def g_loss(self, fake):
        return _bce(fake, 1.0)


class Minimax(NonSaturatingBCE):
    """The original minimax game: G minimizes log(1 - D(G(z))) (saturates early in training)."""
    name = "minimax"

    def g_loss(self, fake):
        return -_bce(fake, 0.0)


class Wasserstein(Loss):
    """Critic score difference; Lipschitz constraint from clipping (wgan) or gradient penalty (wgan_gp)."""
    name = "wgan"

    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        return ops.mean(fake) - ops.mean(real)

    def g_loss(self, fake):
        return -ops.mean(fake)


class Hinge(Loss):
    name = "hinge"

    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))

    def g_loss(self, fake):
        return -ops.mean(fake)


class LeastSquares(Loss):
    """LSGAN (Mao et al.): squared distance of D's output to the targets."""
    name, uses_targets, accuracy_threshold = "lsgan", True, 0.5

    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        return 0.5 * (ops.mean(ops.square(real - real_target)) + ops.mean(ops.square(fake - fake_target)))

    def g_loss(self, fake):
        return 0.5 * ops.mean(ops.square(fake - 1.0))


LOSSES = {cls.name: cls for cls in (NonSaturatingBCE, Minimax, Wasserstein, Hinge, LeastSquares)}
LOSSES["wgan_gp"] = Wasserstein


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
    return LOSSES[name]()
