"""Bit-exactness of every integer kernel of emulator/numerics against the independent reference
(tests/numerics_reference.py, written from docs/numerics.md), on edge cases: saturation, zero
points at 0 and 2^b - 1, 16-bit, odd sizes, SAME padding at borders, strides, dilations, groups.
Random weights are fine here: these tests are about arithmetic, not accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numerics_reference as ref
from emulator.numerics import activations as A, kernels as K, params as P
from emulator.quant_errors import LimvalsOutSmallRangeError, UnsupportedRequiredSlopeError


def I(t):
    """A kernel result (tensor, float64 or int64 holding exact integers) as int64 numpy."""
    a = np.asarray(t)
    if a.dtype.kind == "f":
        assert np.array_equal(a, np.round(a)), "non-integer value in an exact result"
    return a.astype(np.int64)


def codes(rng, shape, bits, lo=0, hi=None):
    hi = (1 << bits) - 1 if hi is None else hi
    return rng.integers(lo, hi + 1, shape).astype(np.uint8 if bits == 8 else np.uint16)


def weights(rng, shape, bits):
    lim = (1 << (bits - 1)) - 1
    return rng.integers(-lim, lim + 1, shape).astype(np.int64)


# ------------------------------------------------------------------ derivations -------------

@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("lo,hi", [(0.0, 6.0), (-1.0, 1.0), (-3.2, -0.5), (0.7, 2.5), (-1e-3, 40.0),
                                   (-255.0, 0.0), (0.0, 1e-5)])
def test_tensor_params_match_reference(lo, hi, bits):
    t = P.tensor_params(lo, hi, bits)
    s, z = ref.ref_tensor_params(lo, hi, bits)
    assert (t.scale, t.zp) == (s, z)
    assert t.limvals == ref.ref_limvals(s, z, bits)
    # the real zero is exactly representable; the range is covered up to half a step
    assert 0 <= t.zp <= (1 << bits) - 1
    assert t.limvals[0] <= min(lo, 0) + t.scale / 2 and t.limvals[1] >= max(hi, 0) - t.scale / 2


def test_tensor_params_zero_point_edges():
    assert P.tensor_params(0.0, 5.0, 8).zp == 0          # ReLU output: z = 0
    assert P.tensor_params(-5.0, 0.0, 8).zp == 255       # all-negative: z = 2^b - 1
    assert P.tensor_params(-5.0, 0.0, 16).zp == 65535


@pytest.mark.parametrize("lo,hi", [(0.0, 0.0), (0.0, 5e-7), (-1e-7, 1e-7)])
def test_degenerate_range_is_limvals_out_small_range(lo, hi):
    with pytest.raises(LimvalsOutSmallRangeError, match="conv37.*limvals out small range|limvals out small range.*conv37"):
        P.tensor_params(lo, hi, 8, layer="conv37")


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0 ** -31.9, max_value=250.0, allow_nan=False), st.sampled_from([8, 16]))
def test_rescale_derivation_matches_reference(m, bits):
    M, r = P.derive_rescale(m, bits)
    assert (int(M[0]), int(r[0])) == ref.ref_rescale_params(m, bits)
    assert 1 << 14 <= M[0] < 1 << 15
    assert abs(M[0] * 2.0 ** -r[0] / m - 1) <= 2.0 ** -15


def test_unsupported_slope_names_layer_and_shifts():
    with pytest.raises(UnsupportedRequiredSlopeError) as e:
        P.derive_rescale([0.5, 300.0], 8, layer="conv3")
    msg = str(e.value)
    assert "conv3" in msg and "desired shift is 6" in msg and "available shift is 7..46" in msg
    assert "real" in msg and "random" in msg
    assert e.value.desired_shift == 6 and e.value.available == (7, 46)
    with pytest.raises(UnsupportedRequiredSlopeError, match="desired shift is 47"):
        P.derive_rescale(2.0 ** -33, 8, layer="conv9")
    # a 16-bit destination accepts an 8 -> 16 bit re-grid (m ~ 257)
    M, r = P.derive_rescale(257.0, 16)
    assert r[0] == 6 and M[0] == 257 * 64


def test_signed_rescale_matches_reference():
    for m in [0.0, 0.3, -0.3, -1.7, 1e-12, -2.0 ** -40, 0.01]:
        M, r = P.derive_signed_rescale(m, 8)
        assert (int(M[0]), int(r[0])) == ref.ref_signed_rescale(m, 8)


@pytest.mark.parametrize("bits", [4, 8, 16])
@pytest.mark.parametrize("groups", [1, 2, 3, 4])
def test_weight_quantization_matches_reference(bits, groups, rng):
    w = rng.normal(size=(3 * 3 * 5, 10)) * rng.uniform(0.01, 3, size=10)
    w[:, 9] = 0.0  # an all-zero channel
    q, s = P.quantize_weights(w, bits, groups, zero_group_scale=np.full(groups, 0.25))
    qr, sr = ref.ref_quantize_weights(w, bits, groups, zero_scale=np.full(groups, 0.25))
    assert np.array_equal(q, qr) and np.array_equal(s, sr)
    lim = (1 << (bits - 1)) - 1
    assert q.max() <= lim and q.min() >= -lim
    assert np.abs(q).max() == lim  # the max of each non-empty group maps to the limit
    # group boundaries floor(i * C / g)
    assert list(P.group_bounds(10, groups)) == [i * 10 // groups for i in range(groups + 1)]


def test_all_zero_group_gets_fallback_scale():
    w = np.zeros((4, 4))
    w[:, :2] = 1.0
    q, s = P.quantize_weights(w, 8, 2, zero_group_scale=np.array([9.0, 0.125]))
    assert s[1] == 0.125 and np.all(q[:, 2:] == 0) and s[0] == 1.0 / 127


@pytest.mark.parametrize("k", [8, 16])
def test_bias_decomposition_matches_reference(k, rng):
    for scale in [0.5, 50.0, 1e4, 3e7]:
        b = rng.normal(size=13) * scale
        mant, e = P.decompose_bias(b, k)
        mr, er = ref.ref_bias(b, k)
        assert e == er and np.array_equal(mant, mr)
        assert np.abs(mant).max() <= (1 << (k - 1)) - 1
        assert e == 0 or np.abs(np.rint(b / 2.0 ** (e - 1))).max() > (1 << (k - 1)) - 1  # smallest e


def test_bias_16_bit_is_finer_than_8_bit(rng):
    b = rng.normal(size=64) * 3e5
    m8, e8 = P.decompose_bias(b, 8)
    m16, e16 = P.decompose_bias(b, 16)
    err8 = np.abs(m8 * 2.0 ** e8 - b).max()
    err16 = np.abs(m16 * 2.0 ** e16 - b).max()
    assert err16 < err8 / 100


def test_ew_multipliers_match_reference():
    for scales, bits in [([0.02, 0.013], 8), ([0.5, 0.5], 8), ([1e-4, 0.3], 16), ([0.3, 1e-9], 8)]:
        A, s_acc = P.ew_multipliers(scales, bits)
        Ar, sr = ref.ref_ew_mults(scales, bits == 16)
        assert list(A) == Ar and s_acc == sr
        assert max(A) == 1 << P.EW_EXTRA_BITS[bits]


# ------------------------------------------------------------------ LUTs ----------------------

@pytest.mark.parametrize("act", A.LUT_ACTS)
def test_lut_matches_reference(act):
    pre = P.tensor_params(-7.3, 5.1, 16, layer="x", tensor="pre")
    out = P.tensor_params(-0.3, 4.0, 8)
    lut = A.build_lut(act, pre.scale, pre.zp, out.scale, out.zp, 8)
    ref_lut = ref.ref_lut(act, pre.scale, pre.zp, out.scale, out.zp, 8)
    assert lut.dtype == np.uint8 and np.array_equal(lut.astype(np.int64), ref_lut)


def test_lut_matches_float_ops_definitions():
    """The float64 functions are the float engineer's float32 definitions (Keras 3)."""
    import tensorflow as tf

    from emulator.float_ops import activation_fn

    x = np.linspace(-8, 8, 2001)
    for act in A.LUT_ACTS:
        f32 = activation_fn(act, tf.constant(x, tf.float32)).numpy().astype(np.float64)
        f64 = A.act_float64(act, x)
        assert np.allclose(f32, f64, rtol=2e-6, atol=2e-6 * max(1.0, np.abs(f64).max() * 1e-3)), act


def test_lut_16_bit_output_and_saturation():
    pre = P.tensor_params(-20, 20, 16)
    out = P.tensor_params(0, 2.0, 16)  # exp saturates above log(2)
    lut = A.build_lut("exp", pre.scale, pre.zp, out.scale, out.zp, 16)
    assert lut.dtype == np.uint16 and lut[-1] == 65535 and lut[0] == out.zp
    assert np.array_equal(lut.astype(np.int64), ref.ref_lut("exp", pre.scale, pre.zp, out.scale, out.zp, 16))


# ------------------------------------------------------------------ activation unit -----------

def test_rescale_ties_round_half_up_and_r0():
    acc = np.array([-3, -2, -1, 0, 1, 2, 3, 5, -5], np.int64)
    # M * 2^-r = 1/2: ties everywhere, rounded towards +inf
    for a in (acc, acc.astype(np.float64)):  # int64 and float64 accumulators
        y = I(K.rescale(a, 16384, 15))
        assert list(y) == [-1, -1, 0, 0, 1, 1, 2, 3, -2]
        assert np.array_equal(y, ref.ref_shift_round(acc, 16384, 15))
        assert list(I(K.rescale(a, 3, 0))) == list(acc * 3)


@pytest.mark.parametrize("bits", [8, 16])
def test_requantize_saturation_and_per_channel(bits, rng):
    C = 7
    acc = rng.integers(-(1 << 40), 1 << 40, size=(3, 5, 5, C)).astype(np.int64)
    acc[0, 0, 0] = (1 << 46) - 1
    acc[0, 0, 1] = -(1 << 46)
    M = rng.integers(1 << 14, 1 << 15, C)
    r = rng.integers(P.SHIFT_MIN[bits], 47, C)
    r[0] = 46
    zp = 3 if bits == 8 else 40000
    qm = (1 << bits) - 1
    lo = np.full(C, zp)
    hi = np.full(C, qm)
    hi[2] = zp + 17  # relu6-like per-channel clip
    out = np.asarray(K.requantize(acc, M, r, zp, lo, hi, bits))
    exp = ref.ref_clamp_act(acc, M, r, zp, lo, hi)
    assert out.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert np.array_equal(out.astype(np.int64), exp)
    # the float64 representation (|acc| < 2^38) gives the same codes
    small = acc >> 9
    assert np.array_equal(np.asarray(K.requantize(small.astype(np.float64), M, r, zp, lo, hi, bits)),
                          np.asarray(K.requantize(small, M, r, zp, lo, hi, bits)))
    assert out[..., 2].max() <= zp + 17 and (out == qm).any() and (out == zp).any()


def test_two_slope_negative_and_zero_alpha(rng):
    C = 6
    acc = rng.integers(-(1 << 20), 1 << 20, size=(2, 4, 4, C))
    M = np.full(C, 20000)
    r = np.full(C, 20)
    alphas = np.array([0.25, -0.5, 0.0, 1.5, 1e-12, 0.01])
    Mn, rn = P.derive_signed_rescale(alphas * 20000 * 2.0 ** -20, 8)
    out = np.asarray(K.requantize_two_slope(acc.astype(np.float64), M, r, Mn, rn, 100, 8))
    assert np.array_equal(out, np.asarray(K.requantize_two_slope(acc, M, r, Mn, rn, 100, 8)))
    assert np.array_equal(out.astype(np.int64), ref.ref_two_slope(acc, M, r, Mn, rn, 100, 8))
    neg = acc[..., 2] < 0
    assert np.all(out[..., 2][neg] == 100)  # alpha = 0: negative side is the zero point


def test_lut_activation_kernel(rng):
    lut = rng.integers(0, 256, 65536).astype(np.uint8)
    acc = rng.integers(-(1 << 30), 1 << 30, size=(4, 9))
    M, r = np.full(9, 30001), np.arange(9) + 12
    out = np.asarray(K.lut_activation(acc, M, r, 32768, lut))
    assert np.array_equal(out, np.asarray(K.lut_activation(acc.astype(np.float64), M, r, 32768, lut)))
    assert np.array_equal(out.astype(np.int64), ref.ref_lut_act(acc, M, r, 32768, lut))
    pre = np.clip(ref.ref_shift_round(acc, M, r) + 32768, 0, 65535)
    assert (pre == 0).any() and (pre == 65535).any()  # the case reaches both ends of the table


# ------------------------------------------------------------------ MAC layers ----------------

CONV_CASES = [
    # (in_hw, cin, k, cout, strides, dil, padding, groups, bits_in, bits_w, zp)
    ((7, 9), 3, (3, 3), 5, (1, 1), (1, 1), "SAME", 1, 8, 8, 0),
    ((7, 9), 3, (3, 3), 5, (2, 2), (1, 1), "SAME", 1, 8, 8, 255),
    ((8, 8), 4, (3, 3), 6, (2, 2), (1, 1), "SAME_TENSORFLOW", 1, 8, 8, 127),
    ((10, 11), 4, (5, 4), 4, (1, 2), (1, 1), "SAME", 1, 8, 4, 13),
    ((11, 11), 6, (3, 3), 6, (1, 1), (2, 2), "SAME", 3, 8, 8, 200),
    ((9, 7), 8, (1, 1), 16, (1, 1), (1, 1), "VALID", 1, 16, 16, 30000),
    ((6, 6), 5, (3, 3), 3, (1, 1), (1, 1), "SAME", 1, 16, 8, 0),
    ((5, 5), 2, (5, 5), 3, (1, 1), (1, 1), "VALID", 1, 8, 8, 255),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_matches_reference(case, rng):
    in_hw, cin, k, cout, s, d, padding, groups, bi, bw, zp = case
    q = codes(rng, (2, *in_hw, cin), bi)
    q[0, 0, :, :] = (1 << bi) - 1  # saturated border row
    w = weights(rng, (*k, cin // groups, cout), bw)
    bias = rng.integers(-5000, 5000, cout)
    pads = K.spatial_pads(in_hw, k, s, d, padding)
    acc = I(K.conv2d_acc(q, zp, bi, w, bias, s, d, pads, groups))
    exp = ref.ref_conv(q.astype(np.int64) - zp, w, s, d, pads, groups) + bias
    assert np.array_equal(acc, exp)


def test_conv_float32_and_float64_paths_at_the_bound(rng):
    """Weights whose sum of |q_w| makes the bound exactly 2^24 - 255 (float32 path) and 2^24 + 255
    (float64 path): both exact, both equal to the reference."""
    cin = 129 * 4
    for target in [(1 << 24) - 255, (1 << 24) + 255]:
        n_terms = 9 * cin
        total = target // 255
        w = np.full(n_terms, total // n_terms, np.int64)
        w[: total - w.sum()] += 1
        w = w * rng.choice([-1, 1], n_terms)
        w = w.reshape(3, 3, cin, 1)
        assert 255 * np.abs(w).sum() == total * 255
        q = rng.choice(np.array([0, 255], np.uint8), size=(1, 4, 4, cin))
        acc = I(K.conv2d_acc(q, 0, 8, w, np.zeros(1, np.int64)))
        assert np.array_equal(acc, ref.ref_conv(q.astype(np.int64), w))
    import tensorflow as tf

    assert K.exact_dtype((1 << 24) - 1) == tf.float32 and K.exact_dtype(1 << 24) == tf.float64
    assert K.exact_dtype(1 << 53) is None


def test_limb_split_path_is_exact(rng):
    """Beyond 2^53 the input is split into 8-bit limbs; exercised by declaring a huge x_max."""
    x = rng.integers(-65535, 65536, size=(3, 40)).astype(np.int64)
    w = rng.integers(-32767, 32768, size=(40, 5)).astype(np.int64)
    import tensorflow as tf

    calls = []

    def op(a, b):
        calls.append(a.dtype)
        return tf.matmul(a, b)

    y = I(K.exact_linear(op, x, 1 << 40, w, int(np.abs(w).sum(0).max())))
    assert np.array_equal(y, x @ w) and len(calls) == 2


@pytest.mark.parametrize("mult,s,padding,zp,bits", [(1, (1, 1), "SAME", 0, 8), (2, (2, 2), "SAME", 255, 8),
                                                     (1, (2, 1), "SAME_TENSORFLOW", 77, 8),
                                                     (1, (1, 1), "VALID", 12345, 16)])
def test_depthwise_matches_reference(mult, s, padding, zp, bits, rng):
    q = codes(rng, (2, 9, 8, 5), bits)
    w = weights(rng, (3, 3, 5, mult), 8)
    bias = rng.integers(-300, 300, 5 * mult)
    pads = K.spatial_pads((9, 8), (3, 3), s, (1, 1), padding)
    acc = I(K.depthwise_acc(q, zp, bits, w, bias, s, (1, 1), pads))
    exp = ref.ref_depthwise(q.astype(np.int64) - zp, w, s, (1, 1), pads) + bias
    assert np.array_equal(acc, exp)


@pytest.mark.parametrize("bits_in,bits_w", [(8, 8), (8, 4), (16, 16)])
def test_dense_matches_reference(bits_in, bits_w, rng):
    q = codes(rng, (4, 3, 3, 17), bits_in)
    w = weights(rng, (3 * 3 * 17, 11), bits_w)
    bias = rng.integers(-99, 99, 11)
    acc = I(K.dense_acc(q, 5, bits_in, w, bias))
    assert np.array_equal(acc, ref.ref_dense(q.astype(np.int64) - 5, w) + bias)


@pytest.mark.parametrize("padding,s,k", [("VALID", (2, 2), (3, 3)), ("SAME", (2, 2), (3, 3)),
                                         ("SAME_TENSORFLOW", (2, 2), (4, 4)), ("VALID", (1, 2), (2, 3))])
def test_deconv_matches_reference(padding, s, k, rng):
    q = codes(rng, (2, 5, 4, 3), 8)
    w = weights(rng, (*k, 3, 4), 8)
    ih, iw = 5, 4
    if padding == "VALID":
        out_hw = ((ih - 1) * s[0] + k[0], (iw - 1) * s[1] + k[1])
    else:
        out_hw = (ih * s[0], iw * s[1])
    acc = I(K.deconv_acc(q, 200, 8, w, np.zeros(4, np.int64), (ih, iw), s, out_hw, padding))
    assert np.array_equal(acc, ref.ref_deconv(q.astype(np.int64) - 200, w, s, out_hw, padding))


# ------------------------------------------------------------------ other layers --------------

@pytest.mark.parametrize("bits", [8, 16])
def test_ew_ops_match_reference(bits, rng):
    qa = codes(rng, (2, 5, 7, 3), bits)
    qb = codes(rng, (2, 1, 1, 3), bits)  # broadcast (SE-block style)
    A_, s_acc = P.ew_multipliers([0.03, 0.011], bits)
    za, zb = (0, (1 << bits) - 1)
    acc = I(K.ew_add_acc(qa, za, bits, A_[0], qb, zb, bits, A_[1]))
    exp = int(A_[0]) * (qa.astype(np.int64) - za) + int(A_[1]) * (qb.astype(np.int64) - zb)
    assert np.array_equal(acc, exp)
    acc = I(K.ew_add_acc(qa, za, bits, A_[0], qb, zb, bits, A_[1], subtract=True))
    assert np.array_equal(acc, int(A_[0]) * (qa.astype(np.int64) - za) - int(A_[1]) * (qb.astype(np.int64) - zb))
    acc = I(K.ew_mult_acc(qa, za, qb, zb))
    assert np.array_equal(acc, (qa.astype(np.int64) - za) * (qb.astype(np.int64) - zb))


@pytest.mark.parametrize("k,s,padding", [((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"),
                                         ((3, 3), (1, 1), "SAME_TENSORFLOW"), ((3, 2), (2, 1), "SAME")])
def test_maxpool_padding_never_wins(k, s, padding, rng):
    q = codes(rng, (2, 7, 9, 4), 8, lo=0, hi=3)  # many zeros: padding would tie, never exceed
    pads = K.spatial_pads((7, 9), k, s, (1, 1), padding)
    out = np.asarray(K.maxpool(q, k, s, pads))
    assert out.dtype == np.uint8 and np.array_equal(out.astype(np.int64), ref.ref_maxpool(q, k, s, pads))
    q16 = codes(rng, (1, 7, 9, 2), 16)
    out16 = np.asarray(K.maxpool(q16, k, s, pads))
    assert out16.dtype == np.uint16 and np.array_equal(out16.astype(np.int64), ref.ref_maxpool(q16, k, s, pads))


@pytest.mark.parametrize("k,s,padding,include", [((3, 3), (2, 2), "SAME", False), ((3, 3), (1, 1), "SAME_TENSORFLOW", False),
                                                 ((2, 2), (2, 2), "VALID", False), ((3, 3), (2, 2), "SAME", True),
                                                 ((3, 2), (2, 1), "SAME", False), ((2, 3), (1, 2), "VALID", False)])
def test_avgpool_counts_and_sums(k, s, padding, include, rng):
    q = codes(rng, (2, 7, 8, 3), 8)
    pads = K.spatial_pads((7, 8), k, s, (1, 1), padding)
    acc = I(K.avgpool_acc(q, 9, 8, k, s, pads))
    assert np.array_equal(acc, ref.ref_window_sum(q.astype(np.int64) - 9, k, s, pads))
    counts = K.pool_counts((7, 8), k, s, pads, include)
    assert np.array_equal(counts, ref.ref_window_counts((7, 8), k, s, pads, include))
    vals = np.unique(counts)
    s_in, s_out = 0.02, 0.015
    M, r = P.derive_rescale(s_in / (vals * s_out), 8)
    Mmap = M[np.searchsorted(vals, counts)]
    rmap = r[np.searchsorted(vals, counts)]
    out = np.asarray(K.requantize_per_position(acc.astype(np.float64), Mmap, rmap, 4, 8))
    Mmap, rmap = Mmap[None, :, :, None], rmap[None, :, :, None]
    exp = np.clip(ref.ref_shift_round(acc, Mmap, rmap) + 4, 0, 255)
    assert np.array_equal(out.astype(np.int64), exp)


def test_global_sum_and_reductions(rng):
    q = codes(rng, (3, 5, 6, 4), 16)
    assert np.array_equal(I(K.global_sum_acc(q, 100, 16)), (q.astype(np.int64) - 100).sum(axis=(1, 2)))
    assert np.array_equal(I(K.reduce_sum_acc(q, 7, 16, (3,))), (q.astype(np.int64) - 7).sum(axis=3, keepdims=True))
    assert np.array_equal(np.asarray(K.reduce_max(q, (1, 2))), q.max(axis=(1, 2), keepdims=True))


@pytest.mark.parametrize("n_in,n_out", [(4, 8), (5, 3), (7, 7), (3, 10), (1, 4), (6, 1)])
@pytest.mark.parametrize("align,half", [(False, True), (True, False), (False, False)])
def test_resize_matches_reference(n_in, n_out, align, half, rng):
    q = codes(rng, (2, n_in, n_in + 1, 3), 8)
    out_hw = (n_out, n_out + 2)
    assert list(K.nearest_indices(n_in, n_out, align, half)) == ref.ref_nearest_index(n_in, n_out, align, half)
    assert np.array_equal(np.asarray(K.resize_nearest(q, out_hw, align, half)),
                          q[:, ref.ref_nearest_index(n_in, n_out, align, half)][
                              :, :, ref.ref_nearest_index(n_in + 1, n_out + 2, align, half)])
    acc = I(K.resize_bilinear_acc(q, 128, out_hw, align, half))
    assert np.array_equal(acc, ref.ref_bilinear_acc(q.astype(np.int64) - 128, out_hw, align, half))
    # the output keeps the input grid: m = 2^-16 -> M = 2^14, r = 30
    M, r = P.derive_rescale(2.0 ** -16, 8)
    out = np.asarray(K.requantize(acc.astype(np.float64), M, r, 128, 0, 255, 8))
    assert out.min() >= q.min() and out.max() <= q.max()


def test_nearest_indices_equal_tensorflow():
    import tensorflow as tf

    for n_in, n_out in [(4, 8), (5, 3), (3, 10), (7, 5), (6, 13)]:
        for align, half in [(False, True), (True, False), (False, False)]:
            x = np.arange(n_in, dtype=np.float32).reshape(1, n_in, 1, 1)
            y = tf.raw_ops.ResizeNearestNeighbor(images=x, size=[n_out, 1], align_corners=align,
                                                 half_pixel_centers=half).numpy().ravel()
            assert list(y.astype(int)) == list(K.nearest_indices(n_in, n_out, align, half))


def test_bilinear_close_to_tensorflow(rng):
    """The 2^-8 grid moves a bilinear result by at most 2^-9 of the local range + the final
    rounding: within one code of TensorFlow's float bilinear on the same codes."""
    import tensorflow as tf

    q = codes(rng, (1, 6, 7, 2), 8)
    for align, half in [(False, True), (True, False)]:
        y = tf.raw_ops.ResizeBilinear(images=q.astype(np.float32), size=[11, 13], align_corners=align,
                                      half_pixel_centers=half).numpy()
        acc = K.resize_bilinear_acc(q, 0, (11, 13), align, half)
        out = np.asarray(K.requantize(acc, 1 << 14, 30, 0, 0, 255, 8))
        assert np.abs(out.astype(np.float64) - y).max() <= 1.0


def test_data_movement_matches_reference(rng):
    q = codes(rng, (2, 4, 6, 8), 8)
    assert np.array_equal(np.asarray(K.space_to_depth(q, 2)), ref.ref_space_to_depth(q, 2))
    for mode in ("DCR", "CRD"):
        assert np.array_equal(np.asarray(K.depth_to_space(q, 2, mode)), ref.ref_depth_to_space(q, 2, mode))
    assert np.array_equal(np.asarray(K.feature_shuffle(q, 4)), ref.ref_feature_shuffle(q, 4))
    padded = np.asarray(K.pad_codes(q, [[1, 0], [2, 3], [0, 0]], 77))
    assert padded.shape == (2, 5, 11, 8) and np.all(padded[:, 0] == 77) and np.array_equal(padded[:, 1:, 2:8], q)
    import tensorflow as tf

    assert np.array_equal(ref.ref_space_to_depth(q, 2), tf.nn.space_to_depth(q, 2).numpy())
    assert np.array_equal(ref.ref_depth_to_space(q, 2, "DCR"), tf.nn.depth_to_space(q, 2).numpy())


def test_normalization_acc(rng):
    q = codes(rng, (2, 3, 3, 3), 8)
    B = np.array([-32640, -29772, -26496])
    assert np.array_equal(I(K.normalization_acc(q, 0, B)), q.astype(np.int64) * 256 + B)


def test_float32_self_check_passes_here():
    """On this machine TF's float32 kernels are plain sums of products (the fast path is used)."""
    assert K.float32_path_is_exact()
    assert math.isclose(float(P.tensor_params(0, 1, 8).scale), 1 / 255, rel_tol=1e-7)
