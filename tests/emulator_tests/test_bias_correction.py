"""IBC, iterative bias correction (emulator/quantization/bias_correction.py; docs/bias-correction.md).

- Real networks (FER, MTCNN-ONet) calibrated on the real photos of the fixtures, measured on
  held-out images: IBC shrinks the per-channel mean error of the corrected layers (the report's
  figures, and independently through SdkNumeric against SdkNative) and raises the output SNR;
  the 16-bit bias leaves a far smaller error and no worse an output.
- After the correction SdkNumeric still equals the independent numpy reference bit for bit, the
  stored params pass the load-time check, and a HAR round trip gives identical outputs.
- Small hand-built networks: every MAC type and activation class, a folded normalization,
  a subset of layers, the progress callback, the errors (and the runner left as it was).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import data_sources as ds
import numerics_nets as nets
import numerics_reference as ref
from emulator import ClientRunner, SdkFPOptimized, SdkNative, SdkNumeric, run_quantization_from_np
from emulator.errors import HNError, InferenceInputError, NotQuantizedError
from emulator.qparams_check import validate_quantized_params
from emulator.quant_errors import AccumulatorOverflowError, QuantizationConfigError
from emulator.quantization import QParams, qkey
from emulator.quantization.bias_correction import BiasCorrectionReport, correct_biases, snr_db

hrt = pytest.importorskip("hailort_py")

BIAS_MODES = {8: "single_scale_decomposition", 16: "double_scale_initialization"}


# ------------------------------------------------------------------ helpers -------------------

def fresh_copy(runner) -> ClientRunner:
    r = ClientRunner(hn=runner.hn.to_json())
    r.load_params(runner.native_params)
    return r


def chip_equals_reference(runner, x: np.ndarray) -> int:
    """SdkNumeric's codes of every on-chip layer == tests/numerics_reference.py's; returns how
    many layers were compared."""
    _, inter = runner.infer(SdkNumeric(), x, inter_layers=True)
    Q = QParams(runner.hn, runner.quantized_params)
    codes = {l.name: hrt.quantize(x, Q.quant_info(l.name), Q.tensor(l.name).dtype)
             for l in runner.hn.input_layers}
    expected = ref.run_network(runner.hn, runner.quantized_params, codes)
    assert expected
    for name, want in expected.items():
        got = inter[name + ":codes"].astype(np.int64)
        assert np.array_equal(got, want), \
            f"layer {name}: {np.sum(got != want)} codes differ from the reference"
    return len(expected)


def stream_layers(runner) -> list[str]:
    """The on-chip tensors the output streams carry (before host ops)."""
    from emulator.stream_export import chip_source

    return [chip_source(runner, l)[0] for l in runner.hn.output_layers]


def fer_held_out() -> np.ndarray:
    """Images no FER calibration set holds: lfw's 100 non-face patches' first 64 (the
    calibration uses lfw faces) and 64 photo crops of another seed, FER pre-processing."""
    faces, _ = ds.lfw_faces()
    patches = np.stack([ds._resize((faces[i] * 255.0).astype(np.float32), (64, 64))
                        for i in range(100, 164)])[..., None]
    crops = ds.random_crops(64, (64, 64), seed=41, grey=True).astype(np.float32)
    return (np.concatenate([patches, crops]) / 127.5 - 1.0).astype(np.float32)


def onet_held_out() -> np.ndarray:
    return ds.mtcnn_inputs(128, (48, 48), seed=43)


def per_channel_mean_error(a: np.ndarray, b: np.ndarray) -> float:
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(np.mean(np.abs(d.reshape(-1, d.shape[-1]).mean(axis=0))))


class Case:
    """One network quantized with one bias mode, before and after IBC."""

    def __init__(self, base, calib, held_out, bits: int):
        r = fresh_copy(base)
        run_quantization_from_np(r, calib, 1, len(calib), config={"*": {"bias_mode": BIAS_MODES[bits]}})
        self.qp_before = r.quantized_params
        self.native_calib = base.infer(SdkNative(), calib, inter_layers=True)[1]
        self.native_held = base.infer(SdkNative(), held_out, inter_layers=True)
        self.calib_before = r.infer(SdkNumeric(), calib, inter_layers=True)[1]
        self.held_before = r.infer(SdkNumeric(), held_out, inter_layers=True)
        self.progress: list = []
        self.report = correct_biases(r, calib, 32, progress=lambda *a: self.progress.append(a))
        self.calib_after = r.infer(SdkNumeric(), calib, inter_layers=True)[1]
        self.held_after = r.infer(SdkNumeric(), held_out, inter_layers=True)
        self.runner, self.calib, self.held_out = r, calib, held_out

    def snr(self, layer: str, after: bool) -> float:
        out, inter = self.held_after if after else self.held_before
        nat_out, nat_inter = self.native_held
        if layer in nat_out:
            return snr_db(nat_out[layer], out[layer])
        return snr_db(nat_inter[layer], inter[layer])

    def streams_snr(self, after: bool) -> float:
        names = stream_layers(self.runner)
        inter = (self.held_after if after else self.held_before)[1]
        return snr_db(np.concatenate([self.native_held[1][n].ravel() for n in names]),
                      np.concatenate([inter[n].ravel() for n in names]))


@pytest.fixture(scope="module")
def fer_cases(fer_runner, fer_images):
    held = fer_held_out()
    return {bits: Case(fer_runner, fer_images, held, bits) for bits in BIAS_MODES}


@pytest.fixture(scope="module")
def onet_cases(onet_runner, mtcnn_images_48):
    held = onet_held_out()
    return {bits: Case(onet_runner, mtcnn_images_48, held, bits) for bits in BIAS_MODES}


# ------------------------------------------------------------------ real networks -------------

def _check_report(case: Case, n_layers: int) -> None:
    rep = case.report
    assert len(rep.layers) == n_layers and rep.images == len(case.calib)
    assert [p[2] for p in case.progress] == [l.name for l in rep.layers]
    assert [p[:2] for p in case.progress] == [(i + 1, n_layers) for i in range(n_layers)]
    for l in rep.layers:
        # what the correction reaches is the rounding of the wanted bias: never worse than before
        assert l.error_after <= l.error_seen + 1e-9, l.name
        assert l.error_before is not None and l.snr_before is not None
        assert l.exponent_after >= 0 and l.step > 0
    assert rep.mean("error_after") < 0.5 * rep.mean("error_before")
    assert rep.mean("output_error_after") < 0.5 * rep.mean("output_error_before")
    d = json.loads(json.dumps(rep.to_dict()))
    assert set(d["layers"]) == {l.name for l in rep.layers}
    assert d["mean_error_after_codes"] == pytest.approx(rep.mean("error_after"))
    lines = rep.lines()
    assert len(lines) == n_layers + 2 and all(l.name in "\n".join(lines) for l in rep.layers)


def _check_independently(case: Case, linear_layers: list[str]) -> None:
    """The per-channel mean error of the corrected linear layers' outputs, measured through
    SdkNumeric against SdkNative on the calibration images (not by the module itself)."""
    nat = case.native_calib
    before = np.mean([per_channel_mean_error(case.calib_before[n], nat[n]) for n in linear_layers])
    after = np.mean([per_channel_mean_error(case.calib_after[n], nat[n]) for n in linear_layers])
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 16])
def test_fer_ibc_shrinks_the_mean_error_and_raises_the_snr(fer_cases, bits):
    case = fer_cases[bits]
    macs = [l.name for l in case.runner.hn.topological() if l.type in ("conv", "dw", "deconv", "dense")]
    _check_report(case, len(macs))
    _check_independently(case, [n for n in macs if case.runner.hn.layers[n].activation == "linear"])
    # held-out images: the stream (before the host softmax) and the softmax output
    assert case.streams_snr(True) >= case.streams_snr(False) + 0.5
    assert case.snr("output_layer1", True) >= case.snr("output_layer1", False) + 1.0
    assert case.report.seconds < 60


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 16])
def test_onet_ibc_shrinks_the_mean_error_and_raises_the_snr(onet_cases, bits):
    case = onet_cases[bits]
    _check_report(case, 8)
    _check_independently(case, ["dense2", "dense3", "dense4"])
    # ONet's stream errors are mostly per-image noise, not bias: small gains on the streams
    # (measured +0.01 to +0.9 dB), none lost; the face probability (host softmax) gains more
    gains = [case.snr(n, True) - case.snr(n, False) for n in ("dense2", "dense3", "dense4")]
    assert min(gains) > -0.05 and sum(gains) > 0.3, gains
    assert case.streams_snr(True) >= case.streams_snr(False)
    assert case.snr("output_layer3", True) >= case.snr("output_layer3", False) + 1.0


@pytest.mark.slow
@pytest.mark.parametrize("net", ["fer", "onet"])
def test_16_bit_bias_leaves_a_smaller_error_and_no_worse_output(net, fer_cases, onet_cases):
    cases = fer_cases if net == "fer" else onet_cases
    r8, r16 = cases[8].report, cases[16].report
    assert all(l.bias_bits == 8 for l in r8.layers) and all(l.bias_bits == 16 for l in r16.layers)
    for a, b in zip(r8.layers, r16.layers):
        # the bias grid: 2^8 times finer with the same exponent rule
        assert b.step <= a.step, a.name
        assert b.codes(b.error_after) <= a.codes(a.error_after) + 0.003, a.name
    # IBC removes nearly all of the error it sees with a 16-bit bias, much less with 8 bits
    removed = {k: 1 - sum(l.error_after for l in r.layers) / sum(l.error_seen for l in r.layers)
               for k, r in ((8, r8), (16, r16))}
    assert removed[16] > 0.95 and removed[16] > removed[8] + 0.2, removed
    assert r16.mean("error_after") < 0.1 * r8.mean("error_after")
    assert len(r16.limited) < len(r8.limited)
    # the outputs: after IBC neither width wins consistently (FER's stream, 16 against 8 bits,
    # measured -0.5 to +0.7 dB from one calibration set to another), so "not worse" is checked
    # with that spread as the tolerance
    assert cases[16].streams_snr(True) >= cases[8].streams_snr(True) - 0.5


@pytest.mark.slow
def test_chip_stays_bit_exact_with_the_reference_after_ibc(fer_cases, onet_cases):
    assert chip_equals_reference(fer_cases[8].runner, fer_cases[8].held_out[:4]) >= 30
    assert chip_equals_reference(onet_cases[16].runner, onet_cases[16].held_out[:6]) >= 12


@pytest.mark.slow
def test_params_pass_the_load_check_and_survive_a_har_round_trip(fer_cases, tmp_path):
    case = fer_cases[8]
    r = case.runner
    validate_quantized_params(r.hn, r.quantized_params, "x")
    # only biases changed: the float params and every stored field but the corrected layers' bias
    nat, fp = r.native_params, r.fp_optimized_params
    assert set(nat) == set(fp)
    changed = [k for k in nat if not np.array_equal(nat[k], fp[k])]
    assert changed and all(k.endswith("/bias:0") for k in changed)
    for k, v in case.qp_before.items():
        if not k.endswith(("/bias_mantissa:0", "/bias_exponent:0")):
            assert np.array_equal(v, r.quantized_params[k]) and v.dtype == r.quantized_params[k].dtype, k
    path = tmp_path / "fer_ibc.har"
    r.save_har(path)
    back = ClientRunner(har=path)
    for a, b in ((r.quantized_params, back.quantized_params),
                 (r.fp_optimized_params, back.fp_optimized_params)):
        assert list(a) == list(b)
        assert all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)
    x = case.held_out[:24]
    _, i1 = r.infer(SdkNumeric(), x, inter_layers=True)
    _, i2 = back.infer(SdkNumeric(), x, inter_layers=True)
    assert list(i1) == list(i2) and all(i1[k].tobytes() == i2[k].tobytes() for k in i1)
    o1, o2 = r.infer(SdkFPOptimized(), x), back.infer(SdkFPOptimized(), x)
    assert all(o1[k].tobytes() == o2[k].tobytes() for k in o1)


# ------------------------------------------------------------------ small networks ------------

@pytest.fixture(scope="module")
def all_ops_images():
    return (ds.random_crops(64, (13, 11), seed=3).astype(np.float32) / 127.5 - 1.0)


def _all_ops(images, bits: int) -> ClientRunner:
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    run_quantization_from_np(r, images, 2, 32, config={"*": {"bias_mode": BIAS_MODES[bits]}})
    return r


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 16])
def test_every_mac_type_and_activation(all_ops_images, bits):
    r = _all_ops(all_ops_images, bits)
    rep = correct_biases(r, all_ops_images, 16)
    assert isinstance(rep, BiasCorrectionReport)
    types = {l.type for l in rep.layers}
    assert types == {"conv", "dw", "deconv", "dense"}
    acts = {l.activation for l in rep.layers}
    assert {"relu6", "leaky", "silu", "gelu", "tanh", "hardswish"} <= acts
    for l in rep.layers:
        assert l.error_after <= l.error_seen + 1e-9, l.name
    assert rep.mean("error_after") < rep.mean("error_before")
    validate_quantized_params(r.hn, r.quantized_params, "x")
    assert chip_equals_reference(r, all_ops_images[:6]) >= 28
    json.dumps(rep.to_dict())


def test_folded_normalization():
    hn, params = nets.folded_norm_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    raw = ds.random_crops(64, (12, 12), seed=5).astype(np.float32)  # raw 0..255 pixels
    run_quantization_from_np(r, raw, 2, 32)
    Q = QParams(r.hn, r.quantized_params)
    assert not Q.on_chip("normalization1")  # folded into conv1
    rep = correct_biases(r, raw)
    assert [l.name for l in rep.layers] == ["conv1", "dense1"]
    assert rep["conv1"].error_after <= rep["conv1"].error_seen + 1e-9
    # the float bias moved by what the chip's (folded) bias moved, in real units, up to the
    # rounding of both to the stored grid (half a step each)
    s_acc = Q.get("conv1", "s_acc")
    db = (r.layer_params("conv1", "fp_optimized")["bias"].astype(np.float64)
          - params[qkey("normnet", "conv1", "bias")])
    Q1 = QParams(r.hn, r.quantized_params)
    dB = (Q1.bias("conv1") - Q.bias("conv1")) * s_acc
    assert np.all(np.abs(db - dB) <= 2.0 ** int(Q1.get("conv1", "bias_exponent")) * s_acc * (1 + 1e-6))
    assert chip_equals_reference(r, raw[:6]) >= 4


def test_a_subset_of_layers_changes_nothing_else(all_ops_images):
    r = _all_ops(all_ops_images, 8)
    qp0, nat = r.quantized_params, r.native_params
    rep = correct_biases(r, all_ops_images, layers=["allops/conv3", "dense1"], measure_before=False)
    assert [l.name for l in rep.layers] == ["conv3", "dense1"]
    assert rep.layers[0].error_before is None and rep.mean("error_before") is None
    for k, v in r.quantized_params.items():
        layer = k.split("/")[1]
        if layer not in ("conv3", "dense1"):
            assert v is qp0[k] or np.array_equal(v, qp0[k]), k
    if r.fp_optimized_params is not None:
        for k, v in r.fp_optimized_params.items():
            if k.split("/")[1] not in ("conv3", "dense1"):
                assert np.array_equal(v, nat[k]), k
    assert "-" in rep.lines()[-1]  # no "before" figures
    assert [l.name for l in correct_biases(_all_ops(all_ops_images, 8), all_ops_images,
                                           layers="conv5").layers] == ["conv5"]


def test_errors_leave_the_runner_as_it_was(all_ops_images, monkeypatch):
    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    with pytest.raises(NotQuantizedError):
        correct_biases(r, all_ops_images)
    run_quantization_from_np(r, all_ops_images, 2, 32)
    qp0, fp0 = r.quantized_params, r.fp_optimized_params
    with pytest.raises(QuantizationConfigError, match="not on-chip MAC layers"):
        correct_biases(r, all_ops_images, layers=["avgpool1"])
    with pytest.raises(HNError, match="did you mean"):
        correct_biases(r, all_ops_images, layers=["conv33"])
    with pytest.raises(InferenceInputError):
        correct_biases(r, all_ops_images, batch_size=0)
    with pytest.raises(InferenceInputError):
        correct_biases(r, all_ops_images[:0])

    # a failure half-way (after some layers were re-derived) restores both param sets
    calls = []

    def failing_progress(done, total, name):
        calls.append(name)
        if done == 3:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        correct_biases(r, all_ops_images, progress=failing_progress)
    assert len(calls) == 3
    assert r.quantized_params is qp0 and r.fp_optimized_params is fp0

    # a layer whose re-derivation fails keeps its bias; the others are corrected
    from emulator.quantization import derivation

    real = derivation.rederive_layer

    def refuse_conv3(runner, name, **kw):
        if name == "conv3":
            raise AccumulatorOverflowError("conv3", 1 << 47, 48)
        return real(runner, name, **kw)

    monkeypatch.setattr(derivation, "rederive_layer", refuse_conv3)
    rep = correct_biases(r, all_ops_images)
    assert rep["conv3"].choice == "kept" and rep["conv3"].error_after == rep["conv3"].error_seen
    Q0, Q1 = QParams(r.hn, qp0), QParams(r.hn, r.quantized_params)
    assert np.array_equal(Q0.bias("conv3"), Q1.bias("conv3"))
    assert np.array_equal(r.layer_params("conv3", "fp_optimized")["bias"], r.layer_params("conv3")["bias"])
    assert any(l.choice != "kept" for l in rep.layers)
    validate_quantized_params(r.hn, r.quantized_params, "x")
