"""Cross-layer equalization and dead-channel clean-up (emulator/quantization/equalization.py,
dead_channels.py; docs/equalization.md): function preservation on real networks (FER, MTCNN
O-Net, the MobileNet-style net of tests/mobilenet_style.py trained on MNIST), more uniform
per-channel weight ranges, skipped layers (residual adds, fan-out, non-homogeneous activations)
left untouched, dead channels zeroed and folded, the quantized SNR before / after on the
MobileNet-style net, and our per-layer a8_w8 flow against TFLite's per-channel int8 on it."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from data_sources import rel_error

from emulator import (ClientRunner, SdkFPOptimized, SdkNative, SdkNumeric, SdkQuantized, parse_keras,
                      run_quantization_from_np)
from emulator.errors import ParamsError
from emulator.quantization.dead_channels import clean_dead_channels
from emulator.quantization.equalization import (activation_ranges, equalize, find_pairs, input_channel_ranges,
                                                output_channel_ranges, range_spread)

PRESERVE = 1e-4  # relative error of the outputs, float32 rounding only


def _fresh(runner) -> ClientRunner:
    """A runner of its own (the session fixtures are shared: never install params on them)."""
    r = ClientRunner(hn=runner.hn.to_dict())
    r.load_params(runner.native_params)
    return r


def _max_rel(runner, params, x, inter=False):
    r = _fresh(runner)
    r.set_fp_optimized_params(params)
    if inter:
        ref, ref_all = r.infer(SdkNative(), x, inter_layers=True)
        out, out_all = r.infer(SdkFPOptimized(), x, inter_layers=True)
        return max(rel_error(out[k], ref[k]) for k in ref), ref_all, out_all
    ref = r.infer(SdkNative(), x)
    out = r.infer(SdkFPOptimized(), x)
    return max(rel_error(out[k], ref[k]) for k in ref)


def _snr(test, ref) -> float:
    ref = np.asarray(ref, np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((np.asarray(test, np.float64) - ref) ** 2)))


def _k(runner, layer, field="kernel"):
    return f"{runner.hn.name}/{layer}/{field}:0"


def _assert_native(runner, params, layer, field="kernel"):
    """The param is bit for bit the native one."""
    np.testing.assert_array_equal(params[_k(runner, layer, field)], runner.native_params[_k(runner, layer, field)])


def _randn(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _spread(runner, params, layer):
    l = runner.hn.layers[layer]
    return range_spread(output_channel_ranges(params[_k(runner, layer)], l.type))


# --- the MobileNet-style network of tests/mobilenet_style.py (BN folded by the importer) -------

# BN layer: channels made dead in the variant (stem -> dw1 and block 3's expand -> dw3 are padded
# 3x3 consumers; the two depthwise layers feed 1x1 projections)
DEAD = {"stem_bn": (2, 9), "block1_dw_bn": (1, 5), "block2_dw_bn": (3, 20), "block3_expand_bn": (7,)}


@pytest.fixture(scope="module")
def mobilenet():
    """(runner, runner with dead channels, calibration images, test images, keras model, all test
    images, their labels): the MobileNet-style net of tests/mobilenet_style.py (trained once per
    process, shared with the benches). The dead-channel variant is a second copy of the model
    with the BN gamma of the DEAD channels set to ~0 (what weight decay does to unused channels)
    and beta 1.5, so that after folding their kernels are ~1e-9 of the layer's and their output
    the constant ReLU6(1.5). The shared model itself is not changed."""
    import mobilenet_style as ms

    model, x_train, _, x_test, y_test = ms.mobilenet_style_model()
    clean = parse_keras(model, net_name="mbnet")
    # a copy to change: built by the same builder (keras.models.clone_model cannot re-create its
    # gamma initializer), with the trained weights
    copy = ms._build(0)
    copy.set_weights(model.get_weights())
    for name, chans in DEAD.items():
        bn = copy.get_layer(name)
        g, b = bn.gamma.numpy(), bn.beta.numpy()
        g[list(chans)] = 1e-9
        b[list(chans)] = 1.5
        bn.gamma.assign(g)
        bn.beta.assign(b)
    dead = parse_keras(copy, net_name="mbnet")
    return clean, dead, np.array(x_train[:64]), np.array(x_test[:256]), model, np.array(x_test), y_test


# --- function preservation --------------------------------------------------------------------

def test_fer_equalized_is_the_same_function(fer_runner, fer_images):
    before = fer_runner.fp_optimized_params
    native = {k: v.copy() for k, v in fer_runner.native_params.items()}
    p, rep = equalize(fer_runner)
    assert fer_runner.fp_optimized_params is before  # the runner is not changed
    assert all(np.array_equal(fer_runner.native_params[k], v) for k, v in native.items())
    assert len(rep.pairs) == 13 and rep.converged
    assert _max_rel(fer_runner, p, fer_images) < PRESERVE
    skipped = {s.layer: s.reason for s in rep.skipped}
    for conv in ("conv4", "conv5", "conv7", "conv8", "conv10", "conv11", "conv13", "conv14"):
        assert "residual ew_add" in skipped[conv]
    assert "feeds 2 consumers" in skipped["conv2"]
    assert all(isinstance(s, str) for s in rep.lines())


def test_onet_equalized_is_the_same_function(onet_runner, mtcnn_images_48):
    p, rep = equalize(onet_runner)
    assert [(q.first, q.through, q.second) for q in rep.pairs] == [
        ("conv1", ("maxpool1",), "conv2"), ("conv2", ("maxpool2",), "conv3"),
        ("conv3", ("maxpool3",), "conv4"), ("conv4", (), "dense1")]  # conv4 -> dense1: the flatten
    assert _max_rel(onet_runner, p, mtcnn_images_48) < PRESERVE
    for l in ("conv1", "conv2", "conv3", "conv4"):  # PReLU: alpha per channel unchanged
        _assert_native(onet_runner, p, l, "alpha")
    assert "feeds 3 consumers" in {s.layer: s.reason for s in rep.skipped}["dense1"]


@pytest.mark.slow
def test_mobilenet_equalized_is_the_same_function_with_relu6_clips(mobilenet):
    runner, _, _, x, *_ = mobilenet
    p, rep = equalize(runner)
    assert [(q.first, q.second) for q in rep.pairs] == [
        ("conv1", "dw1"), ("dw1", "conv2"), ("conv3", "dw2"), ("dw2", "conv4"), ("conv5", "dw3"),
        ("dw3", "conv6"), ("conv7", "dw4"), ("dw4", "conv8"), ("conv9", "dense1")]
    assert _max_rel(runner, p, x) < PRESERVE
    clipped = sorted(k.split("/")[1] for k in p if k.endswith("/act_clip:0"))
    assert clipped == ["conv1", "conv3", "conv5", "conv7", "conv9", "dw1", "dw2", "dw3", "dw4"]
    # the clip is 6 / s: act_clip * (what the bias was divided by) = 6 on every channel
    for l in clipped:
        b0, b1 = runner.native_params[_k(runner, l, "bias")], p[_k(runner, l, "bias")]
        ok = np.abs(b0) > 1e-3
        np.testing.assert_allclose((p[_k(runner, l, "act_clip")] * b0 / b1)[ok], 6.0, rtol=1e-5)


def test_small_network_of_every_kind_is_the_same_function():
    """Grouped conv, leaky, transposed conv, a sigmoid (never crossed), PReLU, average pool, a
    dense on a flattened map, a relu6 dense: random weights, random input."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 4))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.Conv2D(8, 3, padding="same", groups=2)(x)
    x = L.LeakyReLU(0.1)(x)
    x = L.Conv2DTranspose(6, 2, strides=2)(x)
    x = L.ReLU()(x)
    x = L.Conv2D(6, 3, padding="valid", activation="sigmoid")(x)
    x = L.Conv2D(6, 1)(x)
    x = L.PReLU(shared_axes=[1, 2])(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(12, activation="relu6")(x)
    x = L.Dense(5)(x)
    runner = parse_keras(keras.Model(inp, x), net_name="syn")
    p, rep = equalize(runner)
    assert [(q.first, q.second) for q in rep.pairs] == [
        ("conv1", "conv2"), ("conv2", "deconv1"), ("deconv1", "conv3"), ("conv4", "dense1"),
        ("dense1", "dense2")]
    assert _max_rel(runner, p, _randn((8, 16, 16, 4), 0)) < PRESERVE
    # the sigmoid layer keeps its output channels (conv3 is the second of deconv1 -> conv3: only
    # its input channels move), and the layer after it keeps its input channels
    assert "sigmoid is not positively homogeneous" in {s.layer: s.reason for s in rep.skipped}["conv3"]
    _assert_native(runner, p, "conv3", "bias")
    ratio = p[_k(runner, "conv4")] / runner.native_params[_k(runner, "conv4")]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1, :1, :1, :], ratio.shape), rtol=1e-6)


def test_sigmoid_between_is_never_crossed():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(2)
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, activation="relu")(inp)
    x = L.Conv2D(8, 3, activation="sigmoid")(x)
    x = L.Conv2D(4, 3)(x)
    x = L.Flatten()(x)
    x = L.Dense(3)(x)
    runner = parse_keras(keras.Model(inp, x), net_name="sig")
    p, rep = equalize(runner)
    assert [(q.first, q.second) for q in rep.pairs] == [("conv1", "conv2"), ("conv3", "dense1")]
    # conv2 (sigmoid) keeps its output channels; conv3 keeps its input channels
    _assert_native(runner, p, "conv2", "bias")
    ratio = p[_k(runner, "conv3")] / runner.native_params[_k(runner, "conv3")]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1, :1, :1, :], ratio.shape), rtol=1e-6)
    assert _max_rel(runner, p, _randn((4, 12, 12, 3), 1)) < PRESERVE


# --- ranges ------------------------------------------------------------------------------------

def _worst_spread(runner, params, pairs):
    hn = runner.hn
    out = []
    for q in pairs:
        a, b = hn.layers[q.first], hn.layers[q.second]
        out.append(max(range_spread(output_channel_ranges(params[_k(runner, a.name)], a.type)),
                       range_spread(input_channel_ranges(params[_k(runner, b.name)], b))))
    return np.array(out)


@pytest.mark.real_model  # the runner comes through request.getfixturevalue
@pytest.mark.parametrize("which", ["fer", "onet"])
def test_per_channel_ranges_become_more_uniform(which, request):
    runner = request.getfixturevalue(f"{which}_runner")
    p, rep = equalize(runner)
    pairs, _ = find_pairs(runner.hn)
    before, after = _worst_spread(runner, runner.native_params, pairs), _worst_spread(runner, p, pairs)
    assert after.max() < before.max()
    assert np.exp(np.log(after).mean()) < np.exp(np.log(before).mean())


@pytest.mark.slow
def test_mobilenet_depthwise_spreads_drop(mobilenet):
    """The reason equalization exists: BN folded into depthwise kernels spreads their per-channel
    ranges; equalization brings every dw layer's spread down."""
    runner, *_ = mobilenet
    p, rep = equalize(runner)
    for dw in ("dw1", "dw2", "dw3", "dw4"):
        b, a = _spread(runner, runner.native_params, dw), _spread(runner, p, dw)
        print(f"{dw}: per-channel weight range spread {b:.2f} -> {a:.2f}")
        assert a < b
    print("\n".join(rep.lines()))


def test_activation_ranges_take_part(fer_runner, fer_images):
    ar = activation_ranges(fer_runner, fer_images)
    pairs, _ = find_pairs(fer_runner.hn)
    assert set(ar) == {q.first for q in pairs} and ar["conv1"].shape == (8, 2)
    p, rep = equalize(fer_runner, act_ranges=ar)
    assert rep.act_ranges and _max_rel(fer_runner, p, fer_images) < PRESERVE
    after = activation_ranges(fer_runner, fer_images, params=p)
    # the activation ranges of the first layers move towards uniform too (geometric mean spread)
    sp = lambda d: np.exp(np.mean([np.log(range_spread(np.abs(v).max(1))) for v in d.values()]))  # noqa: E731
    print(f"activation range spread (geometric mean over first layers) {sp(ar):.2f} -> {sp(after):.2f}")
    assert sp(after) < sp(ar)
    with pytest.raises(ParamsError, match="no entry for"):
        equalize(fer_runner, act_ranges={k: v for k, v in ar.items() if k != "conv1"})
    with pytest.raises(ParamsError, match="shape"):
        equalize(fer_runner, act_ranges={**ar, "conv1": np.zeros((3, 2))})


# --- skipped layers untouched --------------------------------------------------------------------

def test_residual_layers_keep_their_outputs(fer_runner, fer_images):
    p, rep = equalize(fer_runner)
    skipped = [s.layer for s in rep.skipped]
    err, ref_all, out_all = _max_rel(fer_runner, p, fer_images, inter=True)
    assert err < PRESERVE
    for name in skipped + [l.name for l in fer_runner.hn.topological() if l.type == "ew_add"]:
        assert rel_error(out_all[name], ref_all[name]) < PRESERVE, name
    for name in skipped:  # their output channels are not scaled: the bias is the native one
        _assert_native(fer_runner, p, name, "bias")
    # conv5, conv8, conv11, conv14 (the residual shortcuts) are in no pair at all
    for name in ("conv5", "conv8", "conv11", "conv14"):
        _assert_native(fer_runner, p, name)


@pytest.mark.slow
def test_mobilenet_residual_branch_untouched(mobilenet):
    runner, _, _, x, *_ = mobilenet
    p, rep = equalize(runner)
    assert {s.layer for s in rep.skipped} == {"conv2", "conv4", "conv6", "conv8", "dense1"}
    err, ref_all, out_all = _max_rel(runner, p, x[:64], inter=True)
    for name in ("conv2", "conv4", "ew_add1", "conv6", "conv8", "ew_add2"):
        assert rel_error(out_all[name], ref_all[name]) < PRESERVE
        if not name.startswith("ew_add"):
            _assert_native(runner, p, name, "bias")


def test_equalizing_twice_changes_nothing_more(fer_runner):
    p, _ = equalize(fer_runner)
    p2, rep2 = equalize(fer_runner, params=p)
    assert max(max(abs(np.log(q.min_scale)), abs(np.log(q.max_scale))) for q in rep2.pairs) < 1e-3
    for k in p:
        np.testing.assert_allclose(p2[k], p[k], rtol=2e-3, atol=1e-7)


# --- dead channels ---------------------------------------------------------------------------------

def test_fer_dead_channels_are_cleaned_exactly(fer_runner, fer_images):
    p, rep = clean_dead_channels(fer_runner)
    assert [(d.layer, d.consumers, d.exact) for d in rep.cleaned] == [("conv1", ("conv2",), True)]
    chans = list(rep.cleaned[0].channels)
    assert np.all(p[_k(fer_runner, "conv1")][..., chans] == 0)
    assert np.all(p[_k(fer_runner, "conv1", "bias")][chans] == 0)
    assert np.all(p[_k(fer_runner, "conv2")][:, :, chans, :] == 0)
    assert _max_rel(fer_runner, p, fer_images) < 1e-5


@pytest.mark.slow
def test_mobilenet_dead_channels(mobilenet):
    clean, dead, _, x, *_ = mobilenet
    # the default folds only where it is exact (dw1 / dw2 -> 1x1 convs): outputs to float rounding
    pk, rk = clean_dead_channels(dead)
    assert {d.layer for d in rk.cleaned} == {"dw1", "dw2"} and all(d.exact for d in rk.cleaned)
    kept = {k.layer: k for k in rk.kept}
    assert set(kept) == {"conv1", "conv5"} and "pads" in kept["conv1"].reason
    assert kept["conv1"].channels == DEAD["stem_bn"] and kept["conv5"].channels == DEAD["block3_expand_bn"]
    err_exact = _max_rel(dead, pk, x)
    # Hailo's choice: fold across padded borders too (conv1 -> dw1 and conv5 -> dw3 are 3x3 SAME)
    pf, rf = clean_dead_channels(dead, padded="fold")
    by = {d.layer: d for d in rf.cleaned}
    assert set(by) == {"conv1", "dw1", "dw2", "conv5", "dw3"}
    assert not by["conv1"].exact and not by["conv5"].exact and by["dw1"].exact and by["dw3"].exact
    assert set(DEAD["stem_bn"]) <= set(by["dw1"].channels)  # dw1 inherits conv1's constants
    assert by["dw3"].channels == DEAD["block3_expand_bn"]  # dw3 inherits conv5's
    for name, d in by.items():
        k = pf[_k(dead, name)]
        w = k[:, :, list(d.channels), :] if dead.hn.layers[name].type == "dw" else k[..., list(d.channels)]
        assert np.all(w == 0) and np.all(pf[_k(dead, name, "bias")][list(d.channels)] == 0)
    np.testing.assert_allclose(by["conv1"].constants, 1.5, rtol=1e-6)
    err_fold, ref_all, out_all = _max_rel(dead, pf, x, inter=True)
    ref, out = ref_all["output_layer1"], out_all["output_layer1"]
    top1 = float(np.mean(out.argmax(-1) == ref.argmax(-1)))
    print(f"dead channels: exact folds rel err {err_exact:.2e}; padded borders folded too: rel err "
          f"{err_fold:.2e}, float SNR {_snr(out, ref):.1f} dB, top-1 agreement {top1:.3f}")
    print("\n".join(rk.lines() + rf.lines()))
    assert err_exact < 1e-5
    # the border approximation (docs/equalization.md): a constant folded across a padded 3x3
    # consumer is exact except where the window reads the padding. conv2 (1x1, after dw1, which
    # took conv1's constants) is exact inside its one-pixel border and not on it. How far the
    # border errors carry to the output depends on the kernels (this net trained with
    # TensorFlow's oneDNN kernels: rel err 0.18, top-1 1.000; trained without them: 0.80, 0.68)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert rel_error(out_all["conv2"][inner], ref_all["conv2"][inner]) < 1e-5
    assert rel_error(out_all["conv2"], ref_all["conv2"]) > 1e-3
    assert clean_dead_channels(clean)[1].cleaned == []  # nothing is dead in the trained network
    with pytest.raises(ValueError, match="padded"):
        clean_dead_channels(dead, padded="yes")


def _weights_quantized(runner, params):
    """params with every MAC kernel on its per-tensor symmetric int8 grid (s = max |W| / 127,
    round half to even: docs/numerics.md "Weights"), activations left in float."""
    out = dict(params)
    for l in runner.hn.topological():
        if l.type in ("conv", "dw", "dense", "deconv"):
            w = out[_k(runner, l.name)].astype(np.float64)
            s = np.abs(w).max() / 127.0
            out[_k(runner, l.name)] = (np.round(w / s) * s).astype(np.float32)
    return out


@pytest.mark.slow
def test_mobilenet_quantized_snr_before_and_after(mobilenet):
    """SNR of the logits (dense1) against SdkNative on 256 MNIST test digits, (a) with only the
    weights on their per-tensor int8 grids (what equalization is for), (b) run_quantization_from_np
    a8_w8 (per-tensor weights, 8-bit bias: the basic scheme). On the trained network: native params
    vs equalized; on the network with dead channels: native, equalized with the dead-channel guard
    off (min_range=0: the scales hit the 1e4 limit), equalized with it, cleaned then equalized."""
    clean, dead, calib, x, *_ = mobilenet

    def snr(runner, params):
        r = _fresh(runner)
        ref = r.infer(SdkNative(), x, inter_layers=True)[1]["dense1"]
        r.set_fp_optimized_params(_weights_quantized(runner, runner.native_params if params is None else params))
        w_only = _snr(r.infer(SdkFPOptimized(), x, inter_layers=True)[1]["dense1"], ref)
        r.set_fp_optimized_params(params)
        run_quantization_from_np(r, calib, calib_num_batch=8, batch_size=8)
        return w_only, _snr(r.infer(SdkQuantized(), x, inter_layers=True)[1]["dense1"], ref)

    res = {"native": snr(clean, None), "equalized": snr(clean, equalize(clean)[0]),
           "dead: native": snr(dead, None),
           "dead: equalized, no guard": snr(dead, equalize(dead, min_range=0.0)[0]),
           "dead: equalized": snr(dead, equalize(dead)[0]),
           "dead: cleaned + equalized": snr(dead, equalize(dead, params=clean_dead_channels(dead)[0])[0])}
    for k, (w, q) in res.items():
        print(f"SNR {k}: weights only {w:.1f} dB, a8_w8 {q:.1f} dB")
    assert res["equalized"][0] > res["native"][0] + 1.0
    assert res["equalized"][1] > res["native"][1] + 1.0
    assert res["dead: cleaned + equalized"][0] > res["dead: native"][0] + 3.0
    assert res["dead: equalized"][0] > res["dead: native"][0] + 3.0
    # without the guard the dead channels' scales wreck the network
    assert max(res["dead: equalized, no guard"]) < min(res["dead: equalized"]) - 10.0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")  # TFLite's converter
def test_mobilenet_per_layer_8_bit_matches_tflite_per_channel(mobilenet):
    """The case equalization exists for (issue 10): on the MobileNet-style net, our per-layer
    (per-tensor weights) a8_w8 with dead-channel clean-up, equalization and IBC reaches at least
    TFLite's full-integer int8 with per-channel weights: output SNR against SdkNative on the 1,000
    held-out digits, both calibrated on the same 64 training digits. Our output is SdkNumeric,
    the chip; TFLite's is its interpreter (bench/bench_quantization.py's converter and runner)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
    from bench_quantization import tflite_convert, tflite_infer

    runner, _, calib, _, model, x, y = mobilenet
    ref = runner.infer(SdkNative(), x)["output_layer1"]
    t = time.perf_counter()
    tflite = tflite_infer(tflite_convert(model, calib, "int8"), x)
    assert len(tflite) == 1 and tflite[0].shape == ref.shape
    tfl_s = time.perf_counter() - t
    snrs, secs = {}, {}
    for label, kw in (("a8_w8", {}), ("a8_w8 +clean-up +eq +IBC", {"equalize": True, "ibc": True})):
        r = _fresh(runner)
        t = time.perf_counter()
        run_quantization_from_np(r, calib, calib_num_batch=2, batch_size=32, **kw)
        secs[label] = time.perf_counter() - t
        out = r.infer(SdkNumeric(), x)["output_layer1"]
        snrs[label] = _snr(out, ref)
        print(f"{label}: {snrs[label]:.2f} dB, top-1 agreement {np.mean(out.argmax(1) == ref.argmax(1)):.3f}, "
              f"accuracy {np.mean(out.argmax(1) == y):.3f} ({secs[label]:.1f} s)")
    tfl = _snr(tflite[0], ref)
    print(f"tflite int8 per-channel: {tfl:.2f} dB, top-1 agreement "
          f"{np.mean(tflite[0].argmax(1) == ref.argmax(1)):.3f}, accuracy {np.mean(tflite[0].argmax(1) == y):.3f} "
          f"({tfl_s:.1f} s); float accuracy {np.mean(ref.argmax(1) == y):.3f}")
    assert snrs["a8_w8"] < tfl  # per-tensor weights alone do lose to per-channel ones here
    assert snrs["a8_w8 +clean-up +eq +IBC"] >= tfl
