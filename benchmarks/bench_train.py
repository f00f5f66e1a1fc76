"""Training throughput: ganlib's GANTrainer vs the tutorial-style conditional GAN, same model, one process.

    python benchmarks/bench_train.py                 # float32 and mixed_bfloat16, ~2 minutes on 2 idle cores
    python benchmarks/bench_train.py --quick         # a smoke run (seconds; the figures mean nothing)
    python benchmarks/bench_train.py --profile       # also time the parts of one training step

The model is Brownlee's conditional DCGAN for 28x28 images ("How to Develop a Conditional GAN (cGAN) From
Scratch"): latent 100, label embedding 50, 128 filters, two stride-2 (transposed) convolutions per network,
dropout 0.4, batch 128, Adam(2e-4, beta_1=0.5), on Fashion-MNIST. Both sides build exactly this architecture
(the parameter counts are checked to be equal) and train on the same data:

* ganlib: `ganlib.models.build_models` + `GANTrainer` compiled as `ganlib.run.train` does, fed by
  `ganlib.data.training_dataset`. A timed step is one call of the train function that `GANTrainer.fit` calls per
  step (Keras' tf.function around `GANTrainer.train_step`, pulling its batch from the tf.data iterator), with the
  logs read back as floats as ganlib's RunLogger does; `--fit` times whole `fit()` calls instead. One generator
  forward per step serves the D and G updates.
* reference: the tutorial's code ported to Keras 3: a discriminator compiled with binary crossentropy, a combined
  `[z, label] -> D(G(z, label), label)` model compiled with D frozen, `train_on_batch` on numpy batches drawn with
  `randint`, fakes made with `g_model.predict` for D and generated again inside the combined model for G.
  Per step both sides consume 128 real images: D is updated on 128 real and 128 fake images, G on 128 fakes.

Images/s = real images consumed per second (batch 128 x steps / seconds). Warm-up (tracing) is excluded; the
variants take turns one step at a time (rotating order), so load from other jobs on the machine hits all of them
alike. The ratio of a repetition is ganlib / reference measured within that repetition; medians and [min-max] are
printed, from wall time and from this process's CPU time (less sensitive to other jobs on a shared machine).
GFLOP/s: conv/dense FLOPs of the step counted analytically from the layers (forward = 2 x MACs; a backward pass =
2 x forward: gradients for inputs and for weights), divided by the measured time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import machine, median, prepare_tensorflow, save_json, spread, table, versions  # noqa: E402

prepare_tensorflow()

import numpy as np  # noqa: E402

BATCH = 128
LATENT = 100
EMBEDDING = 50
FILTERS = 128


# ---------------------------------------------------------------------------------------------- the reference
def reference_models(image_shape, n_classes, precision):
    """Brownlee's define_discriminator / define_generator / define_gan, ported to Keras 3."""
    import keras
    from keras import layers

    from ganlib.models import dtype_policy

    with dtype_policy(precision):
        # discriminator
        in_label = keras.Input((1,))
        li = layers.Embedding(n_classes, EMBEDDING)(in_label)
        li = layers.Dense(image_shape[0] * image_shape[1])(li)
        li = layers.Reshape((image_shape[0], image_shape[1], 1))(li)
        in_image = keras.Input(image_shape)
        fe = layers.Concatenate()([in_image, li])
        fe = layers.Conv2D(FILTERS, 3, strides=2, padding="same")(fe)
        fe = layers.LeakyReLU(0.2)(fe)
        fe = layers.Conv2D(FILTERS, 3, strides=2, padding="same")(fe)
        fe = layers.LeakyReLU(0.2)(fe)
        fe = layers.Flatten()(fe)
        fe = layers.Dropout(0.4)(fe)
        out = layers.Dense(1, activation="sigmoid", dtype="float32")(fe)
        d_model = keras.Model([in_image, in_label], out, name="ref_discriminator")
        d_model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                        metrics=["accuracy"])
        # generator
        base = image_shape[0] // 4
        in_label = keras.Input((1,))
        li = layers.Embedding(n_classes, EMBEDDING)(in_label)
        li = layers.Dense(base * base)(li)
        li = layers.Reshape((base, base, 1))(li)
        in_lat = keras.Input((LATENT,))
        gen = layers.Dense(FILTERS * base * base)(in_lat)
        gen = layers.LeakyReLU(0.2)(gen)
        gen = layers.Reshape((base, base, FILTERS))(gen)
        gen = layers.Concatenate()([gen, li])
        gen = layers.Conv2DTranspose(FILTERS, 4, strides=2, padding="same")(gen)
        gen = layers.LeakyReLU(0.2)(gen)
        gen = layers.Conv2DTranspose(FILTERS, 4, strides=2, padding="same")(gen)
        gen = layers.LeakyReLU(0.2)(gen)
        out = layers.Conv2D(image_shape[-1], 7, activation="tanh", padding="same", dtype="float32")(gen)
        g_model = keras.Model([in_lat, in_label], out, name="ref_generator")
        # combined model, D frozen. Keras 3 reads `trainable` when a train function is first traced (Keras 2 read
        # it at compile time), so the reference sets it before each kind of update (see ReferenceGAN.step).
        d_model.trainable = False
        gen_noise, gen_label = g_model.input
        gan_model = keras.Model([gen_noise, gen_label], d_model([g_model.output, gen_label]), name="ref_gan")
        gan_model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        d_model.trainable = True
    return g_model, d_model, gan_model


class ReferenceGAN:
    """The tutorial's training loop (generate_real_samples / generate_fake_samples / train_on_batch)."""

    def __init__(self, images, labels, n_classes, precision, seed=0, predict_batch=None):
        self.images = images.astype("float32")[..., None] if images.ndim == 3 else images.astype("float32")
        self.images = (self.images - 127.5) / 127.5  # the tutorial scales the whole dataset once, up front
        self.labels = labels
        self.n_classes = n_classes
        self.g_model, self.d_model, self.gan_model = reference_models(self.images.shape[1:], n_classes, precision)
        self.rng = np.random.default_rng(seed)
        self.predict_batch = predict_batch  # None: Keras' default (32), as the tutorial calls predict

    def latent_points(self, n):
        return self.rng.standard_normal((n, LATENT)).astype("float32"), self.rng.integers(0, self.n_classes, n)

    def step(self, n=BATCH, timer=None):
        mark = timer or (lambda name: None)
        ix = self.rng.integers(0, len(self.images), n)  # generate_real_samples
        x_real, labels_real = self.images[ix], self.labels[ix]
        mark("data")
        self.d_model.trainable = True
        d_loss1 = self.d_model.train_on_batch([x_real, labels_real], np.ones((n, 1), "float32"))
        mark("d_real")
        z, labels = self.latent_points(n)  # generate_fake_samples
        x_fake = self.g_model.predict([z, labels], batch_size=self.predict_batch, verbose=0)
        mark("g_predict")
        d_loss2 = self.d_model.train_on_batch([x_fake, labels], np.zeros((n, 1), "float32"))
        mark("d_fake")
        self.d_model.trainable = False
        z, labels = self.latent_points(n)
        g_loss = self.gan_model.train_on_batch([z, labels], np.ones((n, 1), "float32"))
        mark("gan")
        return d_loss1, d_loss2, g_loss

    def run(self, steps):
        for _ in range(steps):
            self.step()


# ---------------------------------------------------------------------------------------------- ganlib
def ganlib_config(precision):
    from ganlib import Config

    return Config(recipe="tutorial", dataset="fashion_mnist", model="dcgan", conditional=True, latent_dim=LATENT,
                  embedding_dim=EMBEDDING, filters=FILTERS, depth=2, filter_growth=1.0, upsampling="transpose",
                  leaky_slope=0.2, dropout=0.4, norm="none", loss="bce", optimizer="adam", lr=2e-4, beta1=0.5,
                  batch_size=BATCH, precision=precision, metric_samples=0)


class GanlibGAN:
    """ganlib's path: build_models -> GANTrainer.compile -> the train function of fit() on training_dataset."""

    def __init__(self, data, precision, use_fit=False):
        import keras

        from ganlib.data import training_dataset
        from ganlib.models import build_models
        from ganlib.trainer import GANTrainer, make_optimizer

        self.config = cfg = ganlib_config(precision)
        self.generator, self.discriminator = build_models(cfg, data.image_shape, data.num_classes)
        self.trainer = GANTrainer(self.generator, self.discriminator, cfg, data.num_classes)
        self.trainer.compile(make_optimizer(cfg, "g", 10 ** 6), make_optimizer(cfg, "d", 10 ** 6))
        self.data = data
        self.datasets = {}
        self.rows = []
        rows = self.rows

        class BatchLog(keras.callbacks.Callback):  # what ganlib's RunLogger does each batch
            def on_train_batch_end(self, batch, logs=None):
                rows.append({k: float(v) for k, v in (logs or {}).items()})

        self.callbacks = [BatchLog()]
        self.training_dataset = training_dataset
        self.use_fit = use_fit
        self.iterator = None

    def run(self, steps):
        if self.use_fit:  # a whole Keras fit() call per measurement (adds fit's per-call set-up)
            if steps not in self.datasets:
                self.datasets[steps] = self.training_dataset(self.data, BATCH, 0, 0, 1, steps)
            self.trainer.fit(self.datasets[steps], epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                             callbacks=self.callbacks)
            return
        # The function fit() calls for each step (Keras' compiled train function: GANTrainer.train_step in a
        # tf.function, pulling its batch from the iterator of ganlib's tf.data pipeline), then reading the logs
        # back as floats as ganlib's RunLogger does. One long-lived iterator, so single steps can be timed.
        if self.iterator is None:
            self.trainer.make_train_function()
            per_epoch = len(self.data) // BATCH
            self.iterator = iter(self.training_dataset(self.data, BATCH, 0, 0, 10 ** 5, per_epoch))
        for _ in range(steps):
            logs = self.trainer.train_function(self.iterator)
            self.rows.append({k: float(v) for k, v in logs.items()})


# ---------------------------------------------------------------------------------------------- FLOPs
def forward_flops(model, batch=1) -> int:
    """Conv/dense FLOPs (2 x multiply-adds) of one forward pass of a functional model on `batch` samples."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.SpectralNormalization):
            layer = layer.layer
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1] if not hasattr(layer, "kernel") else layer.kernel.shape[-2 if isinstance(
                layer, layers.Conv2D) else -1]
            cout = layer.filters
            if isinstance(layer, layers.Conv2DTranspose):  # every input pixel scatters a kh x kw x cout patch
                h, w = layer.input.shape[1:3]
            else:
                h, w = layer.output.shape[1:3]
            total += 2 * h * w * kh * kw * cin * cout
        elif isinstance(layer, layers.Dense):
            units_in = layer.kernel.shape[0]
            rows = int(np.prod([d for d in layer.output.shape[1:-1]] or [1]))
            total += 2 * rows * units_in * layer.units
    return total * batch


def step_flops(g_model, d_model, batch=BATCH):
    """Executed conv/dense FLOPs of one training step for each implementation (F = forward FLOPs per batch).

    ganlib: G fwd (F_g); D update on 2B: 3 x 2 F_d; G update: D fwd + input grads (2 F_d), G backward (2 F_g)
            -> 3 F_g + 8 F_d.
    reference: D update real (3 F_d), predict (F_g), D update fake (3 F_d), combined model: G fwd + D fwd +
            D input grads + G backward (3 F_g + 2 F_d) -> 4 F_g + 8 F_d.
    """
    fg, fd = forward_flops(g_model, batch), forward_flops(d_model, batch)
    return {"F_g": fg, "F_d": fd, "ganlib": 3 * fg + 8 * fd, "reference": 4 * fg + 8 * fd}


# ---------------------------------------------------------------------------------------------- profile
def profile(ganlib_side, reference, steps):
    """Where the time of a step goes: the reference's parts (timed around each call), and ganlib's step split
    into generator forward, D update and G update, each a separate tf.function on the same batch."""
    import tensorflow as tf

    parts = {}
    t = [time.perf_counter()]

    def mark(name):
        now = time.perf_counter()
        parts.setdefault(name, []).append(now - t[0])
        t[0] = now

    z, zl = reference.latent_points(BATCH)
    for _ in range(steps):
        t[0] = time.perf_counter()
        reference.step(timer=mark)
        reference.g_model.predict([z, zl], batch_size=BATCH, verbose=0)
        mark("g_predict(batch_size=128)")
        np.asarray(reference.g_model([z, zl], training=False))
        mark("g_model(x) eager call")
    ref = {k: median(v) * 1000 for k, v in parts.items()}

    tr = ganlib_side.trainer
    images = tf.constant(ganlib_side.data.as_float()[:BATCH])
    labels = tf.constant(ganlib_side.data.labels[:BATCH])
    adv = tr.adversarial_loss

    @tf.function(autograph=False)
    def g_forward():
        z, fl = tr.sample_noise(BATCH)
        return tr.generator([z, fl], training=True), fl

    @tf.function(autograph=False)
    def d_update(fake, fl):
        with tf.GradientTape() as tape:
            both = tr._d(tf.concat([images, fake], 0), tf.concat([labels, fl], 0))
            d_loss = adv.d_loss(both[:BATCH], both[BATCH:])
        v = tr.discriminator.trainable_variables
        tr.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, v), v))
        return d_loss

    @tf.function(autograph=False)
    def full_g_update():  # G forward + D forward on the fakes + G backward (what the G half of a step costs)
        z, fl = tr.sample_noise(BATCH)
        with tf.GradientTape() as tape:
            g_loss = adv.g_loss(tr._d(tr.generator([z, fl], training=True), fl))
        v = tr.generator.trainable_variables
        tr.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, v), v))
        return g_loss

    @tf.function(autograph=False)
    def whole_step():
        return tr.train_step((images, labels))

    fns = {"g_forward": lambda: g_forward()[0].numpy(),
           "d_update (2B)": lambda: d_update(*g_forward()).numpy(),
           "g_update incl. G fwd": lambda: full_g_update().numpy(),
           "train_step (no tf.data)": lambda: whole_step()["d_loss"].numpy()}
    for fn in fns.values():
        fn()
        fn()
    timings = {k: [] for k in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    ours = {k: median(v) * 1000 for k, v in timings.items()}
    ours["d_update only (= d_update - g_forward)"] = ours["d_update (2B)"] - ours["g_forward"]
    return {"reference_ms": ref, "ganlib_ms": ours}


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="alternating repetitions per variant")
    parser.add_argument("--steps", type=int, default=1, help="training steps per variant per repetition")
    parser.add_argument("--plain-output-conv", action="store_true", help="ganlib with its g_image layer computed "
                        "as a plain Conv2D, as before ganlib.layers.OutputConv2D (benchmarks/probe_output_conv.py)")
    parser.add_argument("--fit", action="store_true", help="time ganlib through a whole `GANTrainer.fit` call "
                        "per repetition (use with --steps >= 2) instead of single calls of fit's train function")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--profile", action="store_true", help="also time the parts of a step")
    parser.add_argument("--predict-batch", type=int, default=None, help="batch_size of the reference's "
                        "g_model.predict (default: Keras' default 32, as in the tutorial)")
    parser.add_argument("--quick", action="store_true", help="1 rep x 1 step, small data: checks that it runs")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.steps, args.warmup = 1, 1, 1

    import keras
    import tensorflow as tf

    from ganlib.data import load_dataset

    keras.utils.set_random_seed(0)
    data = load_dataset("fashion_mnist", "train")
    if args.quick:
        data = data.take(2048)
    print(f"bench_train: {data.name} ({len(data)} images from {data.source}), batch {BATCH}, "
          f"{args.reps} reps x {args.steps} steps per variant after {args.warmup} warm-up steps, ganlib timed "
          f"through {'GANTrainer.fit' if args.fit else 'the train function of GANTrainer.fit'}"
          f"{' with g_image as a plain Conv2D' if args.plain_output_conv else ''}; "
          f"TF threads intra={tf.config.threading.get_intra_op_parallelism_threads()} (0 = all cores)")

    precisions = [p for p in args.precisions.split(",") if p]
    variants = {}
    for p in precisions:
        variants[("ganlib", p)] = GanlibGAN(data, p, use_fit=args.fit)
        if args.plain_output_conv:
            variants[("ganlib", p)].generator.get_layer("g_image").fast = False
        variants[("reference", p)] = ReferenceGAN(data.images, data.labels, data.num_classes, p,
                                                  predict_batch=args.predict_batch)
    g_params = {k: v.generator.count_params() if k[0] == "ganlib" else v.g_model.count_params()
                for k, v in variants.items()}
    d_params = {k: v.discriminator.count_params() if k[0] == "ganlib" else v.d_model.count_params()
                for k, v in variants.items()}
    assert len(set(g_params.values())) == 1 and len(set(d_params.values())) == 1, (g_params, d_params)
    ref0 = next(v for k, v in variants.items() if k[0] == "reference")
    flops = step_flops(ref0.g_model, ref0.d_model)
    print(f"model: generator {next(iter(g_params.values())):,} params, discriminator "
          f"{next(iter(d_params.values())):,} params (identical on both sides); forward GFLOP per batch of {BATCH}: "
          f"G {flops['F_g'] / 1e9:.3f}, D {flops['F_d'] / 1e9:.3f}; per step executed: ganlib "
          f"{flops['ganlib'] / 1e9:.2f}, reference {flops['reference'] / 1e9:.2f}")

    started = time.perf_counter()
    for v in variants.values():  # warm-up: tracing, oneDNN primitive creation, tf.data start-up
        v.run(args.warmup)
    print(f"warm-up: {time.perf_counter() - started:.1f} s")

    keys = list(variants)
    times = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    load_before = os.getloadavg()[0]
    for rep in range(args.reps):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]  # rotate, so no variant always runs first
        for k in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            variants[k].run(args.steps)
            times[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - start_cpu)
    ips = {k: [args.steps * BATCH / t for t in v] for k, v in times.items()}
    # CPU seconds this process used per image: less sensitive than wall time to other jobs on the machine
    cpu_ms = {k: [1000 * c / (args.steps * BATCH) for c in v] for k, v in cpu.items()}
    print(f"load average (1 min) before/after the timed part: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")

    rows = []
    for (side, p) in keys:
        x = ips[(side, p)]
        rows.append({"implementation": side, "precision": p, "images/s": median(x),
                     "min": min(x), "max": max(x),
                     "GFLOP/s": median(x) / BATCH * flops[side] / 1e9,
                     "ms/step": 1000 * BATCH / median(x),
                     "CPU ms/image": median(cpu_ms[(side, p)])})
    print()
    print(table(rows, ["implementation", "precision", "images/s", "min", "max", "ms/step", "GFLOP/s",
                       "CPU ms/image"]))

    def ratio(a, b):  # per-repetition ratios of variant a over variant b
        return [x / y for x, y in zip(ips[a], ips[b])]

    ratios = {}
    base = ("reference", "float32")
    for p in precisions:
        ratios[f"ganlib/reference {p}"] = ratio(("ganlib", p), ("reference", p))
        if p != "float32" and base in ips:
            ratios[f"ganlib {p} / reference float32"] = ratio(("ganlib", p), base)
            ratios[f"reference {p} / reference float32"] = ratio(("reference", p), base)
    targets = {"ganlib/reference float32": 1.15, "ganlib mixed_bfloat16 / reference float32": 1.5}
    print("\nratios (per repetition: median [min-max])")
    verdicts = {}
    for name, r in ratios.items():
        target = targets.get(name)
        verdict = ""
        if target:
            verdicts[name] = median(r) >= target
            verdict = f"   target >= {target}: {'MET' if verdicts[name] else 'MISSED'}"
        print(f"  {name:45s} {spread(r)}{verdict}")
    cpu_ratios = {f"ganlib/reference {p}": [y / x for x, y in zip(cpu_ms[("ganlib", p)], cpu_ms[("reference", p)])]
                  for p in precisions}
    if ("reference", "float32") in cpu_ms:
        for p in (p for p in precisions if p != "float32"):
            cpu_ratios[f"ganlib {p} / reference float32"] = [
                y / x for x, y in zip(cpu_ms[("ganlib", p)], cpu_ms[("reference", "float32")])]
    print("same ratios from CPU time per image (reference CPU time / ganlib CPU time)")
    for name, r in cpu_ratios.items():
        print(f"  {name:45s} {spread(r)}")

    result = {"benchmark": "train", "machine": machine(), "versions": versions(), "batch": BATCH,
              "reps": args.reps, "steps": args.steps, "warmup": args.warmup, "quick": args.quick,
              "predict_batch": args.predict_batch, "plain_output_conv": args.plain_output_conv, "ganlib_timed_through": "fit" if args.fit else "train_function",
              "flops_per_step": flops, "images_per_second": {f"{a} {b}": v for (a, b), v in ips.items()},
              "table": rows, "ratios": ratios, "cpu_ms_per_image": {f"{a} {b}": v for (a, b), v in cpu_ms.items()},
              "cpu_time_ratios": cpu_ratios, "load_average_before": load_before, "targets_met": verdicts}
    if args.profile:
        p = precisions[0]
        prof = profile(variants[("ganlib", p)], variants[("reference", p)], max(3, args.steps))
        print(f"\nprofile ({p}, median ms over {max(3, args.steps)} steps)")
        for side, parts in prof.items():
            print(f"  {side}: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))
        result["profile"] = prof
    save_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
