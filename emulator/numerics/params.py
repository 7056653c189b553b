"""Derivation of the chip's integer parameters from float quantities (docs/numerics.md).

Every function is a plain numpy function computing one documented formula in float64 (IEEE,
correctly rounded elementwise operations only, so the result is the same on every machine).
Rounding is round-half-to-even (`np.rint`) wherever the docs say `rhe`.
"""
from __future__ import annotations

import dataclasses
import math
import numpy as np

from ..quant_errors import (AccumulatorOverflowError, LimvalsOutSmallRangeError,
                            QuantizationError, UnsupportedRequiredSlopeError)

# --- constants of the emulated chip (docs/numerics.md, "Constants") ---------------------------
LIMVALS_MIN_WIDTH = 1e-6   # a calibrated range narrower than this is "limvals out small range"
MANTISSA_BITS = 15         # rescale mantissa M: unsigned, normalized to [2^14, 2^15 - 1]
SHIFT_MAX = 46             # longest right shift of the activation unit (31 + 15)
SHIFT_MIN = {8: 7, 16: 0}  # shortest shift per destination width: slope < 2^8 resp. < 2^15
ACC_LIMIT_BITS = 48        # |acc| < 2^47: the activation unit's input (acc * M fits int64)
BIAS_MANTISSA_BITS = {"single_scale_decomposition": 8, "double_scale_initialization": 16}
EW_EXTRA_BITS = {8: 14, 16: 22}  # element-wise operand multipliers: larger scale -> 2^t
PRE_ACT_BITS = 16          # LUT activations index a 16-bit pre-activation code
LUT_SIZE = 1 << PRE_ACT_BITS

def rhe(x):
    """Round half to even, float64 (numpy's rint)."""
    return np.rint(np.asarray(x, np.float64))


def qmax(bits: int) -> int:
    return (1 << bits) - 1


# --- tensors -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TensorQ:
    """Quantization of one activation tensor: real = scale * (code - zp), codes in [0, 2^bits-1].
    `scale` is a float32 value (the one the stream layer's QuantInfo carries)."""

    scale: float
    zp: int
    bits: int

    @property
    def limvals(self) -> tuple[float, float]:
        s = np.float64(np.float32(self.scale))
        return (float(np.float32(s * (0 - self.zp))), float(np.float32(s * (qmax(self.bits) - self.zp))))

    @property
    def dtype(self):
        return np.uint8 if self.bits == 8 else np.uint16

    @property
    def max_centred(self) -> int:
        """max |code - zp| over the code range."""
        return max(self.zp, qmax(self.bits) - self.zp)


def tensor_params(lo: float, hi: float, bits: int, layer: str = "?", tensor: str = "output") -> TensorQ:
    """Tensor params from a calibrated range.

        lo' = min(lo, 0), hi' = max(hi, 0)
        if hi' - lo' < LIMVALS_MIN_WIDTH: LimvalsOutSmallRangeError
        s = float32((hi' - lo') / (2^b - 1))
        z = clamp(rhe(-lo' / s), 0, 2^b - 1)
    """
    lo_, hi_ = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo_) and math.isfinite(hi_)):
        raise QuantizationError(f"layer '{layer}' ({tensor}): calibrated range [{lo_}, {hi_}] is "
                                f"not finite; the float network overflows on the calibration set")
    if hi_ - lo_ < LIMVALS_MIN_WIDTH:
        raise LimvalsOutSmallRangeError(layer, lo_, hi_, LIMVALS_MIN_WIDTH, tensor)
    s = np.float32((hi_ - lo_) / qmax(bits))
    z = int(np.clip(rhe(-lo_ / np.float64(s)), 0, qmax(bits)))
    return TensorQ(float(s), z, bits)


# --- weights -----------------------------------------------------------------------------------

def group_bounds(channels: int, groups: int) -> np.ndarray:
    """Channel boundaries of `groups` contiguous groups: b_i = floor(i * C / g), i = 0..g.
    Channel o is in group i when b_i <= o < b_{i+1}."""
    return np.array([(i * channels) // groups for i in range(groups + 1)], np.int64)


def channel_groups(channels: int, groups: int) -> np.ndarray:
    """Group index of every output channel."""
    b = group_bounds(channels, groups)
    return np.searchsorted(b, np.arange(channels), side="right") - 1


def quantize_weights(w2d: np.ndarray, bits: int, groups: int,
                     zero_group_scale: np.ndarray | float = 1.0,
                     clip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric weight quantization, one scale per group of output channels.

    w2d: float weights [K, C_out] (the kernel reshaped so the last axis is the output channel).
        s_w[g] = max|W_g| / (2^(bw-1) - 1)          (float64; clip[g] instead of max|W_g|
                                                     when weights are clipped)
        q_w    = clamp(rhe(W / s_w[g(o)]), -(2^(bw-1) - 1), 2^(bw-1) - 1)
    An all-zero group gets s_w[g] = zero_group_scale[g] (the quantizer passes s_dest / s_in, so
    that its rescale is m = 1); its q_w are 0 anyway.
    Returns (q_w int64 [K, C_out], s_w float64 [groups]).
    """
    w2d = np.asarray(w2d, np.float64)
    c = w2d.shape[-1]
    lim = (1 << (bits - 1)) - 1
    b = group_bounds(c, groups)
    zg = np.broadcast_to(np.asarray(zero_group_scale, np.float64), (groups,))
    s_w = np.empty(groups, np.float64)
    for g in range(groups):
        mx = np.max(np.abs(w2d[:, b[g]:b[g + 1]])) if b[g + 1] > b[g] else 0.0
        if clip is not None and mx > 0:
            mx = min(mx, float(clip[g]))
        s_w[g] = mx / lim if mx > 0 else zg[g]
    s_ch = s_w[channel_groups(c, groups)]
    q = np.clip(rhe(w2d / s_ch), -lim, lim).astype(np.int64)
    return q, s_w


# --- bias --------------------------------------------------------------------------------------

def decompose_bias(b_ideal: np.ndarray, mantissa_bits: int) -> tuple[np.ndarray, int]:
    """B = mant * 2^e, one exponent per layer.

        mmax = 2^(k-1) - 1  (k = 8: single_scale_decomposition, 16: double_scale_initialization)
        e    = the smallest integer e >= 0 with max_o |rhe(B_ideal[o] / 2^e)| <= mmax
        mant = rhe(B_ideal / 2^e)
    Returns (mant int64 [C], e).
    """
    b = np.asarray(b_ideal, np.float64)
    mmax = (1 << (mantissa_bits - 1)) - 1
    if b.size == 0 or not np.all(np.isfinite(b)):
        if b.size and not np.all(np.isfinite(b)):
            raise ValueError("bias in accumulator units is not finite")
        return np.zeros(b.shape, np.int64), 0
    e = 0
    while np.max(np.abs(rhe(b / 2.0 ** e))) > mmax:
        e += 1
    return rhe(b / 2.0 ** e).astype(np.int64), e


# --- rescale -----------------------------------------------------------------------------------

def derive_rescale(m, dest_bits: int, layer: str = "?", what: str = "output rescale",
                   allow_vanishing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mantissa and shift of a positive multiplier m (per channel): m ~= M * 2^-r.

        (f, x) = frexp(m)              m = f * 2^x, f in [0.5, 1)
        r = 15 - x;  M = rhe(f * 2^15) (in [2^14, 2^15]);  if M == 2^15: M = 2^14, r = r - 1
    Available shifts: SHIFT_MIN[dest_bits] <= r <= SHIFT_MAX, else
    UnsupportedRequiredSlopeError (desired vs available shift). With allow_vanishing, a slope
    below the longest shift gives M = 0, r = 0 instead (used for the negative side of leaky /
    PReLU, docs/numerics.md).
    Returns (M int64, r int64), shaped like m.
    """
    m = np.atleast_1d(np.asarray(m, np.float64))
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"layer '{layer}': {what} multiplier must be positive and finite, got {m}")
    f, x = np.frexp(m)
    r = (MANTISSA_BITS - x).astype(np.int64)
    M = rhe(f * 2.0 ** MANTISSA_BITS).astype(np.int64)
    carry = M == (1 << MANTISSA_BITS)
    M[carry] = 1 << (MANTISSA_BITS - 1)
    r[carry] -= 1
    rmin = SHIFT_MIN[dest_bits]
    too_steep = r < rmin
    if np.any(too_steep):
        i = int(np.argmax(too_steep))
        raise UnsupportedRequiredSlopeError(layer, int(r[i]), (rmin, SHIFT_MAX), float(m[i]), what)
    too_small = r > SHIFT_MAX
    if np.any(too_small):
        if not allow_vanishing:
            i = int(np.argmax(too_small))
            raise UnsupportedRequiredSlopeError(layer, int(r[i]), (rmin, SHIFT_MAX), float(m[i]), what)
        M[too_small] = 0
        r[too_small] = 0
    return M, r


def derive_signed_rescale(m, dest_bits: int, layer: str = "?",
                          what: str = "negative-side rescale") -> tuple[np.ndarray, np.ndarray]:
    """Signed variant (negative side of leaky / PReLU): M = sign(m) * M(|m|), r = r(|m|);
    m == 0 or a vanishing |m| (r > SHIFT_MAX) gives M = 0, r = 0."""
    m = np.atleast_1d(np.asarray(m, np.float64))
    M = np.zeros(m.shape, np.int64)
    r = np.zeros(m.shape, np.int64)
    nz = m != 0
    if np.any(nz):
        Mm, rr = derive_rescale(np.abs(m[nz]), dest_bits, layer, what, allow_vanishing=True)
        M[nz] = np.sign(m[nz]).astype(np.int64) * Mm
        r[nz] = rr
    return M, r


def ew_multipliers(scales: list[float], bits: int) -> tuple[np.ndarray, float]:
    """Element-wise add / sub operand multipliers over a fixed shift.

        t = EW_EXTRA_BITS[max input bits]  (14 for 8-bit inputs, 22 when any input is 16-bit)
        s_acc = max(s_i) * 2^-t;  A_i = rhe(s_i / s_acc)
    Returns (A int64 [n], s_acc float64).
    """
    s = np.asarray(scales, np.float64)
    s_acc = float(np.max(s)) * 2.0 ** -EW_EXTRA_BITS[bits]
    return rhe(s / s_acc).astype(np.int64), s_acc


def relu6_hi_code(zp: int, scale: float, bits: int, clip=6.0):
    """Upper clamp code of ReLU6 / clipped ReLU: min(2^b - 1, zp + rhe(clip / s)); `clip` a
    scalar (an int is returned) or per channel (an int64 array)."""
    hi = np.minimum(qmax(bits), zp + rhe(np.asarray(clip, np.float64) / np.float64(np.float32(scale))))
    return int(hi) if np.ndim(hi) == 0 else hi.astype(np.int64)


def check_accumulator(layer: str, bound: int) -> None:
    """|acc| must stay below 2^47 so that acc * M (M < 2^15) + 2^(r-1) fits int64."""
    if bound >= (1 << (ACC_LIMIT_BITS - 1)):
        raise AccumulatorOverflowError(layer, int(bound), ACC_LIMIT_BITS)


def abs_weight_sum(q_w2d: np.ndarray) -> int:
    """max_o sum_k |q_w[k, o]| of integer weights [K, C_out] (exact Python int; 0 if empty)."""
    return int(np.abs(np.asarray(q_w2d, np.int64)).sum(axis=0).max()) if np.size(q_w2d) else 0


def mac_bound(q_w2d: np.ndarray, max_centred: int) -> int:
    """Worst-case |sum (q_in - z_in) * q_w| over all output channels (exact Python int)."""
    return abs_weight_sum(q_w2d) * int(max_centred)
