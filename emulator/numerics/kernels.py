"""The chip's integer kernels: one plain function per op, the formula in its docstring
(docs/numerics.md is the definition; tests/numerics_reference.py re-implements it independently).

Conventions
- Activation codes are uint8 / uint16 numpy arrays, channels last; `zp` is the tensor's zero
  point, `bits` its width. Centred codes x = q - zp are exact integers.
- Accumulators are int64 numpy arrays holding the exact integer result (`acc`), in units of the
  layer's accumulator scale s_acc (per output channel).
- Integer linear maps (conv, depthwise, dense, deconv, window sums) are computed by
  `exact_linear`: the products and sums are exact integers; they are evaluated in float32 when the
  worst-case |sum| is below 2^24, in float64 when below 2^53 (every partial sum of integers below
  2^p is exactly representable with a p-bit mantissa, whatever the order of summation or the use
  of FMA), and otherwise by splitting the input into 8-bit limbs. See docs/numerics.md, "Exact
  integer accumulation", for the proof and the start-up self-check of the float32 path.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from .params import LUT_SIZE, qmax

F32_EXACT = 1 << 24
F64_EXACT = 1 << 53


# ==== exact integer linear maps ==================================================================

def _tf():
    import tensorflow as tf

    return tf


@functools.lru_cache(maxsize=None)
def float32_path_is_exact() -> bool:
    """Start-up self-check of the float32 path: adversarial integer data whose partial sums reach
    just below 2^24 through TF's float32 conv2d, depthwise, transposed conv and BLAS matmul must
    equal int64 numpy results. If any differs (a kernel that is not a plain sum of products,
    e.g. Winograd or reduced-precision math mode), the float32 path is never used."""
    tf = _tf()
    rng = np.random.default_rng(12345)
    ok = True
    # conv2d 3x3x64: |x| = 255, sum|w| per channel just below 2^24 / 255
    k = 3 * 3 * 64
    x = rng.choice(np.array([-255, 255, -254, 253]), size=(2, 7, 7, 64)).astype(np.int64)
    w = np.full((3, 3, 64, 4), 113, np.int64) * rng.choice([-1, 1], size=(3, 3, 64, 4))
    w[0, 0, 0, :] += 1  # odd weights: results of both parities
    assert 255 * np.abs(w).reshape(k, 4).sum(0).max() < F32_EXACT
    ref = np.zeros((2, 5, 5, 4), np.int64)
    for i in range(3):
        for j in range(3):
            ref += np.einsum("nhwc,co->nhwo", x[:, i:i + 5, j:j + 5], w[i, j])
    y = tf.nn.conv2d(x.astype(np.float32), w.astype(np.float32), 1, "VALID").numpy()
    ok &= np.array_equal(y.astype(np.int64), ref)
    # depthwise 7x7 on 16-bit-like codes
    xd = rng.choice(np.array([-65535, 65535, 65533]), size=(1, 9, 9, 3)).astype(np.int64)
    wd = np.full((7, 7, 3, 1), 5, np.int64) * rng.choice([-1, 1], size=(7, 7, 3, 1))
    refd = np.zeros((1, 3, 3, 3), np.int64)
    for i in range(7):
        for j in range(7):
            refd += xd[:, i:i + 3, j:j + 3, :] * wd[i, j, :, 0]
    yd = tf.nn.depthwise_conv2d(xd.astype(np.float32), wd.astype(np.float32), [1, 1, 1, 1], "VALID").numpy()
    ok &= np.array_equal(yd.astype(np.int64), refd)
    # matmul
    xm = rng.choice(np.array([-255, 255, 251]), size=(5, 512)).astype(np.int64)
    wm = np.full((512, 3), 127, np.int64) * rng.choice([-1, 1], size=(512, 3))
    ok &= np.array_equal(np.matmul(xm.astype(np.float32), wm.astype(np.float32)).astype(np.int64), xm @ wm)
    return bool(ok)


def exact_dtype(bound: int):
    """Float type in which an integer sum bounded by `bound` is exact, or None."""
    if bound < F32_EXACT and float32_path_is_exact():
        return np.float32
    if bound < F64_EXACT:
        return np.float64
    return None


def exact_linear(op: Callable, x: np.ndarray, x_max: int, w: np.ndarray, w_abs_sum_max: int) -> np.ndarray:
    """op(x, w) for an integer bilinear map op (a sum of products x * w), exactly, as int64.

    x: integer array with |x| <= x_max; w: integer weights whose largest per-output sum of
    |w| is w_abs_sum_max. Evaluated in the narrowest exact float type (see module doc); if the
    bound exceeds 2^53, x = 256 * (x >> 8) + (x & 255) and both halves recurse.
    """
    bound = int(x_max) * int(w_abs_sum_max)
    dt = exact_dtype(bound)
    if dt is not None:
        y = op(np.asarray(x, dt), np.asarray(w, dt))
        return np.asarray(y).astype(np.int64)
    x = np.asarray(x, np.int64)
    hi, lo = x >> 8, x & 255
    return (exact_linear(op, hi, (int(x_max) >> 8) + 1, w, w_abs_sum_max) * 256
            + exact_linear(op, lo, 255, w, w_abs_sum_max))


def centred(q: np.ndarray, zp: int) -> np.ndarray:
    """x = q - zp as int32 (exact)."""
    return np.asarray(q).astype(np.int32) - np.int32(zp)


def max_centred(zp: int, bits: int) -> int:
    return max(int(zp), qmax(bits) - int(zp))


# ==== padding helpers ===========================================================================

def same_pads(n: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of one spatial axis.

    VALID: (0, 0). SAME_TENSORFLOW: total = max((ceil(n/s) - 1) * s + (k - 1) * d + 1 - n, 0),
    before = floor(total / 2) (the extra one after). SAME (Hailo's symmetric): the same total,
    the extra one before: before = total - floor(total / 2).
    """
    if padding == "VALID":
        return (0, 0)
    eff = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + eff - n, 0)
    small = total // 2
    if padding == "SAME":
        return (total - small, small)
    if padding == "SAME_TENSORFLOW":
        return (small, total - small)
    raise ValueError(f"unknown padding '{padding}'")


def spatial_pads(in_hw, k_hw, strides_hw, dil_hw, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    return (same_pads(in_hw[0], k_hw[0], strides_hw[0], dil_hw[0], padding),
            same_pads(in_hw[1], k_hw[1], strides_hw[1], dil_hw[1], padding))


def _tf_pads(pads) -> list[list[int]]:
    return [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]


# ==== multiply-accumulate layers ================================================================

def _wsum(q_w2d: np.ndarray) -> int:
    return int(np.abs(np.asarray(q_w2d, np.int64)).sum(axis=0).max()) if q_w2d.size else 0


def conv2d_acc(q: np.ndarray, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray,
               strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0)), groups: int = 1) -> np.ndarray:
    """acc[n,y,x,o] = sum_{i,j,c in group(o)} (q - zp)[n, y*sh + i*dh - pt, x*sw + j*dw - pl, c]
                      * q_w[i, j, c', o] + B[o]
    with padded positions contributing 0 (padding with the code zp, the real zero).
    q_w: HWIO int, [kh, kw, cin / groups, cout]; B: int [cout]. Returns int64 [N, OH, OW, cout].
    """
    tf = _tf()
    x = centred(q, zp)
    kh, kw, cig, co = q_w.shape
    cog = co // groups

    def op(xf, wf):
        xt = tf.constant(xf)
        if groups == 1:
            return tf.nn.conv2d(xt, wf, strides=[1, *strides, 1], padding=_tf_pads(pads),
                                dilations=[1, *dilations, 1]).numpy()
        outs = [tf.nn.conv2d(xt[..., g * cig:(g + 1) * cig], wf[..., g * cog:(g + 1) * cog],
                             strides=[1, *strides, 1], padding=_tf_pads(pads),
                             dilations=[1, *dilations, 1]) for g in range(groups)]
        return tf.concat(outs, axis=3).numpy()

    acc = exact_linear(op, x, max_centred(zp, bits), q_w, _wsum(q_w.reshape(-1, co)))
    return acc + np.asarray(bias, np.int64)


def depthwise_acc(q: np.ndarray, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray,
                  strides=(1, 1), dilations=(1, 1), pads=((0, 0), (0, 0))) -> np.ndarray:
    """acc[n,y,x,c*mult+k] = sum_{i,j} (q - zp)[n, y*sh + i*dh - pt, x*sw + j*dw - pl, c]
                             * q_w[i, j, c, k] + B[c*mult+k]   (padding contributes 0)
    q_w: [kh, kw, cin, mult]. Returns int64 [N, OH, OW, cin*mult]."""
    tf = _tf()
    x = centred(q, zp)
    kh, kw, ci, mult = q_w.shape

    def op(xf, wf):
        xt = tf.constant(xf)
        if any(p for pp in pads for p in pp):
            xt = tf.pad(xt, _tf_pads(pads))
        if strides[0] == strides[1]:
            return tf.nn.depthwise_conv2d(xt, wf, strides=[1, *strides, 1], padding="VALID",
                                          dilations=list(dilations)).numpy()
        # TF's depthwise kernel needs equal strides: stride 1, then subsample (same sums)
        y = tf.nn.depthwise_conv2d(xt, wf, strides=[1, 1, 1, 1], padding="VALID",
                                   dilations=list(dilations)).numpy()
        return y[:, ::strides[0], ::strides[1], :]

    acc = exact_linear(op, x, max_centred(zp, bits), q_w, _wsum(q_w.reshape(kh * kw, ci * mult)))
    return acc + np.asarray(bias, np.int64)


def dense_acc(q: np.ndarray, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """acc[n, o] = sum_k (q - zp)[n, k] * q_w[k, o] + B[o], the input flattened row-major
    (H, W, C) to k. q_w: [cin, cout]. Returns int64 [N, cout]."""
    x = centred(q, zp).reshape(q.shape[0], -1)
    acc = exact_linear(lambda a, b: np.matmul(a, b), x, max_centred(zp, bits), q_w, _wsum(q_w))
    return acc + np.asarray(bias, np.int64)


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


def deconv_acc(q: np.ndarray, zp: int, bits: int, q_w: np.ndarray, bias: np.ndarray,
               strides=(1, 1), out_hw=None, padding: str = "VALID") -> np.ndarray:
    """Transposed convolution: full[n, y*sh + i, x*sw + j, o] += (q - zp)[n, y, x, c] * q_w[i, j, c, o],
    then acc = full cropped to out_hw (deconv_crop) + B[o]. q_w: [kh, kw, cin, cout]."""
    tf = _tf()
    x = centred(q, zp)
    kh, kw, ci, co = q_w.shape
    n, ih, iw, _ = x.shape
    fh, fw = (ih - 1) * strides[0] + kh, (iw - 1) * strides[1] + kw
    out_hw = out_hw or (fh, fw)
    top, left = deconv_crop((ih, iw), (kh, kw), strides, out_hw, padding)

    def op(xf, wf):
        full = tf.nn.conv2d_transpose(tf.constant(xf), tf.transpose(wf, [0, 1, 3, 2]),
                                      [n, fh, fw, co], strides=[1, *strides, 1], padding="VALID")
        return full[:, top:top + out_hw[0], left:left + out_hw[1], :].numpy()

    acc = exact_linear(op, x, max_centred(zp, bits), q_w, _wsum(q_w.reshape(-1, co)))
    return acc + np.asarray(bias, np.int64)


# ==== the activation unit =======================================================================

def rescale(acc: np.ndarray, M, r) -> np.ndarray:
    """y = (acc * M + 2^(r-1)) >> r  (arithmetic shift: round half up; for r = 0, y = acc * M).
    M, r per channel (last axis) or scalars; int64 throughout (|acc| < 2^47, M < 2^15)."""
    acc = np.asarray(acc, np.int64)
    M = np.asarray(M, np.int64)
    r = np.asarray(r, np.int64)
    return (acc * M + ((np.int64(1) << r) >> 1)) >> r


def requantize(acc: np.ndarray, M, r, zp: int, lo, hi, bits: int) -> np.ndarray:
    """Clamp activations (linear, ReLU, ReLU6, clipped ReLU):
    out = clamp(rescale(acc, M, r) + zp, lo, hi), lo/hi codes per channel or scalar
    (linear: 0, 2^b - 1; ReLU: zp, 2^b - 1; ReLU6: zp, min(2^b - 1, zp + rhe(6 / s)))."""
    y = rescale(acc, M, r) + np.int64(zp)
    return np.clip(y, lo, hi).astype(np.uint8 if bits == 8 else np.uint16)


def requantize_two_slope(acc: np.ndarray, M, r, M_neg, r_neg, zp: int, bits: int) -> np.ndarray:
    """Leaky ReLU / PReLU: y = rescale(acc, M, r) if acc >= 0 else rescale(acc, M_neg, r_neg)
    (M_neg signed, per channel); out = clamp(y + zp, 0, 2^b - 1)."""
    acc = np.asarray(acc, np.int64)
    y = np.where(acc >= 0, rescale(acc, M, r), rescale(acc, M_neg, r_neg)) + np.int64(zp)
    return np.clip(y, 0, qmax(bits)).astype(np.uint8 if bits == 8 else np.uint16)


def lut_activation(acc: np.ndarray, M, r, pre_zp: int, lut: np.ndarray) -> np.ndarray:
    """Table activations: p = clamp(rescale(acc, M, r) + z_pre, 0, 65535); out = lut[p]."""
    p = np.clip(rescale(acc, M, r) + np.int64(pre_zp), 0, LUT_SIZE - 1)
    return np.asarray(lut)[p]


# ==== element-wise ==============================================================================

def ew_add_acc(qa: np.ndarray, za: int, A_a: int, qb: np.ndarray, zb: int, A_b: int,
               subtract: bool = False) -> np.ndarray:
    """acc = A_a * (qa - za) + A_b * (qb - zb)   (ew_sub: minus), numpy broadcasting;
    s_acc = max(s_a, s_b) * 2^-t (params.ew_multipliers)."""
    xa = centred(qa, za).astype(np.int64) * np.int64(A_a)
    xb = centred(qb, zb).astype(np.int64) * np.int64(A_b)
    return xa - xb if subtract else xa + xb


def ew_mult_acc(qa: np.ndarray, za: int, qb: np.ndarray, zb: int) -> np.ndarray:
    """acc = (qa - za) * (qb - zb), s_acc = s_a * s_b."""
    return centred(qa, za).astype(np.int64) * centred(qb, zb).astype(np.int64)


# ==== pooling ===================================================================================

def maxpool(q: np.ndarray, k_hw, strides_hw, pads) -> np.ndarray:
    """out = max over the window of the codes; padded positions never win (they are excluded;
    evaluated by padding with code 0, which cannot exceed a window's real maximum). The output
    keeps the input's (s, z)."""
    tf = _tf()
    x = np.asarray(q, np.float32)  # codes < 2^16: exact in float32
    if any(p for pp in pads for p in pp):
        x = np.pad(x, _tf_pads(pads))
    y = tf.nn.max_pool2d(x, [1, *k_hw, 1], [1, *strides_hw, 1], "VALID").numpy()
    return y.astype(q.dtype)


def pool_counts(in_hw, k_hw, strides_hw, pads, count_include_pad: bool) -> np.ndarray:
    """N[y, x]: the number of input positions averaged at each output position: kh * kw with
    count_include_pad, else the number of non-padding positions in the window,
    N = valid_h[y] * valid_w[x], valid = min(start + k, n) - max(start, 0), start = o * s - before."""
    out = []
    for n, k, s, (pb, pa) in zip(in_hw, k_hw, strides_hw, pads):
        on = (n + pb + pa - k) // s + 1
        start = np.arange(on) * s - pb
        valid = np.minimum(start + k, n) - np.maximum(start, 0)
        out.append(np.full(on, k) if count_include_pad else valid)
    return np.outer(out[0], out[1]).astype(np.int64)


def avgpool_acc(q: np.ndarray, zp: int, bits: int, k_hw, strides_hw, pads) -> np.ndarray:
    """acc[n, y, x, c] = sum over the window of (q - zp), padded positions contributing 0.
    The activation unit then rescales position (y, x) by s_in / (N[y, x] * s_out)."""
    tf = _tf()
    x = centred(q, zp)
    c = x.shape[-1]
    ones = np.ones((k_hw[0], k_hw[1], c, 1), np.int64)

    def op(xf, wf):
        xt = tf.constant(xf)
        if any(p for pp in pads for p in pp):
            xt = tf.pad(xt, _tf_pads(pads))
        return tf.nn.depthwise_conv2d(xt, wf, [1, *strides_hw, 1], "VALID").numpy()

    return exact_linear(op, x, max_centred(zp, bits), ones, k_hw[0] * k_hw[1])


def requantize_per_position(acc: np.ndarray, counts: np.ndarray, count_values: np.ndarray,
                            M: np.ndarray, r: np.ndarray, zp: int, bits: int) -> np.ndarray:
    """Average pool's activation unit: position (y, x) uses the (M, r) of its count N[y, x]
    (count_values sorted, M / r aligned with them); out = clamp(rescale + zp, 0, 2^b - 1)."""
    idx = np.searchsorted(count_values, counts)
    Mp = np.asarray(M, np.int64)[idx][None, :, :, None]
    rp = np.asarray(r, np.int64)[idx][None, :, :, None]
    return requantize(acc, Mp, rp, zp, 0, qmax(bits), bits)


def global_sum_acc(q: np.ndarray, zp: int) -> np.ndarray:
    """Global average pool: acc[n, c] = sum_{y, x} (q - zp)[n, y, x, c] (int64); the activation
    unit rescales by s_in / (H * W * s_out)."""
    return centred(q, zp).astype(np.int64).sum(axis=(1, 2))


def reduce_sum_acc(q: np.ndarray, zp: int, axes) -> np.ndarray:
    """acc = sum over `axes` of (q - zp) (keepdims), int64; rescaled by s_in / s_out."""
    return centred(q, zp).astype(np.int64).sum(axis=tuple(axes), keepdims=True)


def reduce_max(q: np.ndarray, axes) -> np.ndarray:
    """max of the codes over `axes` (keepdims); the output keeps the input's (s, z)."""
    return np.max(q, axis=tuple(axes), keepdims=True)


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
    if align_corners:
        i = fl + (v - fl >= f32(0.5))
    else:
        i = fl
    return np.clip(i.astype(np.int64), 0, n_in - 1)


def resize_nearest(q: np.ndarray, out_hw, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """out[n, y, x, c] = q[n, iy[y], ix[x], c] (nearest_indices); keeps the input's (s, z)."""
    iy = nearest_indices(q.shape[1], out_hw[0], align_corners, half_pixel)
    ix = nearest_indices(q.shape[2], out_hw[1], align_corners, half_pixel)
    return q[:, iy][:, :, ix]


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


def resize_bilinear_acc(q: np.ndarray, zp: int, out_hw, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """acc[n, y, x, c] = sum_{a, b in {0, 1}} wy_a[y] * wx_b[x] * (q - zp)[n, iy_a[y], ix_b[x], c],
    wy_0 = 256 - fy, wy_1 = fy (bilinear_taps), weights summing to 2^16; int64.
    The activation unit rescales by s_in * 2^-16 / s_out."""
    x = centred(q, zp).astype(np.int64)
    y0, y1, fy = bilinear_taps(q.shape[1], out_hw[0], align_corners, half_pixel)
    x0, x1, fx = bilinear_taps(q.shape[2], out_hw[1], align_corners, half_pixel)
    fy = fy[None, :, None, None]
    fx = fx[None, None, :, None]
    t = x[:, y0] * (256 - fy) + x[:, y1] * fy
    return t[:, :, x0] * (256 - fx) + t[:, :, x1] * fx


# ==== input normalization (on-chip affine) ======================================================

def normalization_acc(q: np.ndarray, zp: int, B: np.ndarray) -> np.ndarray:
    """acc[..., c] = (q - zp) * 2^8 + B[c], B[c] = rhe(-mean[c] / s_in * 2^8);
    s_acc[c] = s_in * 2^-8 / std[c], then the usual rescale to the output."""
    return centred(q, zp).astype(np.int64) * 256 + np.asarray(B, np.int64)


# ==== data movement (codes only, (s, z) kept) ===================================================

def pad_codes(q: np.ndarray, pads, value_code: int) -> np.ndarray:
    """Pad [[top, bottom], [left, right], [front, back]] with the code of the constant
    (clamp(rhe(c / s) + z, 0, 2^b - 1); z for c = 0)."""
    return np.pad(q, [(0, 0)] + [tuple(p) for p in pads], constant_values=value_code)


def concat_codes(parts: list[np.ndarray], axis: int) -> np.ndarray:
    """Concatenation of (already requantized) codes."""
    return np.concatenate(parts, axis=axis)


def slice_codes(q: np.ndarray, begin, end) -> np.ndarray:
    return q[(slice(None),) + tuple(slice(b, e) for b, e in zip(begin, end))]


def space_to_depth(q: np.ndarray, bs: int) -> np.ndarray:
    """TF space_to_depth: out[n, y, x, (i * bs + j) * C + c] = q[n, y * bs + i, x * bs + j, c]."""
    n, h, w, c = q.shape
    t = q.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
    return t.reshape(n, h // bs, w // bs, bs * bs * c)


def depth_to_space(q: np.ndarray, bs: int, mode: str = "DCR") -> np.ndarray:
    """DCR (TF): out[n, y*bs + i, x*bs + j, c] = q[n, y, x, (i * bs + j) * C' + c];
    CRD: out[n, y*bs + i, x*bs + j, c] = q[n, y, x, c * bs^2 + i * bs + j]."""
    n, h, w, c = q.shape
    co = c // (bs * bs)
    if mode == "DCR":
        t = q.reshape(n, h, w, bs, bs, co).transpose(0, 1, 3, 2, 4, 5)
    else:
        t = q.reshape(n, h, w, co, bs, bs).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, h * bs, w * bs, co)


def feature_shuffle(q: np.ndarray, groups: int) -> np.ndarray:
    """Channel shuffle: out[..., j * g + i] = q[..., i * (C / g) + j]."""
    shp = q.shape
    c = shp[-1]
    return np.swapaxes(q.reshape(shp[:-1] + (groups, c // groups)), -1, -2).reshape(shp)
