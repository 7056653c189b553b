"""A small MobileNetV2-style network trained on real digits (MNIST-5k), shared by tests and benches.

    from mobilenet_style import mobilenet_style_model
    model, x_train, y_train, x_test, y_test = mobilenet_style_model()

The network (input 28x28x1, pixels / 255; ~30k weights):

    stem      Conv 3x3 /2 (16) - BN - ReLU6                                    14x14x16
    block 1   DW 3x3 - BN - ReLU6 - Conv 1x1 (8) - BN                 (t = 1)  14x14x8
    block 2   Conv 1x1 (48) - BN - ReLU6 - DW 3x3 - BN - ReLU6 - Conv 1x1 (8) - BN, + block 1
    block 3   the same with a stride-2 depthwise, projecting to 16            7x7x16
    block 4   Conv 1x1 (96) - BN - ReLU6 - DW 3x3 - BN - ReLU6 - Conv 1x1 (16) - BN, + block 3
    head      Conv 1x1 (64) - BN - ReLU6 - GlobalAveragePooling - Dense (10) - softmax

Every convolution has no bias and is followed by BatchNormalization, which the importer folds
into it: a depthwise kernel then gets each channel's gamma / sqrt(var + eps), so the folded
depthwise kernels have very different per-channel ranges (the case cross-layer equalization
exists for; `python tests/mobilenet_style.py` prints the spread). A few epochs from gamma = 1
leave the channels too alike for that (max / min of the folded depthwise ranges about 5x, where
a MobileNetV2 trained for hundreds of epochs has 100x and more), so the BN gammas start
log-uniform in GAMMA_RANGE (0.1 .. 2), the heterogeneous scales long training ends with: the
folded depthwise ranges then spread 20-80x, and per-tensor 8-bit weights lose several dB that
equalization wins back.

Training is deterministic on CPU: seeded initializers (one seed per layer, derived from `seed`),
a fixed batch order (numpy Generator(seed)), no dropout, Adam; the global random state of
Python, numpy, Keras and TensorFlow is neither used nor changed. It trains for 4 epochs on
4,000 digits (about 20-30 s on 2 cores; float test accuracy about 93%) and is tested on the
other 1,000.

The result is cached per process (functools.lru_cache): every caller gets the SAME model object
and the same (read-only) arrays. Do not change the model's weights; parse it
(emulator.parse_keras) and work on the runner, or clone it (keras.models.clone_model +
set_weights) first.
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import data_sources as ds  # noqa: E402

N_TRAIN = 4000     # the first 4,000 of mnist_5k (shuffled with seed 0); the last 1,000 are the test set
EPOCHS = 4
BATCH = 64
LEARNING_RATE = 3e-3
NUM_CLASSES = 10
GAMMA_RANGE = (0.1, 2.0)  # BatchNormalization gammas start log-uniform in this range (see the doc)


def _build(seed: int):
    import keras
    from keras import layers as L

    counter = iter(range(1_000))

    def init():  # a new seeded initializer per layer (a seeded instance repeats its values)
        return keras.initializers.GlorotUniform(seed=seed * 1_000 + next(counter))

    def gamma_init():  # log-uniform in GAMMA_RANGE, seeded per layer
        rng = np.random.default_rng(seed * 1_000 + next(counter))
        lo, hi = np.log(GAMMA_RANGE[0]), np.log(GAMMA_RANGE[1])
        return lambda shape, dtype=None: np.exp(rng.uniform(lo, hi, shape)).astype("float32")

    def bn(x, name):
        return L.BatchNormalization(momentum=0.9, gamma_initializer=gamma_init(), name=name + "_bn")(x)

    def conv(x, c, k, s, name, act=True):
        x = L.Conv2D(c, k, strides=s, padding="same", use_bias=False, kernel_initializer=init(),
                     name=name)(x)
        x = bn(x, name)
        return L.ReLU(6.0, name=name + "_relu6")(x) if act else x

    def dw(x, s, name):
        x = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False,
                              depthwise_initializer=init(), name=name)(x)
        return L.ReLU(6.0, name=name + "_relu6")(bn(x, name))

    def inverted_residual(x, expand: int, out: int, stride: int, name: str):
        c_in = x.shape[-1]
        y = conv(x, c_in * expand, 1, 1, name + "_expand") if expand != 1 else x
        y = dw(y, stride, name + "_dw")
        y = conv(y, out, 1, 1, name + "_project", act=False)
        if stride == 1 and c_in == out:
            y = L.Add(name=name + "_add")([x, y])
        return y

    inp = keras.Input((28, 28, 1), name="digit")
    x = conv(inp, 16, 3, 2, "stem")
    x = inverted_residual(x, 1, 8, 1, "block1")
    x = inverted_residual(x, 6, 8, 1, "block2")
    x = inverted_residual(x, 6, 16, 2, "block3")
    x = inverted_residual(x, 6, 16, 1, "block4")
    x = conv(x, 64, 1, 1, "head")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=init(), name="classifier")(x)
    return keras.Model(inp, out, name="mobilenet_style")


def mnist_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): MNIST-5k as float32 (N, 28, 28, 1) in [0, 1], int64
    labels; 4,000 training and 1,000 test digits, disjoint."""
    x, y = ds.mnist_5k()
    x = (x.astype(np.float32) / 255.0)[..., None]
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


@functools.lru_cache(maxsize=None)
def mobilenet_style_model(seed: int = 0):
    """(model, x_train, y_train, x_test, y_test): the network above trained on MNIST-5k.

    Deterministic for a given `seed` on a given machine (CPU); cached per process. The arrays
    are read-only; the model is shared by every caller (do not train or modify it)."""
    import keras

    x_train, y_train, x_test, y_test = mnist_split()
    model = _build(seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(seed)
    for _ in range(EPOCHS):  # our own batch order, the same on every run
        perm = rng.permutation(len(y_train))
        model.fit(x_train[perm], y_train[perm], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for a in (x_train, y_train, x_test, y_test):
        a.flags.writeable = False
    return model, x_train, y_train, x_test, y_test


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Share of `x` whose argmax prediction is `y`."""
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), axis=-1) == y))


def main() -> None:
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    t = time.perf_counter()
    model, x_train, y_train, x_test, y_test = mobilenet_style_model()
    train_s = time.perf_counter() - t
    print(f"mobilenet_style: {model.count_params()} parameters, trained on {len(y_train)} MNIST digits "
          f"({EPOCHS} epochs, batch {BATCH}) in {train_s:.1f} s on {os.cpu_count()} CPU threads")
    print(f"float accuracy: train {accuracy(model, x_train, y_train):.4f}, "
          f"test {accuracy(model, x_test, y_test):.4f} ({len(y_test)} held-out digits)")

    from emulator import parse_keras

    runner = parse_keras(model, net_name="mobilenet_style")
    print("folded depthwise kernels, per-channel max|w|: max / min over channels")
    for layer in runner.hn.topological():
        if layer.type == "dw":
            k = runner.native_params[f"{runner.hn.name}/{layer.name}/kernel:0"]
            r = np.abs(k.reshape(-1, k.shape[2] * k.shape[3])).max(axis=0)
            print(f"  {layer.name:6s} {r.size:3d} channels  range {r.min():.3g} .. {r.max():.3g}  "
                  f"spread {r.max() / max(r.min(), 1e-12):.0f}x")


if __name__ == "__main__":
    main()
