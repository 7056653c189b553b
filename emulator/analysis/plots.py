"""The noise analysis's plots (docs/analysis.md), as PNG bytes for the HTML report.

    channel_histograms(native, quantized=None, code_range=None, layer="")
                        per-channel histograms of a layer's float output (small multiples, at
                        most MAX_CHANNELS channels; the title says which when there are more)
    scatter(native, quantized, code_range=None, layer="")
                        the seed's Figure 3: x quantized, y native, coloured by output channel,
                        at most MAX_SCATTER_POINTS points, with the y = x line
    snr_bars(layers, alone_db, cumulative_db, threshold_db, flagged=None)
                        per-layer SNR of (a) (worst output) and (b), in network order, with the
                        threshold line; flagged layers highlighted
    weight_ranges(items) per output channel [min, max] of the weights before and after
                        equalization, one panel per MAC layer

Each takes plain arrays (or lists of them) and returns the bytes of a PNG. The `*_of` helpers
read the same arrays from a TensorDump (in memory or loaded back with
`analysis.tensors.load_tensors`), so offline work reproduces the report's plots;
`equalized_weights(runner)` collects the kernels for `weight_ranges`.

matplotlib is imported inside the functions (importing this module costs nothing), with the Agg
canvas on `matplotlib.figure.Figure` objects: no pyplot, no global figure state, safe to call
from any thread or a program that has its own matplotlib backend. User strings (layer and
network names) are drawn as plain text, never parsed as mathtext.
"""
from __future__ import annotations

import io
import math
from typing import Any, Sequence

import numpy as np

MAX_CHANNELS = 16            # histograms drawn at most
MAX_SCATTER_POINTS = 20_000  # points drawn at most in a scatter
MAX_HIST_VALUES = 200_000    # values per channel a histogram is computed from at most
DPI = 100

# colours (the report's palette)
_BLUE, _GREY, _RED, _INK = "#0969da", "#8c959f", "#cf222e", "#1f2328"
_AMBER = "#bf8700"


# ------------------------------------------------------------------ figure plumbing ----------

def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _style(ax) -> None:
    ax.grid(True, color="#e6e8eb", linewidth=0.7)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors="#424a53")


def _short(name: str, n: int = 40) -> str:
    """A layer name cut in the middle to n characters (plot titles and tick labels have a
    fixed width; the report's tables carry the full names)."""
    name = str(name)
    return name if len(name) <= n else name[:n // 2 - 1] + "\u2026" + name[-(n - n // 2):]


# Text kwargs for user strings: drawn as they are (a '$' in a layer name is not mathtext)
_PLAIN = {"parse_math": False}


def _channels_last(x: np.ndarray) -> np.ndarray:
    """(values, channels): the last axis is the channel axis (a 0-d / 1-d tensor is one)."""
    a = np.asarray(x)
    if a.ndim < 2:
        return a.reshape(-1, 1)
    return a.reshape(-1, a.shape[-1])


def _finite(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v[np.isfinite(v)]


def code_range(scale: float | None, zero_point: int | None, bits: int | None) -> tuple[float, float] | None:
    """The float range the codes of a grid cover, [(0 - z) s, (2^b - 1 - z) s]; None when the
    tensor has no grid (a host op)."""
    if scale is None or zero_point is None or bits is None:
        return None
    return (float(scale) * (0 - int(zero_point)), float(scale) * ((1 << int(bits)) - 1 - int(zero_point)))


def _dump_code_range(dump, layer: str) -> tuple[float, float] | None:
    m = dump.layer_meta(layer) if layer in dump.meta.get("layers", {}) else {}
    return code_range(m.get("scale"), m.get("zero_point"), m.get("bits"))


# ------------------------------------------------------------------ histograms ---------------

def pick_channels(x: np.ndarray, max_channels: int = MAX_CHANNELS) -> tuple[list[int], str]:
    """The channels a histogram figure shows and a sentence saying which. All of them when
    there are at most `max_channels`; otherwise `max_channels` live channels spread evenly over
    the channels sorted by range (max - min), so the widest and the narrowest are among them."""
    v = _channels_last(x)
    c = v.shape[1]
    if c <= max_channels:
        return list(range(c)), f"all {c} channel{'s' if c != 1 else ''}"
    ranges = (v.max(axis=0) - v.min(axis=0)).astype(np.float64) if v.shape[0] else np.zeros(c)
    live = np.flatnonzero(ranges > 0)
    pool = live if live.size >= max_channels else np.arange(c)
    order = pool[np.argsort(-ranges[pool], kind="stable")]
    picks = order[np.unique(np.round(np.linspace(0, order.size - 1, max_channels)).astype(int))]
    dead = c - live.size
    note = (f"{len(picks)} of {c} channels, spread over their ranges from the widest (ch "
            f"{int(order[0])}) to the narrowest{' live' if pool is live else ''} (ch "
            f"{int(order[-1])})")
    if dead:
        note += f"; {dead} dead channel{'s' if dead != 1 else ''} not shown"
    return sorted(int(i) for i in picks), note


def channel_histograms(native: np.ndarray, quantized: np.ndarray | None = None,
                       code_range: tuple[float, float] | None = None, layer: str = "",
                       max_channels: int = MAX_CHANNELS, bins: int = 48,
                       columns: int = 4) -> bytes:
    """Per-channel histograms of a layer's float output `native` (channels on the last axis),
    one panel per channel on a shared x axis (so the channels' ranges compare), log counts.
    `quantized` (same shape) is drawn over it as an outline: values piling up at the ends of
    the codes' range are saturation. `code_range` (lo, hi) marks the range the codes cover."""
    v = _channels_last(native)
    q = _channels_last(quantized) if quantized is not None else None
    if q is not None and q.shape != v.shape:
        raise ValueError(f"channel_histograms: native has shape {np.shape(native)} and "
                         f"quantized {np.shape(quantized)}")
    chans, note = pick_channels(v, max_channels)
    if v.shape[0] > MAX_HIST_VALUES:  # a fixed subsample: the shapes of the histograms stay
        rows = np.random.default_rng(0).choice(v.shape[0], MAX_HIST_VALUES, replace=False)
        rows.sort()
        v = v[rows]
        q = q[rows] if q is not None else None
    lo_hi = [_finite(v[:, chans])] + ([_finite(q[:, chans])] if q is not None else [])
    allv = np.concatenate(lo_hi) if lo_hi else np.zeros(1)
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if code_range is not None:  # the codes' range is in sight: too narrow, or wasted
        lo, hi = min(lo, code_range[0]), max(hi, code_range[1])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    ncol = max(1, min(columns, len(chans)))
    nrow = math.ceil(len(chans) / ncol)
    # a fixed grid (no constrained layout) and no minor ticks on the log axes: with 16 panels
    # those two are most of the drawing time
    from matplotlib.ticker import LogLocator, NullLocator

    height = 1.5 * nrow + 1.0
    fig = _figure(2.25 * ncol + 0.45, height, layout=None)
    fig.subplots_adjust(left=0.55 / (2.25 * ncol + 0.45), right=0.985, bottom=0.75 / height,
                        top=1 - 0.62 / height, wspace=0.12, hspace=0.42)
    axes = fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)
    peak = 1
    for i, ax in enumerate(axes.flat):
        if i >= len(chans):
            ax.set_visible(False)
            continue
        c = chans[i]
        col = _finite(v[:, c])
        counts, _ = np.histogram(col, bins=edges)
        peak = max(peak, int(counts.max(initial=0)))
        ax.stairs(np.maximum(counts, 0.5), edges, baseline=0.5, fill=True, color=_BLUE,
                  alpha=0.75, label="float")
        if q is not None:
            qc, _ = np.histogram(_finite(q[:, c]), bins=edges)
            ax.stairs(np.maximum(qc, 0.5), edges, baseline=0.5, color=_RED, linewidth=1.0,
                      label="quantized")
        if code_range is not None:
            for x in code_range:
                if lo <= x <= hi:
                    ax.axvline(x, color=_AMBER, linestyle="--", linewidth=0.9)
        rng = float(col.max() - col.min()) if col.size else 0.0
        ax.set_title(f"ch {c}  (range {rng:.3g})", fontsize=8, color=_INK, pad=3)
        ax.set_yscale("log")
        _style(ax)
        ax.tick_params(labelsize=7)
    first = axes.flat[0]
    first.set_ylim(0.7, peak * 1.6)
    first.yaxis.set_major_locator(LogLocator(base=10, numticks=5))
    first.yaxis.set_minor_locator(NullLocator())
    first.set_xlim(lo, hi)
    handles, labels = first.get_legend_handles_labels()
    if code_range is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color=_AMBER, linestyle="--", linewidth=0.9))
        labels.append(f"codes' range [{code_range[0]:.3g}, {code_range[1]:.3g}]")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    head = f"{_short(layer)}: " if layer else ""
    fig.suptitle(f"{head}float output per channel (counts, log scale)\n{note}", fontsize=9,
                 color=_INK, y=1 - 0.08 / height, va="top", **_PLAIN)
    return _png(fig)


def channel_histograms_of(dump, layer: str, **kw) -> bytes:
    """channel_histograms of `layer` from a TensorDump: its float output, its SdkNumeric
    output over it, and its grid's range."""
    return channel_histograms(dump.native(layer),
                              dump.quantized(layer) if dump.has(f"quantized/{layer}") else None,
                              _dump_code_range(dump, layer), layer=layer, **kw)


# ------------------------------------------------------------------ scatter ------------------

def scatter(native: np.ndarray, quantized: np.ndarray, code_range: tuple[float, float] | None = None,
            layer: str = "", max_points: int = MAX_SCATTER_POINTS, seed: int = 0,
            quantized_label: str = "quantized (SdkNumeric)") -> bytes:
    """The seed's Figure 3: every value of a layer's output, x its quantized value, y its float
    (native) value, coloured by output channel (the last axis), with the y = x line a healthy
    layer hugs in every colour. At most `max_points` values, drawn at random (fixed seed)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    v, q = _channels_last(native), _channels_last(quantized)
    if v.shape != q.shape:
        raise ValueError(f"scatter: native has shape {np.shape(native)} and quantized "
                         f"{np.shape(quantized)}")
    n, c = v.shape
    total = n * c
    flat_v, flat_q = v.reshape(-1), q.reshape(-1)
    if total > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(total, max_points, replace=False))
    else:
        idx = np.arange(total)
    xs, ys, ch = flat_q[idx].astype(np.float64), flat_v[idx].astype(np.float64), idx % c
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys, ch = xs[ok], ys[ok], ch[ok]
    order = np.random.default_rng(seed + 1).permutation(xs.size)  # no channel drawn on top of all
    xs, ys, ch = xs[order], ys[order], ch[order]
    fig = _figure(6.0, 4.9)
    ax = fig.add_subplot()
    norm = Normalize(vmin=-0.5, vmax=c - 0.5)
    cmap = colormaps["turbo"] if c > 1 else None
    size = float(np.clip(20_000 / max(xs.size, 1), 3.0, 24.0))  # few points: bigger dots
    sc = ax.scatter(xs, ys, c=ch if c > 1 else _BLUE, cmap=cmap, norm=norm if c > 1 else None,
                    s=size, alpha=0.55, linewidths=0, rasterized=True)
    both = np.concatenate([xs, ys]) if xs.size else np.array([0.0, 1.0])
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    ax.plot([lo, hi], [lo, hi], color=_INK, linewidth=0.9, linestyle="--", label="y = x")
    if code_range is not None:
        for x in code_range:
            if lo <= x <= hi:
                ax.axvline(x, color=_AMBER, linestyle=":", linewidth=1.0)
    if c > 1:
        cb = fig.colorbar(sc, ax=ax, pad=0.01, fraction=0.05)
        from matplotlib.ticker import MaxNLocator

        cb.locator = MaxNLocator(nbins=8, integer=True)
        cb.update_ticks()
        cb.set_label("output channel", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        cb.solids.set_alpha(1.0)
    ax.set_xlabel(quantized_label, fontsize=9, **_PLAIN)
    ax.set_ylabel("native (float)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _style(ax)
    shown = f"{xs.size:,} of {total:,} values" if total > max_points else f"all {total:,} values"
    head = f"{_short(layer, 56)}\n" if layer else ""
    ax.set_title(f"{head}native vs quantized, {c} channel{'s' if c != 1 else ''}, {shown}",
                 fontsize=9, color=_INK, **_PLAIN)
    return _png(fig)


def scatter_of(dump, layer: str, **kw) -> bytes:
    """scatter of `layer` from a TensorDump: its SdkNumeric output against its float one."""
    return scatter(dump.native(layer), dump.quantized(layer), _dump_code_range(dump, layer),
                   layer=layer, **kw)


# ------------------------------------------------------------------ SNR bars -----------------

def snr_bars(layers: Sequence[str], alone_db: Sequence[float], cumulative_db: Sequence[float],
             threshold_db: float, flagged: Sequence[bool] | None = None, title: str = "") -> bytes:
    """Per-layer SNR, one row per layer in the order given (network order): (a) with only the
    layer quantized, at the worst output, and (b) with everything quantized, at the layer's own
    output; the threshold line; flagged layers (default: (a) under the threshold) in red.
    Infinite SNRs (no error) are drawn to the right edge and marked with an infinity sign."""
    layers = [str(l) for l in layers]
    a = np.asarray(alone_db, np.float64).reshape(-1)
    b = np.asarray(cumulative_db, np.float64).reshape(-1)
    if not (len(layers) == a.size == b.size):
        raise ValueError(f"snr_bars: {len(layers)} layers, {a.size} (a) values and {b.size} (b) "
                         f"values; give one of each per layer")
    flags = (np.asarray(flagged, bool).reshape(-1) if flagged is not None
             else np.nan_to_num(a, nan=np.inf) < threshold_db)
    fin = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)], [float(threshold_db), 0.0]])
    top = max(float(fin.max()) * 1.08 + 2.0, float(threshold_db) + 10.0)
    bottom = min(float(fin.min()) - 2.0, 0.0) if fin.size else 0.0
    if bottom < 0:
        bottom = bottom * 1.05

    def clip(v):
        out = np.where(np.isposinf(v), top, np.where(np.isneginf(v), bottom, v))
        return np.nan_to_num(out, nan=0.0)

    n = len(layers)
    fig = _figure(9.0, max(2.6, 0.26 * n + 1.3))
    ax = fig.add_subplot()
    y = np.arange(n)
    h = 0.38
    a_col = [_RED if f else _BLUE for f in flags]
    ax.barh(y - h / 2, clip(a), height=h, color=a_col, label="(a) only this layer quantized, worst output")
    ax.barh(y + h / 2, clip(b), height=h, color=_GREY, label="(b) everything quantized, this layer's output")
    for vals, off in ((a, -h / 2), (b, h / 2)):
        for i, v in enumerate(vals):
            if math.isinf(v):
                ax.text(top if v > 0 else bottom, i + off, " \u221e" if v > 0 else "\u2212\u221e ",
                        va="center", ha="left" if v > 0 else "right", fontsize=7, color=_INK)
    ax.axvline(float(threshold_db), color=_RED, linestyle="--", linewidth=1.0,
               label=f"threshold {threshold_db:g} dB")
    ax.axvline(0.0, color=_INK, linewidth=0.6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(bottom, top * 1.04)
    ax.set_xlabel("SNR (dB)", fontsize=9)
    _style(ax)
    ax.grid(False, axis="y")
    ax.set_yticks(y)
    ax.set_yticklabels([_short(l, 32) for l in layers], fontsize=7.5, parse_math=False)
    for i, (lab, f) in enumerate(zip(ax.get_yticklabels(), flags)):
        if f:  # after _style: tick_params would reset the colour
            lab.set_color(_RED)
            lab.set_fontweight("bold")
            if math.isfinite(a[i]):
                x = clip(a[i:i + 1])[0]
                ax.text(max(x, 0.0), i - h / 2, f" {a[i]:.1f} dB", va="center", ha="left",
                        fontsize=7, color=_RED, fontweight="bold")
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if flags.any():
        handles.append(Patch(color=_RED))
        labels.append("(a) of a flagged layer")
    fig.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(_short(title, 90), fontsize=10, color=_INK, **_PLAIN)
    return _png(fig)


def layer_snrs(dump) -> dict[str, Any]:
    """Per analysed layer (network order) from a TensorDump: {"layers", "alone_db" (the worst
    output's), "cumulative_db", "local_db"}, the report's SNRs recomputed with analysis.metrics."""
    from . import metrics

    names = [l for l in dump.layers if dump.layer_meta(l).get("analysed")]
    outs = dump.outputs
    alone = [min(metrics.snr_db(dump.alone_ref(l, o), dump.alone(l, o)) for o in outs)
             for l in names]
    cum = [metrics.snr_db(dump.native(l), dump.quantized(l)) for l in names]
    loc = [metrics.snr_db(dump.local_ref(l), dump.local(l)) for l in names]
    return {"layers": names, "alone_db": alone, "cumulative_db": cum, "local_db": loc}


def snr_bars_of(dump, threshold_db: float, **kw) -> bytes:
    """snr_bars from a TensorDump (layer_snrs)."""
    s = layer_snrs(dump)
    return snr_bars(s["layers"], s["alone_db"], s["cumulative_db"], threshold_db, **kw)


def snr_bars_of_report(report) -> bytes:
    """snr_bars of a NoiseReport (its numbers, its flags)."""
    ls = report.layers
    return snr_bars([l.layer for l in ls], [l.alone_snr_db for l in ls],
                    [l.cumulative.snr_db for l in ls], report.threshold_db,
                    [l.flagged for l in ls])


# ------------------------------------------------------------------ weight ranges ------------

def per_channel_ranges(kernel: np.ndarray, layer_type: str = "conv") -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of a kernel per output channel: the last axis, or for a depthwise kernel
    [kh, kw, cin, multiplier] the last two flattened (output channel = cin * mult + m)."""
    k = np.asarray(kernel, np.float64)
    if layer_type == "dw" and k.ndim == 4:
        k = k.reshape(*k.shape[:2], -1)
    flat = k.reshape(-1, k.shape[-1]) if k.ndim >= 1 else k.reshape(1, 1)
    return flat.min(axis=0), flat.max(axis=0)


def _spread(lo: np.ndarray, hi: np.ndarray) -> float:
    """The widest channel's max |w| over the median channel's (1 when degenerate)."""
    m = np.maximum(np.abs(lo), np.abs(hi))
    live = m[m > 0]
    med = float(np.median(live)) if live.size else 0.0
    return float(live.max() / med) if med > 0 else 1.0


def weight_ranges(items: Sequence[tuple[str, str, np.ndarray, np.ndarray]], columns: int = 2,
                  title: str = "") -> bytes:
    """Weight ranges per output channel before and after equalization, one panel per layer:
    `items` are (layer, HN type, kernel before, kernel after). Each channel is a bar from its
    smallest to its largest weight, before (grey, wide) and after (blue, narrow); the panel's
    title gives the channel spread (widest channel's max |w| / median channel's) of both."""
    if not items:
        raise ValueError("weight_ranges: no layers to draw")
    ncol = max(1, min(columns, len(items)))
    nrow = math.ceil(len(items) / ncol)
    fig = _figure(4.5 * ncol + 0.3, 2.3 * nrow + 0.7)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(items):
            ax.set_visible(False)
            continue
        name, kind, before, after = items[i]
        b_lo, b_hi = per_channel_ranges(before, kind)
        a_lo, a_hi = per_channel_ranges(after, kind)
        if b_lo.shape != a_lo.shape:
            raise ValueError(f"weight_ranges: {name} has {b_lo.size} channels before and "
                             f"{a_lo.size} after")
        x = np.arange(b_lo.size)
        ax.bar(x, b_hi - b_lo, bottom=b_lo, width=0.9, color=_GREY, alpha=0.55, label="before")
        ax.bar(x, a_hi - a_lo, bottom=a_lo, width=0.45, color=_BLUE, alpha=0.9, label="after")
        ax.axhline(0.0, color=_INK, linewidth=0.5)
        y_lo, y_hi = min(float(b_lo.min()), float(a_lo.min()), 0.0), \
            max(float(b_hi.max()), float(a_hi.max()), 0.0)
        pad = 0.06 * (y_hi - y_lo) if y_hi > y_lo else 0.5
        ax.set_ylim(y_lo - pad, y_hi + pad)  # bars' sticky edges would cut the extremes
        ax.set_title(f"{_short(name, 28)} ({kind}): spread {_spread(b_lo, b_hi):.1f}\u00d7 \u2192 "
                     f"{_spread(a_lo, a_hi):.1f}\u00d7", fontsize=8.5, color=_INK, **_PLAIN)
        ax.set_xlabel("output channel", fontsize=8)
        ax.set_xlim(-1, b_lo.size)
        _style(ax)
        ax.tick_params(labelsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, ["weights before equalization (native)",
                         "after (fp-optimized)"][:len(handles)], loc="outside lower center",
               ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or "weight range per output channel, before and after equalization",
                 fontsize=9.5, color=_INK, **_PLAIN)
    return _png(fig)


WeightItem = tuple[str, str, np.ndarray, np.ndarray]  # (layer, HN type, kernel before, after)


def equalized_weights(runner: Any, layers: Sequence[str] | None = None) -> list[WeightItem]:
    """(layer, type, native kernel, fp-optimized kernel) of every MAC layer (or of `layers`),
    in network order, whose fp-optimized kernel differs from its native one; [] when the runner
    has no fp-optimized params."""
    from ..hn import MAC_TYPES

    if runner is None or getattr(runner, "fp_optimized_params", None) is None \
            or getattr(runner, "native_params", None) is None:
        return []
    wanted = None if layers is None else set(layers)
    out = []
    for layer in runner.hn.topological():
        if layer.type not in MAC_TYPES or (wanted is not None and layer.name not in wanted):
            continue
        before = runner.layer_params(layer.name, "native").get("kernel")
        after = runner.layer_params(layer.name, "fp_optimized").get("kernel")
        if before is None or after is None or np.shape(before) != np.shape(after):
            continue
        if not np.array_equal(before, after):
            out.append((layer.name, layer.type, np.asarray(before), np.asarray(after)))
    return out


def spread_change(item: tuple[str, str, np.ndarray, np.ndarray]) -> float:
    """How much equalization changed a layer's channel spread: |log(after / before)|."""
    _, kind, before, after = item
    return abs(math.log(_spread(*per_channel_ranges(after, kind)) /
                        _spread(*per_channel_ranges(before, kind))))
