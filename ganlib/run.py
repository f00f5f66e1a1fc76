"""Train one configuration into a run directory, resuming it if it was interrupted.

config -> data -> models -> trainer -> run directory. This is the function the training notebook, the
`GAN` class and the study runner all call.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import __version__
from .config import Config, ConfigError
from .device import describe as describe_device, warn_without_onednn
from .rundir import RunDirectory, RunDirectoryError, atomic_path, load_arrays, load_keras_model, now


def configure_threads(threads: int) -> None:
    """Limit TensorFlow's CPU threads (only possible before TensorFlow starts its thread pools)."""
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # already initialized in this process: keep going with its pools
            pass


def threads_in_use() -> int:
    """TensorFlow's intra-op threads in this process (its default, 0, means one per available core)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))


def thread_change_warning(previous: dict, threads: int, initial_epoch: int) -> Optional[str]:
    """A loud message when a run resumes with another number of threads than it trained with: TensorFlow's
    reductions split work by thread, so from here on the numbers differ from an uninterrupted run's (measured:
    2 threads vs 1 from step 79 on). None when nothing changed or nothing was trained yet."""
    before = previous.get("threads")
    if not initial_epoch or before in (None, threads):
        return None
    return (f"*** This run trained its first {initial_epoch} epoch(s) with {before} thread(s) and resumes with "
            f"{threads}: its results will differ from an uninterrupted run's from here on. Resume with "
            f"threads={before} (or the same --threads-per-run) to reproduce it exactly. ***")


def _heldout_images(config: Config):
    """The config's test split, read once for the overfitting signal and the metrics; None when there is none
    (image folders) or it cannot be read: the run trains anyway, and metrics, which need it, read it again and
    say why."""
    from .data import load_for_config

    try:
        return load_for_config(config, "test")
    except (OSError, ValueError):
        return None


def _overfitting_callback(data, heldout):
    """D's confidence on training vs held-out real images each epoch (ganlib.callbacks.Overfitting), when the
    dataset has a held-out split."""
    from . import callbacks as cb

    return cb.Overfitting(data, heldout) if heldout is not None and len(heldout) else None


def benchmark_noise(config: Config, num_classes: int):
    """The fixed latent points and labels of every sample grid: a function of the seed alone."""
    n = config.grid_size ** 2
    rng = np.random.default_rng([config.seed, 20240])
    z = rng.standard_normal((n, config.latent_dim)).astype(np.float32)
    cells = np.arange(n)
    if num_classes <= config.grid_size:  # each column one class (column j: class j mod classes), each row a sample
        labels = (cells % config.grid_size) % num_classes
    else:  # more classes than columns: every class in turn, row by row, so each appears
        labels = cells % num_classes
    return z, labels.astype(np.int32)


def _load_or_make_noise(run: RunDirectory, config: Config, num_classes: int):
    if run.noise_file.exists():
        saved = load_arrays(run.noise_file)
        z, labels = saved.get("z"), saved.get("labels")
        if (z is None or labels is None or z.ndim != 2 or z.shape[1] != config.latent_dim or labels.shape != z.shape[:1]
                or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes):
            raise RunDirectoryError(f"{run.noise_file} does not hold benchmark noise for this configuration "
                                    f"(z of shape (n, {config.latent_dim}), labels < {num_classes}); delete it.")
        return z.astype(np.float32), labels.astype(np.int32)
    z, labels = benchmark_noise(config, num_classes)
    with atomic_path(run.noise_file) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, z=z, labels=labels)
    return z, labels


# Fields baked into a saved model: a run started from another run's models (init_from) must agree on them, or its
# config.json would describe networks it did not train.
ARCHITECTURE_FIELDS = ("model", "latent_dim", "conditional", "embedding_dim", "d_conditioning", "g_filters",
                       "d_filters", "filter_growth", "g_depth", "d_depth", "upsampling", "g_leaky_slope",
                       "d_leaky_slope", "dropout", "g_norm", "d_norm")


def source_run_dir(init_from) -> Path:
    """The run directory `init_from` names; a path to one of its `models/*.keras` files is taken as its run."""
    path = Path(init_from).expanduser()
    if path.suffix == ".keras" and path.parent.name == "models":
        return path.parent.parent
    if path.is_file():
        raise ConfigError("init_from", str(init_from), "the directory of a completed run (the folder that holds "
                          "models/generator.keras), or one of its models/*.keras files")
    return path


def load_models_from(run_dir):
    """(generator, discriminator) saved at the end of another run, for transfer learning or sampling.

    Always in Keras safe mode (see `ganlib.rundir.load_keras_model`): loading a model never runs code from it."""
    run = RunDirectory(source_run_dir(run_dir))
    return tuple(load_keras_model(p) for p in _final_model_files(run))


def _final_model_files(run: RunDirectory) -> list:
    paths = [run.model_file("generator"), run.model_file("discriminator")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise RunDirectoryError(f"{run.path} has no final models ({', '.join(missing)}); only completed runs "
                                "can be used with init_from.")
    return paths


def check_init_from(config: Config) -> None:
    """Refuse an init_from run whose networks differ from what `config` describes (read before any data)."""
    run = RunDirectory(source_run_dir(config.init_from))
    _final_model_files(run)
    if not run.config_file.exists():
        raise ConfigError("init_from", str(config.init_from), f"the directory of a completed ganlib run ({run.path} "
                          "has no config.json)")
    source = run.read_config()
    differ = {k: (getattr(source, k), getattr(config, k)) for k in ARCHITECTURE_FIELDS
              if getattr(source, k) != getattr(config, k)}
    if differ:
        listed = ", ".join(f"{k}={there!r} (here {here!r})" for k, (there, here) in differ.items())
        raise ConfigError("init_from", str(config.init_from),
                          f"a run with this configuration's architecture; that run has {listed}. Set these fields to "
                          "the source run's values, so that config.json describes the networks this run trains")


def _trained_anything(run: RunDirectory) -> bool:
    return (run.checkpoint_file.exists() or any(run.models_dir.glob("*.keras")) or run.epochs_file.exists()
            or run.batches_file.exists())


def check_tensorboard_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:  # tf.summary needs it to write anything
        raise ConfigError("tensorboard", True, "False, or install TensorBoard first: pip install 'ganlib[tensorboard]' "
                          "(or pip install tensorboard)")


def check_run_directory(run: RunDirectory, config: Config) -> Optional[dict]:
    """Refuse a directory that holds a different configuration; return its summary if it is finished.

    The configuration is recorded three times (config.json, summary.json's config_hash, the checkpoint's hash), so
    a directory whose config.json was lost or replaced is still recognized. A directory in which nothing was
    trained yet (e.g. a first attempt refused by a config check) may take a corrected configuration.
    Only reads: a refused directory is left exactly as it was."""
    from . import checkpoint

    run.check_safe_to_write()
    summary = run.read_summary()
    recorded = {}
    if run.config_file.exists():
        recorded["config.json"] = run.read_config()
    if summary.get("config_hash"):
        recorded["summary.json"] = summary["config_hash"]
    saved_epoch, saved_hash = checkpoint.peek(run.checkpoint_file)
    if saved_hash:
        recorded[str(run.checkpoint_file.relative_to(run.path))] = saved_hash
    differs = {name: value for name, value in recorded.items()
               if (value.hash if isinstance(value, Config) else value) != config.hash}
    if differs and _trained_anything(run):
        existing = recorded.get("config.json")
        if isinstance(existing, Config) and "config.json" in differs:
            changed = {k: (v, getattr(config, k)) for k, v in existing.to_dict().items() if getattr(config, k) != v}
            detail = f"changed: {changed}"
        else:
            detail = ", ".join(f"{name} records configuration {value if isinstance(value, str) else value.hash}"
                               for name, value in differs.items()) + f"; this one is {config.hash}"
        raise RunDirectoryError(
            f"{run.path} already holds a run of a different configuration ({detail}). "
            "Use a new run directory, or delete this one to start over. Nothing was changed.")
    if differs:
        return None  # nothing was trained under the old configuration: train() starts the directory afresh
    if summary.get("status") in ("completed", "diverged"):
        return summary
    run.check_logs(saved_epoch or 0)  # before anything is written: a resume would inherit gaps
    return None


def train(config: Union[Config, dict], run_dir: Union[str, Path], verbose: Union[int, str] = 2,
          evaluate: Optional[Callable] = None, callbacks: Sequence = ()) -> dict:
    """Train `config` into `run_dir` and return the run's summary.

    A finished run directory is returned as it is; an interrupted one continues from its last checkpoint.
    `evaluate(generator) -> dict of metrics` overrides the default quality metrics (see ganlib.metrics);
    extra Keras `callbacks` run after ganlib's own (which write the run directory).
    """
    config = config if isinstance(config, Config) else Config.from_dict(dict(config))
    run = RunDirectory(run_dir)
    finished = check_run_directory(run, config)
    if finished is not None:
        return finished
    with run.lock():  # one training process per run directory
        finished = check_run_directory(run, config)  # it may have been finished while we checked
        if finished is not None:
            return finished
        run.remove_temp_files()  # left by writes that a kill interrupted
        timer = PhaseTimer()
        timer.start("import")
        configure_threads(config.threads)  # the first TensorFlow import of a fresh process
        previous = run.read_summary()
        if previous.get("config_hash") not in (None, config.hash):  # an untrained attempt of another config
            previous = {}
            run.summary_file.unlink()
        run.write_config(config)
        run.update_summary(status="running", config_hash=config.hash, ganlib_version=__version__,
                           started_at=previous.get("started_at", now()), attempts=previous.get("attempts", 0) + 1,
                           error=None, traceback=None)
        try:
            return _train(config, run, verbose, evaluate, list(callbacks), timer)
        except Exception as e:
            try:
                run.update_summary(status="failed", error=f"{type(e).__name__}: {e}",
                                   traceback=traceback.format_exc(), finished_at=now())
            except OSError:  # e.g. the disk is full: "running" resumes just the same; the first error matters
                pass
            raise


class PhaseTimer:
    """Seconds spent in each phase of a run (summary.json: timings), so fixed costs can be seen and measured."""

    def __init__(self):
        self.seconds, self._phase, self._start = {}, None, None

    def start(self, phase: str) -> None:
        now_ = time.perf_counter()
        if self._phase is not None:
            self.seconds[self._phase] = round(self.seconds.get(self._phase, 0.0) + now_ - self._start, 3)
        self._phase, self._start = phase, now_

    def stop(self) -> dict:
        self.start(None)
        return dict(self.seconds)


def _train(config: Config, run: RunDirectory, verbose, evaluate, extra_callbacks, timer) -> dict:
    from .data import load_for_config

    timer.start("data")

    if config.init_from:
        check_init_from(config)
    if config.tensorboard:
        check_tensorboard_installed()
    # The data is read and checked first: a missing or damaged dataset costs no model building.
    data = load_for_config(config, "train")
    config.check_dataset_size(len(data))
    config.check_image_shape(data.image_shape, f"{data.name} at {data.source}")
    if config.conditional and data.num_classes < 2:
        raise ConfigError("conditional", True, "False for a dataset with a single class "
                          f"({data.name} at {data.source} has one)")
    steps_per_epoch = config.steps_per_epoch or max(1, len(data) // config.effective_batch)

    timer.start("import")
    import keras

    warn_without_onednn()
    from . import callbacks as cb
    from . import checkpoint
    from .models import build_models
    from .trainer import GANTrainer, make_optimizer

    heldout = _heldout_images(config)
    if evaluate is None and config.metric_samples > 0:
        from .metrics import default_evaluator

        # Before the models: a dataset too small to score is refused first, and loading (or training) the
        # feature network happens before the seed below, so it cannot change the run's random streams.
        timer.start("metrics_setup")
        evaluate = default_evaluator(config, data.num_classes, test=heldout)
    timer.start("models")
    keras.utils.set_random_seed(config.seed)
    if config.init_from:
        generator, discriminator = load_models_from(config.init_from)
        expected = (None,) + tuple(data.image_shape)
        if tuple(generator.outputs[-1].shape) != expected:
            raise ConfigError("init_from", config.init_from, f"a run whose generator makes images of shape "
                              f"{expected[1:]} (it makes {tuple(generator.outputs[-1].shape)[1:]})")
        from .sampling import num_classes_of

        known = num_classes_of(generator)
        if config.conditional and known != data.num_classes:
            raise ConfigError("init_from", config.init_from, f"a run trained on {data.num_classes} classes like "
                              f"{data.name} (its generator knows {known})")
    else:
        generator, discriminator = build_models(config, data.image_shape, data.num_classes)
    trainer = GANTrainer(generator, discriminator, config, data.num_classes)
    total_steps = steps_per_epoch * config.epochs
    trainer.compile(make_optimizer(config, "g", total_steps), make_optimizer(config, "d", total_steps))

    noise, labels = _load_or_make_noise(run, config, data.num_classes)
    initial_epoch = checkpoint.load(trainer, run.checkpoint_file) or 0
    run.truncate_logs(initial_epoch)

    divergence = cb.Divergence(noise, labels, config.divergence_patience)
    divergence.restore(run.read_epochs())  # a resumed run judges collapse as the uninterrupted one would
    callbacks = [
        cb.Evaluation(evaluate, config.metric_interval) if evaluate else None,
        divergence,
        _overfitting_callback(data, heldout),
        cb.RunLogger(run, steps_per_epoch, config.effective_batch),
        cb.SampleGrids(run, noise, labels, config.sample_interval, config.epochs, config.grid_size),
        cb.Checkpoint(run, config.checkpoint_interval, config.epochs),
        *(cb.tensorboard_callbacks(run) if config.tensorboard else []),  # after the logs and grids they read
        *extra_callbacks,
    ]
    previous = run.read_summary()
    threads = threads_in_use()
    changed = thread_change_warning(previous, threads, initial_epoch)
    if changed:
        print(changed, file=sys.stderr)
        warnings.warn(changed, RuntimeWarning, stacklevel=2)
    run.update_summary(
        threads=threads, thread_changes=(previous.get("thread_changes") or []) + (
            [{"epoch": initial_epoch, "from": previous.get("threads"), "to": threads}] if changed else []),
        resumed_from_epoch=initial_epoch or None, steps_per_epoch=steps_per_epoch,
        dataset={"name": data.name, "source": data.source, "train_images": len(data),
                 "image_shape": list(data.image_shape), "classes": data.class_names,
                 "skipped_files": len(data.skipped), "skipped": data.skipped[:100],
                 "resized_files": data.resized},
        parameters={"generator": int(generator.count_params()), "discriminator": int(discriminator.count_params())},
        precision=config.resolved_precision, device=describe_device())

    timer.start("training")
    started = time.perf_counter()
    if initial_epoch < config.epochs:
        from .data import training_dataset

        dataset = training_dataset(data, config.effective_batch, config.seed, initial_epoch, config.epochs,
                                   steps_per_epoch)
        trainer.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                    callbacks=[c for c in callbacks if c is not None], verbose=verbose,
                    shuffle=False)  # order comes from training_dataset's (seed, epoch) permutation
    seconds = time.perf_counter() - started
    epochs = run.read_epochs()
    timing = {"train_seconds_this_attempt": round(seconds, 3),
              "train_seconds_total": round(float(epochs["seconds"].sum()) if "seconds" in epochs else seconds, 3),
              "epochs_completed": int(epochs["epoch"].max()) if len(epochs) else 0}
    if divergence.reason:
        return run.update_summary(status="diverged", error=divergence.reason, finished_at=now(),
                                  timings=timer.stop(), **timing)

    timer.start("saving")
    run.models_dir.mkdir(exist_ok=True)
    models = {"generator": generator, "discriminator": discriminator}
    if trainer.ema_generator is not None:
        models["generator_ema"] = trainer.ema_generator
    for name, model in models.items():
        with atomic_path(run.model_file(name), suffix=".keras") as tmp:
            model.save(tmp)
    final, untrained, per_class = {}, None, None
    if evaluate is not None:
        timer.start("final_metrics")
        final = {k: v for k, v in evaluate(trainer.sampling_generator).items()}
        per_class = final.pop("per_class", None)
        timer.start("untrained_metrics")
        untrained = evaluate_untrained(config, data, evaluate)
        untrained.pop("per_class", None)
    from .verdict import judge

    verdict = judge(final, untrained, run.read_epochs(), data.num_classes, config.conditional,
                    per_class=per_class, class_names=data.class_names)
    return run.update_summary(status="completed", final_metrics=final, untrained_metrics=untrained,
                              final_class_metrics=per_class,
                              verdict=verdict["verdict"], verdict_reasons=verdict["reasons"],
                              verdict_checks=verdict["checks"], verdict_cautions=verdict["cautions"],
                              finished_at=now(), timings=timer.stop(),
                              **timing)


def evaluate_untrained(config: Config, data, evaluate: Callable) -> dict:
    """The metrics of a freshly initialized generator of this configuration: the floor a run must beat.

    Kept in the metrics cache under `Evaluator.key` (the untrained weights themselves, the evaluation and the real
    features): variations that share a generator and seed -- they differ in D, the loss or the optimizer --
    reuse the same numbers instead of computing them again."""
    import keras

    from .models import build_models

    from .trainer import refresh_batch_norm_statistics

    keras.utils.set_random_seed(config.seed)
    generator, _ = build_models(config, data.image_shape, data.num_classes)
    # Batch-norm statistics of its own, as the EMA generator gets them: with its initial statistics (mean 0,
    # variance 1) an untrained generator draws near-grey images, a floor any run beats too easily.
    refresh_batch_norm_statistics(generator, data.num_classes, config.conditional)
    key = evaluate.key(generator) if hasattr(evaluate, "key") else None
    if key is None:
        return dict(evaluate(generator))
    from .metrics import cache_dir
    from .rundir import read_json, write_json

    path = cache_dir() / "untrained" / f"{key}.json"
    try:
        cached = read_json(path)
    except RunDirectoryError:  # a damaged cache file: computed again and rewritten
        cached = None
    if cached:
        return cached
    metrics = dict(evaluate(generator))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, metrics)
    except OSError:  # a read-only cache only costs the recomputation
        pass
    return metrics
