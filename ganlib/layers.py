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


@keras.saving.register_keras_serializable(package="ganlib")
class MinibatchStdDev(layers.Layer):
    """Appends one feature map: the standard deviation of the features across a group of samples, averaged
    (Karras et al. 2018, "Progressive Growing of GANs", section 3). A discriminator that sees how much a group of
    images varies can tell a collapsed generator's batches from real ones, so the generator is pushed to vary.

    Groups are *consecutive* samples (StyleGAN's are strided): ganlib's trainer concatenates a real and a fake
    batch for one discriminator pass, and consecutive groups never mix the two when the batch size is a multiple
    of `group_size` (which `Config` checks). A batch that `group_size` does not divide uses the largest group
    size that does (1 for a prime batch size: the feature is then 0)."""

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = int(group_size)

    def call(self, x):
        from keras import ops

        n = ops.shape(x)[0]
        # The largest group size up to group_size that divides this batch (training batches: group_size itself,
        # which Config checks; D scoring an odd batch elsewhere gets smaller groups, 1 at worst).
        sizes = ops.arange(1, self.group_size + 1, dtype="int32")
        group = ops.max(ops.where(ops.equal(ops.mod(ops.cast(n, "int32"), sizes), 0), sizes, 1))
        rest = tuple(x.shape[1:])  # (H, W, C) for feature maps, (F,) for dense features
        y = ops.reshape(ops.cast(x, "float32"), (-1, group, *rest))
        y = ops.sqrt(ops.var(y, axis=1) + 1e-8)  # (groups, *rest): each feature's spread within its group
        y = ops.mean(y, axis=tuple(range(1, len(rest) + 1)))  # (groups,)
        y = ops.repeat(y, group, axis=0)  # one value per sample again (consecutive groups)
        y = ops.reshape(ops.cast(y, x.dtype), (-1,) + (1,) * len(rest))
        y = y * ops.ones_like(x[..., :1])  # the same value at every position
        return ops.concatenate([x, y], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


@keras.saving.register_keras_serializable(package="ganlib")
class ConditionalBatchNormalization(layers.Layer):
    """Batch normalization whose scale and offset depend on the class (de Vries et al. 2017; BigGAN's
    class-conditional BN): x_hat * (1 + gamma[y]) + beta[y], with gamma and beta learned per class and
    starting at 0 (so it starts as plain batch norm). Inputs: [features, integer labels]. It lets every layer of
    the generator, not only its input, depend on the class."""

    def __init__(self, num_classes: int, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.momentum, self.epsilon = int(num_classes), momentum, epsilon
        self.norm = layers.BatchNormalization(momentum=momentum, epsilon=epsilon, center=False, scale=False,
                                              dtype=self.dtype_policy, name="bn")

    def build(self, input_shape):
        features = int(input_shape[0][-1])
        self.norm.build(input_shape[0])
        self.gamma = layers.Embedding(self.num_classes, features, embeddings_initializer="zeros",
                                      dtype=self.dtype_policy, name="gamma")
        self.beta = layers.Embedding(self.num_classes, features, embeddings_initializer="zeros",
                                     dtype=self.dtype_policy, name="beta")
        self.gamma.build((None,))
        self.beta.build((None,))

    def call(self, inputs, training=None):
        from keras import ops

        x, label = inputs
        x = self.norm(x, training=training)
        shape = (-1,) + (1,) * (len(x.shape) - 2) + (x.shape[-1],)
        gamma = ops.reshape(ops.cast(self.gamma(label), x.dtype), shape)
        beta = ops.reshape(ops.cast(self.beta(label), x.dtype), shape)
        return x * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "momentum": self.momentum,
                "epsilon": self.epsilon}
