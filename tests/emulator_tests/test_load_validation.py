"""Untrusted files checked at load, not at run: the HN (emulator/hn.py: bounded JSON, duplicate
keys, every layer param's type and range, shapes and layer count within emulator.limits) and
the quantized params against the HN (emulator/qparams_check.py), on real networks.

Every error is a named exception of the emulator that names the layer and the key."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import data_sources as ds
import numerics_nets as nets
from emulator import ClientRunner, parse_keras, run_quantization_from_np
from emulator.errors import EmulatorError, HNError, ParamsError
from emulator.hn import HNGraph
from emulator.limits import LIMITS, LimitError
from emulator.qparams_check import QuantizedParamsError, validate_quantized_params


# ------------------------------------------------------------------ fixtures -----------------

@pytest.fixture(scope="module")
def onet_q(onet_keras):
    r = parse_keras(onet_keras, net_name="onet")
    run_quantization_from_np(r, ds.mtcnn_inputs(64, (48, 48), seed=11), calib_num_batch=2, batch_size=32)
    return r


@pytest.fixture(scope="module")
def allops_q():
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0
    run_quantization_from_np(r, x, 2, 32)
    return r


def _allops_dict() -> dict:
    return json.loads(nets.all_ops_net()[0].to_json())


# ------------------------------------------------------------------ quantized params: accepted --

def test_untouched_params_validate(onet_q, allops_q):
    for r in (onet_q, allops_q):
        qp = r.quantized_params
        out = validate_quantized_params(r.hn, qp, "runner")
        assert list(out) == list(qp) and all(out[k] is qp[k] for k in qp)


@pytest.mark.slow
def test_real_networks_in_every_mode_validate(fer_keras, tmp_path):
    """FER, the all-ops net in every config of tests/emulator_tests/test_quantization.py (16-bit, 4-bit,
    groups, mixed widths, 16-bit outputs), a folded normalization, and the params as a HAR
    gives them back."""
    from test_quantization import ALL_OPS_CONFIGS

    r = parse_keras(fer_keras, net_name="fer")
    run_quantization_from_np(r, ds.fer_inputs(64, seed=4), calib_num_batch=2, batch_size=32,
                             config={"conv*": {"precision_mode": "a8_w4"}})
    validate_quantized_params(r.hn, r.quantized_params, "fer")
    x = ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0
    for name, cfg in ALL_OPS_CONFIGS.items():
        hn, params = nets.all_ops_net()
        r = ClientRunner(hn=hn)
        r.load_params(params)
        run_quantization_from_np(r, x, 2, 32, config=cfg)
        validate_quantized_params(r.hn, r.quantized_params, name)
    hn, params = nets.folded_norm_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, ds.random_crops(32, (12, 12), seed=6).astype(np.float32), 1, 32)
    assert str(r.quantized_params["normnet/normalization1/kind:0"]) == "folded"
    validate_quantized_params(r.hn, r.quantized_params, "folded")
    r.save_har(tmp_path / "n.har")
    back = ClientRunner(har=tmp_path / "n.har")
    validate_quantized_params(back.hn, back.quantized_params, "n.har:quantized.npz")


# ------------------------------------------------------------------ quantized params: refused --

def _tampered(r, change) -> dict:
    qp = dict(r.quantized_params)
    change(qp)
    return qp


def _refused(r, qp, layer, key, *words):
    with pytest.raises(QuantizedParamsError) as e:
        validate_quantized_params(r.hn, qp, "model.har:quantized.npz")
    msg = str(e.value)
    assert isinstance(e.value, ParamsError) and isinstance(e.value, EmulatorError) and isinstance(e.value, ValueError)
    assert "model.har:quantized.npz" in msg, msg
    if layer is not None:
        assert f"layer '{layer}'" in msg and e.value.layer == layer, msg
    if key is not None:
        assert f"{r.hn.name}/{layer}/{key}:0" in msg and e.value.key.endswith(f"/{key}:0"), msg
    for w in words:
        assert w in msg, msg
    return msg


def _set(key, fn):
    def change(qp):
        qp[key] = fn(qp[key].copy())
    return change


def _with(arr, index, value):
    arr.flat[index] = value
    return arr


ONET_TAMPERINGS = {
    # key of no layer / of another network, missing key, field the layer does not have
    "key_of_no_layer": (lambda qp: qp.__setitem__("onet/conv9/M:0", qp["onet/conv1/M:0"]),
                        "conv9", "M", ["has no layer 'conv9'"]),
    "key_missing": (lambda qp: qp.pop("onet/conv2/r:0"), "conv2", "r", ["missing", "int32"]),
    "kind_missing": (lambda qp: qp.pop("onet/maxpool2/kind:0"), "maxpool2", "kind", ["missing"]),
    "unknown_field": (lambda qp: qp.__setitem__("onet/conv1/lut:0", np.zeros(65536, np.uint8)),
                      "conv1", "lut", ["not a field of a conv layer"]),
    # scales
    "nan_scale": (_set("onet/conv2/out_scale:0", lambda a: np.float32(np.nan) + 0 * a), "conv2", "out_scale",
                  ["finite", "nan"]),
    "zero_scale": (_set("onet/dense1/out_scale:0", lambda a: 0 * a), "dense1", "out_scale", ["> 0", "0.0"]),
    "negative_scale": (_set("onet/conv3/out_scale:0", lambda a: -a), "conv3", "out_scale", ["> 0"]),
    "tiny_scale": (_set("onet/conv3/out_scale:0", lambda a: a * np.float32(1e-30)), "conv3", "out_scale",
                   ["narrowest calibrated range"]),
    "nan_weight_scale": (_set("onet/conv4/s_w:0", lambda a: _with(a, 0, np.nan)), "conv4", "s_w", ["finite"]),
    "inf_acc_scale": (_set("onet/dense2/s_acc:0", lambda a: _with(a, 2, np.inf)), "dense2", "s_acc",
                      ["finite", "index 2"]),
    # zero points
    "zp_above_range": (_set("onet/conv1/out_zp:0", lambda a: a * 0 + 300), "conv1", "out_zp", ["[0, 255]", "300"]),
    "zp_negative": (_set("onet/input_layer1/out_zp:0", lambda a: a * 0 - 1), "input_layer1", "out_zp", ["-1"]),
    "zp_non_integral": (_set("onet/conv2/out_zp:0", lambda a: a.astype(np.float32) + np.float32(0.5)),
                        "conv2", "out_zp", ["int32", "non-integral"]),
    # mantissas and shifts
    "shift_too_long": (_set("onet/conv2/r:0", lambda a: _with(a, 5, 47)), "conv2", "r", ["[7, 46]", "47", "index 5"]),
    "shift_too_short": (_set("onet/dense3/r:0", lambda a: _with(a, 0, 3)), "dense3", "r", ["[7, 46]", "found 3"]),
    "mantissa_too_big": (_set("onet/conv3/M:0", lambda a: _with(a, 1, 1 << 15)), "conv3", "M", ["[16384, 32767]"]),
    "mantissa_not_normalized": (_set("onet/dense4/M:0", lambda a: _with(a, 0, 3)), "dense4", "M", ["16384"]),
    "negative_side_mantissa": (_set("onet/conv1/M_neg:0", lambda a: _with(a, 0, 1 << 20)), "conv1", "M_neg",
                               ["M = 0 with r = 0"]),
    "weights_out_of_range": (_set("onet/conv2/q_w:0", lambda a: _with(a, 7, -128)), "conv2", "q_w",
                             ["[-127, 127]", "-128"]),
    "bias_exponent_huge": (_set("onet/dense1/bias_exponent:0", lambda a: a * 0 + 60), "dense1",
                           "bias_exponent", ["[0, 47]"]),
    # dtypes and shapes
    "weights_float": (_set("onet/conv1/q_w:0", lambda a: a.astype(np.float32)), "conv1", "q_w",
                      ["int8 or int16", "float32"]),
    "shift_int64": (_set("onet/conv4/r:0", lambda a: a.astype(np.int64)), "conv4", "r", ["int32", "int64"]),
    "weights_transposed": (_set("onet/conv2/q_w:0", lambda a: np.ascontiguousarray(a.transpose(0, 1, 3, 2))),
                           "conv2", "q_w", ["[3, 3, 32, 64]", "[3, 3, 64, 32]"]),
    "acc_scale_short": (_set("onet/dense2/s_acc:0", lambda a: a[:3]), "dense2", "s_acc", ["[4]", "[3]"]),
    "limvals_scalar": (_set("onet/conv1/limvals:0", lambda a: a[0]), "conv1", "limvals", ["[2]", "[]"]),
    # consistency
    "kind_of_host_op": (_set("onet/softmax1/kind:0", lambda a: np.array("chip")), "softmax1", "kind",
                        ["expected 'host'"]),
    "kind_host_on_conv": (_set("onet/conv1/kind:0", lambda a: np.array("host")), "conv1", "kind",
                          ["expected 'chip'"]),
    "kind_unknown_name": (_set("onet/conv1/kind:0", lambda a: np.array("gpu")), "conv1", "kind", ["'gpu'"]),
    "kind_legacy_code_unknown": (_set("onet/conv1/kind:0", lambda a: np.array(7, np.int32)), "conv1", "kind",
                                 ["found 7"]),
    "kind_float": (_set("onet/conv1/kind:0", lambda a: np.array(0.0)), "conv1", "kind", ["float64"]),
    "limvals_changed": (_set("onet/conv1/limvals:0", lambda a: a * np.float32(2)), "conv1", "limvals",
                        ["s * (0 - z)"]),
    "passthrough_scale_changed": (_set("onet/maxpool1/out_scale:0", lambda a: a * np.float32(2)), "maxpool1",
                                  None, ["keeps its input's tensor", "conv1"]),
    "width_changed": (_set("onet/dense2/out_bits:0", lambda a: a * 0 + 16), "dense2", None, []),
    # in range, but not what the stored scales and ranges derive (output SNR near 0 dB if run)
    "mantissa_changed_in_range": (_set("onet/conv2/M:0", lambda a: _with(a, 3, a.flat[3] ^ 1)), "conv2", "M",
                                  ["changed after quantization"]),
    "shift_changed_in_range": (_set("onet/dense1/r:0", lambda a: _with(a, 0, a.flat[0] + 1)), "dense1", "r",
                               ["changed after quantization"]),
    "zero_point_changed_in_range": (_set("onet/conv3/out_zp:0", lambda a: a + 7), "conv3", "out_zp",
                                    ["range"]),
    "leaky_slope_changed": None,  # (ONet has PReLU only: see test_allops_tamperings)
}


@pytest.mark.parametrize("case", [k for k, v in ONET_TAMPERINGS.items() if v is not None])
def test_tampered_onet_params_refused(onet_q, case):
    change, layer, key, words = ONET_TAMPERINGS[case]
    msg = _refused(onet_q, _tampered(onet_q, change), layer, key, *words)
    assert "expected" in msg or "missing" in msg or "has no layer" in msg


def test_params_of_another_network_refused(onet_q):
    qp = {k.replace("onet/", "pnet/", 1): v for k, v in onet_q.quantized_params.items()}
    msg = _refused(onet_q, qp, None, None, "network 'pnet'", "network 'onet'")
    qp = {"onet/conv1": np.zeros(1)}
    _refused(onet_q, qp, None, None, "'<net>/<layer>/<field>:0'")
    with pytest.raises(QuantizedParamsError, match="numpy array"):
        validate_quantized_params(onet_q.hn, {**onet_q.quantized_params, "onet/conv1/M:0": [1, 2]}, "x")
    assert "pnet" in msg


def test_allops_tamperings(allops_q):
    r = allops_q
    n = r.hn.name
    cases = [
        # leaky's negative slope, table, element-wise multipliers, pool counts, concat, pad, 16-bit tables
        (_set(f"{n}/dw1/M_neg:0", lambda a: _with(a, 0, int(a.flat[0]) + 1)), "dw1", "M_neg", ["changed"]),
        (_set(f"{n}/conv2/lut:0", lambda a: a.astype(np.uint16)), "conv2", "lut", ["uint8"]),
        (_set(f"{n}/conv2/pre_zp:0", lambda a: a * 0 + 70000), "conv2", "pre_zp", ["[0, 65535]"]),
        (_set(f"{n}/conv2/r:0", lambda a: _with(a, 0, 0)), "conv2", "r", ["r" and "found 0"]),
        (_set(f"{n}/ew_add1/ew_mult:0", lambda a: a * 2), "ew_add1", "ew_mult", ["t = 14", "[0, 16384]"]),
        (_set(f"{n}/avgpool1/pool_counts:0", lambda a: a[::-1].copy()), "avgpool1", "pool_counts", ["window counts"]),
        (lambda qp: qp.pop(f"{n}/concat1/in0_M:0"), "concat1", "in0_M", ["requantized"]),
        (lambda qp: qp.__setitem__(f"{n}/concat1/in1_M:0", np.array(16384, np.int32)), "concat1", "in1_M",
         ["copied, not requantized"]),
        (_set(f"{n}/pad1/pad_code:0", lambda a: a * 0 + 256), "pad1", "pad_code", ["[0, 255]"]),
        (_set(f"{n}/conv1/act_hi:0", lambda a: a * 0 + 100), "conv1", "act_hi", ["relu6", "found 100"]),
        (_set(f"{n}/conv3/pre_range:0", lambda a: _with(a, 1, np.nan)), "conv3", "pre_range", ["finite"]),
        (_set(f"{n}/normalization1/norm_bias:0", lambda a: a * 0 + (1 << 40)), "normalization1", "norm_bias",
         ["2^38"]),
        (_set(f"{n}/dense1/bias_mantissa:0", lambda a: a.astype(np.int16)), "dense1", "bias_mantissa",
         ["single_scale_decomposition"]),
        (_set(f"{n}/conv5/groups:0", lambda a: a * 0 + 5), "conv5", "groups", ["1..4"]),
        (_set(f"{n}/output_layer1/kind:0", lambda a: np.array("chip")), "output_layer1", "kind",
         ["expected 'host'"]),
        (_set(f"{n}/normalization1/kind:0", lambda a: np.array("folded")), "normalization1", "kind", ["folded"]),
    ]
    for change, layer, key, words in cases:
        _refused(r, _tampered(r, change), layer, key, *words)


def test_rederive_off_accepts_in_range_changes(onet_q):
    qp = _tampered(onet_q, _set("onet/conv2/M:0", lambda a: _with(a, 3, a.flat[3] ^ 1)))
    validate_quantized_params(onet_q.hn, qp, "x", rederive=False)
    qp = _tampered(onet_q, _set("onet/conv2/M:0", lambda a: _with(a, 3, 7)))
    with pytest.raises(QuantizedParamsError, match="16384"):
        validate_quantized_params(onet_q.hn, qp, "x", rederive=False)


# ------------------------------------------------------------------ the HN at load ---------------

def _hn_refused(d_or_text, exc, *words):
    text = d_or_text if isinstance(d_or_text, str) else json.dumps(d_or_text)
    with pytest.raises(exc) as e:
        HNGraph.from_json(text, source="net.har:hn.json")
    msg = str(e.value)
    assert "net.har:hn.json" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_real_hn_loads(onet_runner):
    g = HNGraph.from_json(onet_runner.hn.to_json())
    assert g.to_dict() == onet_runner.hn.to_dict()
    g = HNGraph.from_json(nets.all_ops_net()[0].to_json().encode())
    assert len(g.layers) == 33


def test_layer_params_checked_at_load(onet_runner):
    base = json.loads(onet_runner.hn.to_json())
    L = "onet/{}"
    cases = [
        ("softmax1", "axis", "1", ["'axis'", "'1'", "1..1"]),          # a string
        ("softmax1", "axis", 2, ["'axis'", "1..1"]),                  # out of range
        ("softmax1", "axis", 0, ["batch axis"]),
        ("softmax1", "axis", -1, ["'axis'"]),
        ("softmax1", "axis", True, ["'axis'"]),
        ("conv2", "kernel_shape", [3, 3, "32", 64], ["kernel_shape", "4 positive ints"]),
        ("conv2", "strides", [1, 1, 1], ["strides", "[1, h, w, 1]"]),
        ("conv2", "strides", [1, 0, 1, 1], ["strides"]),
        ("conv2", "dilations", [2, 1, 1, 1], ["dilations"]),
        ("conv2", "groups", 0, ["groups", "positive int"]),
        ("conv2", "groups", 1.0, ["groups"]),
        ("conv2", "padding", 5, ["padding"]),
        ("conv2", "activation", ["relu"], ["unknown activation"]),
        ("conv2", "batch_norm", "yes", ["batch_norm", "true or false"]),
        ("maxpool1", "kernel_shape", [3, 3, 1, 1], ["kernel_shape", "[1, kh, kw, 1]"]),
        ("dense1", "kernel_shape", [1152, 256, 1], ["[cin, cout]"]),
    ]
    for layer, key, value, words in cases:
        d = copy.deepcopy(base)
        d["layers"][L.format(layer)]["params"][key] = value
        _hn_refused(d, HNError, f"layer '{L.format(layer)}'", *words)


def test_all_ops_params_checked_at_load():
    cases = [
        ("dw1", "leaky_alpha", "0.1", ["leaky_alpha", "finite number"]),
        ("dw1", "leaky_alpha", float("nan"), ["leaky_alpha"]),
        ("pad1", "constant_value", float("inf"), ["constant_value"]),
        ("pad1", "pads", [[1, 1], [0, -2], [0, 0]], ["pads", "non-negative"]),
        ("concat1", "concat_axis", 4, ["concat_axis", "1..3"]),
        ("concat1", "concat_axis", "3", ["concat_axis"]),
        ("reduce_max1", "axes", [0], ["axes"]),
        ("reduce_max1", "axes", [3, 3], ["axes", "distinct"]),
        ("reduce_sum1", "axes", 1, ["axes"]),
        ("slice1", "begin", [1.0, 1, 0], ["begin"]),
        ("resize1", "method", "cubic", ["method"]),
        ("resize1", "align_corners", True, ["align_corners and half_pixel"]),
        ("resize1", "half_pixel", 1, ["half_pixel", "true or false"]),
        ("resize1", "output_shape", [-1, 14, 12, 5], ["output_shape", "keeps the channels"]),
        ("space_to_depth1", "block_size", "2", ["block_size"]),
        ("depth_to_space1", "mode", "RDC", ["mode", "DCR"]),
        ("feature_shuffle1", "groups", -4, ["groups"]),
        ("avgpool1", "count_include_pad", None, ["count_include_pad"]),
    ]
    for layer, key, value, words in cases:
        d = _allops_dict()
        d["layers"][f"allops/{layer}"]["params"][key] = value
        _hn_refused(d, HNError, f"layer 'allops/{layer}'", *words)


def test_quantization_params_checked_at_load(onet_runner):
    base = json.loads(onet_runner.hn.to_json())
    for value, words in ((["a16_w16"], ["must be an object"]), ("a16_w16", ["must be an object"]),
                         ({"precision_mode": "a9_w8"}, ["precision_mode", "a9_w8"]),
                         ({"precision_mode": 16}, ["precision_mode"]),
                         ({"bias_mode": "double"}, ["bias_mode"]),
                         ({"quantization_groups": 5}, ["quantization_groups", "1..4"]),
                         ({"quantization_groups": True}, ["quantization_groups"])):
        d = copy.deepcopy(base)
        d["layers"]["onet/conv3"]["quantization_params"] = value
        _hn_refused(d, HNError, "layer 'onet/conv3'", *words)
    d = copy.deepcopy(base)
    d["layers"]["onet/conv3"]["quantization_params"] = {"precision_mode": "a16_w8", "later_key": [1]}
    assert HNGraph.from_json(json.dumps(d)).layer("conv3").quantization_params["precision_mode"] == "a16_w8"


def _json_with_pairs(d: dict, layer_pairs: list) -> str:
    """The HN's JSON with 'layers' written from (key, value) pairs, so a key can appear twice."""
    layers = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in layer_pairs) + "}"
    head = {k: v for k, v in d.items() if k != "layers"}
    return json.dumps(head)[:-1] + f', "layers": {layers}}}'


def test_duplicate_keys_refused(onet_runner):
    d = json.loads(onet_runner.hn.to_json())
    pairs = list(d["layers"].items())
    # a layer defined twice (json.loads would keep the last one silently)
    text = _json_with_pairs(d, pairs + [pairs[3]])
    _hn_refused(text, HNError, f"layer '{pairs[3][0]}' is defined twice", "unique")
    # a param given twice inside one layer
    conv = json.dumps(d["layers"]["onet/conv2"]).replace('"padding": "VALID"',
                                                         '"padding": "VALID", "padding": "SAME"')
    text = _json_with_pairs(d, [(k, v) for k, v in pairs if k != "onet/conv2"]).replace(
        '"onet/conv3": ', f'"onet/conv2": {conv}, "onet/conv3": ')
    _hn_refused(text, HNError, "layer 'onet/conv2'", "'padding' appears twice", "['params']")
    # at the top level
    text = json.dumps(d)[:-1] + ', "name": "onet"}'
    _hn_refused(text, HNError, "'name' appears twice")


def test_deep_nesting_and_size_are_limit_errors(onet_runner):
    deep = "[" * 200_000 + "]" * 200_000  # json.loads alone: RecursionError
    msg = _hn_refused(deep, LimitError, "nested 200000 levels", "max_json_depth")
    d = json.loads(onet_runner.hn.to_json())
    d["net_params"]["note"] = json.loads("[" * 70 + "]" * 70)
    _hn_refused(d, LimitError, "max_json_depth")
    assert isinstance(LimitError(msg), EmulatorError)


def test_huge_shapes_and_layer_count_are_limit_errors(onet_runner, monkeypatch):
    d = json.loads(onet_runner.hn.to_json())
    inp = d["layers"]["onet/input_layer1"]
    inp["input_shapes"] = inp["output_shapes"] = [[-1, 30000, 30000, 3]]
    _hn_refused(d, LimitError, "layer 'onet/input_layer1'", "2,700,000,000 elements", "max_tensor_elements")
    d = json.loads(onet_runner.hn.to_json())
    d["layers"]["onet/dense1"]["output_shapes"] = [[-1, 1 << 32]]
    _hn_refused(d, LimitError, "layer 'onet/dense1'", "max_tensor_elements")
    monkeypatch.setattr(LIMITS, "max_layers", 10)
    _hn_refused(onet_runner.hn.to_json(), LimitError, "16 layers", "max_layers")
    monkeypatch.setattr(LIMITS, "max_layers", 16)
    HNGraph.from_json(onet_runner.hn.to_json())


def test_missing_input_is_blamed_on_the_layer_that_misses_it(onet_runner):
    d = json.loads(onet_runner.hn.to_json())
    d["layers"]["onet/conv2"]["input"] = []
    d["layers"]["onet/conv2"]["input_shapes"] = []
    _hn_refused(d, HNError, "layer 'onet/conv2'", "needs at least one input")
    d = json.loads(onet_runner.hn.to_json())
    d["layers"]["onet/conv2"]["input"] = ["onet/input_layer1"]  # was maxpool1
    d["layers"]["onet/conv2"]["input_shapes"] = [[-1, 48, 48, 3]]
    msg = _hn_refused(d, HNError, "missing the")
    assert msg.split(": ", 1)[1].startswith(("layer 'onet/input_layer1' is missing the output 'onet/conv2'",
                                             "layer 'onet/conv2' is missing the input 'onet/maxpool1'")), msg


def test_kernel_channel_message_says_what_differs(onet_runner):
    d = json.loads(onet_runner.hn.to_json())
    d["layers"]["onet/conv2"]["params"]["kernel_shape"] = [3, 3, 16, 64]
    msg = _hn_refused(d, HNError, "layer 'onet/conv2'", "expects 16 input channels", "has 32")
    assert "expects 32 input channels, input has 32" not in msg


def test_any_single_corruption_is_refused_by_name_or_harmless(allops_q):
    """Seeded random corruption of one key at a time (dtype, shape, one value: NaN, inf, 0, -1,
    huge...): the check raises QuantizedParamsError or accepts, never another exception."""
    r = allops_q
    rng = np.random.default_rng(0)
    keys = list(r.quantized_params)
    ints = [0, -1, 1, 6, 7, 46, 47, 255, 256, 1 << 15, 65535, 65536, (1 << 31) - 1, -(1 << 31)]
    floats = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e-30, 1e30, 3.5]
    refused = 0
    for _ in range(400):
        qp = dict(r.quantized_params)
        k = keys[rng.integers(len(keys))]
        a = qp[k].copy()
        how = rng.integers(5)
        if a.dtype.kind == "U":  # a layer's kind: another name, a legacy code, or not a string
            a = [np.array("chip"), np.array("host"), np.array("folded"), np.array("gpu"),
                 np.array(1, np.int32), np.array(2.0), np.array(["chip"])][rng.integers(7)]
        elif how == 0:
            a = a.astype(rng.choice([np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint16]))
        elif how == 1:
            a = np.zeros((3,) + a.shape, a.dtype)
        elif how == 2:
            a = a.reshape(-1)[:a.size - 1]
        elif a.size:
            vals = floats if np.issubdtype(a.dtype, np.floating) else ints
            with np.errstate(all="ignore"):
                a.flat[rng.integers(a.size)] = np.asarray(vals[rng.integers(len(vals))]).astype(a.dtype)
        qp[k] = a
        try:
            validate_quantized_params(r.hn, qp, "fuzz")
        except QuantizedParamsError as e:
            refused += 1
            assert e.layer == k.split("/")[1] or e.layer is None or e.layer in r.hn.layers, str(e)
    assert refused > 300


def test_params_of_an_edited_hn_refused(onet_q):
    """An HN with a layer the quantized params never saw (or without one they have)."""
    d = json.loads(onet_q.hn.to_json())
    d["layers"]["onet/output_layer4"] = {"type": "output_layer", "input": ["onet/dense1"], "output": [],
                                         "input_shapes": [[-1, 256]], "output_shapes": [[-1, 256]], "params": {}}
    d["layers"]["onet/dense1"]["output"].append("onet/output_layer4")
    d["layers"]["onet/dense1"]["output_shapes"].append([-1, 256])
    d["net_params"]["output_layers_order"].append("onet/output_layer4")
    hn = HNGraph.from_dict(d)
    with pytest.raises(QuantizedParamsError, match="layer 'output_layer4'.*quantize again"):
        validate_quantized_params(hn, onet_q.quantized_params, "x")
