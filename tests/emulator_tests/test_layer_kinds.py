"""The registry of layer kinds (emulator/layers): every HN layer type has exactly one kind, the
quantization toolchain can re-derive one layer from its stored tensors, and loading a HAR does
not import TensorFlow although the load-time check runs through the kinds."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import numerics_nets as nets
import data_sources as ds
from emulator import ClientRunner, SdkNumeric, run_quantization_from_np
from emulator.hn import LAYER_PARAMS
from emulator.layers import HOST_OPS, KINDS, PASSTHROUGH, kind_of
from emulator.errors import HNError
from emulator.quantization import qkey, rederive_layer
from emulator.quant_errors import QuantizationError


def test_every_hn_type_has_one_kind():
    assert set(KINDS) == set(LAYER_PARAMS)
    for t, k in KINDS.items():
        assert t in k.types
    with pytest.raises(HNError, match="no implementation for layer type 'warp'"):
        kind_of("warp")


def test_passthrough_and_host_sets_are_the_documented_ones():
    assert set(PASSTHROUGH) == {"maxpool", "reduce_max", "pad", "reshape", "slice", "space_to_depth",
                                "depth_to_space", "feature_shuffle", "resize", "output_layer"}
    assert set(HOST_OPS) == {"softmax", "argmax"}


@pytest.fixture(scope="module")
def allops():
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0
    run_quantization_from_np(r, x, 2, 32, config={"conv3": {"precision_mode": "a8_w8_a16"},
                                                  "conv1": {"quantization_groups": 2}})
    return r, x


def test_rederive_every_layer_reproduces_its_params(allops):
    """Re-deriving from the stored tensors and unchanged float params gives the same bytes."""
    r, _ = allops
    before = dict(r.quantized_params)
    for layer in r.hn.topological():
        if str(before[qkey(r.hn.name, layer.name, "kind")]) != "chip":
            with pytest.raises(QuantizationError, match="not an on-chip layer"):
                rederive_layer(r, layer.name)
            continue
        new = rederive_layer(r, layer.name)
        assert new, layer.name
    assert set(r.quantized_params) == set(before)
    for k, v in before.items():
        assert r.quantized_params[k].dtype == v.dtype and np.array_equal(r.quantized_params[k], v), k


def test_rederive_after_a_bias_change_moves_only_that_layer(allops):
    """What bias correction does: change a conv's float bias, re-derive it; its bias mantissas
    follow, every other layer's params stay, and the numeric target recompiles."""
    r, x = allops
    before = dict(r.quantized_params)
    out0 = r.infer(SdkNumeric(), x[:4])
    fp = dict(r.native_params)
    key = f"{r.hn.name}/conv4/bias:0"
    fp[key] = fp[key] + np.float32(0.05)
    r.set_fp_optimized_params(fp)
    try:
        new = rederive_layer(r, "conv4")
        net = r.hn.name
        assert not np.array_equal(new[qkey(net, "conv4", "bias_mantissa")], before[qkey(net, "conv4", "bias_mantissa")])
        changed = {k for k in before if not np.array_equal(before[k], r.quantized_params[k])}
        assert changed and all(k.startswith(f"{net}/conv4/") for k in changed)
        out1 = r.infer(SdkNumeric(), x[:4])
        assert any(not np.array_equal(out0[k], out1[k]) for k in out0)
    finally:
        r.quantized_params = before
        r.set_fp_optimized_params(None)


def test_loading_a_har_does_not_import_tensorflow(tmp_path):
    code = ("import sys; from emulator import ClientRunner; "
            "r = ClientRunner(har=sys.argv[1]); assert r.quantized_params; "
            "print('tensorflow' in sys.modules)")
    from pathlib import Path

    har = Path(__file__).resolve().parents[1] / "data" / "har_v1" / "all_ops.har"
    out = subprocess.run([sys.executable, "-c", code, str(har)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def _relu6_net(clip=None):
    from emulator.importers.builder import GraphBuilder

    rng = np.random.default_rng(5)
    g = GraphBuilder("clipnet")
    x = g.add_input([-1, 9, 9, 3], "in")
    c = g.add("conv", [x], [-1, 9, 9, 6], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
              "padding": "SAME", "groups": 1, "activation": "relu6"},
              {"kernel": rng.normal(size=(3, 3, 3, 6)).astype(np.float32),
               "bias": rng.normal(size=6).astype(np.float32)}, "conv")
    d = g.add("dense", [c], [-1, 4], {"activation": "linear"},
              {"kernel": rng.normal(size=(9 * 9 * 6, 4)).astype(np.float32) * 0.05,
               "bias": np.zeros(4, np.float32)}, "fc")
    g.add_output(d)
    hn, params = g.build("clipnet")
    if clip is not None:
        params[f"{hn.name}/conv1/act_clip:0"] = np.asarray(clip, np.float32)
    return hn, params


def test_relu6_with_a_per_channel_clip_float_quantized_and_checked():
    """What equalization leaves: a ReLU6 whose channel c clips at act_clip[c]. The float op clips
    there, the derivation puts each channel's upper clamp code there, SdkNumeric stays bit-exact
    to the reference, and the load-time check rederives the clamps from the stored clip."""
    from emulator import SdkNative
    from emulator.qparams_check import QuantizedParamsError, validate_quantized_params
    from test_quantization import assert_bit_exact_with_reference

    clip = np.array([6.0, 3.0, 1.5, 0.75, 6.0, 12.0], np.float32)
    hn, params = _relu6_net(clip)
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = ds.random_crops(64, (9, 9), seed=2).astype(np.float32) / 40.0
    _, lay = r.infer(SdkNative(), x, inter_layers=True)
    top = lay["conv1"].max(axis=(0, 1, 2))
    assert np.all(top <= clip) and np.array_equal(top[[0, 2, 3, 4]], clip[[0, 2, 3, 4]])
    run_quantization_from_np(r, x, 2, 32)
    hi = r.quantized_params[qkey(hn.name, "conv1", "act_hi")]
    assert len(set(hi.tolist())) >= 4  # one clamp per channel
    assert assert_bit_exact_with_reference(r, x[:8]) >= 3
    qp = dict(r.quantized_params)
    qp[qkey(hn.name, "conv1", "act_clip")] = qp[qkey(hn.name, "conv1", "act_clip")] * 2
    with pytest.raises(QuantizedParamsError, match="act_hi"):
        validate_quantized_params(r.hn, qp, "x")
    bad = dict(params)
    bad[f"{hn.name}/conv1/act_clip:0"] = -clip
    with pytest.raises(Exception, match="must be positive"):
        ClientRunner(hn=hn).load_params(bad)
