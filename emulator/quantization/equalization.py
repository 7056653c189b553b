"""Cross-layer equalization (Meller et al. 2019): a function-preserving rewrite of the float params.

For two MAC layers A -> B joined by a positively homogeneous activation (f(x / s) = f(x) / s for
s > 0: linear, ReLU, leaky ReLU, PReLU, and ReLU6 kept exact as a per-channel clip), output
channel c of A is divided by s_c (its kernel slice, bias and, for ReLU6, its clip) and the input
channel c of B multiplied by s_c. The network computes the same function (up to float rounding)
and the per-channel weight ranges of A and B are balanced, which is what per-tensor weight
quantization needs. docs/equalization.md has the formula, the pairs, what is skipped and why,
and measured numbers.

  equalize(runner, params=None, *, act_ranges=None, iterations=32, ...) -> (params, report)
  find_pairs(hn) -> (pairs, skipped)          the pairs and the MAC layers that are no first layer
  activation_ranges(runner, images, params=None) -> {layer: (C, 2) per-channel [min, max]}
  output_channel_ranges(kernel, type), input_channel_ranges(kernel, layer)   max |W| per channel
  range_spread(ranges)                        max / min of the (non-zero) per-channel ranges

Numpy only (activation_ranges runs the float network). The runner is never modified: install the
result with runner.set_fp_optimized_params(params).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import NoParamsError, ParamsError
from ..hn import HNGraph, Layer

MAC_TYPES = ("conv", "dw", "deconv", "dense")
# activations with f(s * x) = s * f(x) for s > 0 (relu6: with its clip scaled per channel) and
# f(0) = 0: what may sit between two equalized layers, and what a dead channel may end in
HOMOGENEOUS_ACTS = ("linear", "relu", "relu6", "leaky", "prelu")
RESIDUAL_TYPES = ("ew_add", "ew_sub", "ew_mult", "concat")
# layers that act on each channel alone and commute with a positive per-channel scale
PER_CHANNEL_TYPES = ("maxpool", "avgpool", "global_avg_pool", "resize", "pad", "slice", "reshape",
                     "activation")
RELU6_CLIP = 6.0
DEFAULT_MAX_SCALE = 1e4
DEFAULT_MIN_RANGE = 1e-6


# --- params ------------------------------------------------------------------------------------

def pkey(hn: HNGraph, layer: str, field: str) -> str:
    """Scoped float-param key "<net>/<layer>/<field>:0"."""
    return f"{hn.name}/{layer}/{field}:0"


def start_params(runner: Any, params: Mapping[str, np.ndarray] | None, what: str) -> dict[str, np.ndarray]:
    """A validated float64 working copy (scoped keys) of `params`, or of the runner's
    fp-optimized params (the native ones while there are none)."""
    from ..npz import validate_params

    if params is None:
        params = runner.fp_optimized_params if runner.fp_optimized_params is not None else runner.native_params
        if params is None:
            raise NoParamsError(runner.hn.name)
    checked = validate_params(runner.hn, params, f"{what} input params")
    return {k: np.array(v, np.float64) for k, v in checked.items()}


def finish_params(runner: Any, work: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """The working copy as float32 params, validated against the HN (an `act_clip` the HN does
    not allow, or a non-finite value, is a ParamsError naming the key)."""
    from ..npz import validate_params

    return validate_params(runner.hn, {k: np.asarray(v, np.float32) for k, v in work.items()},
                           f"{what} result")


# --- per-channel views of kernels -----------------------------------------------------------

def _kernel_2d(kernel: np.ndarray, ltype: str) -> np.ndarray:
    if ltype == "dw":
        kh, kw, ci, m = kernel.shape
        return kernel.reshape(kh * kw, ci * m)
    return kernel.reshape(-1, kernel.shape[-1])


def output_channel_ranges(kernel: np.ndarray, ltype: str) -> np.ndarray:
    """max |W| per output channel (dw: channel c * mult + k)."""
    k2 = np.abs(_kernel_2d(np.asarray(kernel, np.float64), ltype))
    return k2.max(axis=0) if k2.shape[0] else np.zeros(k2.shape[1])


def _groups(layer: Layer) -> int:
    return int(layer.params.get("groups", 1)) if layer.type == "conv" else 1


def input_channel_ranges(kernel: np.ndarray, layer: Layer) -> np.ndarray:
    """max |W| per input channel of a MAC layer (dense: per input feature of the flattened
    input; grouped conv: over the output channels of the channel's group)."""
    a = np.abs(np.asarray(kernel, np.float64))
    if layer.type == "dense":
        return a.max(axis=1)
    if layer.type in ("dw", "deconv"):
        return a.max(axis=(0, 1, 3))
    g = _groups(layer)
    cin_g, cout = a.shape[2], a.shape[3]
    per = a.max(axis=(0, 1)).reshape(cin_g, g, cout // g).max(axis=2)  # [cin_g, g]
    return per.T.reshape(-1)


def scale_output_channels(kernel: np.ndarray, ltype: str, f: np.ndarray) -> np.ndarray:
    """kernel with output channel o multiplied by f[o]."""
    if ltype == "dw":
        return kernel * f.reshape(kernel.shape[2], kernel.shape[3])
    return kernel * f


def scale_input_channels(kernel: np.ndarray, layer: Layer, f: np.ndarray) -> np.ndarray:
    """kernel with input channel c (dense: input feature c) multiplied by f[c]."""
    if layer.type == "dense":
        return kernel * f[:, None]
    if layer.type in ("dw", "deconv"):
        return kernel * f[None, None, :, None]
    g = _groups(layer)
    cin_g, cout = kernel.shape[2], kernel.shape[3]
    fac = np.repeat(f.reshape(g, cin_g).T, cout // g, axis=1)  # [cin_g, cout]: group of column o
    return kernel * fac[None, None]


def range_spread(ranges: Iterable[float], rel_floor: float = DEFAULT_MIN_RANGE) -> float:
    """max / min of the per-channel ranges, ignoring those at or below rel_floor times the
    largest (dead channels); 1.0 when none is above it."""
    r = np.asarray(list(ranges) if not isinstance(ranges, np.ndarray) else ranges, np.float64)
    r = r[r > rel_floor * r.max()] if r.size else r
    return float(r.max() / r.min()) if r.size else 1.0


# --- the graph: from a MAC layer's output to the MAC layers that read it ---------------------

@dataclasses.dataclass
class Branch:
    """One path from a producer's output: the per-channel layers it passes, and the MAC layer
    that ends it (or why it is not usable). maps[i]: for each output channel of through[i], the
    producer channel it carries; cmap: the same for each input channel (dense: input feature)
    of `end`. exact: a per-channel constant stays that constant everywhere (no padding on the way
    or at the end: what folding a dead channel needs)."""
    through: list[Layer]
    maps: list[np.ndarray]
    end: Layer | None
    cmap: np.ndarray | None
    reason: str | None
    exact: bool
    fanout: bool  # the producer or a through layer has more than one consumer


def _pads_nonzero(layer: Layer) -> bool:
    from ..numerics.geometry import spatial_pads

    p = layer.params
    k = p["kernel_shape"]
    kh_kw = k[1:3] if layer.type in ("maxpool", "avgpool") else k[:2]
    d = p.get("dilations", [1, 1, 1, 1])
    pads = spatial_pads(layer.input_shapes[0][1:3], kh_kw, p["strides"][1:3], d[1:3], p["padding"])
    return any(v for pp in pads for v in pp)


def _through(layer: Layer, c_in: int, purpose: str) -> tuple[bool, bool, str]:
    """(usable, keeps a constant exactly, reason if not usable) of a layer between a producer
    and its MAC consumer; purpose "equalize" or "dead"."""
    t = layer.type
    c_out = int(layer.output_shape[-1])
    if t == "output_layer":
        return False, False, "its output is a network output"
    if t in RESIDUAL_TYPES:
        what = "a concat" if t == "concat" else f"a residual {t}"
        return False, False, f"feeds {what} ('{layer.name}'): its other inputs are not scaled with it"
    if t not in PER_CHANNEL_TYPES:
        return False, False, f"reaches '{layer.name}' ({t}), which does not commute with a per-channel scale"
    if t == "activation":
        if layer.activation not in HOMOGENEOUS_ACTS:
            return False, False, (f"the activation layer '{layer.name}' ({layer.activation}) is not "
                                  f"positively homogeneous")
        return True, True, ""
    if t == "pad":
        pads = layer.params["pads"]
        if any(pads[2]):
            return False, False, f"the pad layer '{layer.name}' pads channels"
        if purpose == "equalize" and float(layer.params.get("constant_value", 0.0)) != 0.0:
            return False, False, f"the pad layer '{layer.name}' pads with a non-zero constant"
        return True, False, ""
    if t == "slice":
        b, e = layer.params["begin"], layer.params["end"]
        if b[-1] != 0 or e[-1] != c_in:
            return False, False, f"the slice '{layer.name}' crops channels"
        return True, True, ""
    if t == "reshape":
        if len(layer.output_shape) < 2 or c_out % c_in:
            return False, False, (f"the reshape '{layer.name}' mixes channels ({c_in} channels to a "
                                  f"last axis of {c_out})")
        return True, True, ""
    if t == "avgpool":
        return True, not (layer.params.get("count_include_pad", False) and _pads_nonzero(layer)), ""
    return True, True, ""  # maxpool (padding never wins), global_avg_pool, resize


def _end_exact(layer: Layer) -> bool:
    return layer.type == "dense" or not _pads_nonzero(layer)


def walk(hn: HNGraph, producer: Layer, purpose: str, ends: tuple[str, ...] = MAC_TYPES) -> list[Branch]:
    """Every path from the producer's output to a MAC layer (of `ends`) through per-channel
    layers; a path that meets anything else ends there with a reason."""
    c0 = int(producer.output_shape[-1])
    out: list[Branch] = []
    fan = len(producer.output) != 1

    def go(layer: Layer, through: list[Layer], maps: list[np.ndarray], cmap: np.ndarray, exact: bool,
           fanout: bool) -> None:
        for name in layer.output:
            nxt = hn.layers[name]
            if nxt.type in MAC_TYPES:
                if nxt.type not in ends:
                    out.append(Branch(through, maps, None, None, f"its consumer '{nxt.name}' is a "
                                      f"{nxt.type}", False, fanout))
                    continue
                n_in = int(math.prod(nxt.input_shapes[0][1:])) if nxt.type == "dense" else \
                    int(nxt.input_shapes[0][-1])
                c_last = int(nxt.input_shapes[0][-1])
                em = cmap[np.arange(n_in) % c_last]
                out.append(Branch(through, maps, nxt, em, None, exact and _end_exact(nxt), fanout))
                continue
            ok, keeps, reason = _through(nxt, len(cmap), purpose)
            if not ok:
                out.append(Branch(through, maps, None, None, reason, False, fanout))
                continue
            c_out = int(nxt.output_shape[-1])
            m = cmap[np.arange(c_out) % len(cmap)]
            go(nxt, through + [nxt], maps + [m], m, exact and keeps, fanout or len(nxt.output) != 1)

    go(producer, [], [], np.arange(c0), True, fan)
    return out


# --- pairs -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Pair:
    first: str
    through: tuple[str, ...]
    second: str


@dataclasses.dataclass
class PairLine:
    """One equalized pair: channels whose scale moved (|log s| > 1e-6), the cumulative scales s
    (output channel c of `first` divided by s_c), and the spread (max / min) of the per-channel
    weight ranges of the first's output channels and the second's input channels, before and
    after."""
    first: str
    through: tuple[str, ...]
    second: str
    channels: int
    scaled: int
    min_scale: float
    max_scale: float
    clipped: int  # channels at the scale limit
    relu6_clips: tuple[str, ...]  # layers given a per-channel act_clip
    spread_first: tuple[float, float]
    spread_second: tuple[float, float]

    def line(self) -> str:
        via = f" via {', '.join(self.through)}" if self.through else ""
        clip = f"; act_clip on {', '.join(self.relu6_clips)}" if self.relu6_clips else ""
        lim = f"; {self.clipped} at the scale limit" if self.clipped else ""
        return (f"{self.first} -> {self.second}{via}: {self.scaled}/{self.channels} channels scaled, "
                f"s in [{self.min_scale:.4g}, {self.max_scale:.4g}]{lim}; weight range spread "
                f"{self.spread_first[0]:.3g} -> {self.spread_first[1]:.3g} ({self.first} out), "
                f"{self.spread_second[0]:.3g} -> {self.spread_second[1]:.3g} ({self.second} in){clip}")


@dataclasses.dataclass
class SkipLine:
    layer: str
    reason: str

    def line(self) -> str:
        return f"{self.layer}: skipped, {self.reason}"


@dataclasses.dataclass
class EqualizationReport:
    pairs: list[PairLine]
    skipped: list[SkipLine]
    iterations: int          # iterations run
    converged: bool          # the last iteration moved no scale by more than tol
    last_step: float         # max |log s| of the last iteration
    act_ranges: bool         # activation ranges took part in the balance

    def lines(self) -> list[str]:
        head = (f"equalization: {len(self.pairs)} pairs, {len(self.skipped)} MAC layers skipped; "
                f"{self.iterations} iterations ({'converged' if self.converged else 'not converged'}, "
                f"last max |log s| {self.last_step:.2e}); "
                f"{'weights and activation ranges' if self.act_ranges else 'weight ranges'}")
        return [head] + ["  " + p.line() for p in self.pairs] + ["  " + s.line() for s in self.skipped]


def find_pairs(hn: HNGraph) -> tuple[list[Pair], list[SkipLine]]:
    """The equalizable pairs (first, per-channel layers between, second) in topological order,
    and, for every other MAC layer, why it cannot be the first of a pair. The first layer's
    activation and every activation layer between must be positively homogeneous; the first's
    output and every layer between must have exactly one consumer; the path must reach a MAC
    layer through layers that act on each channel alone (no residual add, concat or output)."""
    pairs: list[Pair] = []
    skipped: list[SkipLine] = []
    for l in hn.topological():
        if l.type not in MAC_TYPES:
            continue
        if l.activation not in HOMOGENEOUS_ACTS:
            skipped.append(SkipLine(l.name, f"its activation {l.activation} is not positively homogeneous"))
            continue
        branches = walk(hn, l, "equalize")
        bad = [b for b in branches if b.end is None]
        if len(l.output) != 1 or any(b.fanout for b in branches) or len(branches) != 1:
            n = len(l.output)
            where = f"its output feeds {n} consumers" if n != 1 else "a layer after it feeds several consumers"
            extra = f" ({bad[0].reason})" if bad else ""
            skipped.append(SkipLine(l.name, f"{where}{extra}; all of them would have to take the scale "
                                            f"(not done)"))
            continue
        if bad:
            skipped.append(SkipLine(l.name, bad[0].reason))
            continue
        b = branches[0]
        pairs.append(Pair(l.name, tuple(t.name for t in b.through), b.end.name))
    return pairs, skipped


# --- activation ranges ---------------------------------------------------------------------------

def activation_ranges(runner: Any, images: Any, params: Mapping[str, np.ndarray] | None = None,
                      batch_size: int = 16, layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Per-channel [min, max] of layer outputs over `images` (float network with `params`, default
    the runner's fp-optimized params), as {layer: (C, 2)}; `layers` limits which (default: the
    first layers of the equalizable pairs)."""
    from ..npz import validate_params
    from ..targets import FloatExecutor

    hn = runner.hn
    if params is None:
        params = runner.fp_optimized_params if runner.fp_optimized_params is not None else runner.native_params
        if params is None:
            raise NoParamsError(hn.name)
    ex = FloatExecutor(hn, validate_params(hn, params, "activation_ranges params"))
    names = list(layers) if layers is not None else [p.first for p in find_pairs(hn)[0]]
    ins = runner.prepare_inputs(images)
    n = next(iter(ins.values())).shape[0]
    lo: dict[str, np.ndarray] = {}
    hi: dict[str, np.ndarray] = {}
    for s in range(0, n, batch_size):
        _, allv = ex.run([ins[l.name][s:s + batch_size] for l in hn.input_layers], True)
        for k in names:
            v = np.asarray(allv[k], np.float64)
            v = v.reshape(-1, v.shape[-1])
            lo[k] = np.minimum(lo[k], v.min(0)) if k in lo else v.min(0)
            hi[k] = np.maximum(hi[k], v.max(0)) if k in hi else v.max(0)
    return {k: np.stack([lo[k], hi[k]], axis=-1) for k in names}


def _act_abs(hn: HNGraph, act_ranges: Mapping[str, Any], name: str, c: int) -> np.ndarray | None:
    v = None
    for k in (name, hn.scoped(name)):
        if k in act_ranges:
            v = act_ranges[k]
    if v is None:
        return None
    a = np.asarray(v, np.float64)
    if a.shape == (2, c) and c != 2:
        a = a.T
    if a.shape != (c, 2) or not np.all(np.isfinite(a)):
        raise ParamsError(f"act_ranges['{name}'] must be finite per-channel [min, max] of shape ({c}, 2), "
                          f"got shape {list(a.shape)}")
    return np.abs(a).max(axis=1)


# --- equalization --------------------------------------------------------------------------------

def _clip_of(hn: HNGraph, work: dict[str, np.ndarray], layer: Layer) -> np.ndarray:
    k = pkey(hn, layer.name, "act_clip")
    if k not in work:
        work[k] = np.full(int(layer.output_shape[-1]), RELU6_CLIP, np.float64)
    return work[k]


def equalize(runner: Any, params: Mapping[str, np.ndarray] | None = None, *,
             act_ranges: Mapping[str, Any] | None = None, iterations: int = 32, tol: float = 1e-4,
             max_scale: float = DEFAULT_MAX_SCALE, min_range: float = DEFAULT_MIN_RANGE,
             ) -> tuple[dict[str, np.ndarray], EqualizationReport]:
    """Cross-layer equalization of the float params (default: the runner's fp-optimized params,
    the native ones while there are none); returns (new params, report). The runner is not
    changed.

    Per pair A -> B (find_pairs) and channel c, with r1_c = max |W_A[..., c]| (A's output
    channel), r2_c = max |W_B| over B's input channel c:
        s_c = sqrt(r1_c / r2_c)              (so that r1_c / s_c = r2_c * s_c = sqrt(r1_c r2_c))
    With act_ranges ({first layer: (C, 2) per-channel [min, max] of its output}), r1_c is
    replaced by R1 * sqrt((r1_c / R1) * (a_c / A)) (R1, A: the largest r1 and a; a_c = max |act|),
    the geometric mean of the weight and activation ranges that both shrink by s_c.
    A's kernel and bias are divided by s_c, B's input channel multiplied by s_c; a ReLU6 on the
    way (A's or an activation layer's) gets the per-channel clip act_clip[c] = 6 / s_c.
    Pairs are visited in topological order `iterations` times, or until no scale moves by more
    than `tol` in |log s|. Guards: a channel whose r1, r2 (or a) is below `min_range` times the
    largest of its layer keeps s = 1 (no information: a dead channel, see dead_channels.py);
    the cumulative s of a channel stays in [1 / max_scale, max_scale].
    """
    hn = runner.hn
    work = start_params(runner, params, "equalize")
    pairs, skipped = find_pairs(hn)
    ranges: dict[str, np.ndarray] = {}
    if act_ranges is not None:
        for p in pairs:
            c = int(hn.layers[p.first].output_shape[-1])
            a = _act_abs(hn, act_ranges, p.first, c)
            if a is None:
                raise ParamsError(f"act_ranges has no entry for '{p.first}' (first layer of the pair "
                                  f"{p.first} -> {p.second}); give every first layer, see "
                                  f"activation_ranges()")
            ranges[p.first] = a
    branches = {p.first: walk(hn, hn.layers[p.first], "equalize")[0] for p in pairs}
    cum = {p.first: np.ones(int(hn.layers[p.first].output_shape[-1])) for p in pairs}
    spread0 = {}
    for p in pairs:
        A, B = hn.layers[p.first], hn.layers[p.second]
        spread0[p.first] = (range_spread(output_channel_ranges(work[pkey(hn, A.name, "kernel")], A.type)),
                            range_spread(input_channel_ranges(work[pkey(hn, B.name, "kernel")], B)))
    lim = math.log(max_scale)
    done, last = 0, 0.0
    for _ in range(int(iterations)):
        last = 0.0
        for p in pairs:
            A, B = hn.layers[p.first], hn.layers[p.second]
            br = branches[p.first]
            kA, bA = pkey(hn, A.name, "kernel"), pkey(hn, A.name, "bias")
            kB = pkey(hn, B.name, "kernel")
            r1 = output_channel_ranges(work[kA], A.type)
            r2_in = input_channel_ranges(work[kB], B)
            r2 = np.zeros_like(r1)
            np.maximum.at(r2, br.cmap, r2_in)
            valid = (r1 > min_range * r1.max()) & (r2 > min_range * r2.max())
            r1e = r1
            if p.first in ranges:
                a = ranges[p.first]
                valid &= a > min_range * a.max()
                with np.errstate(divide="ignore", invalid="ignore"):
                    r1e = r1.max() * np.sqrt((r1 / r1.max()) * (a / a.max()))
            # s = sqrt(r1 / r2) on valid channels, 1 elsewhere (in logs)
            logs = np.where(valid, 0.5 * (np.log(np.where(valid, r1e, 1.0)) - np.log(np.where(valid, r2, 1.0))),
                            0.0)
            old = np.log(cum[p.first])
            logs = np.clip(old + logs, -lim, lim) - old
            s = np.exp(logs)
            if not np.any(logs):
                continue
            last = max(last, float(np.abs(logs).max()))
            cum[p.first] = cum[p.first] * s
            work[kA] = scale_output_channels(work[kA], A.type, 1.0 / s)
            work[bA] = work[bA] / s
            if A.activation == "relu6":
                work[pkey(hn, A.name, "act_clip")] = _clip_of(hn, work, A) / s
            for t, m in zip(br.through, br.maps):
                if t.type == "activation" and t.activation == "relu6":
                    work[pkey(hn, t.name, "act_clip")] = _clip_of(hn, work, t) / s[m]
            work[kB] = scale_input_channels(work[kB], B, s[br.cmap])
            if p.first in ranges:
                ranges[p.first] = ranges[p.first] / s
        done += 1
        if last <= tol:
            break
    lines = []
    for p in pairs:
        A, B = hn.layers[p.first], hn.layers[p.second]
        br = branches[p.first]
        after = (range_spread(output_channel_ranges(work[pkey(hn, A.name, "kernel")], A.type)),
                 range_spread(input_channel_ranges(work[pkey(hn, B.name, "kernel")], B)))
        c = cum[p.first]
        lc = np.abs(np.log(c))
        clips = tuple([A.name] if A.activation == "relu6" else []) + tuple(
            t.name for t in br.through if t.type == "activation" and t.activation == "relu6")
        lines.append(PairLine(
            p.first, p.through, p.second, len(c), int(np.sum(lc > 1e-6)), float(c.min()), float(c.max()),
            int(np.sum(lc >= lim * (1 - 1e-9))), clips,
            (spread0[p.first][0], after[0]), (spread0[p.first][1], after[1])))
    report = EqualizationReport(lines, skipped, done, last <= tol, last, act_ranges is not None)
    return finish_params(runner, work, "equalize"), report
