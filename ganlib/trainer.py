"""The adversarial training step: a `keras.Model` subclass whose `train_step` updates D then G.

One generator forward pass per step serves both updates: the fakes are produced under the generator's tape,
the discriminator is updated on them with that tape paused, and the generator's loss then re-scores the same
fakes with the *updated* discriminator (the alternating scheme of Goodfellow et al., without generating the fakes
twice as the tutorial code does).

With `d_steps = k` a step draws k real batches and k fake batches, updates D k times and G once. A d_steps
schedule compiles one such step per distinct k and picks the current epoch's with `tf.switch_case`, so a
schedule that never changes runs exactly the fixed-k step. MSG-GAN models pass image pyramids (lists, coarsest
first) where other models pass image batches; `tf.nest` lets the same code handle both.
"""
from __future__ import annotations

import functools
import math

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from .augment import diff_augment, parse_policy
from .config import Config
from .losses import get_loss
from .registry import LOSSES
from .sampling import full_size, generate  # noqa: F401  (ganlib.trainer.generate: kept for users' code)
from .models import image_pyramid


def make_optimizer(config: Config, net: str, total_steps: int):
    """Adam / RMSprop / SGD for network `net` ('g' or 'd') with the config's learning-rate schedule.

    `total_steps` counts generator steps. The discriminator is updated d_steps times per generator step, so its
    schedule spans all of its updates (e.g. linear_decay reaches 0 at the end of training, not after 1/d_steps).
    """
    lr = getattr(config, f"{net}_lr")
    if net == "d":
        per_epoch = [config.d_steps_at(e) for e in range(config.epochs)]
        total_steps = int(round(total_steps * sum(per_epoch) / config.epochs))
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


def _rows(images, start, stop):
    """Rows start:stop of an image batch or of every level of an image pyramid."""
    return tf.nest.map_structure(lambda x: x[start:stop], images)


class GANTrainer(keras.Model):
    """Trains `generator` against `discriminator` on batches of (images in [-1, 1], integer labels).

    `steps_per_epoch` (set by `fit` when given there) converts the generator step counter into the epoch a
    d_steps schedule refers to; it is needed only when the schedule changes.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, config: Config, num_classes: int,
                 steps_per_epoch=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.num_classes = num_classes
        self.adversarial_loss = get_loss(config.loss)
        self.loss_entry = LOSSES[config.loss]  # targets, D's threshold, Lipschitz constraint
        self.noise_seed = keras.random.SeedGenerator(config.seed)
        self.ema_generator = None
        self._augment = parse_policy(config.augment)
        # ADA (Karras et al. 2020): the probability of each augmentation, raised while D is too sure of the real
        # images (E[sign(D(real))] above ada_target) and lowered otherwise; checkpointed with the trainer.
        self.augment_p = keras.Variable(0.0, dtype="float32", trainable=False, name="augment_p") \
            if config.ada_target else None
        if config.ema_on:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
            # Only the trained weights are averaged: the batch-norm statistics of the averaged weights are
            # recomputed for them when the EMA generator is used (sampling_generator).
            self._ema_pairs = [(e, w) for e, w in zip(self.ema_generator.weights, generator.weights) if w.trainable]
            self._ema_refreshed_at = None
        self.scales = len(generator.outputs)  # > 1: MSG-GAN, D sees image pyramids
        # Batch norm computes statistics per call, so real and fake batches must then go through D separately.
        self._joint_d_pass = config.d_norm != "batch"
        schedule = config.d_steps_schedule
        self._k_values = sorted({k for _, k in schedule})  # one compiled step per distinct number of D updates
        self._schedule_starts = [start for start, _ in schedule]
        self._schedule_branch = [self._k_values.index(k) for _, k in schedule]
        self.steps_per_epoch = steps_per_epoch or config.steps_per_epoch

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def fit(self, *args, steps_per_epoch=None, **kwargs):
        if steps_per_epoch and steps_per_epoch != self.steps_per_epoch:
            self.steps_per_epoch = steps_per_epoch
            self.train_function = None  # retrace: the d_steps schedule's epoch arithmetic uses it
        return super().fit(*args, steps_per_epoch=steps_per_epoch, **kwargs)

    def call(self, inputs, training=False):
        return full_size(self.generator(inputs, training=training))

    # ------------------------------------------------------------------ helpers
    def _g_inputs(self, z, labels):
        return [z, labels] if self.config.conditional else z

    def _d(self, images, labels, training=True):
        """D's logits for an image batch, or for an image pyramid (MSG-GAN)."""
        inputs = list(images) if isinstance(images, (list, tuple)) else [images]
        if self.config.conditional:
            inputs.append(labels)
        return self.discriminator(inputs if len(inputs) > 1 else inputs[0], training=training)

    def real_confidence(self, images, labels, batch: int = 128) -> float:
        """E[sign(D(x) - threshold)] over real images (uint8), in inference mode: +1 when D calls every one of them
        real. On training images against held-out ones it shows D memorizing its training set (the idea of Karras
        et al. 2020's validation heuristic r_v)."""
        from .data import to_float

        signs = []
        for start in range(0, len(images), batch):
            x = self._d_input(ops.convert_to_tensor(to_float(images[start:start + batch])))
            out = self._d(x, ops.convert_to_tensor(labels[start:start + batch]), training=False)
            signs.append(np.sign(ops.convert_to_numpy(ops.cast(out, "float32")).ravel()
                                 - self.loss_entry.accuracy_threshold))
        return float(np.mean(np.concatenate(signs))) if signs else float("nan")

    def _d_input(self, real):
        """Real images as D takes them: MSG-GAN's D takes the average-pooled pyramid matching G's outputs."""
        return image_pyramid(real, self.scales - 1) if self.scales > 1 else real

    def _target(self, spec, n):
        if isinstance(spec, (list, tuple)):
            return keras.random.uniform((n, 1), spec[0], spec[1], seed=self.noise_seed)
        return float(spec)

    def targets(self, n):
        """(real, fake) D targets for a batch of n: constants, or per-sample uniform draws (label smoothing)."""
        if not self.loss_entry.uses_targets:
            return 1.0, 0.0
        return self._target(self.config.real_label, n), self._target(self.config.fake_label, n)

    def sample_noise(self, n):
        z = keras.random.normal((n, self.config.latent_dim), seed=self.noise_seed)
        bs = self.config.batch_size
        if self.config.mode_seeking and n % bs == 0:  # each batch's second half asks for its first half's classes
            half = keras.random.randint((n // bs, bs // 2), 0, self.num_classes, seed=self.noise_seed,
                                        dtype="int32")
            return z, ops.reshape(ops.concatenate([half, half], axis=1), (n,))
        labels = keras.random.randint((n,), 0, self.num_classes, seed=self.noise_seed, dtype="int32")
        return z, labels

    def mode_seeking_term(self, fake, z):
        """Mode-seeking regularization (Mao et al. 2019, MSGAN): mode_seeking / (ratio + 1e-5), where ratio is
        the mean distance of the two halves' images over the mean distance of their latent points. The halves
        ask for the same classes (sample_noise), so G is penalized for mapping different points to one image."""
        fake = ops.cast(tf.nest.flatten(fake)[-1], "float32")
        half = self.config.batch_size // 2
        ratio = ops.mean(ops.abs(fake[:half] - fake[half:])) / ops.mean(ops.abs(z[:half] - z[half:]))
        return self.config.mode_seeking / (ratio + 1e-5)

    def augment(self, images):
        """DiffAugment of the images D sees (identity without a policy), see ganlib.augment; with ADA each operation
        is applied with the current probability `augment_p`."""
        return diff_augment(images, self._augment, self.noise_seed,
                            None if self.augment_p is None else ops.convert_to_tensor(self.augment_p))

    def ada_update(self, real_out, threshold):
        """StyleGAN2-ADA's heuristic after each D update: r_t = E[sign(D(real))]; p moves by
        sign(r_t - target) x batch / (ada_kimg x 1000), clipped to [0, 1]. Returns r_t (logged)."""
        cfg = self.config
        r_t = ops.mean(ops.sign(ops.cast(real_out, "float32") - threshold))
        step = ops.sign(r_t - cfg.ada_target) * (cfg.batch_size / (cfg.ada_kimg * 1000.0))
        self.augment_p.assign(ops.clip(self.augment_p + step, 0.0, 1.0))
        return r_t

    def interpolation_alpha(self, n):
        """WGAN-GP's mixing factor: uniform in [0, 1], one per sample (Gulrajani et al., Algorithm 1)."""
        return keras.random.uniform((n, 1, 1, 1), 0.0, 1.0, seed=self.noise_seed)

    def _input_gradient_sq_norms(self, images, labels):
        """Per-sample squared norm of dD/d(input), in float32; for a pyramid, over all of its levels."""
        images = tf.nest.map_structure(tf.convert_to_tensor, images)
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = self._d(images, labels)
        grads = tf.nest.flatten(tape.gradient(score, images))
        n = ops.shape(grads[0])[0]
        return sum(ops.sum(ops.square(ops.reshape(ops.cast(g, "float32"), (n, -1))), axis=1) for g in grads)

    def gradient_penalty(self, real, fake, labels):
        """gp_weight * E[(|grad D(x)| - 1)^2] at x = real + alpha (fake - real)."""
        alpha = self.interpolation_alpha(ops.shape(tf.nest.flatten(real)[0])[0])
        mixed = tf.nest.map_structure(lambda r, f: r + alpha * (f - r), real, fake)
        norm = ops.sqrt(self._input_gradient_sq_norms(mixed, labels) + 1e-12)
        return self.config.gp_weight * ops.mean(ops.square(norm - 1.0))

    def r1_penalty(self, real, labels):
        """R1 (Mescheder et al. 2018): r1_weight / 2 * E[|grad D(x)|^2] on real x."""
        return 0.5 * self.config.r1_weight * ops.mean(self._input_gradient_sq_norms(real, labels))

    def _penalty(self, real, fake, labels):
        total = 0.0
        if self.loss_entry.lipschitz == "gradient_penalty" and self.config.gp_weight > 0:
            total += self.gradient_penalty(real, fake, labels)
        if self.config.r1_weight > 0:
            total += self.r1_penalty(real, labels)
        return total

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        real, labels = data[0], data[1]  # Keras may append a (None) sample-weight slot
        if len(self._k_values) == 1:
            return self._step(real, labels, self._k_values[0])
        if not self.steps_per_epoch:
            raise ValueError("A changing d_steps schedule needs steps_per_epoch (pass it to fit or GANTrainer).")
        # The epoch of this step from G's update counter, which checkpoints restore (so resumes agree).
        epoch = self.g_optimizer.iterations // self.steps_per_epoch
        entry = ops.sum(ops.cast(ops.convert_to_tensor(self._schedule_starts, "int64") <= epoch, "int32")) - 1
        branch = ops.take(ops.convert_to_tensor(self._schedule_branch, "int32"), entry)
        return tf.switch_case(branch, [functools.partial(self._step, real, labels, k) for k in self._k_values])

    def _step(self, real_all, real_labels_all, k):
        """k discriminator updates and one generator update; real_all holds at least k batches."""
        cfg, loss = self.config, self.adversarial_loss
        bs = cfg.batch_size
        z, fake_labels = self.sample_noise(k * bs)
        with tf.GradientTape() as g_tape:
            fake_all = self.generator(self._g_inputs(z, fake_labels), training=True)
            with g_tape.stop_recording():
                for i in range(k):  # unrolled: k is a Python int
                    d_logs = self._d_update(self._d_input(real_all[i * bs:(i + 1) * bs]),
                                            real_labels_all[i * bs:(i + 1) * bs],
                                            _rows(fake_all, i * bs, (i + 1) * bs), fake_labels[i * bs:(i + 1) * bs])
            g_fake = _rows(fake_all, (k - 1) * bs, k * bs)
            g_loss = loss.g_loss(self._d(self.augment(g_fake), fake_labels[-bs:]))
            g_total = g_loss + (self.mode_seeking_term(g_fake, z[-bs:]) if cfg.mode_seeking else 0.0)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_total, g_vars), g_vars))
        if self.ema_generator is not None:
            decay = self.ema_decay()
            for ema_w, w in self._ema_pairs:  # trained weights are float32 under mixed precision too
                ema_w.assign(decay * ema_w + (1.0 - decay) * ops.cast(w, "float32"))
        return {"g_loss": g_loss, **d_logs}

    def ema_decay(self):
        """This step's EMA decay: StyleGAN2-ADA's rule (Karras et al. 2020, training_loop.py), a half-life of
        ema_kimg thousand images but at most ema_rampup x the images generated so far, so that a short run's
        average is not still dragging its random initial weights along. `ema` (a fixed decay per step) is
        turned into the half-life it implies at this batch size and ramped up the same way."""
        cfg = self.config
        half_life = cfg.ema_kimg * 1000.0 if cfg.ema_kimg else cfg.batch_size * math.log(0.5) / math.log(cfg.ema)
        if cfg.ema_rampup:
            seen = ops.cast(self.g_optimizer.iterations, "float32") * cfg.batch_size
            half_life = ops.minimum(half_life, seen * cfg.ema_rampup)
        return ops.power(0.5, cfg.batch_size / ops.maximum(half_life, 1e-8))

    def _d_update(self, real, labels, fake, f_labels):
        cfg, loss = self.config, self.adversarial_loss
        bs = cfg.batch_size
        threshold = self.loss_entry.accuracy_threshold
        real, fake = self.augment(real), self.augment(fake)
        with tf.GradientTape() as d_tape:
            if self._joint_d_pass:
                both = self._d(tf.nest.map_structure(lambda r, f: ops.concatenate([r, f]), real, fake),
                               ops.concatenate([labels, f_labels]))
                real_out, fake_out = both[:bs], both[bs:]
            else:
                real_out, fake_out = self._d(real, labels), self._d(fake, f_labels)
            real_t, fake_t = self.targets(bs)
            d_loss = loss.d_loss(real_out, fake_out, real_t, fake_t)
            d_total = d_loss + self._penalty(real, fake, labels)
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars))
        if self.loss_entry.lipschitz == "clip":  # WGAN's constraint: every D parameter clipped after every update
            for w in self.discriminator.trainable_weights:
                w.assign(ops.clip(w, -cfg.clip_value, cfg.clip_value))
        ada = {} if self.augment_p is None else {"ada_rt": self.ada_update(real_out, threshold),
                                                  "augment_p": ops.convert_to_tensor(self.augment_p)}
        return {
            **ada,
            "d_loss": d_loss,
            "d_acc_real": ops.mean(ops.cast(real_out > threshold, "float32")),
            "d_acc_fake": ops.mean(ops.cast(fake_out <= threshold, "float32")),
            "d_total": ops.convert_to_tensor(d_total, "float32"),
        }

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self):
        """The generator used for samples and metrics: the EMA copy when EMA is on (with its normalization
        statistics recomputed for its current weights)."""
        if self.ema_generator is None:
            return self.generator
        step = int(self.g_optimizer.iterations.numpy())
        if self._ema_refreshed_at != step:
            refresh_batch_norm_statistics(self.ema_generator, self.num_classes, self.config.conditional)
            self._ema_refreshed_at = step
        return self.ema_generator


def refresh_batch_norm_statistics(generator, num_classes: int, conditional: bool, batches: int = 4,
                                  batch_size: int = 256, seed: int = 0) -> None:
    """Set the moving mean and variance of every batch norm in `generator` to the exact average of its batch
    statistics over `batches` batches of fixed noise (labels cycling through the classes).

    Why: the EMA generator's weights are an average of the live generator's, and the live generator's running
    statistics describe *its* activations, not those of the averaged weights. BigGAN (Brock et al. 2019) computes
    such "standing statistics" for its EMA generator; without them ganlib's EMA samples were grey squares
    (issue 26). Fixed noise makes it a function of the weights alone, so resumed runs agree."""
    import numpy as np

    norms = [layer for layer in _all_layers(generator) if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    rng = np.random.default_rng(seed)
    latent = generator.inputs[0].shape[-1]
    saved = [(n.momentum, n.trainable) for n in norms]
    try:
        for n in norms:
            n.trainable = True  # a frozen batch norm (the EMA copy is frozen) ignores training=True
        for i in range(batches):
            for n in norms:
                n.momentum = i / (i + 1.0)  # a cumulative average: batch i gets weight 1 / (i + 1)
            z = rng.standard_normal((batch_size, latent)).astype("float32")
            labels = (np.arange(batch_size) % max(1, num_classes)).astype("int32")
            generator([z, labels] if conditional else z, training=True)
    finally:
        for n, (momentum, trainable) in zip(norms, saved):
            n.momentum, n.trainable = momentum, trainable


def _all_layers(model):
    """Every layer of a model, nested ones (inside custom layers) included."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]
