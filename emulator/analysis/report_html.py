"""The noise analysis's HTML report: one static file, plots embedded (docs/analysis.md).

    html = render_html(report)        # report: analysis.noise.NoiseReport
    report.save_html("noise.html")    # the same, written atomically

Sections, in order: the header (network, images, threshold, time, the outputs' SNR with every
layer quantized), the flagged layers first (each with its numbers (a) (b) (c), its diagnostics
in words with the seed's advice, its model-script lines, its per-channel histograms and its
native-vs-quantized scatter; when nothing is flagged, the worst few layers the same way), the
Lerr check, the whole suggested script, the per-layer SNR bars, the weight ranges before and
after equalization, and every layer ranked.

The page has no external resource (styles inline, images as data: URIs, no script) and fits
800-1400 px wide windows: wide tables scroll in their own box, long names and script lines
wrap. Every string from the network or the user (names, scripts, findings) is HTML-escaped by
the template (jinja2 autoescape). A plot that cannot be drawn is replaced by a note saying why
(and a warning), so a long analysis always gets its report.
"""
from __future__ import annotations

import base64
import datetime
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from . import plots

TEMPLATE = "noise_report.html.j2"
MAX_PLOTTED_LAYERS = 12   # flagged layers that get their histograms and scatter
WORST_SHOWN = 3           # layers shown in detail when nothing is flagged
MAX_WEIGHT_LAYERS = 8     # layers in the weight-range figure
LERR_EXPLAINED_PCT = 2.0  # the seed: the error left with the flagged layers float, 1-2 %

# what each finding means, in words, and the seed's advice (section 5.2)
SEED_ADVICE = {
    "low_weight_bits": "Weights under 8 bits give every output channel a coarse kernel: the "
                       "error is spread over all values, not concentrated in a tail.",
    "saturation": "The seed: the dynamic range must cover the values the layer really "
                  "produces. Values beyond the codes' range are clipped to its ends, which "
                  "shows in the scatter as a vertical wall at the range's edge.",
    "long_tail": "The seed: if there is a large dynamic range that is caused by a few "
                 "outliers, consider clipping the activations.",
    "channel_spread": "The seed: if there is high variance between channels or a high dynamic "
                      "range, check whether there is a batch normalization after this layer; "
                      "if not, adding one would improve the net. Equalization rescales the "
                      "channels to the same effect.",
    "biased": "The seed: when the zero point is not at zero, QFT / IBC (bias correction) or "
              "equalization could help.",
    "off_centre": "The seed: when the zero point is not at zero, QFT / IBC (bias correction) "
                  "or equalization could help.",
}
FINDING_TITLES = {
    "low_weight_bits": "Low-precision weights",
    "saturation": "Saturation: the codes' range is too narrow",
    "long_tail": "A long tail of outliers",
    "channel_spread": "Channels with very different ranges",
    "biased": "A biased error",
    "off_centre": "A zero point off-centre, with a bias",
}


# ------------------------------------------------------------------ formatting ---------------

def fmt_db(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "\u221e" if v > 0 else "\u2212\u221e"
    return f"{v:.1f}"


def fmt_num(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "\u2014"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return fmt_db(v)
    if v == 0:
        return "0"
    return f"{v:.{digits}g}"


def fmt_cos(v: float | None) -> str:
    return "\u2014" if v is None else f"{v:.5f}"


def fmt_seconds(v: float) -> str:
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _snr_class(v: float, threshold: float) -> str:
    if math.isnan(v) or v < threshold:
        return "bad"
    return "ok" if v >= threshold + 10 else "warn"


# ------------------------------------------------------------------ plots --------------------

class _Plotter:
    """Draws the plots, times them, and turns a failure into a note in the report."""

    def __init__(self):
        self.seconds = 0.0
        self.count = 0
        self.failures: list[str] = []

    def __call__(self, what: str, fn: Callable[[], bytes], caption: str) -> dict:
        t = time.perf_counter()
        try:
            png = fn()
        except Exception as e:  # noqa: BLE001 - the report must not be lost to one plot
            msg = f"{what}: {type(e).__name__}: {e}"
            self.failures.append(msg)
            warnings.warn(f"noise report: could not draw {msg}", RuntimeWarning, stacklevel=3)
            return {"src": None, "caption": caption, "error": msg, "alt": what, "width": None,
                    "height": None}
        finally:
            self.seconds += time.perf_counter() - t
        self.count += 1
        w, h = _png_size(png)
        return {"src": _data_uri(png), "caption": caption, "error": None, "alt": what,
                "bytes": len(png), "width": w, "height": h}


def _layer_plots(report, layer: str, plot: _Plotter) -> tuple[list[dict], str | None]:
    dump = report.tensors
    if dump is None:
        return [], ("no tensors in this report (it was not made by analyze_noise in this "
                    "process): no plots")
    if not (dump.has(f"native/{layer}") and dump.has(f"quantized/{layer}")):
        return [], f"the tensor dump has no tensors of '{layer}': no plots"
    return [
        plot(f"histograms of {layer}", lambda: plots.channel_histograms_of(dump, layer),
             "Float output per channel (blue), the quantized output over it (red outline) and "
             "the range the codes cover (dashed). Values piling up at an end of the range are "
             "saturation; a few values far out are a long tail; panels of very different "
             "widths are channels with different ranges."),
        plot(f"scatter of {layer}", lambda: plots.scatter_of(dump, layer),
             "The seed's Figure 3: x the quantized value, y the float one, a colour per output "
             "channel. A healthy layer hugs the dashed y = x line in every colour; a vertical "
             "wall is saturation, a smudge is noise, a shifted colour is a biased channel."),
    ], None


# ------------------------------------------------------------------ words --------------------

def _bulk_words() -> str:
    """The percentiles the diagnostics call the bulk of the values, in words."""
    from . import diagnostics

    lo, hi = getattr(diagnostics, "BULK_PCT", (0.01, 99.99))
    return f"{lo:g}\u2013{hi:g}th percentile"


def _measures(d) -> list[tuple[str, str]]:
    """The diagnostics' measures as (what, value) rows."""
    rows = [
        ("float values", f"[{fmt_num(d.float_min)}, {fmt_num(d.float_max)}]; the bulk "
                         f"({_bulk_words()}) [{fmt_num(d.bulk_lo)}, {fmt_num(d.bulk_hi)}]"),
        ("codes' range", f"[{fmt_num(d.range_lo)}, {fmt_num(d.range_hi)}]: scale "
                         f"{fmt_num(d.scale)}, zero point {d.zero_point} "
                         f"({100 * d.zero_point_position:.0f}% of the codes), {d.bits}-bit"),
        ("saturated", f"{d.saturated_pct:.3g}% of the float values"),
        ("tail", f"the full range is {d.tail_ratio:.2f}\u00d7 the bulk's"),
        ("channels", f"{d.channels}, {d.dead_channels} dead; the widest is "
                     f"{d.channel_spread:.1f}\u00d7 the median, which spans "
                     f"{d.median_channel_codes:.1f} codes"
                     + (f"; outliers: {', '.join(map(str, d.outlier_channels[:12]))}"
                        + ("\u2026" if len(d.outlier_channels) > 12 else "")
                        if d.outlier_channels else "")),
        ("bias", f"mean error {d.mean_error_lsb:+.2f} LSB, worst channel "
                 f"{d.worst_channel_bias_lsb:.2f} LSB"),
        ("configuration", f"{d.precision_mode}, bias {d.bias_mode}"
                          + (f", {d.weight_bits}-bit weights" if d.weight_bits is not None else "")
                          + f", activation {d.activation}"
                          + (f", forced range {d.force_range_out}" if d.force_range_out else "")
                          + (f", clipping {d.activation_clipping}" if d.activation_clipping else "")),
    ]
    return rows


def _findings(d) -> list[dict]:
    """Each finding of the diagnostics: a title, what was measured in words, the seed's advice."""
    out = []
    for f in d.findings:
        if f == "low_weight_bits":
            said = f"Its weights are {d.weight_bits}-bit ({d.precision_mode})."
        elif f == "saturation":
            said = (f"{d.saturated_pct:.3g}% of its float values fall outside the codes' range "
                    f"[{fmt_num(d.range_lo)}, {fmt_num(d.range_hi)}]; they reach "
                    f"[{fmt_num(d.float_min)}, {fmt_num(d.float_max)}]"
                    + (f" (the range is forced to {d.force_range_out})" if d.force_range_out
                       else "") + ".")
        elif f == "long_tail":
            said = (f"A few outliers stretch its range {d.tail_ratio:.1f}\u00d7 beyond the bulk "
                    f"of its values [{fmt_num(d.bulk_lo)}, {fmt_num(d.bulk_hi)}] "
                    f"({_bulk_words()}), thinning the "
                    f"codes left for the bulk.")
        elif f == "channel_spread":
            said = (f"Its widest channel's range is {d.channel_spread:.1f}\u00d7 the median "
                    f"channel's, and a median channel spans only {d.median_channel_codes:.1f} "
                    f"codes: the narrow channels are under-represented.")
        elif f == "biased":
            said = (f"Its error has a bias: mean {d.mean_error_lsb:+.2f} LSB (worst channel "
                    f"{d.worst_channel_bias_lsb:.2f} LSB), with the zero point at "
                    f"{100 * d.zero_point_position:.0f}% of the codes.")
        elif f == "off_centre":
            said = (f"Its zero point sits at {100 * d.zero_point_position:.0f}% of the codes, not "
                    f"at an end, and its error has a bias of {d.mean_error_lsb:+.2f} LSB (worst "
                    f"channel {d.worst_channel_bias_lsb:.2f} LSB).")
        else:
            said = f"Finding '{f}'."
        out.append({"key": f, "title": FINDING_TITLES.get(f, f), "said": said,
                    "seed": SEED_ADVICE.get(f, "")})
    return out


def _stats_rows(ln) -> list[dict]:
    rows = []
    for o, s in ln.alone.items():
        rows.append({"what": "(a) only this layer quantized", "where": f"model output {o}", "s": s})
    rows.append({"what": "(b) everything quantized", "where": "its own output", "s": ln.cumulative})
    rows.append({"what": "(c) fed the float inputs", "where": "its own output (its own error)",
                 "s": ln.local})
    return rows


def _layer_detail(report, ln, plot: _Plotter | None, rank: int) -> dict:
    imgs, note = _layer_plots(report, ln.layer, plot) if plot is not None else \
        ([], f"plots are drawn for the first {MAX_PLOTTED_LAYERS} layers only")
    sug = ln.suggestion
    return {"layer": ln.layer, "type": ln.type, "rank": rank, "flagged": ln.flagged,
            "alone_db": ln.alone_snr_db, "stats": _stats_rows(ln),
            "measures": _measures(ln.diagnostics), "findings": _findings(ln.diagnostics),
            "advice": list(sug.advice) if sug else [],
            "script": ("\n".join(sug.script) + "\n") if sug and sug.script else "",
            "plots": imgs, "plot_note": note}


# ------------------------------------------------------------------ the report ---------------

def _lerr(report) -> dict | None:
    c = report.lerr
    if c is None:
        return None
    rows = []
    for o, s in c.flagged_float.items():
        allq = c.all_quantized.get(o)
        rows.append({"output": o, "all_db": allq.snr_db if allq else math.nan,
                     "float_db": s.snr_db, "all_cos": allq.cosine if allq else None,
                     "float_cos": s.cosine,
                     "all_pct": 100.0 * 10.0 ** (-allq.snr_db / 20.0) if allq else math.nan,
                     "float_pct": 100.0 * 10.0 ** (-s.snr_db / 20.0)})
    pct = c.remaining_error_pct
    if pct <= LERR_EXPLAINED_PCT:
        verdict, cls = (f"The flagged layers explain the error: {pct:.2g}% remains with them "
                        f"float (the seed expects 1\u20132%).", "ok")
    elif pct <= 10.0:
        verdict, cls = (f"The flagged layers explain most of the error, but {pct:.2g}% remains "
                        f"with them float (the seed expects 1\u20132%): other layers add to it. "
                        f"Lower the threshold to see them (the ranked table below lists the "
                        f"next ones).", "warn")
    else:
        verdict, cls = (f"{pct:.2g}% of the error remains with the flagged layers float: they "
                        f"do not explain it. Either other layers add much of it (lower the "
                        f"threshold) or the layers' errors interact, which the per-layer ranking "
                        f"assumes they do not.", "bad")
    return {"kept_float": list(c.kept_float), "rows": rows, "pct": pct, "verdict": verdict,
            "cls": cls}


def _weights(report, plot: _Plotter) -> dict:
    runner = report.runner
    if runner is None:
        return {"img": None, "note": "The report has no runner (it was not made in this "
                                     "process): the weights are not available."}
    if getattr(runner, "fp_optimized_params", None) is None:
        return {"img": None, "note": "No pre-quantization optimization changed the weights "
                                     "(the runner has no fp-optimized params): nothing to "
                                     "compare."}
    t = time.perf_counter()
    try:
        items = plots.equalized_weights(runner)
    except Exception as e:  # noqa: BLE001
        plot.failures.append(f"weights: {type(e).__name__}: {e}")
        return {"img": None, "note": f"The weights could not be read: {type(e).__name__}: {e}"}
    finally:
        plot.seconds += time.perf_counter() - t
    if not items:
        return {"img": None, "note": "The fp-optimized weights are the native ones for every "
                                     "MAC layer: equalization changed nothing."}
    flagged = {l.layer for l in report.flagged}
    ranked = sorted(items, key=lambda it: (it[0] not in flagged, -plots.spread_change(it)))
    shown = ranked[:MAX_WEIGHT_LAYERS]
    order = {it[0]: i for i, it in enumerate(items)}
    shown.sort(key=lambda it: order[it[0]])  # network order in the figure
    left = len(items) - len(shown)
    note = (f"{len(items)} MAC layers have equalized weights"
            + (f"; shown: the {len(shown)} whose channel spread changed most"
               + (" (flagged layers first)" if flagged & {it[0] for it in items} else "")
               + f"; not shown: {', '.join(it[0] for it in items if it not in shown)}"
               if left else "; all shown") + ".")
    img = plot("weight ranges", lambda: plots.weight_ranges(shown),
               "Per output channel, the range [min, max] of its weights before (grey) and after "
               "(blue) equalization; the panel's title gives the spread, the widest channel's "
               "max |w| over the median channel's.")
    return {"img": img, "note": note}


def _context(report, generated: str | None) -> dict[str, Any]:
    plot = _Plotter()
    t0 = time.perf_counter()
    ranked = report.ranked_layers
    rank_of = {l.layer: i + 1 for i, l in enumerate(ranked)}
    flagged = report.flagged
    detail_layers = flagged if flagged else ranked[:WORST_SHOWN]
    details = [_layer_detail(report, ln, plot if i < MAX_PLOTTED_LAYERS else None,
                             rank_of[ln.layer])
               for i, ln in enumerate(detail_layers)]
    bars = plot("SNR per layer", lambda: plots.snr_bars_of_report(report),
                "Per layer in network order: (a) the worst model output's SNR with only that "
                "layer quantized (blue; red when flagged) and (b) the SNR at the layer's own "
                "output with every layer quantized (grey). (a) ranks the layers; (b) shows how "
                "the error builds up.") if report.layers else None
    weights = _weights(report, plot)
    outputs = [{"name": o, "s": s, "cls": _snr_class(s.snr_db, report.threshold_db)}
               for o, s in report.outputs.items()]
    seconds = dict(report.seconds)
    total = seconds.pop("total", None)
    table = [{"rank": i + 1, "layer": l.layer, "type": l.type, "alone": l.alone_snr_db,
              "cum": l.cumulative.snr_db, "local": l.local.snr_db, "cos": l.cumulative.cosine,
              "lsb": l.local.rmse_lsb, "findings": ", ".join(l.diagnostics.findings),
              "flagged": l.flagged} for i, l in enumerate(ranked)]
    return {
        "network": report.network, "images": report.images, "threshold": report.threshold_db,
        "reference": report.reference, "outputs": outputs, "total_seconds": total,
        "step_seconds": seconds, "generated": generated, "flagged": [l.layer for l in flagged],
        "details": details, "n_layers": len(report.layers), "lerr": _lerr(report),
        "script": report.suggested_script, "model_script": report.model_script or "",
        "bars": bars, "weights": weights, "table": table, "plot_failures": plot.failures,
        "plot_count": plot.count, "plot_seconds": plot.seconds,
        "context_seconds": time.perf_counter() - t0,
    }


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(db=fmt_db, num=fmt_num, cos=fmt_cos, secs=fmt_seconds,
                       snrcls=_snr_class)
    return env


def render_html(report, generated: str | None = None) -> str:
    """The report (module doc) as one HTML document. `generated`: the date line in the header
    (default: now, UTC)."""
    if generated is None:
        generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ctx = _context(report, generated)
    return _environment().get_template(TEMPLATE).render(**ctx)
