"""Clipping: activation ranges narrowed before they become tensors (a long tail of rare large
values otherwise spends most codes on nothing), and weights clipped before they are quantized.

Activation (per layer, on the calibrated [min, max] of its output):
  range_margin = F                  [min(lo, 0) F, max(hi, 0) F] (applied first): headroom for
                                    values beyond what the calibration set reached (a regression
                                    head sees a few values per image, and 64 images do not reach
                                    its tails)
  force_range_out = [lo, hi]        the range is [lo, hi], whatever calibration saw
  force_range_in  = [lo, hi]        the range of the layer's input tensor is [lo, hi]
  activation_clipping manual        the range is [lo, hi] intersected with the calibrated one
  activation_clipping percentile    the range is [P_lo, P_hi] of the layer's calibration values
                                    (values [p] alone: [min, P_p])
Weights (per group of output channels, on |W|; the scale becomes clip / (2^(bw-1) - 1) and the
weights beyond it saturate):
  manual [m] or [lo, hi]            clip = m (max(|lo|, |hi|))
  percentile [p] or [lo, hi]        clip = P_p(|W|) (the higher value)
  mmse                              clip = argmin over 64 candidates in (0, max |W|] of
                                    sum (W - Q_clip(W))^2
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..hn import HNGraph
from ..layers import HOST_OPS, PASSTHROUGH
from ..numerics.params import group_bounds, rhe

log = logging.getLogger(__name__)
MMSE_CANDIDATES = 64


def percentile_layers(configs: dict) -> set[str]:
    """Layers whose activation clipping needs their calibration values (percentile mode)."""
    return {n for n, c in configs.items()
            if c.activation_clipping and c.activation_clipping["mode"] == "percentile"}


def clip_ranges(hn: HNGraph, stats: dict, configs: dict, samples: dict[str, np.ndarray]) -> dict[str, str]:
    """Apply forced ranges and activation clipping to `stats` (in place). Returns {tensor: what
    set its range} for the log and the summary."""
    done: dict[str, str] = {}
    for layer in hn.topological():
        cfg = configs[layer.name]
        # (not on layers that keep their input's tensor or run on the host: their ranges are
        # records, and the margin reaches the tensor through its on-chip producer's config)
        if cfg.range_margin != 1.0 and layer.name in stats and layer.type not in HOST_OPS + PASSTHROUGH:
            lo, hi = (float(v) for v in stats[layer.name])
            new = [min(lo, 0.0) * cfg.range_margin, max(hi, 0.0) * cfg.range_margin]
            stats[layer.name] = np.array(new, np.float64)
            done[layer.name] = f"range_margin {cfg.range_margin:g}: [{lo:.4g}, {hi:.4g}] -> " \
                               f"[{new[0]:.4g}, {new[1]:.4g}]"
        clip = cfg.activation_clipping
        if clip and layer.name in stats:
            lo, hi = (float(v) for v in stats[layer.name])
            vals = clip["values"]
            if clip["mode"] == "manual":
                new = [max(lo, vals[0]), min(hi, vals[1])]
                if new[0] >= new[1]:  # the calibrated range lies outside: the values decide
                    new = list(vals)
            else:
                x = samples[layer.name]
                plo, phi = (vals[0], vals[1]) if len(vals) == 2 else (None, vals[0])
                new = [float(np.percentile(x, plo)) if plo is not None else lo, float(np.percentile(x, phi))]
            stats[layer.name] = np.array(new, np.float64)
            done[layer.name] = f"activation_clipping {clip['mode']} {vals}: [{lo:.4g}, {hi:.4g}] -> " \
                               f"[{new[0]:.4g}, {new[1]:.4g}]"
        if cfg.force_range_out is not None:
            stats[layer.name] = np.array(cfg.force_range_out, np.float64)
            done[layer.name] = f"force_range_out {cfg.force_range_out}"
        if cfg.force_range_in is not None and layer.input:
            src = layer.input[0]
            stats[src] = np.array(cfg.force_range_in, np.float64)
            done[src] = f"force_range_in {cfg.force_range_in} (of {layer.name})"
    for name, what in done.items():
        log.info("range of %s: %s", name, what)
    return done


def _quant_error(w: np.ndarray, clip: float, bits: int) -> float:
    lim = (1 << (bits - 1)) - 1
    s = clip / lim
    return float(((w - np.clip(rhe(w / s), -lim, lim) * s) ** 2).sum())


def weight_clips(w2d: np.ndarray, bits: int, groups: int, clipping: dict | None) -> np.ndarray | None:
    """Per-group clip magnitudes of weights [K, C_out] (None: no clipping, max |W| is used)."""
    if not clipping:
        return None
    w2d = np.asarray(w2d, np.float64)
    b = group_bounds(w2d.shape[-1], groups)
    mode, vals = clipping["mode"], clipping.get("values") or []
    out = np.empty(groups, np.float64)
    for g in range(groups):
        a = np.abs(w2d[:, b[g]:b[g + 1]])
        mx = float(a.max()) if a.size else 0.0
        if mx == 0.0:
            out[g] = 0.0
        elif mode == "manual":
            out[g] = min(mx, max(abs(v) for v in vals))
        elif mode == "percentile":
            out[g] = min(mx, float(np.percentile(a, vals[-1])))
        else:  # mmse
            cands = mx * np.arange(1, MMSE_CANDIDATES + 1) / MMSE_CANDIDATES
            w = w2d[:, b[g]:b[g + 1]]
            out[g] = float(min(cands, key=lambda c: _quant_error(w, c, bits)))
        if out[g] <= 0.0:
            out[g] = mx
    return out


def describe(clips: np.ndarray | None, w2d: Any) -> str:
    if clips is None:
        return ""
    mx = np.abs(np.asarray(w2d)).max()
    return f"weights clipped at {', '.join(f'{c:.4g}' for c in clips)} (max |W| {mx:.4g})"
