"""The device-vs-emulator accuracy check, reusable from tests.

Three runs of the same pre-processed float32 inputs:
  host      the host pipeline (host_app.pipeline): C InputTransformContext -> a Device (the
            emulated chip) on raw frames -> C OutputTransformContext -> host ops
  numeric   the emulator in-process, runner.infer(SdkNumeric(), x, inter_layers=True): it
            quantizes with the same C function, so host and numeric must be byte-identical
  native    runner.infer(SdkNative(), x): the float network, the accuracy reference

Byte identity is checked stream by stream, at every point where the two paths can part:
  input frames        the device frames the host wrote == the emulator's input codes laid out
                      by the stream layer (every byte, padding included)
  output codes        the device's output codes == SdkNumeric's codes of the stream's tensor
  output float32      OutputTransformContext's values == SdkNumeric's dequantized tensor
  output (host ops)   after softmax / argmax == runner.infer(SdkNumeric()) (outputs with host ops)
Floats are compared bit for bit. A difference is reported with the stream, the check, how many
values differ, the first one (image, position, both values) and what to look at.

Accuracy against native, per output (after host ops) and, for outputs with host ops, per stream
tensor (before them): SNR = 10 log10(sum ref^2 / sum (ref - q)^2) dB, cosine, max |error|, RMSE,
mean error (bias), and for classifiers the top-1 agreement; per image too. The numbers come from
emulator.analysis.metrics (one definition for the host app and the emulator's analyses); this
module only decides what is compared and how it is judged (SNR_FLAG_DB, SNR_GOOD_DB).

Detectors (a detector post-processing recorded in the HAR or given, host_app.postprocess): the
same post-processing turns the native, emulator (SdkNumeric) and device outputs into boxes, and
their agreement is measured with native as the ground truth (host_app.postprocess.agreement):
IoU-matched precision and recall, mAP at IoU >= DETECTION_IOU, mean IoU of the matched boxes;
the emulator against native, the device against native, and the device against the emulator
(identical when the host pipeline is byte-identical). Boxes are compared in pixels of the
network input (IoU does not change under the resize to the original image); a cascade (MTCNN)
runs on the original images (`detection_comparison` with the results of each run).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulator.analysis import metrics

from .errors import AppError
from .images import InputBatch
from .pipeline import (DEFAULT_BATCH, HostRun, OutputRoute, labels_for, is_classifier,
                       output_routes, run_host_pipeline)

SNR_FLAG_DB = 10.0  # a tensor under 10 dB is flagged ("poor"): its quantization lost the signal
SNR_GOOD_DB = 20.0  # 20 dB and above is "good"; in between, "fair"
DETECTION_IOU = 0.5  # boxes match at IoU >= 0.5 (the mAP@0.5 of the VOC benchmark)
DETECTION_GOOD = 0.95  # the report's colours: mAP, recall, precision >= 0.95 good, >= 0.8 fair
DETECTION_FAIR = 0.8
RUNS = {"native": "native (SdkNative)", "emulator": "emulator (SdkNumeric)", "device": "device"}


# ==== metrics (computed by emulator.analysis.metrics; presented here) ============================

@dataclass
class Metrics:
    """Accuracy of the quantized values against native at one point of one output."""

    output: str  # bare output-layer name
    stream: str
    point: str  # "output" (what the application gets) or "stream" (before the host ops)
    label: str  # what the row is called in tables
    snr_db: float
    cosine: float
    max_abs_err: float
    rmse: float
    mean_err: float  # the bias, mean(quantized - native)
    native_range: tuple[float, float]
    top1_agreement: float | None = None  # classifiers, "output" point
    per_image_snr_db: list[float] = field(default_factory=list)
    per_image_max_abs_err: list[float] = field(default_factory=list)
    native_top1: list[int] | None = None
    quantized_top1: list[int] | None = None
    native_top1_score: list[float] | None = None
    quantized_top1_score: list[float] | None = None

    @property
    def snr_status(self) -> str:
        return snr_status(self.snr_db)


def snr_status(db: float) -> str:
    """How an SNR is judged: "good" from SNR_GOOD_DB up, "fair" from SNR_FLAG_DB, else "poor"."""
    if db >= SNR_GOOD_DB:
        return "good"
    return "fair" if db >= SNR_FLAG_DB else "poor"


def output_metrics(output: str, stream: str, point: str, label: str, native: np.ndarray,
                   quantized: np.ndarray, classifier: bool) -> Metrics:
    """The metrics of one output at one point, over the batch and per image (N leading), with
    emulator.analysis.metrics. AppError naming the output when the values are not comparable
    (shapes that differ, NaN or infinite values)."""
    n = native.shape[0]
    ref = np.asarray(native, np.float64).reshape(n, -1)
    q = np.asarray(quantized, np.float64)
    q = q.reshape(q.shape[0] if q.ndim else 1, -1)
    top1 = classifier and ref.shape[1] >= 2
    try:
        m = Metrics(output=output, stream=stream, point=point, label=label,
                    snr_db=metrics.snr_db(ref, q), cosine=metrics.cosine_similarity(ref, q),
                    max_abs_err=metrics.max_abs_error(ref, q), rmse=metrics.rmse(ref, q),
                    mean_err=metrics.mean_error(ref, q),
                    native_range=(float(ref.min()), float(ref.max())) if ref.size else (0.0, 0.0),
                    per_image_snr_db=[metrics.snr_db(ref[i], q[i]) for i in range(n)],
                    per_image_max_abs_err=[metrics.max_abs_error(ref[i], q[i]) for i in range(n)],
                    top1_agreement=metrics.top1_agreement(ref, q) if top1 and n else None)
    except metrics.MetricsError as e:
        raise AppError(f"output '{output}' ({label}, stream '{stream}'): no accuracy metrics of "
                       f"the quantized values (test) against native (ref): {e}") from None
    if top1:
        # the class each image got, for the tables (ties: the first maximum, as the metric)
        nt, qt = ref.argmax(axis=1), q.argmax(axis=1)
        m.native_top1, m.quantized_top1 = nt.tolist(), qt.tolist()
        m.native_top1_score = ref[np.arange(n), nt].tolist()
        m.quantized_top1_score = q[np.arange(n), qt].tolist()
    return m


# ==== byte identity ==============================================================================

INPUT_FRAMES = "input frames"
OUTPUT_CODES = "output codes"
OUTPUT_FLOAT = "output float32"
OUTPUT_HOST_OPS = "output after host ops"


@dataclass
class Check:
    """One byte-identity check of one stream."""

    stream: str
    level: str
    values: int  # values (or bytes) compared
    differing: int
    per_image: list[int]  # differing values per image
    first: dict | None = None  # {"image", "position", "host", "emulator"}
    advice: str = ""

    @property
    def ok(self) -> bool:
        return self.differing == 0

    def message(self) -> str:
        if self.ok:
            return f"stream '{self.stream}' {self.level}: identical ({self.values} values)"
        f = self.first or {}
        where = f" first at image '{f.get('image')}' {f.get('position')}: host {f.get('host')}, " \
                f"emulator {f.get('emulator')}." if f else ""
        return (f"stream '{self.stream}' {self.level}: {self.differing} of {self.values} values "
                f"differ;{where} {self.advice}")


def _bits(a: np.ndarray) -> np.ndarray:
    """Values as unsigned integers of the same width (floats compared bit for bit)."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "f":
        return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return a


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.9g}"
    return str(int(v))


def _check(stream: str, level: str, host: np.ndarray, ref: np.ndarray, names: list[str],
           shape: tuple[int, ...], advice: str) -> Check:
    n = host.shape[0]
    h = _bits(host).reshape(n, -1)
    r = _bits(ref).reshape(n, -1)
    if h.shape != r.shape:
        return Check(stream, level, int(r.size), int(r.size), [r.shape[1]] * n,
                     {"image": names[0] if names else "-", "position": "shape",
                      "host": str(host.shape), "emulator": str(ref.shape)},
                     f"the host pipeline returned shape {host.shape}, the emulator {ref.shape}. "
                     + advice)
    diff = h != r
    per_image = diff.sum(axis=1).astype(int).tolist()
    count = int(diff.sum())
    check = Check(stream, level, int(diff.size), count, per_image, advice=advice)
    if count:
        i, j = np.argwhere(diff)[0]
        pos = np.unravel_index(int(j), shape) if int(np.prod(shape)) == h.shape[1] else (int(j),)
        check.first = {"image": names[i], "image_index": int(i),
                       "position": "(" + ", ".join(str(int(p)) for p in pos) + ")",
                       "host": _fmt(host.reshape(n, -1)[i, j]),
                       "emulator": _fmt(ref.reshape(n, -1)[i, j])}
    return check


def _logical_codes(info, raw: np.ndarray) -> np.ndarray:
    """Device frames of a stream -> its codes in logical (N, H, W, C) / (N, C) order, with the
    chip-side transform every device uses (hailort_py.device.device_side_context: no
    dequantization; an input stream's frames are read as the chip reads them)."""
    import hailort_py as hrt
    from hailort_py.device import device_side_context

    return device_side_context(info, hrt.StreamDirection.D2H).transform(raw)


def check_byte_identity(runner, host: HostRun, ref_outputs: dict, ref_layers: dict,
                        names: list[str], routes: list[OutputRoute] | None = None) -> list[Check]:
    """Every check of the module doc, in pipeline order."""
    import hailort_py as hrt
    from hailort_py.device import device_side_context

    hn = runner.hn
    infos = {s.name: s for s in runner.get_stream_infos()}
    routes = routes or output_routes(runner)
    checks: list[Check] = []
    inputs_ok = True
    for layer in hn.input_layers:
        info = infos[hn.scoped(layer.name)]
        codes = ref_layers[f"{layer.name}:codes"]
        ctx = device_side_context(info, hrt.StreamDirection.H2D)  # codes -> device frames
        expected = ctx.transform(np.ascontiguousarray(codes.reshape(codes.shape[0], *ctx.host_shape)))
        sent = host.raw_inputs[info.name]
        c = _check(info.name, INPUT_FRAMES, sent, expected.reshape(sent.shape), names,
                   (sent.shape[1],),
                   "The host's InputTransformContext (float32 -> device codes) wrote frames that "
                   "differ from the emulator's own host quantizer (hailort_py.quantize) on the same "
                   f"float inputs. Check this stream's quant info ({info.quant_info}) and the C "
                   "quantize / reorder steps.")
        if not c.ok:
            logical = _check(info.name, INPUT_FRAMES, _logical_codes(info, sent), codes, names,
                             tuple(info.shape), c.advice)
            if logical.ok:
                c.advice = ("Only padding bytes differ (the codes are identical): the C reorder / "
                            "pad step writes garbage into the padding. " + c.advice)
            else:
                c.first = logical.first
                c.first["position"] = f"(h, w, c) = {c.first['position']}"
            inputs_ok = False
        checks.append(c)
    follow = "" if inputs_ok else " (This may follow from the input-stream difference above.)"
    for route in routes:
        info = infos[route.stream]
        got = _logical_codes(info, host.raw_outputs[info.name])
        checks.append(_check(
            info.name, OUTPUT_CODES, got, ref_layers[f"{route.source}:codes"], names,
            tuple(info.shape),
            "The device returned codes that differ from SdkNumeric's for this stream's tensor "
            f"('{route.source}'). The device and the emulator disagree on this network: check "
            "that both run the same HAR; otherwise the device (EmulatedDevice) has a bug." + follow))
        checks.append(_check(
            info.name, OUTPUT_FLOAT, host.stream_values[route.output], ref_layers[route.source],
            names, tuple(info.shape),
            "The host's OutputTransformContext dequantized the device codes differently from the "
            f"emulator (hailort_py.dequantize). Check this stream's quant info ({info.quant_info}) "
            "and the C dequantize / reorder steps." + follow))
        if route.host_layers:
            ops = ", ".join(f"{l.name} ({l.type})" for l in route.host_layers)
            checks.append(_check(
                info.name, OUTPUT_HOST_OPS, host.outputs[route.output], ref_outputs[route.output],
                names, tuple(ref_outputs[route.output].shape[1:]),
                f"The host ops {ops} after dequantization differ from the emulator's: both must "
                "run emulator.quantized_exec.host_op_numpy on the same values." + follow))
    return checks


# ==== detectors ==================================================================================

@dataclass
class DetectionComparison:
    """The boxes of each run ("native", "emulator", "device": one Result per image) and how they
    agree (module doc). `images` are the RGB uint8 images the boxes are in the pixels of (for the
    report's overlays)."""

    postprocess: str
    iou_threshold: float
    runs: dict[str, list]  # run -> [host_app.postprocess.Result]
    agreements: list  # [host_app.postprocess.Agreement]
    images: list = field(default_factory=list, repr=False)

    def against_native(self) -> list:
        """The agreements the --min-map / --min-recall gates judge: each run against native."""
        return [a for a in self.agreements if a.reference == RUNS["native"]]

    def gate(self, min_map: float | None, min_recall: float | None) -> list[str]:
        """Why the thresholds fail (empty: they pass)."""
        out = []
        for a in self.against_native():
            if min_map is not None and a.map < min_map:
                out.append(f"detections: {a.label}: mAP@{a.iou_threshold:g} {a.map:.3f} is below "
                           f"--min-map {min_map:g}")
            if min_recall is not None and a.recall < min_recall:
                out.append(f"detections: {a.label}: recall {a.recall:.3f} "
                           f"({a.matched}/{a.reference_boxes} boxes) is below --min-recall "
                           f"{min_recall:g}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"postprocess": self.postprocess, "iou_threshold": self.iou_threshold,
                "agreements": [a.to_dict() for a in self.agreements],
                "runs": {run: [r.to_dict() for r in results]
                         for run, results in self.runs.items()}}


def detection_status(*values: float) -> str:
    """"good", "fair" or "poor": the lowest of the values (mAP, recall, precision) against
    DETECTION_GOOD / DETECTION_FAIR (the report's colours only; the exit code follows --min-map
    / --min-recall)."""
    worst = min(values)
    return "good" if worst >= DETECTION_GOOD else "fair" if worst >= DETECTION_FAIR else "poor"


def detection_comparison(post, runs: dict[str, list], images: list | None = None,
                         iou_threshold: float = DETECTION_IOU) -> DetectionComparison:
    """The agreement of the runs of a detector (keys of RUNS): the emulator and the device
    against native, the device against the emulator."""
    from .postprocess import agreement

    pairs = [("emulator", "native"), ("device", "native"), ("device", "emulator")]
    agreements = [agreement(runs[ref], runs[test], reference=RUNS[ref], test=RUNS[test],
                            iou_threshold=iou_threshold)
                  for test, ref in pairs if test in runs and ref in runs]
    return DetectionComparison(str(post), iou_threshold, runs, agreements, list(images or []))


def input_image(x: np.ndarray) -> np.ndarray:
    """A pre-processed network input shown as an RGB uint8 image (min..max -> 0..255)."""
    x = np.asarray(x, np.float64)
    lo, hi = float(x.min()), float(x.max())
    img = np.zeros(x.shape, np.uint8) if hi <= lo else \
        np.round((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img


# ==== the comparison =============================================================================

@dataclass
class Comparison:
    network: str
    har: str
    batch: InputBatch
    streams: list  # hailort_py.StreamInfo, inputs then outputs
    descriptions: dict[str, str]  # stream -> C transform steps (float32 user buffers)
    host_ops: dict[str, list[str]]  # stream -> host op types
    checks: list[Check]
    metrics: list[Metrics]
    labels: dict[str, list[str]]  # output -> class labels
    device: str
    timings: dict[str, float]
    preprocess: str
    # arrays for plots (not serialized): {output: {"native", "quantized"} at the stream tensor}
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    calibration: dict | None = None
    detections: DetectionComparison | None = None  # detectors (module doc)

    @property
    def byte_identical(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def label_of(self, output: str, index: int | None) -> str:
        if index is None:
            return "-"
        labels = self.labels.get(output)
        return labels[index] if labels and index < len(labels) else f"class {index}"

    def to_dict(self) -> dict[str, Any]:
        def num(v):
            if v is None:
                return None
            v = float(v)
            return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")

        return {
            "network": self.network, "har": self.har, "device": self.device,
            "preprocess": self.preprocess, "images": len(self.batch),
            "byte_identical": self.byte_identical,
            "checks": [{"stream": c.stream, "level": c.level, "values": c.values,
                        "differing": c.differing, "ok": c.ok, "first": c.first,
                        "message": c.message()} for c in self.checks],
            "streams": [dict(s.to_dict(), transform=self.descriptions.get(s.name, ""),
                             host_ops=self.host_ops.get(s.name, [])) for s in self.streams],
            "metrics": [{"output": m.output, "stream": m.stream, "point": m.point,
                         "label": m.label, "snr_db": num(m.snr_db), "cosine": num(m.cosine),
                         "max_abs_err": num(m.max_abs_err), "rmse": num(m.rmse),
                         "mean_err": num(m.mean_err),
                         "native_range": [num(v) for v in m.native_range],
                         "top1_agreement": num(m.top1_agreement), "snr_status": m.snr_status}
                        for m in self.metrics],
            "per_image": [self.image_row(i, num) for i in range(len(self.batch))],
            "labels": self.labels, "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "detections": self.detections.to_dict() if self.detections is not None else None,
        }

    def image_row(self, i: int, num=float) -> dict[str, Any]:
        row: dict[str, Any] = {
            "image": self.batch.names[i], "source": self.batch.sources[i],
            "differing_values": int(sum(c.per_image[i] for c in self.checks if c.per_image)),
        }
        for m in self.metrics:
            entry: dict[str, Any] = {"snr_db": num(m.per_image_snr_db[i]),
                                     "max_abs_err": num(m.per_image_max_abs_err[i])}
            if m.native_top1 is not None:
                entry.update({
                    "native_top1": self.label_of(m.output, m.native_top1[i]),
                    "native_score": num(m.native_top1_score[i]),
                    "quantized_top1": self.label_of(m.output, m.quantized_top1[i]),
                    "quantized_score": num(m.quantized_top1_score[i]),
                    "agree": m.native_top1[i] == m.quantized_top1[i]})
            row[m.label] = entry
        return row


def compare(runner, device, batch: InputBatch, har: str = "", device_name: str = "",
            preprocess: str = "", batch_size: int = DEFAULT_BATCH,
            postprocess=None) -> Comparison:
    """Runs host / numeric / native on the batch and compares them (module doc). With a
    detector `postprocess` (host_app.postprocess, bound to the runner; not a cascade), the box
    agreement of the three runs too."""
    from emulator import SdkNative, SdkNumeric

    routes = output_routes(runner)
    timings = {}
    t = time.perf_counter()
    host = run_host_pipeline(device, runner, batch.x, batch_size)
    timings["host pipeline (device)"] = time.perf_counter() - t
    t = time.perf_counter()
    ref_outputs, ref_layers = runner.infer(SdkNumeric(), batch.x, inter_layers=True,
                                           batch_size=batch_size)
    timings["emulator SdkNumeric"] = time.perf_counter() - t
    t = time.perf_counter()
    native_outputs, native_layers = runner.infer(SdkNative(), batch.x, inter_layers=True,
                                                 batch_size=batch_size)
    timings["emulator SdkNative"] = time.perf_counter() - t

    checks = check_byte_identity(runner, host, ref_outputs, ref_layers, batch.names, routes)
    metrics: list[Metrics] = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    labels: dict[str, list[str]] = {}
    host_ops: dict[str, list[str]] = {}
    for route in routes:
        classifier = is_classifier(runner, route.output)
        lab = labels_for(runner, route.output)
        if lab:
            labels[route.output] = lab
        ops = [l.type for l in route.host_layers]
        host_ops[route.stream] = ops
        metrics.append(output_metrics(route.output, route.stream, "output", route.output,
                                      native_outputs[route.output], host.outputs[route.output],
                                      classifier))
        native_stream = native_layers[route.source]
        if ops:
            metrics.append(output_metrics(route.output, route.stream, "stream",
                                          f"{route.output} before {'+'.join(ops)}",
                                          native_stream, host.stream_values[route.output], False))
        arrays[route.output] = {
            "native": np.asarray(native_stream, np.float32).reshape(len(batch), -1),
            "quantized": host.stream_values[route.output].reshape(len(batch), -1),
            "channels": np.int64(native_stream.shape[-1]) if native_stream.ndim > 1 else np.int64(1),
            "tensor": route.source,
        }
    detections = None
    if postprocess is not None and postprocess.detector and not postprocess.needs_images:
        t = time.perf_counter()
        hw = tuple(int(v) for v in batch.x.shape[1:3])  # boxes in pixels of the network input
        runs = {run: postprocess.apply(outs, hw, resize="stretch")
                for run, outs in (("native", native_outputs), ("emulator", ref_outputs),
                                  ("device", host.outputs))}
        detections = detection_comparison(postprocess, runs, [input_image(v) for v in batch.x])
        timings["post-processing"] = time.perf_counter() - t
    return Comparison(
        network=runner.hn.name, har=har, batch=batch, streams=runner.get_stream_infos(),
        descriptions=host.descriptions, host_ops=host_ops, checks=checks, metrics=metrics,
        labels=labels, device=device_name or type(device).__name__, timings=timings,
        preprocess=preprocess, arrays=arrays, calibration=runner.metadata.get("calibration"),
        detections=detections)
