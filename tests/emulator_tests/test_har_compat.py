"""A HAR written before the layer kinds moved into emulator/layers (numerics params version 1:
"kind" stored as int32 codes) loads after it, and every target gives the outputs it gave then:
SdkNumeric's codes of every layer, byte for byte, and SdkQuantized's outputs (to float32
rounding: its host softmax is TensorFlow's, whose oneDNN and Eigen kernels differ in the last
bit, and the expected values were written with oneDNN on). The file is the
all-ops network (every layer type) with 4-bit grouped weights, 16-bit tensors and a 16-bit bias,
made by the code of commit 608e762 (tests/data/har_v1/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emulator import ClientRunner, SdkNumeric, SdkQuantized
from emulator.quantization.keys import Placement, qkey

DATA = Path(__file__).resolve().parents[1] / "data" / "har_v1"


@pytest.fixture(scope="module")
def old():
    return ClientRunner(har=DATA / "all_ops.har"), dict(np.load(DATA / "all_ops_expected.npz"))


def _check(r, expected):
    x = expected["inputs"]
    _, layers = r.infer(SdkNumeric(), x, inter_layers=True)
    codes = {k[len("numeric/"):]: v for k, v in expected.items() if k.startswith("numeric/") and k.endswith(":codes")}
    assert codes and set(codes) == {k for k in layers if k.endswith(":codes")}
    for k, v in codes.items():
        assert layers[k].dtype == v.dtype and np.array_equal(layers[k], v), k
    outs = r.infer(SdkNumeric(), x)
    fq = r.infer(SdkQuantized(), x)
    for k in outs:
        assert np.array_equal(outs[k], expected[f"numeric/{k}"]), k
        np.testing.assert_allclose(fq[k], expected[f"quantized/{k}"], rtol=1e-6, atol=0, err_msg=k)


def test_version1_har_loads_with_identical_outputs(old):
    r, expected = old
    kinds = {k: v for k, v in r.quantized_params.items() if k.endswith("/kind:0")}
    # upgraded to names (the file's normalization runs on the chip: its inputs are not raw pixels)
    assert all(v.dtype.kind == "U" for v in kinds.values())
    assert {str(v) for v in kinds.values()} == {"chip", "host"}
    _check(r, expected)


def test_version1_har_saved_again_keeps_outputs(old, tmp_path):
    r, expected = old
    r.save_har(tmp_path / "again.har")
    again = ClientRunner(har=tmp_path / "again.har")
    assert str(again.quantized_params[qkey(again.hn.name, "conv1", "kind")]) == Placement.CHIP.value
    _check(again, expected)
