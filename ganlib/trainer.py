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

import keras
import tensorflow as tf
from keras import ops

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
        if config.ema > 0:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
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
        labels = keras.random.randint((n,), 0, self.num_classes, seed=self.noise_seed, dtype="int32")
        return z, labels

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
            g_loss = loss.g_loss(self._d(_rows(fake_all, (k - 1) * bs, k * bs), fake_labels[-bs:]))
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        if self.ema_generator is not None:
            decay = cfg.ema
            for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
                if ema_w.dtype == "float32":  # master weights are float32 under mixed precision too
                    ema_w.assign(decay * ema_w + (1.0 - decay) * ops.cast(w, "float32"))
                else:
                    ema_w.assign(w)  # integer state (e.g. seeds): copied
        return {"g_loss": g_loss, **d_logs}

    def _d_update(self, real, labels, fake, f_labels):
        cfg, loss = self.config, self.adversarial_loss
        bs = cfg.batch_size
        threshold = self.loss_entry.accuracy_threshold
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
        return {
            "d_loss": d_loss,
            "d_acc_real": ops.mean(ops.cast(real_out > threshold, "float32")),
            "d_acc_fake": ops.mean(ops.cast(fake_out <= threshold, "float32")),
            "d_total": ops.convert_to_tensor(d_total, "float32"),
        }

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self):
        """The generator used for samples and metrics: the EMA copy when EMA is on."""
        return self.ema_generator if self.ema_generator is not None else self.generator
