"""Normalization folding (docs/numerics.md, "Normalization"): a normalization right after an
input layer, feeding one unpadded, ungrouped conv / dw / dense, is folded into that layer when
the input's calibrated range lies inside the raw code range [0, 2^b - 1] (raw pixels go in):

    W' = W / std_c  per input channel c;   b' = b - sum W * mean_c / std_c      (float64)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hn import HNGraph, Layer, normalization_fold_target
from ..numerics.params import qmax


def folding_target(hn: HNGraph, layer: Layer, stats: dict, in_bits: int) -> Layer | None:
    """The MAC layer a normalization folds into, or None (the HN forbids it, or the input's
    calibrated range is not raw codes)."""
    cons = normalization_fold_target(hn, layer)
    if cons is None:
        return None
    lo, hi = stats[layer.input[0]]
    if lo < 0 or hi > qmax(in_bits):
        return None
    return cons


def fold_normalization(kernel: Any, bias: Any, mean: Any, std: Any, ltype: str) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') of a MAC layer of type `ltype` after the normalization (mean, std) before it."""
    w = np.asarray(kernel, np.float64)
    b = np.asarray(bias, np.float64)
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    if ltype == "conv":
        return w / std[None, None, :, None], b - np.einsum("hwio,i->o", w, mean / std)
    if ltype == "dw":
        return w / std[None, None, :, None], b - np.einsum("hwcm,c->cm", w, mean / std).reshape(-1)
    # dense: input flattened (H, W, C) row-major, channel = k % C
    idx = np.arange(w.shape[0]) % mean.shape[0]
    return w / std[idx][:, None], b - (w * (mean / std)[idx][:, None]).sum(axis=0)
