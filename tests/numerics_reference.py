"""An independent plain-numpy integer reference of docs/numerics.md.

Written from the documentation, not from emulator/numerics: it imports nothing from the emulator
(except, in `run_network`, the HN object it walks) and uses no TensorFlow. Convolutions are
explicit loops over kernel offsets with int64 products; shifts are floor divisions by Python
powers of two; derivations use Python's math module where the implementation uses numpy.
The tests compare it with SdkNumeric bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------- derivations ----


def ref_tensor_params(lo, hi, bits):
    lo2, hi2 = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi2 - lo2 < 1e-6:
        return None
    qm = 2 ** bits - 1
    s = float(np.float32((hi2 - lo2) / qm))
    z = round(-lo2 / s)  # Python round: half to even
    return s, min(max(z, 0), qm)


def ref_limvals(s, z, bits):
    return (float(np.float32(s * (0 - z))), float(np.float32(s * (2 ** bits - 1 - z))))


def ref_quantize_weights(w2d, bits, groups, zero_scale=1.0):
    w2d = np.asarray(w2d, np.float64)
    c = w2d.shape[1]
    lim = 2 ** (bits - 1) - 1
    q = np.zeros(w2d.shape, np.int64)
    scales = []
    for g in range(groups):
        a, b = g * c // groups, (g + 1) * c // groups
        mx = float(np.abs(w2d[:, a:b]).max()) if b > a else 0.0
        s = mx / lim if mx > 0 else (zero_scale[g] if np.ndim(zero_scale) else zero_scale)
        scales.append(s)
        for o in range(a, b):
            for k in range(w2d.shape[0]):
                v = round(float(w2d[k, o]) / s)
                q[k, o] = min(max(v, -lim), lim)
    return q, np.array(scales)


def ref_bias(b_ideal, mant_bits):
    mmax = 2 ** (mant_bits - 1) - 1
    e = 0
    while True:
        mant = [round(float(v) / 2 ** e) for v in b_ideal]
        if all(abs(m) <= mmax for m in mant):
            return np.array(mant, np.int64), e
        e += 1


def ref_rescale_params(m, dest_bits):
    """(M, r) or None when the slope is unsupported."""
    f, x = math.frexp(float(m))
    r = 15 - x
    M = round(f * 32768)
    if M == 32768:
        M, r = 16384, r - 1
    rmin = 7 if dest_bits == 8 else 0
    if r < rmin or r > 46:
        return None
    return M, r


def ref_signed_rescale(m, dest_bits):
    if m == 0:
        return 0, 0
    f, x = math.frexp(abs(float(m)))
    r = 15 - x
    M = round(f * 32768)
    if M == 32768:
        M, r = 16384, r - 1
    if r > 46:
        return 0, 0
    assert r >= (7 if dest_bits == 8 else 0), "slope too steep"
    return (M if m > 0 else -M), r


def ref_ew_mults(scales, any16):
    t = 22 if any16 else 14
    s_acc = max(scales) / 2 ** t
    return [round(s / s_acc) for s in scales], s_acc


def _ref_act(act, x):
    if act == "sigmoid":
        return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
    if act == "tanh":
        return math.tanh(x)
    if act == "silu":
        return x / (1.0 + math.exp(-x)) if x > -700 else 0.0
    if act == "hardsigmoid":
        return min(max(x + 3.0, 0.0), 6.0) / 6.0
    if act == "hardswish":
        return x * min(max(x + 3.0, 0.0), 6.0) / 6.0
    if act == "gelu":
        return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
    if act == "gelu_tanh":
        return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if act == "elu":
        return x if x > 0 else math.expm1(x)
    if act == "exp":
        return math.exp(x) if x < 700 else math.inf
    if act == "softplus":
        return math.log1p(math.exp(-abs(x))) + max(x, 0.0)
    if act == "mish":
        sp = math.log1p(math.exp(-abs(x))) + max(x, 0.0)
        return x * math.tanh(sp)
    raise ValueError(act)


def ref_lut(act, s_pre, z_pre, s_out, z_out, bits):
    qm = 2 ** bits - 1
    out = np.zeros(65536, np.int64)
    for i in range(65536):
        v = _ref_act(act, s_pre * (i - z_pre)) / s_out
        c = qm if math.isinf(v) and v > 0 else (0 if math.isinf(v) else round(v) + z_out)
        out[i] = min(max(c, 0), qm)
    return out


# ----------------------------------------------------------------------- integer ops ---------


def ref_pads(n, k, s, d, padding):
    if padding == "VALID":
        return 0, 0
    out = (n + s - 1) // s
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    half = total // 2
    return (total - half, half) if padding == "SAME" else (half, total - half)


def ref_conv(x, w, strides=(1, 1), dil=(1, 1), pads=((0, 0), (0, 0)), groups=1):
    """x int64 centred codes [N,H,W,C]; w [kh,kw,cin/g,cout]. Zero padding (the real zero)."""
    x = np.pad(np.asarray(x, np.int64), ((0, 0), pads[0], pads[1], (0, 0)))
    w = np.asarray(w, np.int64)
    n, h, wd, c = x.shape
    kh, kw, cig, co = w.shape
    cog = co // groups
    oh = (h - (kh - 1) * dil[0] - 1) // strides[0] + 1
    ow = (wd - (kw - 1) * dil[1] - 1) // strides[1] + 1
    out = np.zeros((n, oh, ow, co), np.int64)
    for g in range(groups):
        xg = x[..., g * cig:(g + 1) * cig]
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dil[0], j * dil[1]
                patch = xg[:, y0:y0 + (oh - 1) * strides[0] + 1:strides[0],
                           x0:x0 + (ow - 1) * strides[1] + 1:strides[1], :]
                for ci in range(cig):
                    out[..., g * cog:(g + 1) * cog] += patch[..., ci:ci + 1] * w[i, j, ci, g * cog:(g + 1) * cog]
    return out


def ref_depthwise(x, w, strides=(1, 1), dil=(1, 1), pads=((0, 0), (0, 0))):
    kh, kw, c, mult = w.shape
    # depthwise = grouped conv with groups = C, output channel c * mult + k
    wg = np.asarray(w, np.int64).reshape(kh, kw, 1, c * mult)
    return ref_conv(x, wg, strides, dil, pads, groups=c)


def ref_dense(x, w):
    x = np.asarray(x, np.int64).reshape(x.shape[0], -1)
    w = np.asarray(w, np.int64)
    out = np.zeros((x.shape[0], w.shape[1]), np.int64)
    for k in range(x.shape[1]):
        out += x[:, k:k + 1] * w[k]
    return out


def ref_deconv(x, w, strides, out_hw, padding):
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    n, ih, iw, ci = x.shape
    kh, kw, _, co = w.shape
    fh, fw = (ih - 1) * strides[0] + kh, (iw - 1) * strides[1] + kw
    full = np.zeros((n, fh, fw, co), np.int64)
    for y in range(ih):
        for xx in range(iw):
            contrib = np.einsum("nc,ijco->nijo", x[:, y, xx, :], w)
            full[:, y * strides[0]:y * strides[0] + kh, xx * strides[1]:xx * strides[1] + kw] += contrib
    crops = []
    for f, o in zip((fh, fw), out_hw):
        t = f - o
        crops.append(t - t // 2 if padding == "SAME" else t // 2)
    return full[:, crops[0]:crops[0] + out_hw[0], crops[1]:crops[1] + out_hw[1]]


def ref_shift_round(acc, M, r):
    """round half up of acc * M / 2^r, by floor division with Python ints per distinct r."""
    acc = np.asarray(acc, np.int64)
    M = np.broadcast_to(np.asarray(M, np.int64), acc.shape)
    r = np.broadcast_to(np.asarray(r, np.int64), acc.shape)
    out = np.empty(acc.shape, np.int64)
    for rv in np.unique(r):
        sel = r == rv
        p = acc[sel] * M[sel]
        out[sel] = p if rv == 0 else np.floor_divide(p + 2 ** (int(rv) - 1), 2 ** int(rv))
    return out


def ref_clamp_act(acc, M, r, z, lo, hi):
    return np.minimum(np.maximum(ref_shift_round(acc, M, r) + z, lo), hi)


def ref_two_slope(acc, M, r, Mn, rn, z, bits):
    acc = np.asarray(acc, np.int64)
    pos = ref_shift_round(acc, M, r)
    neg = ref_shift_round(acc, Mn, rn)
    y = np.where(acc >= 0, pos, neg) + z
    return np.minimum(np.maximum(y, 0), 2 ** bits - 1)


def ref_lut_act(acc, M, r, z_pre, lut):
    p = np.minimum(np.maximum(ref_shift_round(acc, M, r) + z_pre, 0), 65535)
    return np.asarray(lut)[p]


def ref_window_sum(x, k, s, pads):
    x = np.pad(np.asarray(x, np.int64), ((0, 0), pads[0], pads[1], (0, 0)))
    n, h, w, c = x.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.zeros((n, oh, ow, c), np.int64)
    for i in range(k[0]):
        for j in range(k[1]):
            out += x[:, i:i + (oh - 1) * s[0] + 1:s[0], j:j + (ow - 1) * s[1] + 1:s[1]]
    return out


def ref_window_counts(hw, k, s, pads, include):
    ones = np.ones((1, hw[0], hw[1], 1), np.int64)
    cnt = ref_window_sum(ones, k, s, pads)[0, :, :, 0]
    return np.full(cnt.shape, k[0] * k[1]) if include else cnt


def ref_maxpool(q, k, s, pads):
    x = np.pad(np.asarray(q, np.int64), ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-1)
    n, h, w, c = x.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.full((n, oh, ow, c), -1, np.int64)
    for i in range(k[0]):
        for j in range(k[1]):
            out = np.maximum(out, x[:, i:i + (oh - 1) * s[0] + 1:s[0], j:j + (ow - 1) * s[1] + 1:s[1]])
    return out


def ref_bilinear_taps(n_in, n_out, align, half):
    taps = []
    for o in range(n_out):
        if align and n_out > 1:
            num, den = o * (n_in - 1) * 256, n_out - 1
        elif half:
            num, den = ((2 * o + 1) * n_in - n_out) * 128, n_out
        else:
            num, den = o * n_in * 256, n_out
        p = max((2 * num + den) // (2 * den), 0)
        i0, f = p // 256, p % 256
        if i0 >= n_in - 1:
            i0, f = n_in - 1, 0
        taps.append((i0, min(i0 + 1, n_in - 1), f))
    return taps


def ref_bilinear_acc(x, out_hw, align, half):
    x = np.asarray(x, np.int64)
    n, h, w, c = x.shape
    ty = ref_bilinear_taps(h, out_hw[0], align, half)
    tx = ref_bilinear_taps(w, out_hw[1], align, half)
    out = np.zeros((n, out_hw[0], out_hw[1], c), np.int64)
    for oy, (a0, a1, fy) in enumerate(ty):
        for ox, (b0, b1, fx) in enumerate(tx):
            out[:, oy, ox] = ((256 - fy) * (256 - fx) * x[:, a0, b0] + (256 - fy) * fx * x[:, a0, b1]
                              + fy * (256 - fx) * x[:, a1, b0] + fy * fx * x[:, a1, b1])
    return out


def ref_nearest_index(n_in, n_out, align, half):
    """TensorFlow's ResizeNearestNeighbor index arithmetic (float32), element by element."""
    f32 = np.float32
    scale = f32(n_in - 1) / f32(n_out - 1) if (align and n_out > 1) else f32(n_in) / f32(n_out)
    idx = []
    for o in range(n_out):
        v = float(f32(f32(f32(o) + f32(0.5)) * scale)) if half else float(f32(f32(o) * scale))
        i = math.floor(v)
        if align and v - i >= 0.5:
            i += 1
        idx.append(min(max(i, 0), n_in - 1))
    return idx


def ref_space_to_depth(q, bs):
    n, h, w, c = q.shape
    out = np.zeros((n, h // bs, w // bs, bs * bs * c), q.dtype)
    for i in range(bs):
        for j in range(bs):
            out[..., (i * bs + j) * c:(i * bs + j + 1) * c] = q[:, i::bs, j::bs, :]
    return out


def ref_depth_to_space(q, bs, mode):
    n, h, w, c = q.shape
    co = c // (bs * bs)
    out = np.zeros((n, h * bs, w * bs, co), q.dtype)
    for i in range(bs):
        for j in range(bs):
            if mode == "DCR":
                out[:, i::bs, j::bs, :] = q[..., (i * bs + j) * co:(i * bs + j + 1) * co]
            else:
                out[:, i::bs, j::bs, :] = q[..., i * bs + j::bs * bs]
    return out


def ref_feature_shuffle(q, g):
    c = q.shape[-1]
    out = np.zeros_like(q)
    for i in range(g):
        for j in range(c // g):
            out[..., j * g + i] = q[..., i * (c // g) + j]
    return out


# -------------------------------------------------------------------- network walker --------


def _P(qp, net, layer, field):
    return qp[f"{net}/{layer}/{field}:0"]


def _placement(v) -> str:
    """Where a stored layer runs: its "kind" by name, or a version 1 int32 code (0, 1, 2)."""
    v = np.asarray(v)
    return str(v) if v.dtype.kind == "U" else ("chip", "host", "folded")[int(v)]


def _has(qp, net, layer, field):
    return f"{net}/{layer}/{field}:0" in qp


def run_network(hn, qp: dict, input_codes: dict) -> dict:
    """Walk the HN in order and compute every on-chip layer's output codes from the stored
    quantized params (docs/numerics.md "Stored parameters"), input codes given per input layer.
    Returns {layer: int64 codes} (host ops and folded normalizations are skipped)."""
    net = hn.name
    codes: dict[str, np.ndarray] = {}
    tq: dict[str, tuple] = {}

    def tensor(name):
        return (float(_P(qp, net, name, "out_scale")), int(_P(qp, net, name, "out_zp")),
                int(_P(qp, net, name, "out_bits")))

    def src(layer, i=0):
        """(codes, (s, z, b)) of input i, skipping folded normalizations."""
        name = layer.input[i]
        while _placement(_P(qp, net, name, "kind")) == "folded":
            name = hn.layers[name].input[0]
        return codes[name], tq[name]

    def act_unit(layer, acc):
        s, z, b = tensor(layer.name)
        act = layer.params.get("activation", "linear")
        M, r = _P(qp, net, layer.name, "M"), _P(qp, net, layer.name, "r")
        if act in ("leaky", "prelu"):
            return ref_two_slope(acc, M, r, _P(qp, net, layer.name, "M_neg"),
                                 _P(qp, net, layer.name, "r_neg"), z, b)
        if _has(qp, net, layer.name, "lut"):
            return ref_lut_act(acc, M, r, int(_P(qp, net, layer.name, "pre_zp")),
                               _P(qp, net, layer.name, "lut"))
        return ref_clamp_act(acc, M, r, z, _P(qp, net, layer.name, "act_lo"),
                             _P(qp, net, layer.name, "act_hi"))

    for layer in hn.topological():
        name, t, p = layer.name, layer.type, layer.params
        if _placement(_P(qp, net, name, "kind")) != "chip":
            continue
        if t == "input_layer":
            codes[name] = np.asarray(input_codes[name], np.int64)
            tq[name] = tensor(name)
            continue
        q, (s_in, z_in, b_in) = src(layer)
        x = q - z_in
        if t in ("conv", "dw", "dense", "deconv"):
            qw = _P(qp, net, name, "q_w").astype(np.int64)
            B = _P(qp, net, name, "bias_mantissa").astype(np.int64) * 2 ** int(_P(qp, net, name, "bias_exponent"))
            if t == "dense":
                acc = ref_dense(x, qw)
            elif t == "deconv":
                acc = ref_deconv(x, qw, p["strides"][1:3], layer.output_shape[1:3], p["padding"])
            else:
                k, st = p["kernel_shape"], p["strides"][1:3]
                d = p.get("dilations", [1, 1, 1, 1])[1:3]
                pads = (ref_pads(x.shape[1], k[0], st[0], d[0], p["padding"]),
                        ref_pads(x.shape[2], k[1], st[1], d[1], p["padding"]))
                if t == "conv":
                    acc = ref_conv(x, qw, st, d, pads, int(p.get("groups", 1)))
                else:
                    acc = ref_depthwise(x, qw, st, d, pads)
            out = act_unit(layer, acc + B)
        elif t == "activation":
            out = act_unit(layer, x)
        elif t in ("ew_add", "ew_sub"):
            q2, (s2, z2, b2) = src(layer, 1)
            A = _P(qp, net, name, "ew_mult")
            a, bb = int(A[0]) * x, int(A[1]) * (q2 - z2)
            out = act_unit(layer, a - bb if t == "ew_sub" else a + bb)
        elif t == "ew_mult":
            q2, (s2, z2, b2) = src(layer, 1)
            out = act_unit(layer, x * (q2 - z2))
        elif t == "maxpool":
            k, st = p["kernel_shape"][1:3], p["strides"][1:3]
            pads = (ref_pads(x.shape[1], k[0], st[0], 1, p["padding"]),
                    ref_pads(x.shape[2], k[1], st[1], 1, p["padding"]))
            out = ref_maxpool(q, k, st, pads)
        elif t == "avgpool":
            k, st = p["kernel_shape"][1:3], p["strides"][1:3]
            pads = (ref_pads(x.shape[1], k[0], st[0], 1, p["padding"]),
                    ref_pads(x.shape[2], k[1], st[1], 1, p["padding"]))
            acc = ref_window_sum(x, k, st, pads)
            cnt = ref_window_counts(x.shape[1:3], k, st, pads, bool(p.get("count_include_pad", False)))
            counts = list(_P(qp, net, name, "pool_counts"))
            M, r = _P(qp, net, name, "M"), _P(qp, net, name, "r")
            Mmap = np.vectorize(lambda v: int(M[counts.index(v)]))(cnt)[None, :, :, None]
            rmap = np.vectorize(lambda v: int(r[counts.index(v)]))(cnt)[None, :, :, None]
            s, z, b = tensor(name)
            out = np.minimum(np.maximum(ref_shift_round(acc, Mmap, rmap) + z, 0), 2 ** b - 1)
        elif t == "global_avg_pool":
            acc = x.sum(axis=(1, 2))
            out = act_unit(layer, acc).reshape([-1] + layer.output_shape[1:])
        elif t == "concat":
            s, z, b = tensor(name)
            parts = []
            for i in range(len(layer.input)):
                qi, (si, zi, bi) = src(layer, i)
                if _has(qp, net, name, f"in{i}_M"):
                    qi = np.minimum(np.maximum(ref_shift_round(qi - zi, _P(qp, net, name, f"in{i}_M"),
                                                               _P(qp, net, name, f"in{i}_r")) + z, 0), 2 ** b - 1)
                parts.append(qi)
            out = np.concatenate(parts, axis=int(p["concat_axis"]))
        elif t == "resize":
            oh, ow = p["output_shape"][1:3]
            align = bool(p.get("align_corners", False))
            half = bool(p.get("half_pixel", not align))
            if p["method"] == "nearest":
                iy = ref_nearest_index(q.shape[1], oh, align, half)
                ix = ref_nearest_index(q.shape[2], ow, align, half)
                out = q[:, iy][:, :, ix]
            else:
                out = act_unit(layer, ref_bilinear_acc(x, (oh, ow), align, half))
        elif t == "normalization":
            acc = x * 256 + _P(qp, net, name, "norm_bias").astype(np.int64)
            out = act_unit(layer, acc)
        elif t == "pad":
            out = np.pad(q, [(0, 0)] + [tuple(pp) for pp in p["pads"]],
                         constant_values=int(_P(qp, net, name, "pad_code")))
        elif t == "reshape":
            out = q.reshape([-1] + layer.output_shape[1:])
        elif t == "slice":
            out = q[(slice(None),) + tuple(slice(a, e) for a, e in zip(p["begin"], p["end"]))]
        elif t == "space_to_depth":
            out = ref_space_to_depth(q, int(p["block_size"]))
        elif t == "depth_to_space":
            out = ref_depth_to_space(q, int(p["block_size"]), p.get("mode", "DCR"))
        elif t == "feature_shuffle":
            out = ref_feature_shuffle(q, int(p["groups"]))
        elif t == "reduce_max":
            out = q.max(axis=tuple(p["axes"]), keepdims=True).reshape([-1] + layer.output_shape[1:])
        elif t == "reduce_sum":
            acc = x.sum(axis=tuple(p["axes"]), keepdims=True)
            out = act_unit(layer, acc).reshape([-1] + layer.output_shape[1:])
        elif t == "output_layer":
            out = q
        else:
            raise NotImplementedError(f"reference: layer type {t}")
        codes[name] = np.asarray(out, np.int64)
        tq[name] = tensor(name)
    return codes
