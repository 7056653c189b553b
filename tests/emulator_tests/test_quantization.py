"""The basic quantization scheme end to end on real networks and real photos, and the chip's
numerics on every layer of them (docs/numerics.md).

- SdkNumeric reproduces the independent reference (tests/numerics_reference.py) bit for bit on
  every layer of MTCNN-ONet and FER, and of hand-built nets covering every layer type in every
  precision / bias / group mode; the stored params follow the documented derivations.
- SdkQuantized (fake-quant) is within one output code of SdkNumeric on >= 99.9% of elements.
- Accuracy: a small CNN trained here on MNIST-5k loses <= 1 point in 8 bits; FER and ONet keep
  >= 0.95 top-1 agreement with native on real faces.
- Determinism, HAR round trip, stream infos, and the FAQ's errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import data_sources as ds
import numerics_nets as nets
import numerics_reference as ref
from emulator import ClientRunner, SdkNative, SdkNumeric, SdkQuantized, parse_keras, run_quantization_from_np
from emulator.quant_errors import (CalibrationOutOfRangeError, CalibrationShapeError, ConcatWidthError,
                                   LimvalsOutSmallRangeError, QuantizationConfigError, QuantizationError,
                                   UnsupportedLayerError, UnsupportedRequiredSlopeError)
from emulator.quantization import layer_config, parse_precision_mode, qkey
from emulator.quantized_exec import QParams

hrt = pytest.importorskip("hailort_py")


# ------------------------------------------------------------------ data and runners ---------

def _lfw_faces_mirrored(size: int) -> np.ndarray:
    """The 100 real lfw faces and their mirror images, resized to size x size, 0..255 grey."""
    faces, _ = ds.lfw_faces()
    f = np.stack([ds._resize((faces[i] * 255.0).astype(np.float32), (size, size)) for i in range(100)])
    return np.concatenate([f, f[:, :, ::-1]])[..., None]


def lfw_faces_gray64() -> np.ndarray:
    """The faces with FER pre-processing (64x64 grey, [-1, 1])."""
    return (_lfw_faces_mirrored(64) / 127.5 - 1.0).astype(np.float32)


def lfw_faces_rgb48() -> np.ndarray:
    """The same faces for MTCNN-ONet: 48x48, grey replicated to RGB, (x - 127.5) / 128."""
    return ((np.repeat(_lfw_faces_mirrored(48), 3, -1) - 127.5) / 128.0).astype(np.float32)


@pytest.fixture(scope="module")
def onet_q(onet_keras):
    r = parse_keras(onet_keras, net_name="onet")
    run_quantization_from_np(r, ds.mtcnn_inputs(64, (48, 48), seed=3), calib_num_batch=2, batch_size=32)
    return r


@pytest.fixture(scope="module")
def fer_q(fer_keras):
    r = parse_keras(fer_keras, net_name="fer")
    run_quantization_from_np(r, ds.fer_inputs(64, seed=4), calib_num_batch=2, batch_size=32)
    return r


def snr_db(ref_v: np.ndarray, v: np.ndarray) -> float:
    ref_v, v = np.asarray(ref_v, np.float64), np.asarray(v, np.float64)
    return float(10 * np.log10((ref_v ** 2).sum() / max(((ref_v - v) ** 2).sum(), 1e-300)))


def input_codes(runner, x: np.ndarray) -> dict:
    Q = QParams(runner.hn, runner.quantized_params)
    return {l.name: hrt.quantize(x, Q.quant_info(l.name), Q.tensor(l.name).dtype)
            for l in runner.hn.input_layers}


def assert_bit_exact_with_reference(runner, x: np.ndarray) -> int:
    """SdkNumeric's raw codes of every on-chip layer == the independent reference's."""
    _, inter = runner.infer(SdkNumeric(), x, inter_layers=True)
    expected = ref.run_network(runner.hn, runner.quantized_params, input_codes(runner, x))
    assert expected, "the reference computed nothing"
    for name, codes in expected.items():
        mine = inter[name + ":codes"]
        assert mine.dtype in (np.uint8, np.uint16)
        assert np.array_equal(mine.astype(np.int64), codes), \
            f"layer {name}: {np.sum(mine.astype(np.int64) != codes)} codes differ from the reference"
    return len(expected)


def output_codes(runner, outputs: dict) -> dict:
    """Output floats back to the codes of their stream (exact: they are dequantized codes)."""
    Q = QParams(runner.hn, runner.quantized_params)
    from emulator.stream_export import chip_source

    res = {}
    for l in runner.hn.output_layers:
        src, ops = chip_source(runner, l)
        if ops:
            continue
        t = Q.tensor(src)
        res[l.name] = np.rint(outputs[l.name] / np.float32(t.scale) + t.zp).astype(np.int64)
    return res


def within_one_code(runner, x: np.ndarray) -> float:
    """Fraction of stream-tensor codes (every output stream, pre host-op) where SdkQuantized and
    SdkNumeric differ by at most one code."""
    from emulator.stream_export import chip_source

    _, a = runner.infer(SdkNumeric(), x, inter_layers=True)
    _, b = runner.infer(SdkQuantized(), x, inter_layers=True)
    Q = QParams(runner.hn, runner.quantized_params)
    diffs = []
    for l in runner.hn.output_layers:
        src, _ = chip_source(runner, l)
        t = Q.tensor(src)
        cq = np.rint(b[src] / np.float32(t.scale) + t.zp).astype(np.int64)
        diffs.append(np.abs(cq - a[src + ":codes"].astype(np.int64)).ravel())
    d = np.concatenate(diffs)
    return float(np.mean(d <= 1))


# ------------------------------------------------------------------ real networks: bit-exact ---

@pytest.mark.slow
def test_onet_every_layer_bit_exact_with_reference(onet_q):
    x = lfw_faces_rgb48()[:6]
    assert assert_bit_exact_with_reference(onet_q, x) >= 12


@pytest.mark.slow
def test_fer_every_layer_bit_exact_with_reference(fer_q):
    x = lfw_faces_gray64()[:4]
    assert assert_bit_exact_with_reference(fer_q, x) >= 30


def _check_derivations(runner):
    """Every stored quantity of every layer re-derived by the reference from the native
    params and the stored calibrated ranges (docs/numerics.md)."""
    hn, qp = runner.hn, runner.quantized_params
    Q = QParams(hn, qp)
    checked = 0
    for layer in hn.topological():
        name = layer.name
        if not Q.on_chip(name):
            continue
        bits = int(Q.get(name, "out_bits"))
        if Q.has(name, "range") and layer.type not in ("input_layer", "output_layer", "maxpool"):
            lo, hi = Q.get(name, "range")
            s, z = ref.ref_tensor_params(lo, hi, bits)
            assert (float(Q.get(name, "out_scale")), int(Q.get(name, "out_zp"))) == (s, z), name
            assert tuple(Q.get(name, "limvals").tolist()) == ref.ref_limvals(s, z, bits)
        if layer.type not in ("conv", "dw", "dense", "deconv"):
            continue
        prm = runner.layer_params(name)
        k = prm["kernel"]
        w2d = k.reshape(k.shape[0] * k.shape[1], -1) if layer.type == "dw" else k.reshape(-1, k.shape[-1])
        tin = Q.tensor(Q.source(layer))
        s_out = float(Q.get(name, "out_scale"))
        _, wbits = parse_precision_mode(layer_config(hn, layer).precision_mode)
        g = int(Q.get(name, "groups"))
        q, s_w = ref.ref_quantize_weights(w2d, wbits, g, zero_scale=np.full(g, s_out / tin.scale))
        assert np.array_equal(Q.get(name, "q_w").reshape(q.shape).astype(np.int64), q), name
        assert np.array_equal(Q.get(name, "s_w"), s_w), name
        C = q.shape[1]
        group_of = [next(i for i in range(g) if i * C // g <= o < (i + 1) * C // g) for o in range(C)]
        s_acc = np.array([tin.scale * s_w[group_of[o]] for o in range(C)])
        assert np.array_equal(Q.get(name, "s_acc"), s_acc), name
        mant, e = ref.ref_bias(prm["bias"].astype(np.float64) / s_acc, 8)
        assert np.array_equal(Q.get(name, "bias_mantissa").astype(np.int64), mant) and e == int(Q.get(name, "bias_exponent"))
        for o in range(C):
            assert (int(Q.get(name, "M")[o]), int(Q.get(name, "r")[o])) == ref.ref_rescale_params(s_acc[o] / s_out, bits)
        if layer.activation == "prelu":
            for o in range(C):
                Mn, rn = ref.ref_signed_rescale(float(prm["alpha"][o]) * s_acc[o] / s_out, bits)
                assert (int(Q.get(name, "M_neg")[o]), int(Q.get(name, "r_neg")[o])) == (Mn, rn)
        checked += 1
    return checked


def test_onet_params_follow_the_documented_derivations(onet_q):
    assert _check_derivations(onet_q) == 8


def test_fer_params_follow_the_documented_derivations(fer_q):
    assert _check_derivations(fer_q) >= 20
    # ew_add multipliers: the larger operand scale maps to exactly 2^14
    Q = QParams(fer_q.hn, fer_q.quantized_params)
    for name in ("ew_add1", "ew_add4"):
        layer = fer_q.hn.layers[name]
        sa, sb = Q.tensor(Q.source(layer, 0)).scale, Q.tensor(Q.source(layer, 1)).scale
        A, s_acc = ref.ref_ew_mults([sa, sb], False)
        assert list(Q.get(name, "ew_mult")) == A and max(A) == 1 << 14


# ------------------------------------------------------------------ real networks: quality ---

@pytest.mark.slow
def test_onet_agreement_on_real_faces(onet_q):
    x = lfw_faces_rgb48()
    nat = onet_q.infer(SdkNative(), x)
    num = onet_q.infer(SdkNumeric(), x)
    agree = float(np.mean(nat["output_layer3"].argmax(1) == num["output_layer3"].argmax(1)))
    snrs = {k: snr_db(nat[k], num[k]) for k in nat}
    print(f"\nONet on {len(x)} real faces: top-1 agreement {agree:.3f}, SNR per output (dB) "
          + ", ".join(f"{k} {v:.1f}" for k, v in snrs.items()))
    assert agree >= 0.95
    assert np.mean(nat["output_layer3"].argmax(1) == 1) > 0.9  # they are faces, natively
    assert min(snrs.values()) > 20
    frac = within_one_code(onet_q, x[:64])
    print(f"ONet SdkQuantized within one code of SdkNumeric: {100 * frac:.3f}%")
    assert frac >= 0.999


@pytest.mark.slow
def test_fer_agreement_on_real_faces(fer_q):
    x = lfw_faces_gray64()
    nat = fer_q.infer(SdkNative(), x)["output_layer1"]
    num = fer_q.infer(SdkNumeric(), x)["output_layer1"]
    agree = float(np.mean(nat.argmax(1) == num.argmax(1)))
    _, a = fer_q.infer(SdkNative(), x, inter_layers=True)
    _, b = fer_q.infer(SdkNumeric(), x, inter_layers=True)
    snr = snr_db(a["global_avg_pool1"], b["global_avg_pool1"])
    print(f"\nFER on {len(x)} real faces: top-1 agreement {agree:.3f}, logit SNR {snr:.1f} dB, "
          f"probability SNR {snr_db(nat, num):.1f} dB")
    assert agree >= 0.95
    assert snr > 18
    frac = within_one_code(fer_q, x[:64])
    print(f"FER SdkQuantized within one code of SdkNumeric: {100 * frac:.3f}%")
    assert frac >= 0.999


@pytest.mark.slow
def test_mnist_cnn_8_bit_loses_at_most_one_point(mnist):
    import keras

    x, y = mnist
    x = (x.astype(np.float32) / 255.0)[..., None]
    xtr, ytr, xte, yte = x[:4000], y[:4000], x[4000:], y[4000:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=3, batch_size=64, verbose=0)
    runner = parse_keras(model, net_name="mnist")
    run_quantization_from_np(runner, xtr, calib_num_batch=2, batch_size=32)
    acc = {t: float(np.mean(runner.infer(t, xte)["output_layer1"].argmax(1) == yte))
           for t in (SdkNative(), SdkNumeric(), SdkQuantized())}
    r16 = parse_keras(model, net_name="mnist16")
    run_quantization_from_np(r16, xtr, 2, 32, config={"*": {"precision_mode": "a16_w16",
                                                             "bias_mode": "double_scale_initialization"}})
    acc16 = float(np.mean(r16.infer(SdkNumeric(), xte)["output_layer1"].argmax(1) == yte))
    print(f"\nMNIST-5k (1000 held out): float {acc[SdkNative()]:.3f}, 8-bit SdkNumeric "
          f"{acc[SdkNumeric()]:.3f}, SdkQuantized {acc[SdkQuantized()]:.3f}, 16-bit {acc16:.3f}")
    assert acc[SdkNative()] > 0.9
    assert acc[SdkNumeric()] >= acc[SdkNative()] - 0.01
    assert abs(acc[SdkQuantized()] - acc[SdkNumeric()]) <= 0.002
    assert acc16 >= acc[SdkNative()] - 0.002


# ------------------------------------------------------------------ every layer type -----------

ALL_OPS_CONFIGS = {
    "default": None,
    "a16_w16_double_bias": {"*": {"precision_mode": "a16_w16", "bias_mode": "double_scale_initialization"}},
    "w4_groups": {"conv*": {"precision_mode": "a8_w4", "quantization_groups": 4},
                  "dense*": {"quantization_groups": 3}, "dw1": {"quantization_groups": 2}},
    "mixed_widths": {"conv3": {"precision_mode": "a8_w8_a16"}, "conv4": {"precision_mode": "a16_w8"},
                     "ew_add1": {"precision_mode": "a16_w16"},
                     "deconv1": {"precision_mode": "a16_w16", "bias_mode": "double_scale_initialization"}},
    "output_layers_a16": {"output_layer*": {"precision_mode": "a16_w16"}},
}


@pytest.fixture(scope="module")
def all_ops_images():
    return (ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", list(ALL_OPS_CONFIGS))
def test_every_layer_type_bit_exact(cfg, all_ops_images):
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, all_ops_images, 2, 32, config=ALL_OPS_CONFIGS[cfg])
    assert assert_bit_exact_with_reference(r, all_ops_images[:6]) >= 28
    assert within_one_code(r, all_ops_images[:16]) >= 0.999
    Q = QParams(r.hn, r.quantized_params)
    if cfg == "a16_w16_double_bias":
        assert all(int(Q.get(l.name, "out_bits")) == 16 for l in r.hn.topological() if Q.on_chip(l.name))
        assert Q.get("conv1", "q_w").dtype == np.int16 and Q.get("conv1", "bias_mantissa").dtype == np.int16
        nat = r.infer(SdkNative(), all_ops_images[:16])
        num = r.infer(SdkNumeric(), all_ops_images[:16])
        assert min(snr_db(nat[k], num[k]) for k in nat) > 60
    if cfg == "w4_groups":
        qw = Q.get("conv2", "q_w")
        assert np.abs(qw).max() <= 7 and len(Q.get("conv2", "s_w")) == 4
        assert len(Q.get("dense1", "s_w")) == 3 and len(Q.get("dw1", "s_w")) == 2
    if cfg == "mixed_widths":
        assert [int(Q.get(n, "out_bits")) for n in ("conv3", "conv4", "ew_add1", "conv2")] == [16, 16, 16, 8]
        assert np.abs(Q.get("conv4", "q_w")).max() <= 127
    if cfg == "output_layers_a16":
        # the producers of the output streams (through reduce_max / softmax) became 16-bit
        assert [int(Q.get(n, "out_bits")) for n in ("dense2", "conv5", "reduce_sum1", "conv4")] == [16] * 4
        assert int(Q.get("conv3", "out_bits")) == 8


def test_unequal_strides_bit_exact():
    """Depthwise and average pool with unequal strides (TF's depthwise kernel refuses them)."""
    hn, params = nets.unequal_strides_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = ds.random_crops(32, (12, 13), seed=6).astype(np.float32) / 127.5 - 1.0
    run_quantization_from_np(r, x, 1, 32)
    assert assert_bit_exact_with_reference(r, x[:6]) == 5
    assert within_one_code(r, x[:16]) >= 0.999


def test_bias_mode_changes_only_the_bias(all_ops_images):
    res = {}
    for mode in ("single_scale_decomposition", "double_scale_initialization"):
        hn, params = nets.all_ops_net()
        r = ClientRunner(hn=hn)
        r.load_params(params)
        run_quantization_from_np(r, all_ops_images, 2, 32, config={"conv*": {"bias_mode": mode}})
        res[mode] = r
    a, b = (QParams(r.hn, r.quantized_params) for r in res.values())
    assert np.array_equal(a.get("conv3", "q_w"), b.get("conv3", "q_w"))
    ba, bb = a.bias("conv3"), b.bias("conv3")
    ideal = res["single_scale_decomposition"].layer_params("conv3")["bias"] / a.get("conv3", "s_acc")
    assert a.get("conv3", "bias_mantissa").dtype == np.int8 and b.get("conv3", "bias_mantissa").dtype == np.int16
    assert np.abs(bb - ideal).max() <= 0.5 + 1e-9 < np.abs(ba - ideal).max()


@pytest.mark.parametrize("same", [False, True], ids=["valid_folded", "same_on_chip"])
def test_normalization_folding(same):
    hn, params = nets.folded_norm_net(same=same)
    r = ClientRunner(hn=hn)
    r.load_params(params)
    raw = ds.random_crops(64, (12, 12), seed=5).astype(np.float32)  # raw 0..255 pixels
    run_quantization_from_np(r, raw, 2, 32)
    infos = r.get_stream_infos()
    qi = infos[0].quant_info
    folded = r.metadata["calibration"]["folded_normalization"]
    if same:
        assert folded == {} and not qi.is_identity
    else:
        assert folded == {"normalization1": "conv1"} and qi.is_identity
        assert str(r.quantized_params[qkey("normnet", "normalization1", "kind")]) == "folded"
    assert assert_bit_exact_with_reference(r, raw[:8]) >= 5
    nat = r.infer(SdkNative(), raw)
    num = r.infer(SdkNumeric(), raw)
    assert min(snr_db(nat[k], num[k]) for k in nat) > 25
    _, inter = r.infer(SdkNumeric(), raw[:4], inter_layers=True)
    _, native = r.infer(SdkNative(), raw[:4], inter_layers=True)
    assert np.allclose(inter["normalization1"], native["normalization1"], atol=0.05)
    assert within_one_code(r, raw[:16]) >= 0.999


@pytest.mark.slow
def test_folded_normalization_on_a_real_network(onet_keras):
    """The accuracy of normalization folding on a trained network (the random-weight nets above
    prove the arithmetic only): ONet behind a Rescaling layer takes raw 0..255 pixels, the
    normalization folds into conv1, the input stream has the identity QP, and real faces keep
    their top-1 and their SNR."""
    import keras

    inp = keras.Input((48, 48, 3))
    r = parse_keras(keras.Model(inp, onet_keras(keras.layers.Rescaling(1 / 128, offset=-127.5 / 128)(inp))),
                    net_name="onet_raw")
    run_quantization_from_np(r, ds.random_crops(64, (48, 48), seed=3).astype(np.float32), 2, 32)
    assert r.metadata["calibration"]["folded_normalization"] == {"normalization1": "conv1"}
    assert r.get_stream_infos()[0].quant_info.is_identity
    x = lfw_faces_rgb48() * 128.0 + 127.5  # the same real faces, as raw pixels
    assert assert_bit_exact_with_reference(r, x[:4]) >= 12
    nat, num = r.infer(SdkNative(), x), r.infer(SdkNumeric(), x)
    assert float(np.mean(nat["output_layer3"].argmax(1) == num["output_layer3"].argmax(1))) >= 0.95
    assert min(snr_db(nat[k], num[k]) for k in nat) > 20


# ------------------------------------------------------------------ determinism, HAR ----------

@pytest.mark.slow
def test_numeric_is_deterministic_and_har_round_trip_is_identical(fer_q, tmp_path):
    x = lfw_faces_gray64()[:24]
    o1, i1 = fer_q.infer(SdkNumeric(), x, inter_layers=True)
    o2, i2 = fer_q.infer(SdkNumeric(), x, inter_layers=True, batch_size=7)
    for k in i1:
        assert i1[k].tobytes() == i2[k].tobytes(), k
    path = tmp_path / "fer.har"
    fer_q.save_har(path)
    back = ClientRunner(har=path)
    assert list(back.quantized_params) == list(fer_q.quantized_params)
    for k, v in fer_q.quantized_params.items():
        w = back.quantized_params[k]
        assert w.dtype == v.dtype and w.shape == v.shape and w.tobytes() == v.tobytes(), k
    o3, i3 = back.infer(SdkNumeric(), x, inter_layers=True)
    for k in i1:
        assert i1[k].tobytes() == i3[k].tobytes(), k
    assert back.stream_infos == fer_q.stream_infos
    assert [s.to_dict() for s in back.get_stream_infos()] == [s.to_dict() for s in fer_q.get_stream_infos()]
    assert back.metadata["calibration"]["images"] == 64


def test_numeric_input_is_the_c_host_quantizer(onet_q):
    """The codes SdkNumeric feeds the chip are hailort_py.quantize's, and the host pipeline's
    InputTransformContext writes the same codes into the device frame."""
    x = lfw_faces_rgb48()[:5]
    _, inter = onet_q.infer(SdkNumeric(), x, inter_layers=True)
    info = onet_q.get_stream_infos()[0]
    codes = hrt.quantize(x, info.quant_info, np.uint8)
    assert np.array_equal(inter["input_layer1:codes"], codes)
    ctx = hrt.InputTransformContext(info, hrt.Format(hrt.FormatType.FLOAT32, hrt.FormatOrder.NHWC))
    frames = np.asarray(ctx.transform(np.ascontiguousarray(x))).reshape(5, -1)
    hh, hw, hc = info.hw_shape
    dev = frames[:, :hh * hc * hw].reshape(5, hh, hc, hw)[:, :, :, :info.shape.width]  # NHCW
    assert np.array_equal(dev.transpose(0, 1, 3, 2), codes)


def test_fake_quant_is_differentiable(fer_q):
    import tensorflow as tf

    from emulator.graph_exec import execute
    from emulator.quantized_exec import fake_quant_layer_fn

    fn = fake_quant_layer_fn(fer_q.hn, fer_q.quantized_params)
    x = tf.Variable(lfw_faces_gray64()[:2])
    with tf.GradientTape() as tape:
        outs, _ = execute(fer_q.hn, {"input_layer1": x}, fn)
        loss = tf.reduce_sum(outs["output_layer1"][:, 0])
    g = tape.gradient(loss, x).numpy()
    assert np.isfinite(g).all() and np.abs(g).sum() > 0
    # weights given as float tensors (QFT's variables) get gradients through fake_quant_weights
    w = tf.Variable(fer_q.layer_params("conv15")["kernel"])
    fn = fake_quant_layer_fn(fer_q.hn, fer_q.quantized_params, weights={"conv15": w})
    with tf.GradientTape() as tape:
        outs, _ = execute(fer_q.hn, {"input_layer1": tf.constant(lfw_faces_gray64()[:2])}, fn)
        loss = tf.reduce_sum(outs["output_layer1"][:, 0])
    gw = tape.gradient(loss, w)
    assert gw is not None and np.abs(gw.numpy()).sum() > 0


# ------------------------------------------------------------------ stream infos --------------

def test_stream_infos_of_onet_and_fer(onet_q, fer_q):
    for r, n_out in ((onet_q, 3), (fer_q, 1)):
        infos = r.get_stream_infos()
        assert [s.name for s in infos] == [r.hn.scoped(l.name) for l in r.hn.input_layers + r.hn.output_layers]
        inp = infos[0]
        assert inp.is_input and inp.format.type == hrt.FormatType.UINT8
        assert inp.format.order == hrt.FormatOrder.NHCW
        Q = QParams(r.hn, r.quantized_params)
        t = Q.tensor("input_layer1")
        assert inp.quant_info.qp_scale == np.float32(t.scale) and inp.quant_info.qp_zp == t.zp
        assert (inp.quant_info.limvals_min, inp.quant_info.limvals_max) == t.limvals
        outs = infos[1:]
        assert len(outs) == n_out
        for s in outs:
            assert not s.is_input and s.format.order == hrt.FormatOrder.NC
            assert s.hw_shape.features % 8 == 0 and s.hw_shape.features >= s.shape.features
            assert s.hw_frame_size % 8 == 0
        assert r.stream_infos == [dict(s.to_dict(), **({"host_ops": ["softmax"]} if "host_ops" in d else {}))
                                  for s, d in zip(infos, r.stream_infos)]
    # the softmax outputs say that the host applies the softmax
    assert onet_q.stream_infos[3]["host_ops"] == ["softmax"] and "host_ops" not in onet_q.stream_infos[1]
    assert fer_q.stream_infos[1]["host_ops"] == ["softmax"]
    from emulator.stream_export import chip_source, host_ops_of

    assert host_ops_of(onet_q, "onet/output_layer3") == ["softmax"] and host_ops_of(onet_q, "onet/input_layer1") == []
    src, host_layers = chip_source(onet_q, onet_q.hn.layer("output_layer3"))
    assert src == "dense4" and [l.name for l in host_layers] == ["softmax1"]
    q_prob = onet_q.get_stream_infos()[3].quant_info
    t = QParams(onet_q.hn, onet_q.quantized_params).tensor("dense4")
    assert q_prob.qp_scale == np.float32(t.scale)  # the pre-softmax tensor's QP


@pytest.mark.slow
def test_stream_infos_spatial_outputs_and_16_bit(pnet_keras):
    r = parse_keras(pnet_keras, net_name="pnet", input_shape=ds.PNET_INPUT)
    imgs = ds.mtcnn_inputs(32, ds.PNET_INPUT[:2], seed=1)
    run_quantization_from_np(r, imgs, 1, 32, config={"input_layer1": {"precision_mode": "a16_w16"},
                                                     "output_layer1": {"precision_mode": "a16_w16"}})
    infos = r.get_stream_infos()
    assert infos[0].format.type == hrt.FormatType.UINT16 and infos[0].hw_shape.width * 2 % 8 == 0
    for s in infos[1:]:
        assert s.format.order == hrt.FormatOrder.NHCW and s.shape.height > 1
        nbytes = s.hw_data_bytes
        assert (s.hw_shape.width * nbytes) % 8 == 0 and s.hw_shape.width - s.shape.width < 8 // nbytes
        assert (s.hw_shape.height, s.hw_shape.features) == (s.shape.height, s.shape.features)
    assert infos[1].format.type == hrt.FormatType.UINT16 and infos[2].format.type == hrt.FormatType.UINT8
    assert assert_bit_exact_with_reference(r, imgs[:2]) >= 8


# ------------------------------------------------------------------ the FAQ's errors ----------

def test_out_of_range_names_both_numbers(onet_keras):
    r = parse_keras(onet_keras, net_name="onet_oor")
    imgs = ds.mtcnn_inputs(20, (48, 48), seed=3)
    with pytest.raises(CalibrationOutOfRangeError) as e:
        run_quantization_from_np(r, imgs, calib_num_batch=4, batch_size=8)
    msg = str(e.value)
    assert "OutOfRange" in msg and "32" in msg and "20" in msg and "4 x 8" in msg
    assert e.value.requested == 32 and e.value.available == 20
    assert r.quantized_params is None


def test_calibration_shape_mismatch(onet_keras):
    r = parse_keras(onet_keras, net_name="onet_shape")
    imgs = ds.mtcnn_inputs(8, (48, 48), seed=3)
    with pytest.raises(CalibrationShapeError, match=r"\(8, 3, 48, 48\).*expected \(N, 48, 48, 3\).*channels first"):
        run_quantization_from_np(r, imgs.transpose(0, 3, 1, 2), 1, 8)
    with pytest.raises(CalibrationShapeError, match="add the batch axis"):
        run_quantization_from_np(r, imgs[0], 1, 1)
    with pytest.raises(CalibrationShapeError, match=r"\(8, 24, 24, 3\)"):
        run_quantization_from_np(r, ds.mtcnn_inputs(8, (24, 24), seed=3), 1, 8)
    bad = imgs.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(CalibrationShapeError, match="NaN"):
        run_quantization_from_np(r, bad, 1, 8)


def _tiny_net(kernel, bias, act="relu"):
    from emulator.importers.builder import GraphBuilder

    g = GraphBuilder("tiny")
    x = g.add_input([-1, 8, 8, 2], "in")
    c = g.add("conv", [x], [-1, 6, 6, 1], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
              "padding": "VALID", "groups": 1, "activation": act},
              {"kernel": kernel, "bias": bias}, "conv_a")
    c2 = g.add("conv", [x], [-1, 6, 6, 4], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
               "padding": "VALID", "groups": 1, "activation": "relu"},
               {"kernel": np.full((3, 3, 2, 4), 0.1, np.float32), "bias": np.zeros(4, np.float32)}, "conv_b")
    g.add_output(c)
    g.add_output(c2)
    hn, params = g.build("tiny")
    r = ClientRunner(hn=hn)
    r.load_params(params)
    return r


def _photo_pairs(n=16):
    x = ds.random_crops(n, (8, 8), seed=2).astype(np.float32)[..., :2] / 255.0
    return x


def test_limvals_out_small_range_names_the_layer():
    """A ReLU branch the calibration set never activates (a large negative bias)."""
    r = _tiny_net(np.full((3, 3, 2, 1), 0.1, np.float32), np.array([-50.0], np.float32))
    with pytest.raises(LimvalsOutSmallRangeError) as e:
        run_quantization_from_np(r, _photo_pairs(), 2, 8)
    msg = str(e.value)
    assert "limvals out small range" in msg and "'conv1'" in msg and "representative" in msg
    assert e.value.layer == "conv1"
    assert e.value.branch == ["output_layer1"] and "the branch to output_layer1" in msg


def test_unsupported_required_slope_names_layer_shifts_and_advice():
    """Weights that cancel on the calibration images (channel 1 equals channel 0 here) leave a
    tiny output range for large weights: the rescale would need a slope far above 2^8."""
    k = np.zeros((3, 3, 2, 1), np.float32)
    k[..., 0, 0], k[..., 1, 0] = 1.0, -1.0
    r = _tiny_net(k, np.array([1e-5], np.float32), act="linear")
    x = _photo_pairs()
    x[..., 1] = x[..., 0]
    with pytest.raises(UnsupportedRequiredSlopeError) as e:
        run_quantization_from_np(r, x, 2, 8)
    msg = str(e.value)
    assert "unsupported required slope" in msg and "'conv1'" in msg
    assert "desired shift is" in msg and "available shift is 7..46" in msg
    assert "weights and the calibration set are real" in msg
    assert e.value.desired_shift < 7


def test_config_errors(all_ops_images):
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    for cfg, pattern in [({"conv1": {"precision_mode": "a8_w3"}}, "aX_wY"),
                         ({"conv1": {"bias_mode": "triple"}}, "'bias_mode' = 'triple'"),
                         ({"conv1": {"quantization_groups": 5}}, "1..4"),
                         ({"conv1": {"equalization": True}}, "unknown key 'equalization'"),
                         ({"nope*": {"precision_mode": "a8_w8"}}, "no layer"),
                         ({"maxpool1": {"quantization_groups": 2}}, "layers with weights")]:
        with pytest.raises(QuantizationConfigError, match=pattern):
            run_quantization_from_np(r, all_ops_images, 2, 32, config=cfg)
    assert parse_precision_mode("a8_w8_a16") == (16, 8) and parse_precision_mode("a16_w8") == (16, 8)
    assert parse_precision_mode("a8_w4") == (8, 4)


def test_softmax_inside_the_network_is_refused():
    from emulator.importers.builder import GraphBuilder

    g = GraphBuilder("sm")
    x = g.add_input([-1, 4], "in")
    d = g.add("dense", [x], [-1, 4], {"activation": "linear"},
              {"kernel": np.eye(4, dtype=np.float32), "bias": np.zeros(4, np.float32)}, "fc")
    s = g.add("softmax", [d], [-1, 4], {"axis": 1}, source="sm")
    d2 = g.add("dense", [s], [-1, 2], {"activation": "linear"},
               {"kernel": np.ones((4, 2), np.float32), "bias": np.zeros(2, np.float32)}, "fc2")
    g.add_output(d2)
    hn, params = g.build("sm")
    r = ClientRunner(hn=hn)
    r.load_params(params)
    with pytest.raises(UnsupportedLayerError, match="softmax1.*host"):
        run_quantization_from_np(r, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), 1, 8)


def test_output_without_a_stream_layout_is_refused():
    """A rank-5 output has no stream layout: the error names the stream, the runner stays
    unquantized."""
    from emulator.importers.builder import GraphBuilder

    g = GraphBuilder("r5")
    x = g.add_input([-1, 4, 6, 3], "in")
    c = g.add("conv", [x], [-1, 4, 6, 4], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
              "padding": "SAME_TENSORFLOW", "groups": 1, "activation": "linear"},
              {"kernel": np.full((3, 3, 3, 4), 0.1, np.float32), "bias": np.zeros(4, np.float32)}, "c")
    g.add_output(g.add("reshape", [c], [-1, 2, 2, 6, 4], {"output_shape": [-1, 2, 2, 6, 4]}, source="r"))
    hn, params = g.build("r5")
    r = ClientRunner(hn=hn)
    r.load_params(params)
    with pytest.raises(UnsupportedLayerError, match="stream 'r5/output_layer1'.*rank 5"):
        run_quantization_from_np(r, ds.random_crops(8, (4, 6), seed=1).astype(np.float32) / 255.0, 1, 8)
    assert r.quantized_params is None and r.stream_infos is None


def test_concat_of_different_widths_is_refused(all_ops_images):
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    with pytest.raises(ConcatWidthError, match="concat1.*'resize1' is 16-bit but input 'resize2' is 8-bit"):
        run_quantization_from_np(r, all_ops_images, 2, 32, config={"avgpool1": {"precision_mode": "a16_w16"}})
    # both inputs 16-bit: the concat follows them
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, all_ops_images, 2, 32, config={"avgpool1": {"precision_mode": "a16_w16"},
                                                               "conv2": {"precision_mode": "a16_w16"}})
    assert int(r.quantized_params[qkey("allops", "concat1", "out_bits")]) == 16
    assert issubclass(ConcatWidthError, QuantizationError)


def test_xla_compiled_numeric_equals_plain_tf(all_ops_images):
    """SdkNumeric compiles layers with XLA after a self-check; the plain TensorFlow graph of the
    same kernels gives the same codes on every layer."""
    from emulator import quantized_exec as qe
    from emulator.numerics import kernels as K

    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, all_ops_images, 2, 32)
    a, b = qe._Executor(r, True, xla=True), qe._Executor(r, True, xla=False)
    batch = a.prepare({"input_layer1": all_ops_images[:16]})
    (oa, la), (ob, lb) = a.run(batch, True), b.run(batch, True)
    assert K.xla_is_exact()
    for u, v in zip(la + oa, lb + ob):
        assert u.dtype == v.dtype and np.array_equal(u, v)
