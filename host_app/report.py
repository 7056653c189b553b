"""The static HTML report of a comparison: one self-contained file (templates/report.html.j2),
plots as embedded PNG images drawn with matplotlib's Agg backend.

Plots per output stream: the native-vs-quantized scatter of the stream's tensor coloured by
channel (x quantized, y native: a healthy tensor hugs the diagonal in every colour), the histogram of the error in units of
the stream's quantization step, and for classifiers the top-1 confusion of native against
quantized.
"""
from __future__ import annotations

import base64
import datetime
import io
import math
from pathlib import Path

import numpy as np

from emulator.files import atomic_write

from emulator.analysis import metrics

from .compare import (DETECTION_FAIR, DETECTION_GOOD, RUNS, SNR_FLAG_DB, SNR_GOOD_DB, Comparison,
                      detection_status, snr_status)
from .console import fmt_db, fmt_num

MAX_SCATTER_POINTS = 40_000


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fig_png(fig) -> str:
    plt = _mpl()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return png_data_uri(buf.getvalue())


def _style(ax) -> None:
    ax.grid(True, color="#e6e8eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def scatter_plot(native: np.ndarray, quantized: np.ndarray, channels: int, title: str,
                 labels: list[str] | None = None) -> str:
    """x: quantized, y: native, one colour per channel (last axis)."""
    plt = _mpl()
    n = native.reshape(-1)
    q = quantized.reshape(-1)
    ch = np.arange(n.size) % max(1, channels)
    if n.size > MAX_SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(n.size, MAX_SCATTER_POINTS, replace=False)
        n, q, ch = n[keep], q[keep], ch[keep]
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cmap = plt.get_cmap("tab10" if channels <= 10 else "turbo")
    colours = cmap(ch % 10) if channels <= 10 else cmap(ch / max(1, channels - 1))
    ax.scatter(q, n, s=9 if n.size < 5000 else 3, c=colours, alpha=0.75, linewidths=0)
    lo = float(min(n.min(initial=0), q.min(initial=0)))
    hi = float(max(n.max(initial=0), q.max(initial=0)))
    pad = (hi - lo) * 0.04 or 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#57606a", lw=0.8, ls="--", zorder=0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("quantized (device)")
    ax.set_ylabel("native (SdkNative)")
    ax.set_title(title, fontsize=10, loc="left")
    _style(ax)
    if channels <= 10:
        from matplotlib.lines import Line2D

        names = labels if labels and len(labels) == channels else [f"ch {i}" for i in range(channels)]
        handles = [Line2D([], [], marker="o", ls="", color=cmap(i), label=names[i], markersize=5)
                   for i in range(channels)]
        ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left",
                  ncol=1 if channels <= 7 else 2)
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, channels - 1))
        fig.colorbar(sm, ax=ax, label="channel", fraction=0.046, pad=0.04)
    return _fig_png(fig)


def error_histogram(native: np.ndarray, quantized: np.ndarray, lsb: float | None, title: str) -> str:
    """Histogram of quantized - native, in quantization steps (LSB) when the step is known."""
    plt = _mpl()
    err = (quantized.astype(np.float64) - native.astype(np.float64)).reshape(-1)
    unit = lsb if lsb and lsb > 0 and math.isfinite(lsb) else 1.0
    e = err / unit
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    span = max(1.0, float(np.percentile(np.abs(e), 99.9))) if e.size else 1.0
    bins = np.linspace(-span * 1.05, span * 1.05, 61)
    ax.hist(np.clip(e, bins[0], bins[-1]), bins=bins, color="#0969da", alpha=0.85)
    if lsb:
        for x in (-0.5, 0.5):
            ax.axvline(x, color="#cf222e", lw=0.9, ls="--")
        ax.text(0.5, 0.98, " ±½ step", color="#cf222e", fontsize=8, va="top",
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("quantized − native " + (f"(steps of {fmt_num(lsb)})" if lsb else ""))
    ax.set_ylabel("values")
    mean = metrics.mean_error(native, quantized) / unit  # the bias, in steps
    ax.set_title(f"{title}\nmean {mean:+.3f}, std {float(e.std()) if e.size else 0:.3f}"
                 + (" steps" if lsb else ""), fontsize=10, loc="left")
    _style(ax)
    return _fig_png(fig)


def confusion_plot(native_top1: list[int], quant_top1: list[int], labels: list[str],
                   title: str) -> str:
    plt = _mpl()
    k = len(labels)
    m = np.zeros((k, k), np.int64)
    for a, b in zip(native_top1, quant_top1):
        m[a, b] += 1
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > m.max() / 2 else "#24292f",
                        fontweight="bold" if i != j else "normal")
    ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("quantized top-1")
    ax.set_ylabel("native top-1")
    ax.set_title(title, fontsize=10, loc="left")
    return _fig_png(fig)


def thumbnail_uri(img: np.ndarray | None) -> str | None:
    if img is None:
        return None
    import cv2

    bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr)
    return png_data_uri(buf.tobytes()) if ok else None


_CSS_STATUS = {"good": "pass", "fair": "warn", "poor": "fail"}


def _status(m) -> str:
    return _CSS_STATUS[m.snr_status]


def _worst_first(c: Comparison) -> list[int]:
    """Image indices, worst first: byte differences, then top-1 disagreements, then the
    lowest SNR of the first output."""
    first = next((m for m in c.metrics if m.point == "output"), None)

    def key(i: int):
        differing = sum(ch.per_image[i] for ch in c.checks if ch.per_image)
        disagree = any(m.native_top1 is not None and m.native_top1[i] != m.quantized_top1[i]
                       for m in c.metrics)
        snr = first.per_image_snr_db[i] if first else 0.0
        return (-differing, not disagree, snr, i)

    return sorted(range(len(c.batch)), key=key)


OVERLAY_SIZE = 176  # px, the longest side of the report's detection overlays
OVERLAY_COLORS = {"native": (60, 190, 60), "device": (220, 40, 220)}  # BGR: green, magenta


def overlay_uri(image: np.ndarray | None, layers: list, size: int = OVERLAY_SIZE) -> str | None:
    """The image (RGB / grey uint8) scaled to `size` with each (Result, BGR colour) of `layers`
    drawn on it, as a PNG data URI."""
    if image is None:
        return None
    import copy

    import cv2

    from .postprocess import draw

    h, w = image.shape[:2]
    f = size / max(h, w)
    img = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * f)), max(1, round(h * f))),
                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    img = img if img.ndim == 2 else img[..., ::-1]  # RGB -> BGR for OpenCV
    for result, color in layers:
        scaled = copy.deepcopy(result)
        for d in scaled.detections:
            d.box = tuple(v * f for v in d.box)
            d.keypoints = None if d.keypoints is None else np.asarray(d.keypoints) * f
        thick = 2 if color == OVERLAY_COLORS["native"] else 1
        img = draw(img, scaled, color=color, labels=False, keypoints=False, thickness=thick)
    ok, buf = cv2.imencode(".png", img)
    return png_data_uri(buf.tobytes()) if ok else None


_DETECTION_CSS = {"good": "pass", "fair": "warn", "poor": "fail"}


def detection_context(c: Comparison) -> dict | None:
    """The report's detection section: a card per agreement, per image the boxes of native and
    the device drawn over the image, the counts and IoUs, worst first."""
    d = c.detections
    if d is None:
        return None

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    cards = [{"label": a.label, "status": _DETECTION_CSS[detection_status(a.map, a.recall)],
              "recall_status": _DETECTION_CSS[detection_status(a.recall)],
              "precision_status": _DETECTION_CSS[detection_status(a.precision)],
              "map": pct(a.map), "precision": pct(a.precision), "recall": pct(a.recall),
              "mean_iou": "-" if a.mean_iou is None else f"{a.mean_iou:.3f}",
              "matched": a.matched, "reference": a.reference_boxes, "test": a.test_boxes,
              "gated": a.reference == RUNS["native"]}
             for a in d.agreements]
    device = next((a for a in d.agreements
                   if a.test == RUNS["device"] and a.reference == RUNS["native"]), None)
    runs = list(d.runs)
    rows = []
    for i, name in enumerate(c.batch.names):
        counts = {run: len(d.runs[run][i].detections) for run in runs}
        p = device.per_image[i] if device is not None else {}
        miss = max(counts.get("native", 0), counts.get("device", 0)) - p.get("matched", 0)
        rows.append({"name": name, "counts": counts, "matched": p.get("matched", 0),
                     "min_iou": "-" if p.get("min_iou") is None else f"{p['min_iou']:.3f}",
                     "ok": miss == 0, "key": (-miss, p.get("min_iou") or 1.0, i),
                     "thumb": overlay_uri(d.images[i] if i < len(d.images) else None,
                                          [(d.runs[run][i], OVERLAY_COLORS[run])
                                           for run in ("native", "device") if run in d.runs])})
    rows.sort(key=lambda r: r["key"])
    return {"spec": d.postprocess, "iou": d.iou_threshold, "cards": cards, "runs": runs,
            "rows": rows, "good": DETECTION_GOOD, "fair": DETECTION_FAIR}


def build_context(c: Comparison, command: str = "") -> dict:
    """Everything the template shows, as plain values."""
    from . import __version__

    infos = {s.name: s for s in c.streams}
    outputs = []
    for m in c.metrics:
        if m.point != "output":
            continue
        arr = c.arrays[m.output]
        info = infos[m.stream]
        labels = c.labels.get(m.output)
        stream_m = next((x for x in c.metrics if x.output == m.output and x.point == "stream"), None)
        tensor = str(arr["tensor"])
        channels = int(arr["channels"])
        plots = [
            {"title": "native vs quantized, by channel",
             "uri": scatter_plot(arr["native"], arr["quantized"], channels,
                                 f"{m.output}: tensor '{tensor}' ({channels} channels)",
                                 labels if channels == len(labels or []) else None)},
            {"title": "error distribution",
             "uri": error_histogram(arr["native"], arr["quantized"], info.quant_info.qp_scale,
                                    f"{m.output}: error at tensor '{tensor}'")},
        ]
        if m.native_top1 is not None:
            names = labels or [f"class {i}" for i in range(int(np.prod(c.arrays[m.output]["native"].shape[1:])))]
            plots.append({"title": "top-1: native vs quantized",
                          "uri": confusion_plot(m.native_top1, m.quantized_top1, names,
                                                f"{m.output}: top-1 agreement "
                                                f"{m.top1_agreement:.1%}")})
        outputs.append({"name": m.output, "stream": m.stream, "metrics": m,
                        "stream_metrics": stream_m, "status": _status(m), "plots": plots,
                        "snr": fmt_db(m.snr_db),
                        "stream_snr": fmt_db(stream_m.snr_db) if stream_m else None,
                        "stream_status": _status(stream_m) if stream_m else None,
                        "host_ops": c.host_ops.get(m.stream, []),
                        "agree": sum(a == b for a, b in zip(m.native_top1 or [], m.quantized_top1 or []))})
    streams = [{"info": s, "direction": "input" if s.is_input else "output",
                "transform": c.descriptions.get(s.name, ""),
                "host_ops": ", ".join(c.host_ops.get(s.name, [])),
                "scale": fmt_num(s.quant_info.qp_scale), "zp": fmt_num(s.quant_info.qp_zp),
                "limvals": f"[{fmt_num(s.quant_info.limvals_min)}, {fmt_num(s.quant_info.limvals_max)}]"}
               for s in c.streams]
    images = []
    for i in _worst_first(c):
        row = c.image_row(i)
        cells = []
        for m in c.metrics:
            e = row[m.label]
            cells.append({"snr": fmt_db(m.per_image_snr_db[i]),
                          "snr_status": _CSS_STATUS[snr_status(m.per_image_snr_db[i])],
                          "max_err": fmt_num(m.per_image_max_abs_err[i]), **{
                              k: e[k] for k in ("native_top1", "quantized_top1", "agree")
                              if k in e},
                          "native_score": f"{e['native_score']:.2f}" if "native_score" in e else "",
                          "quantized_score": f"{e['quantized_score']:.2f}" if "quantized_score" in e else ""})
        images.append({"name": row["image"], "thumb": thumbnail_uri(c.batch.thumbnails[i]),
                       "differing": row["differing_values"], "cells": cells})
    cal = c.calibration or {}
    calibration = []
    for name, q in (cal.get("layers") or {}).items():
        rng = q.get("range") or [None, None]
        calibration.append({"layer": name, "precision": q.get("precision_mode", ""),
                            "min": fmt_num(rng[0]), "max": fmt_num(rng[1]),
                            "scale": fmt_num(q.get("scale")), "zp": q.get("zp", "")})
    return {
        "c": c, "command": command, "version": __version__,
        "created": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "values_checked": sum(ch.values for ch in c.checks),
        "stream_count": len({ch.stream for ch in c.checks}),
        "outputs": outputs, "streams": streams, "images": images,
        "metric_columns": c.metrics, "calibration": calibration,
        "calibration_images": cal.get("images"),
        "snr_flag": SNR_FLAG_DB, "snr_good": SNR_GOOD_DB, "detections": detection_context(c),
        "fmt_num": fmt_num, "fmt_db": fmt_db,
    }


def render_html(c: Comparison, command: str = "") -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**build_context(c, command))


def write_report(c: Comparison, path: str | Path, command: str = "") -> Path:
    """Render the report and write it through emulator.files.atomic_write: an interrupted write
    leaves the old file whole (and no temporary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(c, command)
    with atomic_write(path, "w") as f:
        f.write(html)
    return path
