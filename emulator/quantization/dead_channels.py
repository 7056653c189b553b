"""Dead-channel clean-up: output channels of a MAC layer whose weights are all (near) zero.

Such a channel (typical after batch norm folds a near-zero gamma into a depthwise kernel)
outputs the constant k_c = act(b_c) at every position. The clean-up zeroes the channel (its
weights and bias: it then outputs act(0) = 0) and folds the constant into the bias of the MAC
layers that read it: b'[o] += k_c * (sum of their weights on input channel c), and zeroes those
weights (they multiply 0 now). Run before equalization: a channel with r1 ~ 0 has no meaningful
scale, and its constant would otherwise sit in the activation range of its tensor.
docs/equalization.md has the rules and measured numbers.

  clean_dead_channels(runner, params=None, threshold=1e-6, padded="keep") -> (params, report)

Exact when the constant reaches the consumer unchanged everywhere: dense consumers, and conv /
dw consumers (and pools / pads on the way) without spatial padding. With zero padding the border
outputs of the consumer saw the padding (0), not k_c, for the out-of-image taps; folding adds
k_c * (all taps) there too. Hailo's toolchain folds anyway (padded="fold"); the default,
padded="keep", leaves such channels as they are (measured: folding across padded borders moved
the logits of the 14x14 MobileNet-style test network by 10% of their maximum, a float SNR of
24 dB; docs/equalization.md). Numpy only; the runner is not changed.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from ..hn import HNGraph, Layer
from .equalization import (HOMOGENEOUS_ACTS, MAC_TYPES, RELU6_CLIP, finish_params, output_channel_ranges,
                           pkey, scale_input_channels, scale_output_channels, start_params, walk)

FOLD_ENDS = ("conv", "dw", "dense")  # a transposed conv of a constant is not constant
DEFAULT_THRESHOLD = 1e-6


@dataclasses.dataclass
class DeadLine:
    """Dead channels of one layer folded into its consumers: the channels, their constants
    act(b_c), the consumers whose biases took them, and whether the fold is exact (False: a
    consumer or a layer on the way pads, so border outputs change)."""
    layer: str
    channels: tuple[int, ...]
    constants: tuple[float, ...]
    consumers: tuple[str, ...]
    exact: bool

    def line(self) -> str:
        ks = ", ".join(f"{c}:{k:.4g}" for c, k in zip(self.channels[:8], self.constants[:8]))
        more = f" (+{len(self.channels) - 8} more)" if len(self.channels) > 8 else ""
        how = "exact" if self.exact else "approximate at padded borders"
        return (f"{self.layer}: {len(self.channels)} dead channels zeroed, constants [{ks}{more}] "
                f"folded into {', '.join(self.consumers)} ({how})")


@dataclasses.dataclass
class KeptLine:
    """Dead channels left as they are, and why."""
    layer: str
    channels: tuple[int, ...]
    reason: str

    def line(self) -> str:
        return f"{self.layer}: {len(self.channels)} dead channels kept, {self.reason}"


@dataclasses.dataclass
class DeadChannelReport:
    cleaned: list[DeadLine]
    kept: list[KeptLine]
    threshold: float
    padded: str

    @property
    def n_cleaned(self) -> int:
        return sum(len(d.channels) for d in self.cleaned)

    def lines(self) -> list[str]:
        head = (f"dead channels: {self.n_cleaned} cleaned in {len(self.cleaned)} layers, "
                f"{sum(len(k.channels) for k in self.kept)} kept (threshold {self.threshold:g} of each "
                f"layer's largest |w|, padded borders: {self.padded})")
        return [head] + ["  " + d.line() for d in self.cleaned] + ["  " + k.line() for k in self.kept]


def _act(hn: HNGraph, work: Mapping[str, np.ndarray], layer: Layer, x: np.ndarray) -> np.ndarray:
    """A homogeneous activation in float64, per channel (x: one value per output channel)."""
    act = layer.activation
    if act == "linear":
        return x
    if act == "relu":
        return np.maximum(x, 0.0)
    if act == "relu6":
        clip = work.get(pkey(hn, layer.name, "act_clip"))
        return np.minimum(np.maximum(x, 0.0), RELU6_CLIP if clip is None else clip)
    if act == "leaky":
        return np.where(x >= 0, x, float(layer.params.get("leaky_alpha", 0.2)) * x)
    if act == "prelu":
        return np.where(x >= 0, x, work[pkey(hn, layer.name, "alpha")] * x)
    raise ValueError(act)


def _fold(end: Layer, kernel: np.ndarray, bias: np.ndarray, kin: np.ndarray, dead_in: np.ndarray):
    """(kernel, bias) of a consumer whose input channel c (dense: feature c) is the constant
    kin[c] where dead_in[c]: the constant into the bias, those weights zeroed."""
    if end.type == "dense":
        bias = bias + kin @ kernel
    elif end.type == "dw":
        bias = bias + (kernel.sum(axis=(0, 1)) * kin[:, None]).reshape(-1)
    else:
        g = int(end.params.get("groups", 1))
        cin_g, cout = kernel.shape[2], kernel.shape[3]
        kmat = np.repeat(kin.reshape(g, cin_g).T, cout // g, axis=1)
        bias = bias + (kernel.sum(axis=(0, 1)) * kmat).sum(axis=0)
    return scale_input_channels(kernel, end, (~dead_in).astype(np.float64)), bias


def clean_dead_channels(runner: Any, params: Mapping[str, np.ndarray] | None = None,
                        threshold: float = DEFAULT_THRESHOLD, padded: str = "keep",
                        ) -> tuple[dict[str, np.ndarray], DeadChannelReport]:
    """Zero the dead output channels of conv / dw / deconv / dense layers and fold their
    constant output into the consumers' biases; returns (new params, report). The runner is
    not changed (params default: its fp-optimized params, the native ones while there are none).

    A channel is dead when max |W[..., c]| <= threshold * max |W| of its layer. It is cleaned
    when the layer's activation is linear / ReLU / ReLU6 / leaky / PReLU (act(0) = 0) and every
    path from the layer's output reaches a conv / dw / dense through layers that keep a
    per-channel constant a per-channel constant (pools, resize, pad, spatial slice, reshape,
    those activations); a residual add, concat, output, transposed conv or other layer on any
    path keeps the layer's dead channels as they are. padded: "keep" (default) leaves the dead
    channels of a layer whose constant would cross zero padding (the consumer's border outputs
    would change); "fold" folds them anyway, as Hailo's toolchain does (approximate at borders).
    Layers are visited in topological order, so a depthwise layer whose input channel became a
    constant (its weights on it zeroed) has a dead channel itself and is cleaned in turn.
    """
    if padded not in ("fold", "keep"):
        raise ValueError(f"padded must be 'fold' or 'keep', not {padded!r}")
    hn = runner.hn
    work = start_params(runner, params, "clean_dead_channels")
    cleaned: list[DeadLine] = []
    kept: list[KeptLine] = []
    for P in hn.topological():
        if P.type not in MAC_TYPES:
            continue
        kP, bP = pkey(hn, P.name, "kernel"), pkey(hn, P.name, "bias")
        r = output_channel_ranges(work[kP], P.type)
        dead = r <= threshold * r.max()
        if not dead.any():
            continue
        idx = tuple(int(i) for i in np.flatnonzero(dead))
        if P.activation not in HOMOGENEOUS_ACTS:
            kept.append(KeptLine(P.name, idx, f"its activation {P.activation} does not map 0 to 0"))
            continue
        branches = walk(hn, P, "dead", ends=FOLD_ENDS)
        bad = [b for b in branches if b.end is None]
        if bad:
            kept.append(KeptLine(P.name, idx, f"its output {bad[0].reason}"))
            continue
        exact = all(b.exact for b in branches)
        if not exact and padded == "keep":
            kept.append(KeptLine(P.name, idx, "a consumer or a layer on the way pads (border outputs "
                                              "would change) and padded='keep'"))
            continue
        const = np.where(dead, _act(hn, work, P, work[bP]), 0.0)
        for br in branches:
            val = const
            for t in br.through:
                c_out = int(t.output_shape[-1])
                val = val[np.arange(c_out) % len(val)]
                if t.type == "activation":
                    val = _act(hn, work, t, val)
            E = br.end
            kE, bE = pkey(hn, E.name, "kernel"), pkey(hn, E.name, "bias")
            n_in = len(br.cmap)
            kin = val[np.arange(n_in) % len(val)]
            work[kE], work[bE] = _fold(E, work[kE], work[bE], kin, dead[br.cmap])
        work[kP] = scale_output_channels(work[kP], P.type, (~dead).astype(np.float64))
        work[bP] = np.where(dead, 0.0, work[bP])
        cleaned.append(DeadLine(P.name, idx, tuple(float(const[i]) for i in idx),
                                tuple(b.end.name for b in branches), exact))
    report = DeadChannelReport(cleaned, kept, threshold, padded)
    return finish_params(runner, work, "clean_dead_channels"), report
