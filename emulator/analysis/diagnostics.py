"""What is wrong with a noisy layer, and the model-script lines that would fix it.

`diagnose(...)` reads a layer's float and quantized outputs, its tensor's grid and its
configuration, and measures what the seed's section 5 looks at on its Figure 3:
  dynamic range    the float values' range against the range the codes cover, and how much of
                   the float values fall outside it (saturation)
  long tail        the full range against the range of the bulk (0.1st..99.9th percentile):
                   a few outliers stretching the grid
  channel spread   per-channel ranges (max - min over images and positions): the widest channel
                   against the median one, and how many codes a median channel gets
  zero point       where the zero point sits in the code range, and the error's bias (mean
                   error) overall and in the worst channel, in LSBs
`suggest(...)` turns the findings, worst cause first, into advice and model-script lines
(docs/model-script.md): the lines fixing the causes found, then a 16-bit precision line, the
fallback that fixes any layer at a cost (commented out when a cause was found).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# a finding triggers when its measure crosses these (documented in docs/analysis.md)
SATURATION_PCT = 0.1        # % of float values outside the codes' range
TAIL_RATIO = 4.0            # full range / bulk range
BULK_PCT = (0.1, 99.9)      # the bulk of the values: between these percentiles
CHANNEL_SPREAD = 16.0       # widest live channel / median live channel
BIAS_RMSE_SHARE = 0.5       # |mean error| / rmse
FEW_CODES = 16.0            # a median channel spanning fewer codes than this
OFF_CENTRE = (0.05, 0.95)   # a zero point inside the code range, not at its ends
OFF_CENTRE_BIAS_LSB = 0.25  # ... with a mean error above this


@dataclass
class Diagnostics:
    float_min: float
    float_max: float
    bulk_lo: float              # 0.1st percentile of the float values (BULK_PCT)
    bulk_hi: float              # 99.9th percentile
    range_lo: float             # the codes' range: (0 - z) * s
    range_hi: float             # (2^b - 1 - z) * s
    scale: float
    zero_point: int
    bits: int
    saturated_pct: float        # % of float values beyond the codes' range by more than s/2
    tail_ratio: float           # (max - min) / (bulk_hi - bulk_lo)
    channels: int
    dead_channels: int          # channels whose float output never changes
    channel_spread: float       # widest live channel range / median live channel range
    outlier_channels: list[int]  # live channels wider than CHANNEL_SPREAD x the median
    median_channel_codes: float  # codes a median channel's range spans
    zero_point_position: float  # z / (2^b - 1)
    mean_error_lsb: float       # mean(q - float) / s
    worst_channel_bias_lsb: float  # the largest |per-channel mean error| / s
    precision_mode: str
    bias_mode: str
    weight_bits: int | None     # None: the layer has no weights
    force_range_out: list | None
    activation_clipping: dict | None
    activation: str
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Suggestion:
    advice: list[str]           # what to try and why, worst cause first
    script: list[str]           # model-script lines applying the first advice (and the fallback)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_channel(a: np.ndarray) -> np.ndarray:
    """(positions, channels) float64 view of a tensor, the channels on its last axis."""
    return np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])


def diagnose(ref: np.ndarray, test: np.ndarray, tensor, config, layer, has_weights: bool,
             error_ref: np.ndarray | None = None) -> Diagnostics:
    """The findings on one layer: ref its float output (the ranges), test its quantized output
    (same shape), tensor its output TensorQ, config its LayerConfig, layer its HN Layer. The
    error (bias, off-centre) is test - error_ref when given, else test - ref: the analysis gives
    the layer's own error, (c) against its reference, so that a layer is not blamed for the
    error of the layers before it."""
    x = np.asarray(ref, np.float64).ravel()
    s, z, bits = float(tensor.scale), int(tensor.zp), int(tensor.bits)
    lo_q, hi_q = tensor.limvals
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    b_lo, b_hi = (float(v) for v in np.percentile(x, BULK_PCT)) if x.size else (0.0, 0.0)
    # beyond the codes' range by more than rounding (half a step, and float rounding of it)
    tol = 0.501 * s
    sat = float(np.mean((x < lo_q - tol) | (x > hi_q + tol)) * 100) if x.size else 0.0
    tail = (hi - lo) / (b_hi - b_lo) if b_hi > b_lo else 1.0
    base = np.asarray(ref if error_ref is None else error_ref)
    r2 = _per_channel(ref)
    ranges = r2.max(axis=0) - r2.min(axis=0)
    ch_bias = (_per_channel(test) - _per_channel(base)).mean(axis=0)
    live = ranges[ranges > 0]
    median = float(np.median(live)) if live.size else 0.0
    spread = float(live.max() / median) if median > 0 else 1.0
    outliers = [int(c) for c in np.flatnonzero(ranges > CHANNEL_SPREAD * median)] if median > 0 else []
    err = np.asarray(test, np.float64) - base.astype(np.float64)
    d = Diagnostics(
        float_min=lo, float_max=hi, bulk_lo=b_lo, bulk_hi=b_hi, range_lo=float(lo_q),
        range_hi=float(hi_q), scale=s, zero_point=z, bits=bits, saturated_pct=sat,
        tail_ratio=float(tail), channels=int(ranges.size), dead_channels=int((ranges == 0).sum()),
        channel_spread=spread, outlier_channels=outliers, median_channel_codes=median / s,
        zero_point_position=z / float((1 << bits) - 1),
        mean_error_lsb=float(err.mean() / s) if err.size else 0.0,
        worst_channel_bias_lsb=float(np.abs(ch_bias).max() / s) if ch_bias.size else 0.0,
        precision_mode=str(config.precision_mode), bias_mode=str(config.bias_mode),
        weight_bits=int(config.w_bits) if has_weights else None,
        force_range_out=list(config.force_range_out) if config.force_range_out else None,
        activation_clipping=dict(config.activation_clipping) if config.activation_clipping else None,
        activation=str(layer.params.get("activation", "linear")))
    rms = float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0
    if has_weights and d.weight_bits is not None and d.weight_bits < 8:
        d.findings.append("low_weight_bits")
    if sat > SATURATION_PCT:
        d.findings.append("saturation")
    if tail > TAIL_RATIO and sat <= SATURATION_PCT:
        d.findings.append("long_tail")
    if spread > CHANNEL_SPREAD or (d.median_channel_codes < FEW_CODES and live.size > 1):
        d.findings.append("channel_spread")
    if rms > 0 and abs(err.mean()) > BIAS_RMSE_SHARE * rms:
        d.findings.append("biased")
    elif OFF_CENTRE[0] < d.zero_point_position < OFF_CENTRE[1] and abs(d.mean_error_lsb) > OFF_CENTRE_BIAS_LSB:
        d.findings.append("off_centre")
    return d


def _nice(v: float, up: bool) -> float:
    """v rounded outward to 3 significant digits (a readable forced range that still covers v)."""
    if v == 0:
        return 0.0
    e = 10.0 ** (np.floor(np.log10(abs(v))) - 2)
    return float((np.ceil if up else np.floor)(v / e) * e)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


MARGINS = (1.5, 2, 3, 4, 8, 16, 32, 64)


def _margin(d: Diagnostics) -> float | None:
    """The smallest usual range_margin whose range holds the analysed values (None: over 64)."""
    need = max(d.float_max / d.range_hi if d.range_hi > 0 and d.float_max > 0 else 1.0,
               d.float_min / d.range_lo if d.range_lo < 0 and d.float_min < 0 else 1.0)
    return next((m for m in MARGINS if m >= need), None)


def suggest(layer: str, d: Diagnostics, feeds_output: bool) -> Suggestion:
    """Advice and script lines for a flagged layer, from its diagnostics (module doc)."""
    advice: list[str] = []
    script: list[str] = []
    f = d.findings
    if "low_weight_bits" in f:
        advice.append(f"its weights are {d.weight_bits}-bit ({d.precision_mode}): give it 8-bit "
                      f"weights")
        script.append(f"quantization_param({layer}, precision_mode=a8_w8)")
    if "saturation" in f:
        lo, hi = _nice(min(d.float_min, 0.0), False), _nice(max(d.float_max, 0.0), True)
        cause = (f"the forced output range {d.force_range_out}" if d.force_range_out else
                 f"the activation clipping {d.activation_clipping}" if d.activation_clipping else
                 "the calibrated output range")
        advice.append(f"{cause} cuts {d.saturated_pct:.2g}% of its float values (codes cover "
                      f"[{_fmt(d.range_lo)}, {_fmt(d.range_hi)}], the values reach "
                      f"[{_fmt(d.float_min)}, {_fmt(d.float_max)}]): widen it to the values' "
                      f"range, or calibrate on images like the ones analysed")
        script.append(f"quantization_param({layer}, force_range_out=[{_fmt(lo)}, {_fmt(hi)}])")
        margin = _margin(d)
        if margin and not (d.force_range_out or d.activation_clipping):
            script.append(f"# or headroom beyond the calibrated range, for inputs like these: "
                          f"quantization_param({layer}, range_margin={margin:g})")
    if "long_tail" in f:
        advice.append(f"a few outliers stretch its range {d.tail_ratio:.1f}x beyond the bulk of "
                      f"its values ([{_fmt(d.bulk_lo)}, {_fmt(d.bulk_hi)}]): clip the long tail")
        script.append(f"pre_quantization_optimization(activation_clipping, layers={layer}, "
                      f"mode=percentile, clipping_values=[{BULK_PCT[0]}, {BULK_PCT[1]}])")
    if "channel_spread" in f:
        advice.append(f"its channels' ranges differ {d.channel_spread:.0f}x (a median channel "
                      f"spans {d.median_channel_codes:.1f} codes): equalize the layers around it, "
                      f"or add a batch normalization after it in the model")
        script.append("pre_quantization_optimization(equalization, policy=enabled)")
    if "biased" in f or "off_centre" in f:
        advice.append(f"its error is biased (mean {d.mean_error_lsb:+.2f} LSB, worst channel "
                      f"{d.worst_channel_bias_lsb:.2f} LSB, zero point at "
                      f"{100 * d.zero_point_position:.0f}% of the codes): correct the bias (IBC) "
                      f"with a 16-bit bias, or finetune (QFT)")
        if d.weight_bits is not None:
            script.append(f"quantization_param({layer}, bias_mode=double_scale_initialization)")
        script.append("post_quantization_optimization(bias_correction, policy=enabled)")
    if feeds_output and d.activation == "linear" and d.float_min < 0 < d.float_max \
            and abs(d.float_min) > 4 * abs(d.float_max):
        advice.append("it ends the network with a long negative range and no activation: if "
                      "this is a classification branch, include its sigmoid in the model "
                      "(it trims large negative values)")
    if d.bits < 16:
        fallback = f"quantization_param({layer}, precision_mode=a16_w16)"
        advice.append("if it stays noisy: run it with 16-bit activations and weights (twice the "
                      "memory and bandwidth on that layer)")
        # with a cause found, its fix comes first and the fallback is left for the user to enable
        script.append(f"# {fallback}" if script else fallback)
    elif not advice:
        advice.append("it is already 16-bit: look at the layers before it")
    return Suggestion(advice, script)
