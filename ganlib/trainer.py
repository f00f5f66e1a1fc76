"""The adversarial training step: a `keras.Model` subclass whose `train_step` updates D then G.

One generator forward pass per step serves both updates: the fakes are produced under the generator's tape,
the discriminator is updated on them with that tape paused, and the generator's loss then re-scores the same
fakes with the *updated* discriminator (the alternating scheme of Goodfellow et al., without generating the fakes
twice as the tutorial code does).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from .config import Config
from .losses import get_loss


def make_optimizer(config: Config, net: str, total_steps: int):
    """Adam / RMSprop / SGD for network `net` ('g' or 'd') with the config's learning-rate schedule."""
    lr = getattr(config, f"{net}_lr")
    if config.lr_schedule == "linear_decay":
        lr = keras.optimizers.schedules.PolynomialDecay(lr, max(1, total_steps), end_learning_rate=0.0)
    elif config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps))
    kind = getattr(config, f"{net}_optimizer")
    name = f"{net}_optimizer"
    if kind == "adam":
        return keras.optimizers.Adam(lr, beta_1=getattr(config, f"{net}_beta1"), beta_2=getattr(config, f"{net}_beta2"),
                                     name=name)
    if kind == "rmsprop":
        return keras.optimizers.RMSprop(lr, name=name)
    return keras.optimizers.SGD(lr, momentum=getattr(config, f"{net}_beta1"), name=name)


class GANTrainer(keras.Model):
    """Trains `generator` against `discriminator` on batches of (images in [-1, 1], integer labels)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, config: Config, num_classes: int,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.num_classes = num_classes
        self.adversarial_loss = get_loss(config.loss)
        self.noise_seed = keras.random.SeedGenerator(config.seed)
        self.ema_generator = None
        if config.ema > 0:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        # Batch norm computes statistics per call, so real and fake batches must then go through D separately.
        self._joint_d_pass = config.d_norm != "batch"

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------ helpers
    def _g_inputs(self, z, labels):
        return [z, labels] if self.config.conditional else z

    def _d(self, images, labels, training=True):
        return self.discriminator([images, labels] if self.config.conditional else images, training=training)

    def _target(self, spec, n):
        if isinstance(spec, (list, tuple)):
            return keras.random.uniform((n, 1), spec[0], spec[1], seed=self.noise_seed)
        return float(spec)

    def sample_noise(self, n):
        z = keras.random.normal((n, self.config.latent_dim), seed=self.noise_seed)
        labels = keras.random.randint((n,), 0, self.num_classes, seed=self.noise_seed, dtype="int32")
        return z, labels

    def _penalty(self, real, fake, labels):
        """Gradient penalties on D: WGAN-GP on interpolates (alpha ~ U[0, 1] per sample), R1 on reals."""
        cfg, total = self.config, 0.0
        if cfg.loss == "wgan_gp" and cfg.gp_weight > 0:
            alpha = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), 0.0, 1.0, seed=self.noise_seed)
            mixed = real + alpha * (fake - real)
            with tf.GradientTape() as tape:
                tape.watch(mixed)
                score = self._d(mixed, labels)
            grad = tf.reshape(tape.gradient(score, mixed), (ops.shape(real)[0], -1))
            norm = ops.sqrt(ops.sum(ops.square(grad), axis=1) + 1e-12)
            total += cfg.gp_weight * ops.mean(ops.square(norm - 1.0))
        if cfg.r1_weight > 0:
            with tf.GradientTape() as tape:
                tape.watch(real)
                score = self._d(real, labels)
            grad = tf.reshape(tape.gradient(score, real), (ops.shape(real)[0], -1))
            total += 0.5 * cfg.r1_weight * ops.mean(ops.sum(ops.square(grad), axis=1))
        return total

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        real_all, real_labels_all = data[0], data[1]  # Keras may append a (None) sample-weight slot
        cfg, loss = self.config, self.adversarial_loss
        bs, k = cfg.batch_size, cfg.d_steps
        threshold = loss.accuracy_threshold
        z, fake_labels = self.sample_noise(k * bs)
        with tf.GradientTape() as g_tape:
            fake_all = self.generator(self._g_inputs(z, fake_labels), training=True)
            with g_tape.stop_recording():
                for i in range(k):  # unrolled: k is a Python int
                    real, labels = real_all[i * bs:(i + 1) * bs], real_labels_all[i * bs:(i + 1) * bs]
                    fake, f_labels = fake_all[i * bs:(i + 1) * bs], fake_labels[i * bs:(i + 1) * bs]
                    with tf.GradientTape() as d_tape:
                        if self._joint_d_pass:
                            both = self._d(ops.concatenate([real, fake]), ops.concatenate([labels, f_labels]))
                            real_out, fake_out = both[:bs], both[bs:]
                        else:
                            real_out, fake_out = self._d(real, labels), self._d(fake, f_labels)
                        real_t = self._target(cfg.real_label, bs) if loss.uses_targets else 1.0
                        fake_t = self._target(cfg.fake_label, bs) if loss.uses_targets else 0.0
                        d_loss = loss.d_loss(real_out, fake_out, real_t, fake_t)
                        d_total = d_loss + self._penalty(real, fake, labels)
                    d_vars = self.discriminator.trainable_variables
                    self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars))
                    if cfg.loss == "wgan":
                        for w in self.discriminator.trainable_weights:
                            w.assign(ops.clip(w, -cfg.clip_value, cfg.clip_value))
            g_out = self._d(fake_all[-bs:], fake_labels[-bs:])
            g_loss = loss.g_loss(g_out)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        if self.ema_generator is not None:
            for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
                ema_w.assign(cfg.ema * ema_w + (1.0 - cfg.ema) * ops.cast(w, ema_w.dtype))
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_acc_real": ops.mean(ops.cast(real_out > threshold, "float32")),
            "d_acc_fake": ops.mean(ops.cast(fake_out <= threshold, "float32")),
            "d_total": d_total,
        }

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self):
        """The generator used for samples and metrics: the EMA copy when EMA is on."""
        return self.ema_generator if self.ema_generator is not None else self.generator


def generate(generator: keras.Model, z, labels=None, batch_size: int = 500) -> np.ndarray:
    """Images in [-1, 1] for latent points z (and labels for a conditional generator), in batches."""
    z = np.asarray(z, np.float32)
    conditional = isinstance(generator.input, (list, tuple))
    out = []
    for i in range(0, len(z), batch_size):
        inputs = [z[i:i + batch_size], np.asarray(labels[i:i + batch_size], np.int32)] if conditional else z[i:i + batch_size]
        out.append(np.asarray(generator(inputs, training=False), np.float32))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(generator.output.shape[1:]), np.float32)
