"""Keras callbacks that write a run directory: logs, sample grids, metrics, checkpoints, divergence.

Order matters at the end of an epoch (Keras calls callbacks in list order and they share `logs`):
Evaluation adds metrics to `logs` -> Divergence judges the epoch -> RunLogger writes the epoch ->
SampleGrids -> Checkpoint last, so a checkpoint at epoch k always means "logs through k are on disk".
"""
from __future__ import annotations

import math
import time

import keras
import numpy as np

from . import checkpoint, plotting
from .rundir import RunDirectory
from .sampling import generate

LOSS_KEYS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")  # every run logs these
ADA_KEYS = ("ada_rt", "augment_p")  # only runs with adaptive augmentation (ada_target)
BATCH_KEYS = LOSS_KEYS + ADA_KEYS


class RunLogger(keras.callbacks.Callback):
    """Per-batch losses/accuracies into metrics/batches.csv and per-epoch means into metrics/epochs.csv."""

    def __init__(self, run: RunDirectory, steps_per_epoch: int, batch_size: int):
        super().__init__()
        self.run, self.steps_per_epoch, self.batch_size = run, steps_per_epoch, batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.rows, self.started = epoch, [], time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.rows.append({"epoch": self.epoch + 1, "step": self.epoch * self.steps_per_epoch + batch + 1,
                          **{k: float(logs[k]) for k in BATCH_KEYS if k in logs}})

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        row = {"epoch": epoch + 1}
        for key in BATCH_KEYS:
            values = [r[key] for r in self.rows if key in r]
            if values or key in LOSS_KEYS:
                row[key] = float(np.mean(values)) if values else float("nan")
        row.update({k: v for k, v in (logs or {}).items()
                    if k.startswith(("eval_", "d_real_", "d_overfit")) or k == "sample_std"})
        row.update(seconds=seconds, images_per_second=len(self.rows) * self.batch_size / max(seconds, 1e-9),
                   steps=len(self.rows))
        self.run.append_rows(self.run.batches_file, self.rows)
        self.run.append_rows(self.run.epochs_file, [row])


class SampleGrids(keras.callbacks.Callback):
    """A grid from the fixed benchmark noise every `interval` epochs (and at the last epoch)."""

    def __init__(self, run: RunDirectory, noise, labels, interval: int, epochs: int, grid_size: int):
        super().__init__()
        self.run, self.noise, self.labels = run, noise, labels
        self.interval, self.epochs, self.grid_size = interval, epochs, grid_size

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if number % self.interval == 0 or number == self.epochs or self.model.stop_training:
            images = generate(self.model.sampling_generator, self.noise, self.labels)
            plotting.save_grid(images, self.run.sample_file(number), self.grid_size)


class TensorBoardSamples(keras.callbacks.Callback):
    """Each sample grid `SampleGrids` wrote this epoch, as a TensorBoard image in run_dir/tensorboard/samples,
    at the step of `keras.callbacks.TensorBoard`'s scalars for that epoch (the 0-based epoch index)."""

    def __init__(self, run: RunDirectory):
        super().__init__()
        self.run, self.writer = run, None

    def on_epoch_end(self, epoch, logs=None):
        grid = self.run.sample_file(epoch + 1)
        if not grid.exists():
            return
        import tensorflow as tf
        from PIL import Image

        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(self.run.tensorboard_dir / "samples"))
        with Image.open(grid) as im:
            pixels = np.asarray(im.convert("RGB"))
        with self.writer.as_default():
            tf.summary.image("samples (fixed noise)", pixels[None], step=epoch)  # Keras' step: epoch index
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class GANTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, logging the learning rates of the two optimizers that train (Keras' own logs
    `model.optimizer`'s, which a GAN trainer never uses: 0.001 at every epoch while the run trained at 2e-4)."""

    def _collect_learning_rate(self, logs):
        import keras.ops as ops

        for opt in (self.model.g_optimizer, self.model.d_optimizer):
            logs[f"learning_rate_{opt.name}"] = float(ops.convert_to_numpy(opt.learning_rate))
        return logs


def tensorboard_callbacks(run: RunDirectory) -> list:
    """TensorBoard logs (per-epoch losses, accuracies, eval_* metrics, both learning rates) plus the sample grids."""
    return [GANTensorBoard(log_dir=str(run.tensorboard_dir), write_graph=False, update_freq="epoch"),
            TensorBoardSamples(run)]


class Overfitting(keras.callbacks.Callback):
    """Each epoch: D's confidence that real images are real (E[sign(D(x))]) on training images and on held-out
    images of the same dataset, and their gap (`d_real_train`, `d_real_heldout`, `d_overfit_gap` in epochs.csv). A
    discriminator that memorized its training set is sure of those and not of new ones: the gap grows (small
    datasets). ganlib.verdict cautions when it ends >= MEMORIZED_GAP."""

    def __init__(self, train, heldout, n: int = 256):
        super().__init__()
        self.train, self.heldout = train.take(n, seed=0), heldout.take(n, seed=0)  # the same images every epoch

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        on_train = self.model.real_confidence(self.train.images, self.train.labels)
        on_heldout = self.model.real_confidence(self.heldout.images, self.heldout.labels)
        logs.update(d_real_train=on_train, d_real_heldout=on_heldout, d_overfit_gap=on_train - on_heldout)


class Evaluation(keras.callbacks.Callback):
    """Quality metrics (FID, KID, ...) every `interval` epochs, added to the epoch log as eval_<name>."""

    def __init__(self, evaluate, interval: int):
        super().__init__()
        self.evaluate, self.interval = evaluate, interval

    def on_epoch_end(self, epoch, logs=None):
        if self.interval and (epoch + 1) % self.interval == 0 and logs is not None:
            for name, value in self.evaluate(self.model.sampling_generator).items():
                if isinstance(value, (int, float)):
                    logs[f"eval_{name}"] = value


class Divergence(keras.callbacks.Callback):
    """Stops training on non-finite losses, or after `patience` epochs of a collapsed generator.

    Collapse = the benchmark samples have become (almost) identical: mean per-pixel std across them below
    `min_std` after it had been above 5 * min_std (a fresh generator's outputs are nearly constant; that is
    not a collapse).
    """

    def __init__(self, noise, labels, patience: int, min_std: float = 0.02):
        super().__init__()
        self.noise, self.labels, self.patience, self.min_std = noise, labels, patience, min_std
        self.reason, self.collapsed_epochs, self.max_spread = None, 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k in ("d_loss", "g_loss") if k in (logs or {}) and not math.isfinite(float(logs[k]))]
        if bad and self.reason is None:
            self.reason = f"non-finite {', '.join(bad)} at epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.reason:
            return
        images = generate(self.model.sampling_generator, self.noise[:64], self.labels[:64])
        spread = float(np.mean(np.std(images, axis=0)))
        if logs is not None:
            logs["sample_std"] = spread  # logged (epochs.csv), so that a resumed run can `restore` the judgement
        if self._judge(spread):
            self.reason = (f"generator collapsed: samples nearly identical (pixel std {spread:.4f} < {self.min_std}) "
                           f"for {self.patience} epochs, at epoch {epoch + 1}")
            self.model.stop_training = True

    def _judge(self, spread: float) -> bool:
        self.max_spread = max(self.max_spread, spread)
        collapsed = spread < self.min_std and self.max_spread >= 5 * self.min_std
        self.collapsed_epochs = self.collapsed_epochs + 1 if collapsed else 0
        return self.collapsed_epochs >= self.patience

    def restore(self, epochs) -> None:
        """Replay the sample spreads logged before a resume: collapse spans epochs and must survive a kill."""
        for spread in epochs["sample_std"].dropna() if "sample_std" in epochs else ():
            self._judge(float(spread))


class Checkpoint(keras.callbacks.Callback):
    """Saves models, optimizer and RNG state every `interval` epochs and at the last epoch."""

    def __init__(self, run: RunDirectory, interval: int, epochs: int):
        super().__init__()
        self.run, self.interval, self.epochs = run, interval, epochs

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if self.model.stop_training:
            return  # a diverging run is not a state worth resuming from
        if number % self.interval == 0 or number == self.epochs:
            checkpoint.save(self.model, self.run.checkpoint_file, number)
