"""Custom Keras layers of ganlib's models (registered for `.keras` saving under the package name "ganlib").

`OutputConv2D` is a `Conv2D` with the same weights and numbers whose forward pass and gradients use a
formulation TensorFlow's CPU kernels run much faster when there are only 1-4 output channels (the generator's
image layer): measured 1.26-1.31x per float32 training step, 1.36-1.42x in mixed_bfloat16
(`benchmarks/probe_output_conv.py`, `benchmarks/README.md`); on an AVX2-only CPU 1.13-1.14x with TensorFlow's
oneDNN kernels, 1.64x without them (there the rewritten input gradient matters most).
"""
from __future__ import annotations

import keras
from keras import layers


def depthwise_sum_conv(inputs, kernel, padding="SAME", fast_kernel_grad=True, fast_input_grad=True):
    """conv2d(inputs, kernel) with stride 1, NHWC, "SAME" or "VALID", for kernels with few output channels.

    TensorFlow's CPU conv2d and its kernel gradient (Conv2DBackpropFilter) are slow when there are 1-4 output
    channels. Same numbers, faster:
    forward: a depthwise convolution (channel multiplier = output channels) summed over the input channels;
    input gradient (fast_input_grad): the output gradient, padded, convolved with the spatially flipped kernel as
    a depthwise convolution (channel multiplier = input channels) summed over the output channels; on an AVX2
    CPU TensorFlow's Conv2DBackpropInput ran at 3 GFLOP/s for the 7x7 1-channel image layer. Otherwise that op;
    kernel gradient (fast_kernel_grad): the correlation of the (padded) input with the output gradient, done as a
    depthwise convolution over the batch: input (C, H+kh-1, W+kw-1, N) with filter (H, W, N, cout), VALID, summed
    over N. Otherwise TensorFlow's Conv2DBackpropFilter.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def op(x, k):
        kh, kw, cin, cout = k.shape
        y = tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], padding)
        shape = tf.shape(y)
        y = tf.reduce_sum(tf.reshape(y, tf.concat([shape[:3], [cin, cout]], 0)), axis=-2)

        def grad(dy):
            if fast_input_grad:  # the forward's mirror: the output gradient convolved with the flipped kernel
                top, left = ((kh - 1) // 2, (kw - 1) // 2) if padding == "SAME" else (0, 0)
                dyp = tf.pad(dy, [[0, 0], [kh - 1 - top, top if padding == "SAME" else kh - 1],
                                  [kw - 1 - left, left if padding == "SAME" else kw - 1], [0, 0]])
                flipped = tf.transpose(tf.reverse(k, [0, 1]), (0, 1, 3, 2))  # (kh, kw, cout, cin)
                gx = tf.nn.depthwise_conv2d(dyp, flipped, [1, 1, 1, 1], "VALID")  # channels: cout x cin
                gshape = tf.shape(gx)
                gx = tf.reduce_sum(tf.reshape(gx, tf.concat([gshape[:3], [cout, cin]], 0)), axis=-2)
            else:
                gx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=k, out_backprop=dy,
                                                    strides=[1, 1, 1, 1], padding=padding)
            if not fast_kernel_grad:
                gk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(k), out_backprop=dy,
                                                     strides=[1, 1, 1, 1], padding=padding)
                return gx, gk
            xp = x
            if padding == "SAME":  # TF's SAME padding for stride 1: (k-1)//2 before, the rest after
                xp = tf.pad(x, [[0, 0], [(kh - 1) // 2, kh - 1 - (kh - 1) // 2],
                                [(kw - 1) // 2, kw - 1 - (kw - 1) // 2], [0, 0]])
            g = tf.nn.depthwise_conv2d(tf.transpose(xp, (3, 1, 2, 0)), tf.transpose(dy, (1, 2, 0, 3)),
                                       [1, 1, 1, 1], "VALID")  # (cin, kh, kw, N * cout)
            g = tf.reduce_sum(tf.reshape(g, (cin, kh, kw, -1, cout)), axis=3)
            return gx, tf.transpose(g, (1, 2, 0, 3))
        return y, grad
    return op(inputs, tf.convert_to_tensor(kernel))


@keras.saving.register_keras_serializable(package="ganlib")
class OutputConv2D(layers.Conv2D):
    """Conv2D for few output channels (the image layer): same weights and numbers, faster on CPU.

    Its variables are exactly Conv2D's, so checkpoints of either load into the other. Set `fast = False` to
    compute it as a plain Conv2D (what the benchmarks compare against)."""

    fast = True

    def convolution_op(self, inputs, kernel):
        if (not self.fast or keras.backend.backend() != "tensorflow" or self.filters > 4
                or tuple(self.strides) != (1, 1) or tuple(self.dilation_rate) != (1, 1) or self.groups != 1
                or self.data_format != "channels_last"):
            return super().convolution_op(inputs, kernel)
        return depthwise_sum_conv(inputs, kernel, self.padding.upper())
