"""HN and NPZ: loading with validation (errors name the layer / key), saving, round trips."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from emulator.errors import HNError, ParamsError
from emulator.hn import HNGraph, infer_output_shape
from emulator.npz import expected_params, load_params, read_npz, save_npz, validate_params


def _tiny() -> dict:
    """input 8x8x3 -> conv 3x3 SAME relu (4) -> maxpool 2x2 -> dense (3) -> output."""
    n = "tiny"
    return {
        "name": n,
        "net_params": {"output_layers_order": [f"{n}/output_layer1"]},
        "layers": {
            f"{n}/input_layer1": {"type": "input_layer", "input": [], "output": [f"{n}/conv1"],
                                  "input_shapes": [[-1, 8, 8, 3]], "output_shapes": [[-1, 8, 8, 3]],
                                  "params": {}},
            f"{n}/conv1": {"type": "conv", "input": [f"{n}/input_layer1"], "output": [f"{n}/maxpool1"],
                           "input_shapes": [[-1, 8, 8, 3]], "output_shapes": [[-1, 8, 8, 4]],
                           "original_names": ["c"],
                           "params": {"kernel_shape": [3, 3, 3, 4], "strides": [1, 1, 1, 1],
                                      "dilations": [1, 1, 1, 1], "padding": "SAME_TENSORFLOW",
                                      "activation": "relu"}},
            f"{n}/maxpool1": {"type": "maxpool", "input": [f"{n}/conv1"], "output": [f"{n}/dense1"],
                              "input_shapes": [[-1, 8, 8, 4]], "output_shapes": [[-1, 4, 4, 4]],
                              "params": {"kernel_shape": [1, 2, 2, 1], "strides": [1, 2, 2, 1],
                                         "padding": "VALID"}},
            f"{n}/dense1": {"type": "dense", "input": [f"{n}/maxpool1"], "output": [f"{n}/output_layer1"],
                            "input_shapes": [[-1, 4, 4, 4]], "output_shapes": [[-1, 3]],
                            "params": {"kernel_shape": [64, 3], "activation": "linear"}},
            f"{n}/output_layer1": {"type": "output_layer", "input": [f"{n}/dense1"], "output": [],
                                   "input_shapes": [[-1, 3]], "output_shapes": [[-1, 3]], "params": {}},
        },
    }


def _tiny_params(rng) -> dict:
    return {"tiny/conv1/kernel:0": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
            "tiny/conv1/bias:0": rng.normal(size=4).astype(np.float32),
            "tiny/dense1/kernel:0": rng.normal(size=(64, 3)).astype(np.float32),
            "tiny/dense1/bias:0": rng.normal(size=3).astype(np.float32)}


def test_load_valid_and_round_trip():
    g = HNGraph.from_dict(_tiny())
    assert [l.name for l in g.topological()] == ["input_layer1", "conv1", "maxpool1", "dense1", "output_layer1"]
    assert [l.name for l in g.output_layers] == ["output_layer1"]
    g2 = HNGraph.from_json(g.to_json())
    assert g2.to_dict() == g.to_dict()
    assert g.layer("tiny/conv1").params["activation"] == "relu"
    assert [l.name for l in g.match("conv*")] == ["conv1"]
    assert [l.name for l in g.match("tiny/output_layer*")] == ["output_layer1"]


def test_file_order_only_roughly_topological():
    d = _tiny()
    items = list(d["layers"].items())
    d["layers"] = dict(reversed(items))  # a file listing layers backwards still loads
    g = HNGraph.from_dict(d)
    assert [l.name for l in g.topological()][0] == "input_layer1"
    assert [l.name for l in g.topological()][-1] == "output_layer1"


def _expect(d: dict, *words: str):
    with pytest.raises(HNError) as e:
        HNGraph.from_dict(d)
    for w in words:
        assert w in str(e.value), str(e.value)
    return str(e.value)


def test_unknown_type_names_layer():
    d = _tiny()
    d["layers"]["tiny/maxpool1"]["type"] = "maxpool3d"
    _expect(d, "tiny/maxpool1", "unknown layer type 'maxpool3d'")


def test_unknown_param_and_missing_required_param():
    d = _tiny()
    d["layers"]["tiny/conv1"]["params"]["kernal_shape"] = [3, 3, 3, 4]
    _expect(d, "tiny/conv1", "kernal_shape")
    d = _tiny()
    del d["layers"]["tiny/conv1"]["params"]["strides"]
    _expect(d, "tiny/conv1", "strides")


def test_unknown_activation_and_padding():
    d = _tiny()
    d["layers"]["tiny/conv1"]["params"]["activation"] = "swishy"
    _expect(d, "tiny/conv1", "swishy")
    d = _tiny()
    d["layers"]["tiny/conv1"]["params"]["padding"] = "FULL"
    _expect(d, "tiny/conv1", "FULL")


def test_dangling_edge_names_both_ends():
    d = _tiny()
    d["layers"]["tiny/conv1"]["output"] = ["tiny/maxpool9"]
    _expect(d, "tiny/conv1", "dangling edge", "tiny/maxpool9")


def test_one_sided_edge():
    d = _tiny()
    d["layers"]["tiny/maxpool1"]["input"] = ["tiny/input_layer1"]
    _expect(d, "does not list it")


def test_shape_mismatch_between_layers():
    d = _tiny()
    d["layers"]["tiny/maxpool1"]["input_shapes"] = [[-1, 8, 8, 5]]
    _expect(d, "tiny/maxpool1", "shape mismatch", "[-1, 8, 8, 4]")


def test_shape_mismatch_against_params():
    d = _tiny()
    d["layers"]["tiny/conv1"]["output_shapes"] = [[-1, 6, 6, 4]]
    d["layers"]["tiny/maxpool1"]["input_shapes"] = [[-1, 6, 6, 4]]
    d["layers"]["tiny/maxpool1"]["output_shapes"] = [[-1, 3, 3, 4]]
    d["layers"]["tiny/dense1"]["input_shapes"] = [[-1, 3, 3, 4]]
    _expect(d, "tiny/conv1", "shape mismatch")
    d = _tiny()
    d["layers"]["tiny/conv1"]["params"]["kernel_shape"] = [3, 3, 2, 4]
    _expect(d, "tiny/conv1", "input channels")


def test_extra_input_of_a_one_input_layer_is_an_error():
    """A second producer wired into a conv (or a fused elementwise_add) would be ignored by the
    float and the quantized math: loading refuses it, naming the layer."""
    d = _tiny()
    L = d["layers"]
    L["tiny/input_layer1"]["output"].append("tiny/maxpool1")
    L["tiny/input_layer1"]["output_shapes"].append([-1, 8, 8, 3])
    L["tiny/maxpool1"]["input"].append("tiny/input_layer1")
    L["tiny/maxpool1"]["input_shapes"].append([-1, 8, 8, 3])
    _expect(d, "tiny/maxpool1", "takes one input, got 2", "concat")
    d = _tiny()
    d["layers"]["tiny/conv1"]["params"]["elementwise_add"] = True
    _expect(d, "tiny/conv1", "elementwise_add", "ew_add")
    d["layers"]["tiny/conv1"]["params"]["elementwise_add"] = False
    HNGraph.from_dict(d)


def test_cycle_is_reported_with_its_layers():
    d = _tiny()
    L = d["layers"]
    # maxpool1 -> dense1 -> maxpool1 loop (shapes made consistent so only the cycle is wrong)
    L["tiny/dense1"]["output"].append("tiny/maxpool1")
    L["tiny/maxpool1"]["input"].append("tiny/dense1")
    L["tiny/maxpool1"]["input_shapes"].append([-1, 3])
    L["tiny/dense1"]["output_shapes"].append([-1, 3])
    msg = _expect(d, "cycle")
    assert "tiny/maxpool1" in msg and "tiny/dense1" in msg


def test_structure_errors():
    _expect({"name": "x"}, "layers")
    d = _tiny()
    d["layers"]["other/conv1"] = d["layers"].pop("tiny/conv1")
    _expect(d, "other/conv1", "'tiny/<layer>'")
    d = _tiny()
    d["net_params"]["output_layers_order"] = ["tiny/dense1"]
    _expect(d, "dense1", "not an output_layer")
    d = _tiny()
    del d["layers"]["tiny/dense1"]["output_shapes"]
    _expect(d, "tiny/dense1", "output_shapes")
    with pytest.raises(HNError, match="not valid JSON"):
        HNGraph.from_json("{not json")
    d = _tiny()
    d["layers"]["tiny/conv1"]["type"] = ["conv"]
    _expect(d, "tiny/conv1", "'type' must be a layer type name")
    d = _tiny()
    d["layers"]["tiny/conv1"]["original_names"] = "c"
    _expect(d, "tiny/conv1", "original_names")
    with pytest.raises(HNError, match="has no layer 'conv_1'; did you mean conv1"):
        HNGraph.from_dict(_tiny()).layer("conv_1")


def test_infer_output_shapes_of_types():
    from emulator.hn import Layer

    def L(t, ins, params):
        return Layer("x", t, ["a"] * len(ins), [], ins, [[-1]], params)

    assert infer_output_shape(L("conv", [[-1, 9, 9, 4]], {"kernel_shape": [3, 3, 4, 8], "strides": [1, 2, 2, 1],
                                                          "padding": "VALID"})) == [-1, 4, 4, 8]
    assert infer_output_shape(L("dw", [[-1, 9, 9, 4]], {"kernel_shape": [3, 3, 4, 2], "strides": [1, 2, 2, 1],
                                                        "padding": "SAME_TENSORFLOW"})) == [-1, 5, 5, 8]
    assert infer_output_shape(L("deconv", [[-1, 4, 4, 8]], {"kernel_shape": [3, 3, 8, 2], "strides": [1, 2, 2, 1],
                                                            "padding": "VALID"})) == [-1, 9, 9, 2]
    assert infer_output_shape(L("concat", [[-1, 2, 2, 3], [-1, 2, 2, 5]], {"concat_axis": 3})) == [-1, 2, 2, 8]
    assert infer_output_shape(L("depth_to_space", [[-1, 2, 2, 8]], {"block_size": 2})) == [-1, 4, 4, 2]
    assert infer_output_shape(L("slice", [[-1, 6, 6, 3]], {"begin": [1, 2, 0], "end": [5, 6, 3]})) == [-1, 4, 4, 3]
    assert infer_output_shape(L("pad", [[-1, 6, 6, 3]], {"pads": [[1, 1], [0, 2], [0, 5]]})) == [-1, 8, 8, 8]


# --- NPZ ---------------------------------------------------------------------------------------

def test_npz_round_trip(tmp_path, rng):
    g = HNGraph.from_dict(_tiny())
    p = _tiny_params(rng)
    save_npz(tmp_path / "tiny.npz", p)
    back = load_params(g, str(tmp_path / "tiny.npz"))
    assert set(back) == set(p)
    for k in p:
        assert back[k].dtype == np.float32 and np.array_equal(back[k], p[k])
    # keys without the network prefix are accepted and returned scoped
    short = {k.split("/", 1)[1]: v for k, v in p.items()}
    assert set(validate_params(g, short)) == set(p)
    assert expected_params(g.layer("conv1")) == {"kernel": (3, 3, 3, 4), "bias": (4,)}


def test_npz_missing_key(rng):
    g = HNGraph.from_dict(_tiny())
    p = _tiny_params(rng)
    del p["tiny/dense1/bias:0"]
    with pytest.raises(ParamsError) as e:
        validate_params(g, p)
    assert "tiny/dense1/bias:0" in str(e.value) and "[3]" in str(e.value) and "missing" in str(e.value)


def test_npz_misshaped_key_names_expected_and_actual(rng):
    g = HNGraph.from_dict(_tiny())
    p = _tiny_params(rng)
    p["tiny/conv1/kernel:0"] = np.zeros((3, 3, 4, 3), np.float32)
    with pytest.raises(ParamsError) as e:
        validate_params(g, p)
    msg = str(e.value)
    assert "tiny/conv1/kernel:0" in msg and "[3, 3, 4, 3]" in msg and "[3, 3, 3, 4]" in msg


def test_npz_unknown_layer_key_dtype_and_nan(rng):
    g = HNGraph.from_dict(_tiny())
    p = _tiny_params(rng)
    p["tiny/conv7/kernel:0"] = np.zeros(1, np.float32)
    with pytest.raises(ParamsError, match="conv7"):
        validate_params(g, p)
    p = _tiny_params(rng)
    p["tiny/conv1/alpha:0"] = np.zeros(4, np.float32)
    with pytest.raises(ParamsError, match="alpha:0"):
        validate_params(g, p)
    p = _tiny_params(rng)
    p["tiny/conv1/bias:0"] = np.zeros(4, np.int32)
    with pytest.raises(ParamsError, match="int32"):
        validate_params(g, p)
    p = _tiny_params(rng)
    p["tiny/conv1/bias:0"][1] = np.nan
    with pytest.raises(ParamsError, match="NaN"):
        validate_params(g, p)


def test_npz_unreadable_file(tmp_path):
    with pytest.raises(ParamsError, match="does not exist"):
        read_npz(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ParamsError, match="not a readable"):
        read_npz(tmp_path / "bad.npz")


def test_real_model_hn_round_trip(onet_runner, tmp_path):
    hn = onet_runner.hn
    d = json.loads(hn.to_json())
    assert HNGraph.from_dict(copy.deepcopy(d)).to_dict() == hn.to_dict()
    onet_runner.save_hn(tmp_path / "onet.hn")
    onet_runner.save_params(tmp_path / "onet.npz")
    from emulator import ClientRunner

    r = ClientRunner(hn=open(tmp_path / "onet.hn").read())  # the seed's Listing 1
    r.load_params(str(tmp_path / "onet.npz"))
    assert r.hn.to_dict() == hn.to_dict()
    for k, v in onet_runner.native_params.items():
        assert np.array_equal(r.native_params[k], v)
