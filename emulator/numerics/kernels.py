"""The chip's integer kernels: one plain function per op, the formula in its docstring
(docs/numerics.md is the definition; tests/numerics_reference.py re-implements it independently).

The functions are written with TensorFlow ops so that `emulator.quantized_exec` can compile a
whole network into one tf.function (speed), and they run eagerly on numpy arrays as well (the
tests call them that way). Every value they compute is an exact integer.

Conventions
- Activation codes are uint8 / uint16 tensors, channels last; `zp` is the tensor's zero point,
  `bits` its width. Centred codes x = q - zp are exact integers.
- Accumulators ("acc") hold the exact integer result of an op, in units of the op's accumulator
  scale s_acc (per output channel). An accumulator whose static bound is below 2^38 is carried as
  float64 (exact: every integer below 2^53 is, and acc * M < 2^53 keeps the rescale exact, see
  `rescale`); a larger one as int64. Both representations give the same integers.
- Integer linear maps (conv, depthwise, dense, deconv, window sums) are computed by
  `exact_linear`: evaluated in float32 when the worst-case |sum| is below 2^24, in float64 when
  below 2^53 (every partial sum of integers below 2^p is exactly representable with a p-bit
  significand, whatever the order of summation or the use of FMA), and otherwise by splitting the
  input into 8-bit limbs. See docs/numerics.md, "Exact integer accumulation", for the proof and
  the start-up self-check of the float32 path.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import tensorflow as tf

from .geometry import pool_counts, same_pads, spatial_pads, tf_pads  # noqa: F401 (K.* users)
from .params import LUT_SIZE, abs_weight_sum, qmax

F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
ACC_F64_LIMIT = 1 << 38  # accumulators below this bound are carried as float64


# ==== exact integer linear maps ==================================================================

def _conv_case(rng):
    """Adversarial 3x3 conv data whose partial sums reach just below 2^24: (x, w, int64 result)."""
    x = rng.choice(np.array([-255, 255, -254, 253]), size=(2, 7, 7, 64)).astype(np.int64)
    w = np.full((3, 3, 64, 4), 113, np.int64) * rng.choice([-1, 1], size=(3, 3, 64, 4))
    w[0, 0, 0, :] += 1  # odd weights: results of both parities
    ref = np.zeros((2, 5, 5, 4), np.int64)
    for i in range(3):
        for j in range(3):
            ref += np.einsum("nhwc,co->nhwo", x[:, i:i + 5, j:j + 5], w[i, j])
    return x, w, ref


def _matmul_case(rng):
    """Adversarial matmul data (sums near 2^24): (x, w); the result is x @ w in int64."""
    xm = rng.choice(np.array([-255, 255, 251]), size=(5, 512)).astype(np.int64)
    wm = np.full((512, 3), 127, np.int64) * rng.choice([-1, 1], size=(512, 3))
    return xm, wm


@functools.lru_cache(maxsize=None)
def float32_path_is_exact() -> bool:
    """Start-up self-check of the float32 path: adversarial integer data whose partial sums reach
    just below 2^24 through TF's float32 conv2d, depthwise and BLAS-style matmul must equal int64
    numpy results. If any differs (a kernel that is not a plain sum of products, e.g. Winograd or
    a reduced-precision math mode), the float32 path is never used (float64 instead).
    Must first be called eagerly (quantized_exec does, before tracing)."""
    rng = np.random.default_rng(12345)
    x, w, ref = _conv_case(rng)
    y = tf.nn.conv2d(x.astype(np.float32), w.astype(np.float32), 1, "VALID").numpy()
    ok = np.array_equal(y.astype(np.int64), ref)
    xd = rng.choice(np.array([-65535, 65535, 65533]), size=(1, 9, 9, 3)).astype(np.int64)
    wd = np.full((7, 7, 3, 1), 5, np.int64) * rng.choice([-1, 1], size=(7, 7, 3, 1))
    refd = np.zeros((1, 3, 3, 3), np.int64)
    for i in range(7):
        for j in range(7):
            refd += xd[:, i:i + 3, j:j + 3, :] * wd[i, j, :, 0]
    yd = tf.nn.depthwise_conv2d(xd.astype(np.float32), wd.astype(np.float32), [1, 1, 1, 1], "VALID").numpy()
    ok &= np.array_equal(yd.astype(np.int64), refd)
    xm, wm = _matmul_case(rng)
    ok &= np.array_equal(tf.matmul(xm.astype(np.float32), wm.astype(np.float32)).numpy().astype(np.int64), xm @ wm)
    return bool(ok)


@functools.lru_cache(maxsize=None)
def xla_is_exact() -> bool:
    """The same self-check for XLA-compiled (jit_compile) float32 conv2d and matmul, plus the
    float64 rescale; quantized_exec compiles layers with XLA only if it passes (and the
    environment variable EMULATOR_XLA is not "0"). Must first be called eagerly."""
    import os

    if os.environ.get("EMULATOR_XLA", "1") == "0":
        return False
    rng = np.random.default_rng(54321)
    try:
        x, w, ref = _conv_case(rng)
        conv = tf.function(lambda a, b: tf.nn.conv2d(a, b, 1, "VALID"), jit_compile=True)
        ok = np.array_equal(conv(x.astype(np.float32), w.astype(np.float32)).numpy().astype(np.int64), ref)
        xm, wm = _matmul_case(rng)
        mm = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=True)
        ok &= np.array_equal(mm(xm.astype(np.float32), wm.astype(np.float32)).numpy().astype(np.int64), xm @ wm)
        acc = rng.integers(-(1 << 37), 1 << 37, 4096)
        M, r = rng.integers(1 << 14, 1 << 15, 4096), rng.integers(7, 47, 4096)
        # exact ties: M = 2^14, acc = odd * 2^(r - 15) gives acc * M = odd * 2^(r - 1)
        M[:64], r[:64] = 1 << 14, rng.integers(15, 40, 64)
        acc[:64] = (2 * rng.integers(-1000, 1000, 64) + 1) << (r[:64] - 15)
        resc = tf.function(lambda a: rescale(a, M, r), jit_compile=True)
        ok &= np.array_equal(resc(acc.astype(np.float64)).numpy().astype(np.int64),
                             (acc * M + ((1 << r) >> 1)) >> r)
        return bool(ok)
    except Exception:  # no XLA in this TensorFlow build
        return False


def exact_dtype(bound: int):
    """TF float type in which an integer sum bounded by `bound` is exact, or None."""
    if bound < F32_EXACT and float32_path_is_exact():
        return tf.float32
    if bound < F64_EXACT:
        return tf.float64
    return None


def to_acc(t, bound: int):
    """An exact integer tensor in the accumulator representation for its bound: float64 below
    2^38, int64 above (casts between them are exact for integers below 2^53)."""
    want = tf.float64 if bound < ACC_F64_LIMIT else tf.int64
    t = tf.convert_to_tensor(t)
    return t if t.dtype == want else tf.cast(t, want)


def exact_linear(op: Callable, x, x_max: int, w: np.ndarray, w_abs_sum_max: int):
    """op(x, w) for an integer bilinear map op (a sum of products x * w), exactly.

    x: integer-valued tensor with |x| <= x_max; w: integer weights (numpy) whose largest
    per-output sum of |w| is w_abs_sum_max. Evaluated in the narrowest exact float type (module
    doc) and returned as float64 (bound < 2^53); beyond 2^53, x = 256 * (x >> 8) + (x & 255) and
    both halves recurse, returned as int64.
    """
    bound = int(x_max) * int(w_abs_sum_max)
    dt = exact_dtype(bound)
    if dt is not None:
        y = op(tf.cast(x, dt), tf.constant(np.asarray(w), dt))
        return tf.cast(y, tf.float64) if dt != tf.float64 else y
    xi = tf.cast(x, tf.int64)
    hi, lo = tf.bitwise.right_shift(xi, 8), tf.bitwise.bitwise_and(xi, 255)
    yh = tf.cast(exact_linear(op, hi, (int(x_max) >> 8) + 1, w, w_abs_sum_max), tf.int64)
    yl = tf.cast(exact_linear(op, lo, 255, w, w_abs_sum_max), tf.int64)
    return yh * 256 + yl


def centred(q, zp: int, dtype=tf.float32):
    """x = q - zp, exact (codes < 2^16 are exact in float32)."""
    return tf.cast(q, dtype) - tf.constant(zp, dtype)


def max_centred(zp: int, bits: int) -> int:
    return max(int(zp), qmax(bits) - int(zp))


def _add_bias(acc, bias: np.ndarray, bound: int):
    bias = np.asarray(bias, np.int64)
    total = bound + (int(np.abs(bias).max()) if bias.size else 0)
    acc = to_acc(acc, total)
    return acc + tf.constant(bias.astype(np.float64) if acc.dtype == tf.float64 else bias, acc.dtype)


# ==== padding helpers ===========================================================================

def pad_const(x, paddings, value=0):
    """x padded with a constant: tf.pad's CONSTANT mode, always as TensorFlow's `PadV2` op.

    Why not tf.pad: for a zero constant it emits `Pad`, and TensorFlow's oneDNN graph pass (on
    by default on x86 CPUs with AVX512_VNNI / AVX512_BF16 / AMX, or with TF_ENABLE_ONEDNN_OPTS=1)
    merges a `Pad` found among *any* inputs of a VALID `_FusedConv2D` into it, including the
    residual addend that Grappler's remapper fused in (conv + bias + add). The node it builds is
    malformed and the process dies (SIGSEGV in MklLayoutRewritePass). It never merges PadV2;
    the values are the same (docs/numerics.md, "TensorFlow and oneDNN")."""
    x = tf.convert_to_tensor(x)
    return tf.raw_ops.PadV2(input=x, paddings=paddings, constant_values=tf.constant(value, x.dtype))


def _has_pad(pads) -> bool:
    return any(p for pp in pads for p in pp)


# ==== multiply-accumulate layers ================================================================

def conv_op(strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0)), groups: int = 1) -> Callable:
    """op(x, w): the integer bilinear map of a (grouped) convolution on float tensors holding
    integers, padding explicit (zeros), as used by conv2d_acc and by the fake-quant target."""
    def op(xt, wt):
        kw_ = dict(strides=[1, *strides, 1], padding=tf_pads(pads), dilations=[1, *dilations, 1])
        if groups == 1:
            return tf.nn.conv2d(xt, wt, **kw_)
        cig, cog = int(wt.shape[2]), int(wt.shape[3]) // groups
        return tf.concat([tf.nn.conv2d(xt[..., g * cig:(g + 1) * cig], wt[..., g * cog:(g + 1) * cog], **kw_)
                          for g in range(groups)], axis=3)
    return op


def depthwise_op(strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0))) -> Callable:
    """op(x, w) of a depthwise convolution (w [kh, kw, cin, mult]), padding explicit (zeros)."""
    def op(xt, wt):
        if _has_pad(pads):
            xt = pad_const(xt, tf_pads(pads))
        if strides[0] == strides[1]:
            return tf.nn.depthwise_conv2d(xt, wt, strides=[1, *strides, 1], padding="VALID",
                                          dilations=list(dilations))
        # TF's depthwise kernel needs equal strides: stride 1, then subsample (the same sums)
        y = tf.nn.depthwise_conv2d(xt, wt, strides=[1, 1, 1, 1], padding="VALID", dilations=list(dilations))
        return y[:, ::strides[0], ::strides[1], :]
    return op


def dense_op(cin: int) -> Callable:
    """op(x, w) of a dense layer: x flattened row-major to [N, cin], times w [cin, cout]."""
    def op(xt, wt):
        return tf.matmul(tf.reshape(xt, [-1, cin]), wt)
    return op


def deconv_crop(in_hw, k_hw, strides_hw, out_hw, padding) -> tuple[int, int]:
    """Top / left crop of the full transposed convolution ((in - 1) * s + k per axis) to out_hw:
    total = full - out; VALID and SAME_TENSORFLOW crop floor(total / 2) first, SAME (symmetric,
    extra first) crops total - floor(total / 2)."""
    res = []
    for n, k, s, o in zip(in_hw, k_hw, strides_hw, out_hw):
        total = (n - 1) * s + k - o
        if total < 0:
            raise ValueError(f"transposed conv: output {o} larger than the full result {(n - 1) * s + k}")
        res.append(total - total // 2 if padding == "SAME" else total // 2)
    return tuple(res)


def deconv_op(in_hw, k_hw, cout: int, strides=(1, 1), out_hw=None, padding: str = "VALID") -> Callable:
    """op(x, w) of a transposed convolution (w [kh, kw, cin, cout]): the full result
    ((in - 1) * s + k per axis) cropped to out_hw (deconv_crop)."""
    ih, iw = in_hw
    fh, fw = (ih - 1) * strides[0] + k_hw[0], (iw - 1) * strides[1] + k_hw[1]
    out_hw = tuple(out_hw or (fh, fw))
    top, left = deconv_crop((ih, iw), k_hw, strides, out_hw, padding)

    def op(xt, wt):
        n = tf.shape(xt)[0]
        full = tf.nn.conv2d_transpose(xt, tf.transpose(wt, [0, 1, 3, 2]), tf.stack([n, fh, fw, cout]),
                                      strides=[1, *strides, 1], padding="VALID")
        return full[:, top:top + out_hw[0], left:left + out_hw[1], :]
    return op


def _mac(q, zp: int, bits: int, q_w: np.ndarray, w2d: np.ndarray, bias: np.ndarray, op: Callable):
    xmax = max_centred(zp, bits)
    wsum = abs_weight_sum(w2d)
    dt = exact_dtype(xmax * wsum)
    x = centred(q, zp, dt if dt is not None else tf.float32)
    return _add_bias(exact_linear(op, x, xmax, q_w, wsum), bias, xmax * wsum)


def conv2d_acc(q, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray,
               strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0)), groups: int = 1):
    """acc[n,y,x,o] = sum_{i,j,c in group(o)} (q - zp)[n, y*sh + i*dh - pt, x*sw + j*dw - pl, c]
                      * q_w[i, j, c', o] + B[o]
    with padded positions contributing 0 (padding with the code zp, the real zero).
    q_w: HWIO int, [kh, kw, cin / groups, cout]; B: int [cout]."""
    q_w = np.asarray(q_w)
    return _mac(q, zp, bits, q_w, q_w.reshape(-1, q_w.shape[-1]), bias,
                conv_op(strides, dilations, pads, groups))


def depthwise_acc(q, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray,
                  strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0))):
    """acc[n,y,x,c*mult+k] = sum_{i,j} (q - zp)[n, y*sh + i*dh - pt, x*sw + j*dw - pl, c]
                             * q_w[i, j, c, k] + B[c*mult+k]   (padding contributes 0)
    q_w: [kh, kw, cin, mult]."""
    q_w = np.asarray(q_w)
    kh, kw, ci, mult = q_w.shape
    return _mac(q, zp, bits, q_w, q_w.reshape(kh * kw, ci * mult), bias,
                depthwise_op(strides, dilations, pads))


def dense_acc(q, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray):
    """acc[n, o] = sum_k (q - zp)[n, k] * q_w[k, o] + B[o], the input flattened row-major
    (H, W, C) to k. q_w: [cin, cout]."""
    q_w = np.asarray(q_w)
    return _mac(q, zp, bits, q_w, q_w, bias, dense_op(q_w.shape[0]))


def deconv_acc(q, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray, in_hw, strides=(1, 1),
               out_hw=None, padding: str = "VALID"):
    """Transposed convolution: full[n, y*sh + i, x*sw + j, o] += (q - zp)[n, y, x, c] * q_w[i, j, c, o],
    then acc = full cropped to out_hw (deconv_crop) + B[o]. q_w: [kh, kw, cin, cout]."""
    q_w = np.asarray(q_w)
    kh, kw, ci, co = q_w.shape
    return _mac(q, zp, bits, q_w, q_w.reshape(-1, co), bias,
                deconv_op(in_hw, (kh, kw), co, strides, out_hw, padding))


# ==== the activation unit =======================================================================

def _code_dtype(bits: int):
    return tf.uint8 if bits == 8 else tf.uint16


def rescale(acc, M, r):
    """y = (acc * M + 2^(r-1)) >> r  (arithmetic shift: round half up; r = 0: y = acc * M),
    M, r per channel (last axis) or scalars.

    int64 accumulators: evaluated as written. float64 accumulators (|acc| < 2^38, so
    |acc * M| < 2^53): y = floor(acc * (M * 2^-r) + 1/2), which is the same integer: M * 2^-r is
    exact, the product is exact (at most 53 significant bits), adding 1/2 is exact, and floor of
    (acc * M + 2^(r-1)) / 2^r is the arithmetic shift.
    """
    acc = tf.convert_to_tensor(acc)
    M = np.asarray(M, np.int64)
    r = np.asarray(r, np.int64)
    if acc.dtype == tf.float64:
        m = (M.astype(np.float64) * np.exp2(-r.astype(np.float64)))
        return tf.floor(acc * tf.constant(m) + 0.5)
    acc = tf.cast(acc, tf.int64)
    rnd = (np.int64(1) << r) >> 1
    return tf.bitwise.right_shift(acc * tf.constant(M) + tf.constant(rnd), tf.constant(r))


def _clamp_cast(y, lo, hi, bits: int):
    lo = np.asarray(lo, np.int64)
    hi = np.asarray(hi, np.int64)
    if y.dtype == tf.float64:
        lo_t, hi_t = tf.constant(lo.astype(np.float64)), tf.constant(hi.astype(np.float64))
    else:
        lo_t, hi_t = tf.constant(lo), tf.constant(hi)
    return tf.cast(tf.minimum(tf.maximum(y, lo_t), hi_t), _code_dtype(bits))


def requantize(acc, M, r, zp: int, lo, hi, bits: int):
    """Clamp activations (linear, ReLU, ReLU6, clipped ReLU):
    out = clamp(rescale(acc, M, r) + zp, lo, hi), lo/hi codes per channel or scalar
    (linear: 0, 2^b - 1; ReLU: zp, 2^b - 1; ReLU6: zp, min(2^b - 1, zp + rhe(6 / s)))."""
    y = rescale(acc, M, r)
    return _clamp_cast(y + tf.constant(zp, y.dtype), lo, hi, bits)


def requantize_two_slope(acc, M, r, M_neg, r_neg, zp: int, bits: int):
    """Leaky ReLU / PReLU: y = rescale(acc, M, r) if acc >= 0 else rescale(acc, M_neg, r_neg)
    (M_neg signed, per channel); out = clamp(y + zp, 0, 2^b - 1). (float64 accumulators:
    floor(acc * m_sel + 1/2) with m_sel the multiplier of acc's side, the same integers.)"""
    acc = tf.convert_to_tensor(acc)
    if acc.dtype == tf.float64:
        m = np.asarray(M, np.float64) * np.exp2(-np.asarray(r, np.float64))
        mn = np.asarray(M_neg, np.float64) * np.exp2(-np.asarray(r_neg, np.float64))
        y = tf.floor(acc * tf.where(acc >= 0.0, tf.constant(m), tf.constant(mn)) + 0.5)
    else:
        y = tf.where(acc >= tf.zeros([], acc.dtype), rescale(acc, M, r), rescale(acc, M_neg, r_neg))
    return _clamp_cast(y + tf.constant(zp, y.dtype), 0, qmax(bits), bits)


def lut_activation(acc, M, r, pre_zp: int, lut: np.ndarray):
    """Table activations: p = clamp(rescale(acc, M, r) + z_pre, 0, 65535); out = lut[p]."""
    y = rescale(acc, M, r)
    p = tf.cast(tf.clip_by_value(y + tf.constant(pre_zp, y.dtype), tf.constant(0, y.dtype),
                                 tf.constant(LUT_SIZE - 1, y.dtype)), tf.int32)
    return tf.gather(tf.constant(np.asarray(lut)), p)


def requantize_per_position(acc, M_map: np.ndarray, r_map: np.ndarray, zp: int, bits: int):
    """Average pool's activation unit: position (y, x) uses the (M, r) of its window count,
    given as [OH, OW] maps (see pool_counts); out = clamp(rescale + zp, 0, 2^b - 1)."""
    return requantize(acc, np.asarray(M_map)[:, :, None], np.asarray(r_map)[:, :, None], zp,
                      0, qmax(bits), bits)


# ==== accumulators of the other layers ==========================================================

def centred_acc(q, zp: int, bits: int):
    """acc = q - zp (standalone activations, concat requantization); s_acc = s_in."""
    return centred(q, zp, tf.float64)


def ew_add_acc(qa, za: int, bits_a: int, A_a: int, qb, zb: int, bits_b: int, A_b: int,
               subtract: bool = False):
    """acc = A_a * (qa - za) + A_b * (qb - zb)   (ew_sub: minus), with broadcasting;
    s_acc = max(s_a, s_b) * 2^-t (params.ew_multipliers). |acc| < 2^40: exact in float64."""
    a = centred(qa, za, tf.float64) * float(A_a)
    b = centred(qb, zb, tf.float64) * float(A_b)
    bound = int(A_a) * max_centred(za, bits_a) + int(A_b) * max_centred(zb, bits_b)
    return to_acc(a - b if subtract else a + b, bound)


def ew_mult_acc(qa, za: int, qb, zb: int):
    """acc = (qa - za) * (qb - zb), s_acc = s_a * s_b (|acc| < 2^32: exact in float64)."""
    return centred(qa, za, tf.float64) * centred(qb, zb, tf.float64)


def maxpool(q, k_hw, strides_hw, pads):
    """out = max over the window of the codes; padded positions never win (evaluated by padding
    with code 0, which cannot exceed a window's real maximum). The output keeps the input's
    (s, z)."""
    q = tf.convert_to_tensor(q)
    x = tf.cast(q, tf.float32)  # codes < 2^16: exact in float32
    if _has_pad(pads):
        x = pad_const(x, tf_pads(pads))
    return tf.cast(tf.nn.max_pool2d(x, [1, *k_hw, 1], [1, *strides_hw, 1], "VALID"), q.dtype)


def avgpool_acc(q, zp: int, bits: int, k_hw, strides_hw, pads):
    """acc[n, y, x, c] = sum over the window of (q - zp), padded positions contributing 0.
    The activation unit then rescales position (y, x) by s_in / (N[y, x] * s_out)."""
    c = int(q.shape[-1])
    ones = np.ones((k_hw[0], k_hw[1], c, 1), np.int64)
    xmax = max_centred(zp, bits)
    dt = exact_dtype(xmax * k_hw[0] * k_hw[1]) or tf.float32
    return to_acc(exact_linear(depthwise_op(strides_hw, (1, 1), pads), centred(q, zp, dt), xmax, ones,
                               k_hw[0] * k_hw[1]), xmax * k_hw[0] * k_hw[1])


def global_sum_acc(q, zp: int, bits: int):
    """Global average pool: acc[n, c] = sum_{y, x} (q - zp)[n, y, x, c]; the activation unit
    rescales by s_in / (H * W * s_out). Exact in float64 (|acc| < 2^16 * H * W < 2^53)."""
    q = tf.convert_to_tensor(q)
    bound = max_centred(zp, bits) * int(q.shape[1]) * int(q.shape[2])
    return to_acc(tf.reduce_sum(centred(q, zp, tf.float64), axis=[1, 2]), bound)


def reduce_sum_acc(q, zp: int, bits: int, axes):
    """acc = sum over `axes` of (q - zp) (keepdims), exact in float64; rescaled by s_in / s_out."""
    q = tf.convert_to_tensor(q)
    bound = max_centred(zp, bits) * int(np.prod([int(q.shape[a]) for a in axes]))
    return to_acc(tf.reduce_sum(centred(q, zp, tf.float64), axis=list(axes), keepdims=True), bound)


def reduce_max(q, axes):
    """max of the codes over `axes` (keepdims); the output keeps the input's (s, z)."""
    q = tf.convert_to_tensor(q)
    return tf.cast(tf.reduce_max(tf.cast(q, tf.int32), axis=list(axes), keepdims=True), q.dtype)


def normalization_acc(q, zp: int, B: np.ndarray):
    """acc[..., c] = (q - zp) * 2^8 + B[c], B[c] = rhe(-mean[c] / s_in * 2^8);
    s_acc[c] = s_in * 2^-8 / std[c], then the usual rescale to the output."""
    return centred(q, zp, tf.float64) * 256.0 + tf.constant(np.asarray(B, np.float64))


# ==== resize ====================================================================================

def nearest_indices(n_in: int, n_out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """Source index of every output index, computed exactly as TensorFlow's
    ResizeNearestNeighbor does, in float32: scale = (n_in - 1) / (n_out - 1) if align_corners
    (and n_out > 1) else n_in / n_out; v = (o + 0.5) * scale if half_pixel else o * scale;
    i = roundf(v) (half away from zero) if align_corners else floor(v); i = clamp(i, 0, n_in - 1)."""
    f32 = np.float32
    if align_corners and n_out > 1:
        scale = f32(n_in - 1) / f32(n_out - 1)
    else:
        scale = f32(n_in) / f32(n_out)
    o = np.arange(n_out, dtype=f32)
    v = ((o + f32(0.5)) * scale) if half_pixel else (o * scale)
    v = v.astype(f32)
    fl = np.floor(v)
    i = fl + (v - fl >= f32(0.5)) if align_corners else fl
    return np.clip(i.astype(np.int64), 0, n_in - 1)


def resize_nearest(q, out_hw, align_corners: bool, half_pixel: bool):
    """out[n, y, x, c] = q[n, iy[y], ix[x], c] (nearest_indices); keeps the input's (s, z)."""
    q = tf.convert_to_tensor(q)
    iy = nearest_indices(int(q.shape[1]), out_hw[0], align_corners, half_pixel)
    ix = nearest_indices(int(q.shape[2]), out_hw[1], align_corners, half_pixel)
    return tf.gather(tf.gather(q, iy, axis=1), ix, axis=2)


def bilinear_taps(n_in: int, n_out: int, align_corners: bool, half_pixel: bool):
    """Per output index o: (i0, i1, f), interpolation weights (256 - f, f) on the 2^-8 grid.

    The source coordinate is the rational src = num / den:
      align_corners (n_out > 1): src = o * (n_in - 1) / (n_out - 1)
      half_pixel:                src = ((2o + 1) * n_in - n_out) / (2 * n_out)
      otherwise:                 src = o * n_in / n_out
    p = floor(256 * src + 1/2) computed in integers; p = max(p, 0); i0 = min(p >> 8, n_in - 1);
    f = p & 255 (0 when i0 = n_in - 1); i1 = min(i0 + 1, n_in - 1).
    """
    o = np.arange(n_out, dtype=np.int64)
    if align_corners and n_out > 1:
        num, den = o * (n_in - 1) * 256, np.int64(n_out - 1)
    elif half_pixel:
        num, den = ((2 * o + 1) * n_in - n_out) * 128, np.int64(n_out)
    else:
        num, den = o * n_in * 256, np.int64(n_out)
    p = np.maximum((2 * num + den) // (2 * den), 0)
    i0 = p >> 8
    f = p & 255
    last = i0 >= n_in - 1
    i0 = np.where(last, n_in - 1, i0)
    f = np.where(last, 0, f)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, f


def resize_bilinear_acc(q, zp: int, out_hw, align_corners: bool, half_pixel: bool):
    """acc[n, y, x, c] = sum_{a, b in {0, 1}} wy_a[y] * wx_b[x] * (q - zp)[n, iy_a[y], ix_b[x], c],
    wy_0 = 256 - fy, wy_1 = fy (bilinear_taps), weights summing to 2^16 (|acc| < 2^32, exact in
    float64). The activation unit rescales by s_in * 2^-16 / s_out."""
    q = tf.convert_to_tensor(q)
    x = centred(q, zp, tf.float64)
    y0, y1, fy = bilinear_taps(int(q.shape[1]), out_hw[0], align_corners, half_pixel)
    x0, x1, fx = bilinear_taps(int(q.shape[2]), out_hw[1], align_corners, half_pixel)
    fy = tf.constant(fy.astype(np.float64)[None, :, None, None])
    fx = tf.constant(fx.astype(np.float64)[None, None, :, None])
    t = tf.gather(x, y0, axis=1) * (256.0 - fy) + tf.gather(x, y1, axis=1) * fy
    return tf.gather(t, x0, axis=2) * (256.0 - fx) + tf.gather(t, x1, axis=2) * fx


# ==== data movement (codes only, (s, z) kept) ===================================================

def pad_codes(q, pads, value_code: int):
    """Pad [[top, bottom], [left, right], [front, back]] with the code of the constant
    (clamp(rhe(c / s) + z, 0, 2^b - 1); z for c = 0)."""
    q = tf.convert_to_tensor(q)
    return pad_const(q, [[0, 0]] + [list(p) for p in pads], value_code)


def concat_codes(parts, axis: int):
    """Concatenation of (already requantized) codes."""
    return tf.concat(list(parts), axis=axis)


def slice_codes(q, begin, end):
    return tf.convert_to_tensor(q)[(slice(None),) + tuple(slice(b, e) for b, e in zip(begin, end))]


def space_to_depth(q, bs: int):
    """TF space_to_depth: out[n, y, x, (i * bs + j) * C + c] = q[n, y * bs + i, x * bs + j, c]."""
    return tf.nn.space_to_depth(q, bs)


def depth_to_space(q, bs: int, mode: str = "DCR"):
    """DCR (TF): out[n, y*bs + i, x*bs + j, c] = q[n, y, x, (i * bs + j) * C' + c];
    CRD: out[n, y*bs + i, x*bs + j, c] = q[n, y, x, c * bs^2 + i * bs + j]."""
    q = tf.convert_to_tensor(q)
    if mode == "DCR":
        return tf.nn.depth_to_space(q, bs)
    _, h, w, c = q.shape
    co = c // (bs * bs)
    t = tf.reshape(q, [-1, h, w, co, bs, bs])
    t = tf.transpose(t, [0, 1, 4, 2, 5, 3])
    return tf.reshape(t, [-1, h * bs, w * bs, co])


def feature_shuffle(q, groups: int):
    """Channel shuffle: out[..., j * g + i] = q[..., i * (C / g) + j]."""
    q = tf.convert_to_tensor(q)
    shp = q.shape.as_list()
    c = shp[-1]
    t = tf.reshape(q, [-1] + shp[1:-1] + [groups, c // groups])
    perm = list(range(len(shp) + 1))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return tf.reshape(tf.transpose(t, perm), [-1] + shp[1:])
