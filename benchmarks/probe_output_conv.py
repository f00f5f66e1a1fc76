"""Investigation behind a ganlib change, now applied as `ganlib.layers.OutputConv2D`: the generator's output
convolution (`g_image`, 7x7, 128 -> 1 channel) is a slow case for TensorFlow's CPU convolution (oneDNN): ~7% of the generator's FLOPs, about half of its
forward time. Computing it as a depthwise convolution summed over input channels gives the same numbers faster.

    python benchmarks/probe_output_conv.py            # ~1-2 minutes on 2 idle cores
    python benchmarks/probe_output_conv.py --quick    # checks that it runs

1. The layer alone (batch 128, float32): forward, gradient for the input, gradient for the kernel, with the
   achieved GFLOP/s, next to the 14x14 -> 28x28 transposed convolution of the same generator for comparison.
2. `GANTrainer.train_step` of the bench_train model (Brownlee's cGAN, batch 128) as ganlib builds it vs the same
   trainer with `g_image` computed by `depthwise_sum_conv` below (forward only, or forward and kernel gradient;
   outputs and gradients checked to agree), float32 and mixed_bfloat16, interleaved in one process; median ms per
   step and per-repetition ratios.

Not part of `python -m benchmarks`. The change is applied in ganlib (`ganlib.layers.OutputConv2D`); this probe
compares it with the plain Conv2D it replaced (README.md, "The generator's output convolution").
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import machine, median, prepare_tensorflow, save_json, spread  # noqa: E402

prepare_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ganlib.layers import depthwise_sum_conv  # noqa: E402

BATCH = 128


def patch_output_conv(generator, mode="full"):
    """Set how the generator's `g_image` layer (ganlib's OutputConv2D) computes: "plain" (TensorFlow's Conv2D,
    what ganlib built before the change), "forward" (depthwise+sum forward, TensorFlow's kernel gradient) or
    "full" (forward, kernel and, since 2026-12-07, input gradient rewritten: ganlib's default; its label stays
    "forward + kernel gradient")."""
    layer = generator.get_layer("g_image")
    if mode == "plain":
        layer.fast = False
    elif mode == "forward":
        layer.convolution_op = types.MethodType(
            lambda self, x, k: depthwise_sum_conv(x, k, self.padding.upper(), fast_kernel_grad=False,
                                                 fast_input_grad=False), layer)
    else:
        layer.fast = True


def timed(fn, reps):
    fn()
    fn()
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return median(out) * 1000


def _kernel_grad(x, k, dy):
    with tf.GradientTape() as tape:
        tape.watch(k)
        y = depthwise_sum_conv(x, k)
    return tape.gradient(y, k, output_gradients=dy)


def _input_grad(x, k, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = depthwise_sum_conv(x, k)
    return tape.gradient(y, x, output_gradients=dy)


def layer_probe(reps):
    x = tf.Variable(tf.random.normal((BATCH, 28, 28, 128)))
    k = tf.Variable(tf.random.normal((7, 7, 128, 1)) * 0.02)
    dy = tf.random.normal((BATCH, 28, 28, 1))
    xt = tf.Variable(tf.random.normal((BATCH, 14, 14, 128)))
    kt = tf.Variable(tf.random.normal((4, 4, 128, 128)) * 0.02)
    s = [1, 1, 1, 1]
    flops = 2 * BATCH * 28 * 28 * 7 * 7 * 128
    flops_t = 2 * BATCH * 14 * 14 * 4 * 4 * 128 * 128
    cases = {
        "g_image conv2d forward": (flops, lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME"))),
        "g_image gradient for input": (flops, lambda: tf.reduce_sum(tf.raw_ops.Conv2DBackpropInput(
            input_sizes=[BATCH, 28, 28, 128], filter=k, out_backprop=dy, strides=s, padding="SAME"))),
        "g_image gradient for kernel": (flops, lambda: tf.reduce_sum(tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[7, 7, 128, 1], out_backprop=dy, strides=s, padding="SAME"))),
        "g_image as depthwise+sum forward": (flops, lambda: tf.reduce_sum(depthwise_sum_conv(x, k))),
        "g_image kernel gradient as depthwise over batch": (flops, lambda: tf.reduce_sum(
            _kernel_grad(x, k, dy))),
        "g_image input gradient as depthwise (flipped kernel)": (flops, lambda: tf.reduce_sum(
            _input_grad(x, k, dy))),
        "g_up1 conv2d_transpose forward (for comparison)": (flops_t, lambda: tf.reduce_sum(
            tf.nn.conv2d_transpose(xt, kt, (BATCH, 28, 28, 128), 2, "SAME"))),
    }
    err = float(tf.reduce_max(tf.abs(depthwise_sum_conv(x, k) - tf.nn.conv2d(x, k, 1, "SAME"))))
    ref = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[7, 7, 128, 1], out_backprop=dy, strides=s,
                                          padding="SAME")
    err_k = float(tf.reduce_max(tf.abs(_kernel_grad(x, k, dy) - ref)) / tf.reduce_max(tf.abs(ref)))
    ref_x = tf.raw_ops.Conv2DBackpropInput(input_sizes=[BATCH, 28, 28, 128], filter=k, out_backprop=dy, strides=s,
                                           padding="SAME")
    err_x = float(tf.reduce_max(tf.abs(_input_grad(x, k, dy) - ref_x)) / tf.reduce_max(tf.abs(ref_x)))
    rows = {}
    for name, (f, fn) in cases.items():
        fn = tf.function(fn)
        ms = timed(lambda: fn().numpy(), reps)
        rows[name] = {"ms": ms, "GFLOP/s": f / ms / 1e6}
        print(f"  {name:52s} {ms:7.1f} ms  {f / ms / 1e6:6.0f} GFLOP/s", flush=True)
    print(f"  max |depthwise+sum - conv2d| = {err:.1e} (outputs of magnitude ~1); kernel gradient: max relative "
          f"difference {err_k:.1e}; input gradient: {err_x:.1e}")
    return rows, err


def step_probe(data, reps, precisions):
    import bench_train

    images = tf.constant(data.as_float()[:BATCH])
    labels = tf.constant(data.labels[:BATCH])
    fns, checks = {}, {}
    for p in precisions:
        base, fast, fwd_only = (bench_train.GanlibGAN(data, p) for _ in range(3))
        for other in (fast, fwd_only):
            other.generator.set_weights(base.generator.get_weights())
            other.discriminator.set_weights(base.discriminator.get_weights())
        patch_output_conv(base.generator, "plain")
        patch_output_conv(fast.generator, "full")
        patch_output_conv(fwd_only.generator, "forward")
        z = tf.random.normal((16, bench_train.LATENT))
        lab = tf.constant(np.arange(16) % data.num_classes, tf.int32)
        with tf.GradientTape(persistent=True) as tape:
            ya, yb = base.generator([z, lab], training=True), fast.generator([z, lab], training=True)
            la, lb = tf.reduce_sum(tf.square(ya)), tf.reduce_sum(tf.square(yb))
        ga = [tf.convert_to_tensor(g) for g in tape.gradient(la, base.generator.trainable_variables)]
        gb = [tf.convert_to_tensor(g) for g in tape.gradient(lb, fast.generator.trainable_variables)]
        rel = max(float(tf.reduce_max(tf.abs(tf.cast(a, "float32") - tf.cast(b, "float32")))
                        / (tf.reduce_max(tf.abs(tf.cast(a, "float32"))) + 1e-12)) for a, b in zip(ga, gb))
        checks[p] = {"max_output_diff": float(tf.reduce_max(tf.abs(ya - yb))), "max_relative_gradient_diff": rel}
        print(f"  {p}: max |output diff| {checks[p]['max_output_diff']:.1e}, max relative gradient diff {rel:.1e}")
        for name, side in (("plain Conv2D", base), ("forward only", fwd_only), ("forward + kernel gradient", fast)):
            tr = side.trainer
            fns[(p, name)] = tf.function(lambda tr=tr: tr.train_step((images, labels))["d_loss"], autograph=False)
    for fn in fns.values():
        fn()
        fn()
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for rep in range(reps):
        keys = list(fns)
        for k in keys[rep % len(keys):] + keys[:rep % len(keys)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            np.asarray(fns[k]())
            times[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - start_cpu)
    result = {}
    for p in precisions:
        a = times[(p, "plain Conv2D")]
        result[p] = {"plain_conv_ms": median(a) * 1000}
        print(f"  {p:15s} train_step, plain Conv2D {median(a) * 1000:6.0f} ms")
        for name in ("forward only", "forward + kernel gradient"):
            b = times[(p, name)]
            ratio = [x / y for x, y in zip(a, b)]
            cpu_ratio = [x / y for x, y in zip(cpu[(p, "plain Conv2D")], cpu[(p, name)])]
            result[p][name] = {"ms": median(b) * 1000, "speedup": ratio, "cpu_time_speedup": cpu_ratio}
            print(f"  {p:15s} g_image rewritten, {name:26s} {median(b) * 1000:6.0f} ms: speed-up {spread(ratio)} "
                  f"wall, {spread(cpu_ratio)} CPU time (per repetition: median [min-max])")
    return result, checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps = 1
    import os

    from ganlib.data import load_dataset

    data = load_dataset("fashion_mnist", "train").take(1024)
    print(f"probe_output_conv: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("1. the output layer alone (float32, batch 128)")
    layer, err = layer_probe(max(3, args.reps // 2))
    print("2. GANTrainer.train_step (batch 128)")
    step, checks = step_probe(data, args.reps, [p for p in args.precisions.split(",") if p])
    save_json(args.json, {"benchmark": "output_conv", "machine": machine(), "layer": layer, "layer_max_diff": err,
                          "train_step": step, "checks": checks, "reps": args.reps, "quick": args.quick})
    return 0


if __name__ == "__main__":
    sys.exit(main())
