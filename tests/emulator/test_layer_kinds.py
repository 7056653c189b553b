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
