"""A model script's `norm1 = normalization(mean, std)` (quantization/input_normalization.py).

On FER (a real network; its pre-processing is x / 127.5 - 1 = (x - 127.5) / 127.5): the script
adds the normalization, the network then takes raw pixels on every target, the quantization folds
the layer into conv1 (raw pixels go in: identity input QP), and the result is as accurate as
quantizing the pre-processed network. Applying the script again changes nothing; a name taken
or a refused calibration leaves the runner as it was; the layer travels in the HAR.
"""
from __future__ import annotations

import numpy as np
import pytest

import data_sources as ds
from emulator import ClientRunner, SdkFPOptimized, SdkNative, SdkNumeric, run_quantization_from_np
from emulator.analysis.metrics import snr_db
from emulator.quant_errors import CalibrationOutOfRangeError, QuantizationConfigError
from emulator.quantization.keys import Placement
from emulator.quantization.stored import QParams

NORM = "norm1 = normalization([127.5], [127.5])\n"


def _runner(fer_runner) -> ClientRunner:
    r = ClientRunner(hn=fer_runner.hn)
    r.load_params(fer_runner.native_params)
    return r


@pytest.fixture(scope="module")
def data(fer_images):
    pre = ds.fer_inputs(48, seed=21)
    return {"calib_raw": (fer_images + 1.0) * 127.5, "calib": fer_images,
            "held_raw": (pre[:16] + 1.0) * 127.5, "held": pre[:16]}


@pytest.fixture(scope="module")
def normalized(fer_runner, data):
    r = _runner(fer_runner)
    run_quantization_from_np(r, data["calib_raw"], 4, 8, model_script=NORM)
    return r


def test_the_layer_is_added_and_folded(normalized):
    r = normalized
    names = [l.name for l in r.hn.topological()]
    assert names[:3] == ["input_layer1", "norm1", "conv1"]
    assert r.hn.layers["input_layer1"].output == ["norm1"]
    assert r.hn.layers["conv1"].input == ["norm1"]
    Q = QParams(r.hn, r.quantized_params)
    assert Q.placement("norm1") == Placement.FOLDED
    t = Q.tensor("input_layer1")
    assert (t.scale, t.zp) == (1.0, 0)  # raw pixels go in
    steps = [s["step"] for s in r.metadata["calibration"]["steps"]]
    assert steps[0] == "normalization"


def test_raw_pixels_on_every_target(normalized, fer_runner, data):
    r = normalized
    native = fer_runner.infer(SdkNative(), data["held"])["output_layer1"]
    for target in (SdkNative(), SdkFPOptimized()):
        got = r.infer(target, data["held_raw"])["output_layer1"]
        np.testing.assert_allclose(got, native, atol=1e-5, err_msg=repr(target))
    # as accurate as quantizing the pre-processed network
    plain = _runner(fer_runner)
    run_quantization_from_np(plain, data["calib"], 4, 8)
    ours = snr_db(native, r.infer(SdkNumeric(), data["held_raw"])["output_layer1"])
    theirs = snr_db(native, plain.infer(SdkNumeric(), data["held"])["output_layer1"])
    assert ours > theirs - 1.5, (ours, theirs)


def test_applying_the_script_again_changes_nothing(normalized, data):
    r = normalized
    n = len(r.hn.layers)
    run_quantization_from_np(r, data["calib_raw"], 4, 8)  # the runner's own script again
    assert len(r.hn.layers) == n
    assert "normalization" not in [s["step"] for s in r.metadata["calibration"]["steps"]]


def test_the_har_keeps_it(normalized, data, tmp_path):
    normalized.save_har(tmp_path / "n.har")
    back = ClientRunner(har=tmp_path / "n.har")
    assert "norm1" in back.hn.layers and back.model_script == NORM
    np.testing.assert_array_equal(back.infer(SdkNumeric(), data["held_raw"][:4])["output_layer1"],
                                  normalized.infer(SdkNumeric(), data["held_raw"][:4])["output_layer1"])


def test_a_name_taken(fer_runner, data):
    r = _runner(fer_runner)
    with pytest.raises(QuantizationConfigError, match="already has a layer 'conv1' .conv.; assign"):
        run_quantization_from_np(r, data["calib_raw"], 4, 8,
                                 model_script="conv1 = normalization([127.5], [127.5])\n")
    assert "conv1" in r.hn.layers and len(r.hn.input_layers[0].output) == 1
    assert r.model_script == ""


def test_another_mean_under_the_same_name(normalized, data):
    r = normalized
    with pytest.raises(QuantizationConfigError, match="with another mean / std"):
        run_quantization_from_np(r, data["calib_raw"], 4, 8,
                                 model_script="norm1 = normalization([100], [127.5])\n")


def test_a_refused_calibration_changes_nothing(fer_runner, data):
    r = _runner(fer_runner)
    layers = list(r.hn.layers)
    with pytest.raises(CalibrationOutOfRangeError):
        run_quantization_from_np(r, data["calib_raw"][:8], 4, 8, model_script=NORM)
    assert list(r.hn.layers) == layers and r.quantized_params is None and r.model_script == ""
