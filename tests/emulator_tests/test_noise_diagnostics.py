"""diagnostics.diagnose / suggest on tensors made to show one problem each (numpy only), and
every suggested line compiles as a model script against a real network's HN."""
from __future__ import annotations

import numpy as np
import pytest

import numerics_nets as nets
from emulator.analysis.diagnostics import diagnose, suggest
from emulator.model_script import compile_model_script
from emulator.numerics.params import tensor_params
from emulator.quantization.config import LayerConfig


def _cfg(**kw) -> LayerConfig:
    base = dict(precision_mode="a8_w8", bias_mode="single_scale_decomposition", quantization_groups=1)
    base.update(kw)
    return LayerConfig(**base)


class _Layer:
    def __init__(self, activation="relu"):
        self.params = {"activation": activation}


def _grid_of(x, lo=None, hi=None, bits=8):
    return tensor_params(float(x.min()) if lo is None else lo, float(x.max()) if hi is None else hi,
                         bits)


def _quantize(x, t):
    q = np.clip(np.round(x / t.scale) + t.zp, 0, (1 << t.bits) - 1)
    return ((q - t.zp) * np.float32(t.scale)).astype(np.float32)


@pytest.fixture
def healthy(rng):
    x = np.abs(rng.normal(size=(8, 6, 6, 8))).astype(np.float32)
    t = _grid_of(x)
    return x, _quantize(x, t), t


def test_a_healthy_layer_has_no_findings(healthy):
    x, q, t = healthy
    d = diagnose(x, q, t, _cfg(), _Layer(), has_weights=True)
    assert d.findings == []
    assert d.saturated_pct == 0 and d.dead_channels == 0 and d.channels == 8
    assert d.median_channel_codes > 50 and d.zero_point == 0


def test_saturation_from_a_forced_range(healthy):
    x, _, _ = healthy
    t = _grid_of(x, 0.0, float(np.percentile(x, 50)))
    d = diagnose(x, _quantize(x, t), t, _cfg(force_range_out=[0.0, 0.5]), _Layer(), True)
    assert "saturation" in d.findings and 40 < d.saturated_pct < 60
    s = suggest("conv3", d, feeds_output=False)
    assert "forced output range [0.0, 0.5]" in s.advice[0]
    line = s.script[0]
    assert line.startswith("quantization_param(conv3, force_range_out=[0, ")
    hi = float(line.split(", ")[-1].rstrip("])"))
    assert hi >= x.max()  # the suggested range covers every value seen
    assert s.script[-1] == "# quantization_param(conv3, precision_mode=a16_w16)"


def test_saturation_of_a_calibrated_range_offers_headroom(healthy):
    """Values beyond a calibrated range (held-out inputs): force_range_out, or the smallest
    usual range_margin that holds them, as a commented alternative that compiles."""
    x, _, _ = healthy
    t = _grid_of(x, 0.0, float(x.max()) / 1.7)
    d = diagnose(x, _quantize(x, t), t, _cfg(), _Layer(), True)
    assert "saturation" in d.findings
    s = suggest("conv3", d, feeds_output=False)
    assert "the calibrated output range" in s.advice[0]
    assert s.script[1] == "# or headroom beyond the calibrated range, for inputs like these: " \
                          "quantization_param(conv3, range_margin=2)"
    hn, _ = nets.all_ops_net()
    c = compile_model_script(s.script[1].split(": ", 1)[1], hn)
    assert c.layers["conv3"] == {"range_margin": 2.0}


def test_long_tail(rng):
    x = np.abs(rng.normal(size=(16, 8, 8, 4))).astype(np.float32)
    x[0, 0, 0, 0] = 60.0  # one outlier stretches the grid
    t = _grid_of(x)
    d = diagnose(x, _quantize(x, t), t, _cfg(), _Layer(), True)
    assert "long_tail" in d.findings and d.tail_ratio > 4
    assert "clipping_values=[0.1, 99.9]" in " ".join(suggest("c", d, False).script)


def test_channel_spread(rng):
    x = np.abs(rng.normal(size=(8, 6, 6, 8))).astype(np.float32)
    x[..., 3] *= 100.0  # one channel 100x wider: the others get a few codes
    t = _grid_of(x)
    d = diagnose(x, _quantize(x, t), t, _cfg(), _Layer(), True)
    assert "channel_spread" in d.findings and d.outlier_channels == [3]
    assert d.channel_spread > 50 and d.median_channel_codes < 16
    assert "pre_quantization_optimization(equalization, policy=enabled)" in suggest("c", d, False).script


def test_bias_and_dead_channels(rng):
    x = rng.normal(size=(8, 6, 6, 8)).astype(np.float32)
    x[..., 5] = 0.0  # a dead channel
    t = _grid_of(x)
    q = _quantize(x, t) + np.float32(t.scale) * 0.8  # every value off by 0.8 LSB
    d = diagnose(x, q, t, _cfg(), _Layer("linear"), True)
    assert d.dead_channels == 1 and "biased" in d.findings
    assert d.mean_error_lsb == pytest.approx(0.8, abs=0.05)
    s = suggest("dense1", d, feeds_output=False)
    assert "quantization_param(dense1, bias_mode=double_scale_initialization)" in s.script
    assert "post_quantization_optimization(bias_correction, policy=enabled)" in s.script


def test_low_weight_bits_and_sixteen_bits(healthy):
    x, q, t = healthy
    d = diagnose(x, q, t, _cfg(precision_mode="a8_w4"), _Layer(), True)
    assert d.findings == ["low_weight_bits"] and d.weight_bits == 4
    assert suggest("c", d, False).script[0] == "quantization_param(c, precision_mode=a8_w8)"
    t16 = _grid_of(x, bits=16)
    d16 = diagnose(x, _quantize(x, t16), t16, _cfg(precision_mode="a16_w16"), _Layer(), True)
    s = suggest("c", d16, False)
    assert s.script == [] and "already 16-bit" in s.advice[0]


def test_classification_branch_without_sigmoid(rng):
    x = np.concatenate([-rng.exponential(20.0, size=(400, 1)), rng.exponential(1.0, size=(40, 1))])
    x = x.astype(np.float32)
    t = _grid_of(x)
    d = diagnose(x, _quantize(x, t), t, _cfg(), _Layer("linear"), True)
    assert any("sigmoid" in a for a in suggest("dense9", d, feeds_output=True).advice)
    assert not any("sigmoid" in a for a in suggest("dense9", d, feeds_output=False).advice)


def test_every_suggested_line_compiles():
    """The lines of every kind of suggestion are valid model-script statements for the layer."""
    hn, _ = nets.all_ops_net()
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(8, 6, 6, 8))).astype(np.float32)
    x[0, 0, 0, 0] = 60.0
    x[..., 3] *= 100.0
    t = _grid_of(x, 0.0, 1.0)
    q = _quantize(x, t) + np.float32(t.scale)
    d = diagnose(x, q, t, _cfg(precision_mode="a8_w4", force_range_out=[0.0, 1.0]), _Layer(), True)
    d.findings += ["long_tail", "biased"]
    lines = suggest("conv1", d, feeds_output=True).script
    assert len([l for l in lines if not l.startswith("#")]) >= 5
    text = "\n".join(lines) + "\n" + lines[-1].lstrip("# ") + "\n"
    c = compile_model_script(text, hn, source="suggested.alls")
    assert c.layers["conv1"]["precision_mode"] == "a16_w16"  # the last line wins
    assert c.equalization and c.bias_correction
