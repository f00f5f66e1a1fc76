"""Adversarial losses on discriminator logits, each a small object with `d_loss` and `g_loss`.

All arithmetic is float32 even under mixed precision: `d_loss`/`g_loss` cast their inputs, so a bfloat16 logit
(e.g. from a model loaded with another dtype policy) cannot make a loss lose precision or overflow.
Targets for real/fake may be smoothed (constants or per-sample uniform draws) for the losses that use targets.
Penalties that need the discriminator itself (gradient penalty, R1, clipping) live in the trainer.
What the rest of ganlib knows about each loss (its name, use of targets, D's "real" threshold, Lipschitz
constraint) is its entry in `ganlib.registry.LOSSES`; the classes here are only the arithmetic.
"""
from __future__ import annotations

from keras import ops


def _f32(x):
    return ops.cast(x, "float32")


def _bce(logits, target):
    # BCE on logits: target * softplus(-x) + (1 - target) * softplus(x), stable for large |x|.
    return ops.mean(target * ops.softplus(-logits) + (1.0 - target) * ops.softplus(logits))


class Loss:
    def d_loss(self, real, fake, real_target=1.0, fake_target=0.0):
        """D's loss from its logits on a real and a fake batch (targets: floats or (n, 1) per-sample values)."""
        return self._d(_f32(real), _f32(fake), _f32(real_target), _f32(fake_target))

    def g_loss(self, fake):
        """G's loss from D's logits on a fake batch."""
        return self._g(_f32(fake))

    def _d(self, real, fake, real_target, fake_target):
        raise NotImplementedError

    def _g(self, fake):
        raise NotImplementedError


class NonSaturatingBCE(Loss):
    """Goodfellow et al.'s practical loss: G maximizes log D(G(z))."""

    def _d(self, real, fake, real_target, fake_target):
        return _bce(real, real_target) + _bce(fake, fake_target)

    def _g(self, fake):
        return _bce(fake, 1.0)


class Minimax(NonSaturatingBCE):
    """The original minimax game: G minimizes log(1 - D(G(z))) (saturates early in training)."""

    def _g(self, fake):
        return -_bce(fake, 0.0)  # log(1 - sigmoid(x)) = -softplus(x)


class Wasserstein(Loss):
    """Critic score difference; Lipschitz constraint from clipping (wgan) or gradient penalty (wgan_gp)."""

    def _d(self, real, fake, real_target, fake_target):
        return ops.mean(fake) - ops.mean(real)

    def _g(self, fake):
        return -ops.mean(fake)


class Hinge(Loss):
    """Hinge loss (Lim & Ye; Miyato et al.): D pushes real logits above 1 and fake ones below -1."""

    def _d(self, real, fake, real_target, fake_target):
        return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))

    def _g(self, fake):
        return -ops.mean(fake)


class LeastSquares(Loss):
    """LSGAN (Mao et al.): squared distance of D's output to the targets (a=0, b=c=1)."""

    def _d(self, real, fake, real_target, fake_target):
        return 0.5 * (ops.mean(ops.square(real - real_target)) + ops.mean(ops.square(fake - fake_target)))

    def _g(self, fake):
        return 0.5 * ops.mean(ops.square(fake - 1.0))


def get_loss(name: str) -> Loss:
    """The loss registered as `name` in ganlib.registry.LOSSES."""
    from .registry import LOSSES, resolve

    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    return resolve(LOSSES[name].implementation)()
