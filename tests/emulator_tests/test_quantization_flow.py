"""run_quantization_from_np with a model script: the seed's listings verbatim, the FAQ's
output_layer* line, a script from a file, the script kept in the HAR and its settings in each
HN layer's quantization_params, and a broken script refused before anything changes."""
from __future__ import annotations

import numpy as np
import pytest

import data_sources as ds
import numerics_nets as nets
from emulator import ClientRunner, SdkNumeric, run_quantization_from_np
from emulator.model_script import ModelScriptError
from emulator.quant_errors import ConcatWidthError
from emulator.quantization import qkey
from test_bias_correction import fresh_copy
from test_quantization import assert_bit_exact_with_reference


@pytest.fixture(scope="module")
def images():
    return ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0


def _runner():
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    return r


def _bits(r, name):
    return int(r.quantized_params[qkey(r.hn.name, name, "out_bits")])


def test_seed_listings_verbatim(images, tmp_path):
    r = _runner()
    listing = "quantization_param({conv*}, precision_mode=a16_w16)\n"
    # on this network conv2 feeds a concat both directly (16-bit) and through avgpool1 (8-bit)
    with pytest.raises(ConcatWidthError, match="same precision_mode on both producers"):
        run_quantization_from_np(r, images, 2, 32, model_script=listing)
    r = _runner()
    script = listing + "quantization_param(avgpool1, precision_mode=a16_w16)  # the concat's other input\n"
    run_quantization_from_np(r, images, 2, 32, model_script=script)
    convs = [l.name for l in r.hn.topological() if l.type == "conv"]
    assert convs and all(_bits(r, c) == 16 for c in convs)
    assert all(r.hn.layers[c].quantization_params["precision_mode"] == "a16_w16" for c in convs)
    assert r.quantized_params[qkey(r.hn.name, "conv1", "q_w")].dtype == np.int16
    assert assert_bit_exact_with_reference(r, images[:4]) >= 20
    r.save_har(tmp_path / "q.har")
    back = ClientRunner(har=tmp_path / "q.har")
    assert back.model_script == script
    x = images[:4]
    a, b = r.infer(SdkNumeric(), x), back.infer(SdkNumeric(), x)
    assert all(np.array_equal(a[k], b[k]) for k in a)

    r = _runner()
    f = tmp_path / "bias.alls"
    f.write_text("quantization_param({conv*}, bias_mode=double_scale_initialization)\n")
    run_quantization_from_np(r, images, 2, 32, model_script=f)
    assert r.quantized_params[qkey(r.hn.name, "conv2", "bias_mantissa")].dtype == np.int16
    assert r.quantized_params[qkey(r.hn.name, "dense1", "bias_mantissa")].dtype == np.int8


def test_faq_output_layers_16_bit(images):
    """The mode set on output_layer* reaches the on-chip tensor each output stream carries."""
    from emulator.stream_export import chip_source

    r = _runner()
    run_quantization_from_np(r, images, 2, 32,
                             model_script="quantization_param(output_layer*, precision_mode=a16_w16)")
    sources = {chip_source(r, out)[0] for out in r.hn.output_layers}
    assert len(sources) == 4 and all(_bits(r, s) == 16 for s in sources)
    assert all(info["format"]["type"] == "UINT16" for info in r.stream_infos if info["direction"] == "D2H")


def test_script_calibration_and_summary(images):
    r = _runner()
    script = ("model_optimization_config(calibration, batch_size=16, calibset_size=48)\n"
              "quantization_param(conv2, precision_mode=a8_w4)\n"
              "pre_quantization_optimization(weights_clipping, layers=conv2, mode=mmse)\n")
    run_quantization_from_np(r, images, model_script=script)
    cal = r.metadata["calibration"]
    assert (cal["batch_size"], cal["calib_num_batch"], cal["images"]) == (16, 3, 48)
    assert cal["model_script"] and int(r.quantized_params[qkey(r.hn.name, "conv2", "w_bits")]) == 4


def test_a_broken_script_changes_nothing(images):
    r = _runner()
    before = r.hn.to_json()
    with pytest.raises(ModelScriptError) as e:
        run_quantization_from_np(r, images, 2, 32,
                                 model_script="quantization_param({conv*}, precison_mode=a16_w16)")
    assert e.value.line == 1 and "precision_mode" in str(e.value)
    assert r.quantized_params is None and r.hn.to_json() == before


def test_equalize_flag_runs_the_step_and_stays_bit_exact(images):
    from emulator import SdkFPOptimized, SdkNative

    r = _runner()
    run_quantization_from_np(r, images, 2, 32,
                             model_script="pre_quantization_optimization(equalization, policy=enabled)")
    steps = [s["step"] for s in r.metadata["calibration"]["steps"]]
    assert steps[0] == "equalization" and r.fp_optimized_params is not None
    x = images[:8]
    a, b = r.infer(SdkNative(), x), r.infer(SdkFPOptimized(), x)
    for k in a:
        assert np.abs(a[k] - b[k]).max() <= 1e-4 * max(1.0, np.abs(a[k]).max())
    assert assert_bit_exact_with_reference(r, images[:4]) >= 20


def test_ibc_flag_corrects_and_keeps_the_float_network(images):
    from emulator import SdkFPOptimized, SdkNative
    from emulator.analysis import snr_db

    base = _runner()
    run_quantization_from_np(base, images, 2, 32)
    r = _runner()
    run_quantization_from_np(r, images, 2, 32, ibc=True)
    step = r.metadata["calibration"]["steps"][-1]
    assert step["step"] == "bias_correction" and step["report"]
    x = ds.random_crops(32, (13, 11), seed=9).astype(np.float32) / 127.5 - 1.0  # held out
    nat = r.infer(SdkNative(), x)
    fp = r.infer(SdkFPOptimized(), x)
    assert all(np.array_equal(nat[k], fp[k]) for k in nat)  # IBC lives in the integer params only
    before = base.infer(SdkNumeric(), x)
    after = r.infer(SdkNumeric(), x)
    gain = [snr_db(nat[k], after[k]) - snr_db(nat[k], before[k]) for k in nat]
    assert sum(gain) > 0, gain
    assert assert_bit_exact_with_reference(r, images[:4]) >= 20


@pytest.mark.slow
def test_faq_output_layers_16_bit_through_detector_concats(blazeface_runner, blazeface_images):
    """BlazeFace's outputs are concats of per-scale head convs: the FAQ's line, verbatim, reaches
    the convs feeding each concat (a concat's inputs share its width). SdkNumeric stays bit-exact;
    the outputs are no worse (their error here comes from the 8-bit body: 12.9 / 5.7 dB either
    way on these 16 crops)."""
    from emulator import SdkNative, SdkNumeric
    from emulator.analysis.metrics import snr_db
    from emulator.stream_export import chip_source

    ref = blazeface_runner.infer(SdkNative(), blazeface_images)
    snr, runners = {}, {}
    for a16 in (False, True):
        r = runners[a16] = fresh_copy(blazeface_runner)
        run_quantization_from_np(r, blazeface_images, 2, 8, model_script=(
            "quantization_param(output_layer*, precision_mode=a16_w16)" if a16 else None))
        outs = r.infer(SdkNumeric(), blazeface_images)
        snr[a16] = {k: snr_db(ref[k], outs[k]) for k in ref}
    r16 = runners[True]
    for output in r16.hn.output_layers:
        src = chip_source(r16, output)[0]
        assert r16.hn.layers[src].type == "concat" and _bits(r16, src) == 16
        assert all(_bits(r16, r16.hn.layers[i].input[0] if r16.hn.layers[i].type == "reshape" else i) == 16
                   for i in r16.hn.layers[src].input)
    assert all(info["format"]["type"] == "UINT16" for info in r16.stream_infos if info["direction"] == "D2H")
    assert all(snr[True][k] > snr[False][k] - 0.5 for k in snr[False])
    assert_bit_exact_with_reference(r16, blazeface_images[:2])
