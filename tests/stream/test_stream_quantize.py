"""quantize / dequantize: the C arithmetic against the reference and against hand-computed
values (limvals, exact .5 ties, NaN, infinities, saturation, per-feature QPs)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import reference_stream as ref
from hailort_py import (FormatType, HailoInvalidArgumentError, QuantInfo, dequantize,
                        quantize)

float32_arrays = hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=17),
                            elements=st.floats(width=32, allow_nan=True, allow_infinity=True))


@st.composite
def quant_infos(draw, dtype=np.uint8):
    top = np.iinfo(dtype).max
    if draw(st.booleans()) and draw(st.booleans()):
        return QuantInfo(0, 1, draw(st.floats(-10, 10)), draw(st.floats(0, 300)))  # identity
    zp = draw(st.one_of(st.integers(0, top).map(float), st.floats(0, top)))
    scale = draw(st.one_of(st.integers(-16, 4).map(lambda k: 2.0 ** k),
                           st.floats(1e-6, 100, allow_subnormal=False)))
    lo = float((np.float32(0) - np.float32(zp)) * np.float32(scale))
    hi = float((np.float32(top) - np.float32(zp)) * np.float32(scale))
    shrink = draw(st.sampled_from([1.0, 0.5, 1.5]))
    return QuantInfo(zp, scale, lo * shrink, hi * shrink)


@settings(max_examples=200, deadline=None)
@given(x=float32_arrays, data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16]))
def test_quantize_matches_reference(x, data, dtype):
    qp = data.draw(quant_infos(dtype))
    got = quantize(x, qp, dtype)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, ref.quantize(x, qp, dtype))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16]))
def test_quantize_ties_and_limits(data, dtype):
    """Values on exact .5 ties of the code grid, and at / beyond the limvals."""
    qp = data.draw(quant_infos(dtype))
    top = np.iinfo(dtype).max
    codes = np.arange(-3, top + 4, max(1, top // 200), dtype=np.float32)
    grid = np.concatenate([codes, codes + np.float32(0.5), codes - np.float32(0.5)])
    x = ((grid - np.float32(qp.qp_zp)) * np.float32(qp.qp_scale)).astype(np.float32)
    x = np.concatenate([x, np.float32([qp.limvals_min, qp.limvals_max, np.nextafter(
        np.float32(qp.limvals_max), np.float32(np.inf)), np.nan, np.inf, -np.inf, -0.0])])
    np.testing.assert_array_equal(quantize(x, qp, dtype), ref.quantize(x, qp, dtype))


def test_quantize_by_hand():
    identity = QuantInfo(0, 1, -1000, 1000)
    x = np.float32([0.5, 1.5, 2.5, 3.5, 254.5, 255.5, 300, -0.5, -7, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(quantize(x, identity, np.uint8),
                                  [0, 2, 2, 4, 254, 255, 255, 0, 0, 0, 255, 0])
    qp = QuantInfo(128, 0.5, -10, 20)  # code = clip(x, -10, 20) / 0.5 + 128
    x = np.float32([0, 0.25, 0.75, -10, -11, 20, 21, np.nan, 63.5])
    np.testing.assert_array_equal(quantize(x, qp, np.uint8),
                                  [128, 128, 130, 108, 108, 168, 168, 108, 168])
    np.testing.assert_array_equal(quantize(np.float32([70000, 1.5]), identity, FormatType.UINT16),
                                  [65535, 2])


@pytest.mark.parametrize("scale", [0.1, 0.3, 1 / 255, 0.0175, 3.3])
def test_quantize_divides_rather_than_multiplies(scale):
    """Near .5 ties, x / scale and x * (1 / scale) round differently; the doc says divide."""
    scale = np.float32(scale)
    ties = ((np.arange(0, 65000, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.float32)
    xs = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)),
                         np.nextafter(ties, np.float32(-np.inf))])
    differs = xs[np.rint(xs / scale) != np.rint(xs * (np.float32(1) / scale))]
    assert differs.size > 100, "test needs values where the two roundings differ"
    qp = QuantInfo(0, scale, 0, 1e6)
    np.testing.assert_array_equal(quantize(differs, qp, np.uint16),
                                  np.minimum(np.rint(differs / scale), 65535).astype(np.uint16))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16]))
def test_dequantize_matches_reference(data, dtype):
    q = data.draw(hnp.arrays(dtype, hnp.array_shapes(max_dims=3, max_side=13)))
    qp = data.draw(quant_infos(dtype))
    got = dequantize(q, qp)
    assert got.dtype == np.float32
    assert got.tobytes() == ref.dequantize(q, qp).tobytes()


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_dequantize_per_feature_along_last_axis(data):
    q = data.draw(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9)))
    qps = [data.draw(quant_infos()) for _ in range(q.shape[-1])]
    assert dequantize(q, qps).tobytes() == ref.dequantize_per_feature(q, qps).tobytes()


def test_helper_argument_errors():
    qp = QuantInfo(0, 1, 0, 255)
    with pytest.raises(HailoInvalidArgumentError, match="uint8 or uint16"):
        quantize(np.zeros(3, np.float32), qp, np.float32)
    with pytest.raises(HailoInvalidArgumentError, match="UINT8 or UINT16"):
        quantize(np.zeros(3, np.float32), qp, FormatType.FLOAT32)
    with pytest.raises(HailoInvalidArgumentError, match="per-feature"):
        dequantize(np.zeros((2, 3), np.uint8), [qp, qp])
    with pytest.raises(HailoInvalidArgumentError, match="uint8 or uint16"):
        dequantize(np.zeros(3, np.int32), qp)
    with pytest.raises(HailoInvalidArgumentError):
        quantize(np.zeros(3, np.float32), (0, 1, 0, 255))
    bad = QuantInfo(0, 0, 0, 1)
    with pytest.raises(HailoInvalidArgumentError):
        quantize(np.zeros(3, np.float32), bad)
    assert quantize(np.zeros((0, 4), np.float32), qp).shape == (0, 4)
    # non-float32 or non-contiguous input is converted, the result is the same
    x = np.linspace(-3, 300, 40)
    np.testing.assert_array_equal(quantize(x[::2], qp), quantize(np.float32(x[::2]), qp))
