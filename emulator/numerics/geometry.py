"""Window geometry of the chip's spatial layers: padding and average-pool window counts.

Plain integer arithmetic on numpy, no TensorFlow, so that the kernels, the derivation, the
executors and the load-time checks of stored params (emulator.qparams_check) share one
definition (docs/numerics.md, "Other layers").
"""
from __future__ import annotations

import numpy as np


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


def tf_pads(pads) -> list[list[int]]:
    """((top, bottom), (left, right)) as TensorFlow's NHWC paddings (explicit conv padding)."""
    return [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]


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
