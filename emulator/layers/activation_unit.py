"""The activation unit every accumulating layer ends in (docs/numerics.md, "The activation unit"):
rescale of the accumulator to the output grid by M * 2^-r, then the activation: a clamp
(linear / ReLU / ReLU6), two slopes (leaky / PReLU), or a 65,536-entry table indexed by a 16-bit
pre-activation code (every other activation).

  clamp:      q = clamp(((acc * M + 2^(r-1)) >> r) + z, lo, hi)
  two slopes: q = clamp(((acc * (acc >= 0 ? M : M_neg) + 2^(r'-1)) >> r') + z, 0, 2^b - 1)
  table:      p = clamp(((acc * M + 2^(r-1)) >> r) + z_pre, 0, 65535);  q = lut[p]

Its four forms, used by the layer kinds: derive (params from the accumulator scale), numeric
(integer), fake_quant (float64 on the same grids, straight-through rounding), check (a loaded
file's values).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._lazy import kernels as K
from ..hn import Layer
from ..numerics.activations import CLAMP_ACTS, LUT_ACTS, SLOPE_ACTS, build_lut
from ..numerics.params import (LUT_SIZE, PRE_ACT_BITS, TensorQ, derive_rescale,
                               derive_signed_rescale, qmax, relu6_hi_code)
from ..quant_errors import UnsupportedLayerError
from .base import F32, F64, I32


def derive(d: Any, layer: Layer, s_acc, alpha=None) -> None:
    """M, r, act_lo, act_hi (and M_neg, r_neg for leaky / PReLU, or pre_scale, pre_zp, lut for
    tables) of the unit fed by an accumulator of scale s_acc (per channel or scalar)."""
    name = layer.name
    out = d.tq[name]
    C = int(layer.output_shape[-1])
    s_acc = np.broadcast_to(np.asarray(s_acc, np.float64), (C,)).copy()
    act = layer.activation
    d.put(name, "s_acc", s_acc)
    if act in LUT_ACTS:
        pre = d.pre_tensor(name)
        M, r = derive_rescale(s_acc / np.float64(pre.scale), PRE_ACT_BITS, name, "pre-activation rescale")
        d.put(name, "pre_scale", np.array(pre.scale, np.float32))
        d.put(name, "pre_zp", np.array(pre.zp, np.int32))
        d.put(name, "pre_range", np.asarray(d.stats[name + "/pre"], np.float64))
        d.put(name, "lut", build_lut(act, pre.scale, pre.zp, out.scale, out.zp, out.bits))
        lo, hi = 0, qmax(out.bits)
    else:
        M, r = derive_rescale(s_acc / np.float64(out.scale), out.bits, name)
        clip = d.params(name).get("act_clip") if act == "relu6" else None
        if clip is not None:
            d.put(name, "act_clip", np.asarray(clip, np.float64))
        lo, hi = clamp_codes(act, out, clip)
        if act in SLOPE_ACTS:
            a = np.float64(layer.params.get("leaky_alpha", 0.2)) if act == "leaky" else \
                np.asarray(alpha, np.float64)
            Mn, rn = derive_signed_rescale(a * s_acc / np.float64(out.scale), out.bits, name)
            d.put(name, "M_neg", np.broadcast_to(Mn, (C,)).astype(np.int32))
            d.put(name, "r_neg", np.broadcast_to(rn, (C,)).astype(np.int32))
        elif act not in CLAMP_ACTS:
            raise UnsupportedLayerError(f"layer '{name}': activation '{act}' has no integer form")
    d.put(name, "M", M.astype(np.int32))
    d.put(name, "r", r.astype(np.int32))
    d.put(name, "act_lo", np.full(C, lo, np.int32))
    d.put(name, "act_hi", np.full(C, hi, np.int32))


def clamp_codes(act: str, out: TensorQ, clip=None):
    """(lo, hi) clamp codes: the code range, from z for ReLU, to the code of 6 for ReLU6 (of
    clip[c] per channel when the ReLU6 carries a per-channel clip)."""
    lo, hi = 0, qmax(out.bits)
    if act in ("relu", "relu6"):
        lo = out.zp
    if act == "relu6":
        hi = relu6_hi_code(out.zp, out.scale, out.bits, 6.0 if clip is None else clip)
    return lo, hi


def numeric(q: Any, name: str, acc):
    """The integer unit on an int64 accumulator: codes of the output tensor."""
    out = q.tensor(name)
    M, r = q.get(name, "M"), q.get(name, "r")
    if q.has(name, "lut"):
        return K.lut_activation(acc, M, r, int(q.get(name, "pre_zp")), q.get(name, "lut"))
    if q.has(name, "M_neg"):
        return K.requantize_two_slope(acc, M, r, q.get(name, "M_neg"), q.get(name, "r_neg"),
                                      out.zp, out.bits)
    return K.requantize(acc, M, r, out.zp, q.get(name, "act_lo"), q.get(name, "act_hi"), out.bits)


def fake_quant(f: Any, layer: Layer, acc, bias=None, inputs: list | None = None, acc_fn=None,
               key: str | None = None):
    """The unit on the integer accumulator, as one fused op of the context (f.unit / f.table):
    float64 on the same grids with the stored (or, while QFT trains the scales, the re-derived)
    M * 2^-r, floor(v + 1/2) straight-through, clamps; tables take the stored table's code, with
    the activation's derivative as gradient. Returns the dequantized float32 output.

    acc: a float32 / float64 tensor holding the exact integer accumulator, or None with `inputs`
    and `acc_fn` (acc = acc_fn(*inputs), computed inside the fused op: the centring of the
    inputs fuses with the unit); bias: added to acc (numpy integers or a trained tensor); key:
    names the fused op (default the layer's name; another acc_fn of the same layer needs its
    own)."""
    from ..float_ops import activation_fn

    name = layer.name
    out = f.tensor(name)
    if acc_fn is None:
        inputs, acc_fn = [acc], _identity
    m = f.rescale(name, layer)
    if f.has(name, "lut"):
        pre = TensorQ(float(f.get(name, "pre_scale")), int(f.get(name, "pre_zp")), PRE_ACT_BITS)
        alpha = layer.params.get("leaky_alpha", 0.2)
        return f.table(key or name, inputs, acc_fn, m, pre, f.get(name, "lut"),
                       lambda v: activation_fn(layer.activation, v, leaky_alpha=alpha), out, bias=bias)
    if f.has(name, "M_neg"):
        return f.unit(key or name, inputs, acc_fn, m, out, bias=bias,
                      m_neg=f.rescale(name, layer, "M_neg", "r_neg"))
    return f.unit(key or name, inputs, acc_fn, m, out, f.get(name, "act_lo"), f.get(name, "act_hi"),
                  bias=bias)


def _identity(a):
    return a


def fields(layer: Layer) -> dict[str, tuple[tuple, tuple | None, bool]]:
    C = int(layer.output_shape[-1])
    out = {"s_acc": (F64, (C,), True), "M": (I32, (C,), True), "r": (I32, (C,), True),
           "act_lo": (I32, (C,), True), "act_hi": (I32, (C,), True)}
    if layer.activation in LUT_ACTS:
        out.update(pre_scale=(F32, (), True), pre_zp=(I32, (), True), pre_range=(F64, (2,), True),
                   lut=((np.uint8, np.uint16), (LUT_SIZE,), True))
    elif layer.activation in SLOPE_ACTS:
        out.update(M_neg=(I32, (C,), True), r_neg=(I32, (C,), True))
    elif layer.activation == "relu6":
        out.update(act_clip=(F64, (C,), False))  # a per-channel clip (after equalization)
    return out


def check(c: Any, layer: Layer, s_acc_want) -> None:
    """A loaded unit: scales positive, shifts and mantissas in range, clamps inside the codes, and
    (rederiving) M, r, the negative slope of leaky and the clamps equal to what the stored scales
    give. s_acc_want: the accumulator scale the inputs give, or None when it is not derivable."""
    name, act = layer.name, layer.activation
    out = c.tq[name]
    c.finite_positive(name, "s_acc", "accumulator scales")
    s_acc = c.a(name, "s_acc")
    C = s_acc.shape[0]
    if c.rederive and s_acc_want is not None:
        want = np.broadcast_to(np.asarray(s_acc_want, np.float64), (C,))
        bad = np.flatnonzero(s_acc != want)
        if bad.size:
            i = int(bad[0])
            raise c.fail(name, "s_acc", f"expected {c.fmt(want[i])} at index {i}, the accumulator scale "
                                        f"its input and weight scales give, found {c.fmt(s_acc[i])}")
    if act in LUT_ACTS:
        pre = c.scale_zp(name, "pre_scale", "pre_zp", PRE_ACT_BITS, "pre-activation")
        c.range_pair(name, "pre_range")
        if c.rederive:
            c.rederive_tensor(name, "pre_range", "pre_scale", "pre_zp", pre, "pre-activation")
        lut = c.a(name, "lut")
        want_dt = np.uint8 if out.bits == 8 else np.uint16
        if lut.dtype != want_dt:
            raise c.fail(name, "lut", f"expected dtype {np.dtype(want_dt).name} (codes of the "
                                      f"{out.bits}-bit output), found {lut.dtype}")
        c.check_rescale(name, "M", "r", PRE_ACT_BITS)
        if c.rederive:
            c.rederived_rescale(name, "M", "r", s_acc / np.float64(pre.scale), PRE_ACT_BITS,
                                "pre-activation rescale")
    else:
        c.check_rescale(name, "M", "r", out.bits)
        if c.rederive:
            c.rederived_rescale(name, "M", "r", s_acc / np.float64(out.scale), out.bits, "output rescale")
        if act in SLOPE_ACTS:
            c.check_rescale(name, "M_neg", "r_neg", out.bits, signed=True)
            if c.rederive and act == "leaky":
                a = np.float64(layer.params.get("leaky_alpha", 0.2))
                c.rederived_rescale(name, "M_neg", "r_neg", a * s_acc / np.float64(out.scale),
                                    out.bits, "negative-side rescale", signed=True)
    c.int_range(name, "act_lo", 0, qmax(out.bits), f"clamp codes of a {out.bits}-bit output")
    c.int_range(name, "act_hi", 0, qmax(out.bits), f"clamp codes of a {out.bits}-bit output")
    lo, hi = c.a(name, "act_lo"), c.a(name, "act_hi")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = int(bad[0])
        raise c.fail(name, "act_hi", f"expected act_hi >= act_lo, found {int(hi[i])} < {int(lo[i])} "
                                     f"at index {i}")
    if "act_clip" in c.fields[name]:
        c.finite_positive(name, "act_clip", "per-channel ReLU6 clips")
    if c.rederive:
        clip = c.a(name, "act_clip") if "act_clip" in c.fields[name] else None
        wlo, whi = clamp_codes(act, out, clip)
        wlo, whi = np.broadcast_to(wlo, lo.shape), np.broadcast_to(whi, hi.shape)
        for fld, arr, want in (("act_lo", lo, wlo), ("act_hi", hi, whi)):
            bad = np.flatnonzero(arr != want)
            if bad.size:
                i = int(bad[0])
                raise c.fail(name, fld, f"expected {int(want[i])} (activation {act} on an output with zero "
                                        f"point {out.zp}, {out.bits} bits), found {int(arr[i])} at index {i}")
