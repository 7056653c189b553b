"""The per-layer noise analysis (emulator/analysis: noise, mixed, diagnostics, tensors).

- Mixed execution: every analysed layer quantized is SdkNumeric bit for bit (every layer type,
  a folded normalization); none quantized is SdkFPOptimized; a choice of layers is data (no
  retrace).
- On FER (a real network, real photos) with one mid-network conv made bad on purpose by a model
  script: the analysis ranks it first in (a); the Lerr check with it float recovers the output
  SNR; the suggested script, applied, fixes it. Same with 4-bit weights.
- Every number of the report agrees with a direct computation from the saved tensors.
- Error paths: not quantized, no data, bad arguments, files that are not tensor dumps.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import data_sources as ds
import numerics_nets as nets
from emulator import ClientRunner, SdkFPOptimized, SdkNumeric, run_quantization_from_np
from emulator.analysis import metrics
from emulator.analysis.mixed import MixedExecutor, analysed_layers
from emulator.analysis.noise import NoiseReport, analyze_noise
from emulator.analysis.tensors import TensorDumpError, load_tensors
from emulator.errors import NotQuantizedError, RunnerUsageError
from emulator.quantization.stored import QParams
from emulator.stream_export import chip_source

BAD_RANGE = "quantization_param(conv6, force_range_out=[0, 0.3])\n"
BAD_WEIGHTS = "quantization_param(conv6, precision_mode=a8_w4)\n"


# ------------------------------------------------------------------ mixed execution ----------

@pytest.fixture(scope="module")
def all_ops():
    images = ds.random_crops(48, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, images[:32], 2, 16)
    return r, images[32:]


def _pre_host(runner, outputs: dict, ex: MixedExecutor) -> dict:
    """The outputs whose stream has no host op after it (those are compared exactly)."""
    return {o: v for o, v in outputs.items()
            if not chip_source(runner, runner.hn.layers[o])[1]}


def test_mixed_all_quantized_is_sdk_numeric_bit_for_bit(all_ops):
    r, x = all_ops
    ex = MixedExecutor(r)
    got = ex.run([x], ex.layers)
    want = r.infer(SdkNumeric(), x)
    exact = _pre_host(r, want, ex)
    assert exact, "the net has outputs without host ops"
    for o in want:
        if o in exact:
            np.testing.assert_array_equal(got[o], want[o], err_msg=o)
        else:  # softmax on the host: numpy there, TensorFlow here
            np.testing.assert_allclose(got[o], want[o], atol=1e-6, err_msg=o)


def test_mixed_nothing_quantized_is_fp_optimized(all_ops):
    r, x = all_ops
    ex = MixedExecutor(r)
    got = ex.run([x], [])
    want = r.infer(SdkFPOptimized(), x)
    for o in want:
        np.testing.assert_allclose(got[o], want[o], rtol=1e-6, atol=1e-6, err_msg=o)


def test_mixed_choice_of_layers_is_data_not_structure(all_ops):
    r, x = all_ops
    ex = MixedExecutor(r)
    for name in ex.layers[:4]:
        ex.run([x], [name])
        ex.run([x], [], [name])
    assert ex._mixed.experimental_get_tracing_count() == 1


def test_analysed_layers_leave_out_what_keeps_its_grid(all_ops):
    r, _ = all_ops
    Q = QParams(r.hn, r.quantized_params)
    names = analysed_layers(r)
    types = {r.hn.layers[n].type for n in names}
    assert {"input_layer", "conv", "dw", "deconv", "dense", "ew_add", "avgpool"} <= types
    assert not types & {"output_layer", "maxpool", "reshape", "softmax"}
    assert all(Q.on_chip(n) for n in names)


def test_folded_normalization_mixed():
    hn, params = nets.folded_norm_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    raw = ds.random_crops(48, (12, 12), seed=5).astype(np.float32)  # raw 0..255 pixels
    run_quantization_from_np(r, raw[:32], 2, 16)
    assert not QParams(r.hn, r.quantized_params).on_chip("normalization1")
    ex = MixedExecutor(r)
    got, want = ex.run([raw[32:]], ex.layers), r.infer(SdkNumeric(), raw[32:])
    for o in want:
        np.testing.assert_allclose(got[o], want[o], atol=1e-6, err_msg=o)
    rep = analyze_noise(r, raw[32:], progress=False)
    # the conv reads the raw pixels' grid through the folded normalization: a small local error
    assert rep.layer("conv1").local.snr_db > 25


def test_unknown_layer_in_a_mask(all_ops):
    r, x = all_ops
    with pytest.raises(RunnerUsageError, match="'nope'.*not analysed layers"):
        MixedExecutor(r).run([x], ["nope"])


# ------------------------------------------------------------------ FER, a bad layer ---------

def _quantized_fer(fer_runner, images, script: str = "") -> ClientRunner:
    r = ClientRunner(hn=fer_runner.hn)
    r.load_params(fer_runner.native_params)
    run_quantization_from_np(r, images[:32], 4, 8, model_script=script)
    return r


@pytest.fixture(scope="module")
def fer_data(fer_images):
    return fer_images, ds.fer_inputs(16, seed=11)  # calibration, held-out analysis images


@pytest.fixture(scope="module")
def fer_good(fer_runner, fer_data):
    calib, held = fer_data
    r = _quantized_fer(fer_runner, calib)
    return r, analyze_noise(r, held, progress=False)


@pytest.fixture(scope="module")
def fer_bad(fer_runner, fer_data, tmp_path_factory):
    calib, held = fer_data
    r = _quantized_fer(fer_runner, calib, BAD_RANGE)
    dump = tmp_path_factory.mktemp("noise") / "tensors.npz"
    return r, analyze_noise(r, held, progress=False, dump=dump), dump


def _out_snr(report: NoiseReport) -> float:
    return min(s.snr_db for s in report.outputs.values())


def test_a_good_network_flags_nothing(fer_good):
    _, rep = fer_good
    assert _out_snr(rep) > 18
    assert rep.flagged == [] and rep.lerr is None and rep.suggested_script == ""
    assert all(l.alone_snr_db > 20 for l in rep.layers)
    # (b) only degrades along a chain: the last conv sees every error before it
    assert rep.layer("conv15").cumulative.snr_db < rep.layer("conv1").cumulative.snr_db


def test_the_bad_layer_is_ranked_first_and_explained(fer_bad, fer_good):
    _, rep, _ = fer_bad
    assert _out_snr(rep) < 5, "the forced range must ruin the outputs"
    worst = rep.ranked_layers[0]
    assert worst.layer == "conv6" and worst.flagged
    assert [l.layer for l in rep.flagged] == ["conv6"], "its readers are not blamed for its range"
    assert worst.alone_snr_db < 5 and worst.local.snr_db < 5
    d = worst.diagnostics
    assert "saturation" in d.findings and d.saturated_pct > 10
    assert d.force_range_out == [0.0, 0.3]
    assert any("forced output range" in a for a in worst.suggestion.advice)
    # the runner-up is an ordinary layer, as good as in the good network
    assert rep.ranked_layers[1].alone_snr_db > 20


def test_lerr_check_recovers_the_output(fer_bad, fer_good):
    _, rep, _ = fer_bad
    _, good = fer_good
    lerr = rep.lerr
    assert lerr.kept_float == ["conv6"]
    all_q = min(s.snr_db for s in lerr.all_quantized.values())
    kept = min(s.snr_db for s in lerr.flagged_float.values())
    assert all_q == pytest.approx(_out_snr(rep), abs=0.01)  # the mixed run is SdkNumeric
    assert kept > all_q + 15
    assert kept > _out_snr(good) - 3, "with conv6 float the rest is as good as the good network"
    assert lerr.remaining_error_pct == pytest.approx(100 * 10 ** (-kept / 20))


def test_the_suggested_script_fixes_it(fer_runner, fer_data, fer_bad, fer_good):
    r, rep, _ = fer_bad
    _, good = fer_good
    script = rep.suggested_script
    assert "quantization_param(conv6, force_range_out=[" in script
    fixed = _quantized_fer(fer_runner, fer_data[0], r.model_script + script)
    after = analyze_noise(fixed, fer_data[1], progress=False)
    assert after.flagged == []
    # from about -1 dB back to within 3 dB of the calibrated range (the suggested range is the
    # analysed images' whole range, a little wider than the calibrated one)
    assert _out_snr(after) > _out_snr(rep) + 18
    assert _out_snr(after) > _out_snr(good) - 3
    assert after.layer("conv6").alone_snr_db > 20


def test_four_bit_weights(fer_runner, fer_data):
    r = _quantized_fer(fer_runner, fer_data[0], BAD_WEIGHTS)
    rep = analyze_noise(r, fer_data[1], threshold_db=25, progress=False)
    worst = rep.ranked_layers[0]
    assert worst.layer == "conv6"
    assert worst.diagnostics.weight_bits == 4 and "low_weight_bits" in worst.diagnostics.findings
    assert "quantization_param(conv6, precision_mode=a8_w8)" in worst.suggestion.script


def test_numbers_agree_with_the_saved_tensors(fer_bad):
    r, rep, path = fer_bad
    t = load_tensors(path)
    d = json.loads(rep.to_json())
    assert t.layers == [l.name for l in r.hn.topological()]
    assert t.outputs == ["output_layer1"]

    def check(stats: dict, ref, test):
        assert stats["snr_db"] == pytest.approx(metrics.snr_db(ref, test), rel=1e-9)
        assert stats["cosine"] == pytest.approx(metrics.cosine_similarity(ref, test), rel=1e-9)
        assert stats["mean_error"] == pytest.approx(metrics.mean_error(ref, test), rel=1e-9, abs=1e-15)
        assert stats["max_abs_error"] == pytest.approx(metrics.max_abs_error(ref, test), rel=1e-9)
        assert stats["rmse"] == pytest.approx(metrics.rmse(ref, test), rel=1e-9)

    for o, stats in d["outputs"].items():
        check(stats, t.native(o), t.quantized(o))
    for ld in d["layers"]:
        n = ld["layer"]
        check(ld["cumulative"], t.native(n), t.quantized(n))
        check(ld["local"], t.local_ref(n), t.local(n))
        for o in t.outputs:
            check(ld["alone"][o], t.alone_ref(n, o), t.alone(n, o))
        scale = t.layer_meta(n)["scale"]
        assert ld["cumulative"]["rmse_lsb"] == pytest.approx(ld["cumulative"]["rmse"] / scale)
        # the quantized floats are the dequantized codes
        m = t.layer_meta(n)
        np.testing.assert_array_equal(
            t.quantized(n), ((t.codes(n).astype(np.float32) - m["zero_point"]) * np.float32(m["scale"])))
    for o in t.outputs:
        check(d["lerr"]["flagged_float"][o], t.native(o), t.lerr(o))
    assert d["ranked_layers"][0] == "conv6" and d["flagged_layers"] == ["conv6"]


def test_json_and_har_keep_the_summary(fer_bad, tmp_path):
    r, _, _ = fer_bad
    rep = r.analyze_noise(ds.fer_inputs(4, seed=12), progress=False)
    assert r.metadata["noise_analysis"]["flagged_layers"] == [l.layer for l in rep.flagged]
    r.save_har(tmp_path / "fer.har")
    back = ClientRunner(har=tmp_path / "fer.har")
    assert back.metadata["noise_analysis"] == json.loads(json.dumps(r.metadata["noise_analysis"]))


def test_infinite_snr_is_a_json_string():
    from emulator.analysis.noise import _json_safe

    assert json.dumps(_json_safe({"a": math.inf, "b": [-math.inf, 1.0]})) == \
        '{"a": "inf", "b": ["-inf", 1.0]}'


# ------------------------------------------------------------------ errors -------------------

def test_not_quantized(all_ops):
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    with pytest.raises(NotQuantizedError):
        analyze_noise(r, all_ops[1])


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"threshold_db": "ten"}, "threshold_db must be a number"),
    ({"threshold_db": math.nan}, "threshold_db must be finite"),
])
def test_bad_arguments(all_ops, kwargs, match):
    r, x = all_ops
    with pytest.raises(RunnerUsageError, match=match):
        analyze_noise(r, x, **kwargs)


def test_no_images_and_wrong_shapes(all_ops):
    r, x = all_ops
    with pytest.raises(RunnerUsageError, match="0 images"):
        analyze_noise(r, x[:0])
    with pytest.raises(ValueError, match="shape"):
        analyze_noise(r, x[:, :5])


def test_tensor_dump_files(tmp_path, all_ops):
    with pytest.raises(TensorDumpError, match="no such file"):
        load_tensors(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(TensorDumpError, match="text.npz: not a readable .npz"):
        load_tensors(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(TensorDumpError, match="other.npz: not a noise-analysis tensor dump"):
        load_tensors(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", __meta__=np.array([{"x": 1}], dtype=object))
    with pytest.raises(TensorDumpError, match="pickled.npz"):
        load_tensors(tmp_path / "pickled.npz")
    np.savez(tmp_path / "wrong.npz", __meta__=np.array(json.dumps({"format": "other"})))
    with pytest.raises(TensorDumpError, match="not a .* header"):
        load_tensors(tmp_path / "wrong.npz")
    # a real one round-trips
    r, x = all_ops
    analyze_noise(r, x[:4], progress=False, dump=tmp_path / "ok.npz")
    t = load_tensors(tmp_path / "ok.npz")
    assert t.layers and all(t.has(f"native/{n}") for n in t.layers)
    with pytest.raises(KeyError, match="no 'local/nope'"):
        t.local("nope")
