"""SSD-style detectors with MediaPipe anchors (BlazeFace): anchor generation, box and keypoint
decoding, score filtering and (weighted) NMS.

Anchors (MediaPipe's SSD anchor options): consecutive layers of the same stride share one grid
of ceil(H / stride) x ceil(W / stride) cells; per cell, for each of those layers l, one anchor
per aspect ratio r of scale s_l = min_scale + (max_scale - min_scale) * l / (L - 1) (the mean
of the two when L = 1), and, when `interpolated` > 0, one more of ratio `interpolated` and scale
sqrt(s_l * s_(l+1)) (s_L = 1). `reduce-lowest` gives layer 0 three anchors instead: (0.1, 1),
(s_0, 2), (s_0, 0.5). An anchor's centre is ((x + offset_x) / grid_w, (y + offset_y) / grid_h);
its size is 1 x 1 with `fixed-size` (BlazeFace), else (s sqrt r, s / sqrt r). Order: grids in
stride order, cells row by row, anchors within a cell.

Decoding, per anchor (cx, cy, aw, ah) and raw values v (order xywh; yxhw swaps each pair):
    x = v0 / sx * aw + cx      y = v1 / sy * ah + cy
    w = v2 / sw * aw           h = v3 / sh * ah          (exp: w = exp(v2 / sw) * aw, ...)
    box = (x - w/2, y - h/2, x + w/2, y + h/2), keypoint k = (v[4+2k] / sx * aw + cx, ...)
all normalized to the network input; score = sigmoid(clip(raw, -clip, clip)) (or raw with
sigmoid:no), the best class of each anchor when there are several.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import boxes as bx
from .results import Detection, Result
from .spec import Items, PostProcess, output_array, sigmoid


@dataclass(frozen=True)
class AnchorOptions:
    input_hw: tuple[int, int]
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    offset: tuple[float, float] = (0.5, 0.5)  # x, y
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated: float = 1.0  # interpolated_scale_aspect_ratio; 0: none
    fixed_size: bool = True
    reduce_lowest: bool = False


def layer_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(o: AnchorOptions) -> np.ndarray:
    """(n, 4) anchors (cx, cy, w, h), normalized to the input (module doc)."""
    strides = list(o.strides)
    count = len(strides)
    grids = []
    layer = 0
    while layer < count:
        shapes: list[tuple[float, float]] = []  # (scale, aspect ratio) of each anchor of a cell
        last = layer
        while last < count and strides[last] == strides[layer]:
            s = layer_scale(o.min_scale, o.max_scale, last, count)
            if last == 0 and o.reduce_lowest:
                shapes += [(0.1, 1.0), (s, 2.0), (s, 0.5)]
            else:
                shapes += [(s, r) for r in o.aspect_ratios]
                if o.interpolated > 0:
                    s_next = 1.0 if last == count - 1 else layer_scale(o.min_scale, o.max_scale,
                                                                        last + 1, count)
                    shapes.append((math.sqrt(s * s_next), o.interpolated))
            last += 1
        stride = strides[layer]
        gh, gw = math.ceil(o.input_hw[0] / stride), math.ceil(o.input_hw[1] / stride)
        cy = (np.arange(gh) + o.offset[1]) / gh
        cx = (np.arange(gw) + o.offset[0]) / gw
        sizes = np.array([(1.0, 1.0) if o.fixed_size else (s * math.sqrt(r), s / math.sqrt(r))
                          for s, r in shapes])  # (A, 2) w, h
        a = len(shapes)
        grid = np.empty((gh, gw, a, 4))
        grid[..., 0] = cx[None, :, None]
        grid[..., 1] = cy[:, None, None]
        grid[..., 2] = sizes[None, None, :, 0]
        grid[..., 3] = sizes[None, None, :, 1]
        grids.append(grid.reshape(-1, 4))
        layer = last
    return np.concatenate(grids) if grids else np.zeros((0, 4))


def decode_ssd(raw: np.ndarray, anchors: np.ndarray, box_scale, order: str = "xywh",
               exp: bool = False, keypoints: int = 0):
    """raw (..., A, 4 + 2K + ...) -> boxes (..., A, 4) (x0, y0, x1, y1) and keypoints
    (..., A, K, 2) (x, y), normalized to the input (module doc)."""
    raw = np.asarray(raw, np.float64)
    sx, sy, sw, sh = (float(v) for v in box_scale)
    ax, ay, aw, ah = (anchors[:, i] for i in range(4))
    if order == "xywh":
        vx, vy, vw, vh = raw[..., 0], raw[..., 1], raw[..., 2], raw[..., 3]
    else:
        vy, vx, vh, vw = raw[..., 0], raw[..., 1], raw[..., 2], raw[..., 3]
    x = vx / sx * aw + ax
    y = vy / sy * ah + ay
    if exp:
        w, h = np.exp(vw / sw) * aw, np.exp(vh / sh) * ah
    else:
        w, h = vw / sw * aw, vh / sh * ah
    out = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1)
    kp = raw[..., 4:4 + 2 * keypoints].reshape(*raw.shape[:-1], keypoints, 2)
    if order != "xywh":
        kp = kp[..., ::-1]
    kps = np.stack([kp[..., 0] / sx * aw[:, None] + ax[:, None],
                    kp[..., 1] / sy * ah[:, None] + ay[:, None]], axis=-1)
    return out, kps


def ssd_scores(raw: np.ndarray, use_sigmoid: bool = True, clip: float | None = None):
    """raw (..., A, C) -> (scores (..., A), classes (..., A)): the best class of each anchor."""
    s = np.asarray(raw, np.float64)
    if clip is not None:
        s = np.clip(s, -clip, clip)
    if use_sigmoid:
        s = sigmoid(s)
    return s.max(axis=-1), s.argmax(axis=-1)


class Ssd(PostProcess):
    kind = "ssd"
    keys = ("boxes, scores, input, strides, min-scale, max-scale, offset, aspect-ratios, "
            "interpolated, fixed-size, reduce-lowest, order, box-scale, exp, keypoints, sigmoid, "
            "clip, score, nms, nms-mode, max, labels, agnostic")

    @classmethod
    def from_items(cls, text, where, preset, items: Items, base_dir=None) -> Ssd:
        p = cls(text, where, preset)
        p.boxes_name = items.word("boxes", None)
        p.scores_name = items.word("scores", None)
        p.input_size = items.size("input", None)
        p.strides = tuple(items.numbers("strides", [8, 16, 16, 16], lo=1, integer=True))
        p.min_scale = items.number("min-scale", 0.1484375, lo=0, open_lo=True)
        p.max_scale = items.number("max-scale", 0.75, lo=0, open_lo=True)
        off = items.numbers("offset", [0.5, 0.5], count=2, lo=0, hi=1)
        p.offset = (off[0], off[1])
        p.aspect_ratios = tuple(items.numbers("aspect-ratios", [1.0], lo=1e-6))
        p.interpolated = items.number("interpolated", 1.0, lo=0)
        p.fixed_size = items.flag("fixed-size", True)
        p.reduce_lowest = items.flag("reduce-lowest", False)
        p.order = items.word("order", "xywh", ("xywh", "yxhw"))
        p.box_scale = items.numbers("box-scale", None, count=4, lo=1e-9)
        p.exp = items.flag("exp", False)
        p.keypoints = items.number("keypoints", None, lo=0, integer=True)
        p.use_sigmoid = items.flag("sigmoid", True)
        p.clip = items.number("clip", 100.0, lo=0, open_lo=True)
        p.min_score = items.number("score", 0.5, lo=0)
        p.nms_threshold = items.number("nms", 0.3, lo=0, hi=1)
        p.nms_mode = items.word("nms-mode", "weighted", ("weighted", "hard"))
        p.max_detections = items.number("max", 100, lo=1, integer=True)
        p.labels = items.words("labels", None)
        p.agnostic = items.flag("agnostic", True)
        if p.min_scale > p.max_scale:
            raise items.error("min-scale", f"min-scale {p.min_scale:g} is above max-scale "
                                           f"{p.max_scale:g}")
        items.done([k.strip() for k in cls.keys.split(",")])
        p._anchors = None
        return p

    # --- the network's side ---------------------------------------------------------------------

    def anchor_options(self) -> AnchorOptions:
        hw = self.input_size or (self.network.input_hw if self.network else None)
        if hw is None:
            raise self.error("ssd: the anchors need the network's input size: give input:HxW")
        return AnchorOptions(tuple(hw), self.strides, self.min_scale, self.max_scale, self.offset,
                             self.aspect_ratios, self.interpolated, self.fixed_size,
                             self.reduce_lowest)

    def anchors(self) -> np.ndarray:
        if self._anchors is None:
            self._anchors = ssd_anchors(self.anchor_options())
        return self._anchors

    def _names(self, shapes: dict[str, tuple]) -> tuple[str, str]:
        """(boxes output, scores output): named, or the two outputs told apart by their last
        axis (the boxes have 4 + 2K values an anchor, the scores one per class)."""
        if self.boxes_name and self.scores_name:
            return self.boxes_name, self.scores_name
        others = [n for n in shapes if n not in (self.boxes_name, self.scores_name)]
        if self.boxes_name or self.scores_name:
            if len(others) != 1:
                raise self.error(f"ssd: name both outputs (boxes:NAME, scores:NAME); the network "
                                 f"has {', '.join(shapes)}")
            return (self.boxes_name, others[0]) if self.boxes_name else (others[0],
                                                                          self.scores_name)
        if len(shapes) != 2:
            raise self.error(f"ssd reads two outputs (boxes and scores) but the network has "
                             f"{len(shapes)} ({', '.join(shapes)}): name them with boxes:NAME, "
                             f"scores:NAME")
        a, b = shapes
        last = {n: (shapes[n][-1] if shapes[n] else 1) for n in shapes}
        if last[a] == last[b]:
            raise self.error(f"ssd: cannot tell the boxes from the scores ({a} and {b} both have "
                             f"{last[a]} values an anchor): name them with boxes:NAME, scores:NAME")
        return (a, b) if last[a] > last[b] else (b, a)

    def _check(self, network) -> None:
        if not self.input_size and network.input_hw is None:
            raise self.error(f"ssd: network '{network.name}' has no image input; give input:HxW")
        boxes, scores = self._names(network.outputs)
        for n in (boxes, scores):
            if n not in network.outputs:
                raise self.error(f"ssd: no output '{n}' in network '{network.name}' (its outputs: "
                                 f"{', '.join(network.outputs)})")
        self._check_shapes(network.outputs[boxes], network.outputs[scores], boxes, scores)

    def _check_shapes(self, bshape, sshape, boxes, scores) -> tuple[int, int]:
        """(keypoints, classes) of outputs of these shapes (no batch axis), or UsageError."""
        n = len(self.anchors())
        bcount = int(np.prod(bshape)) if bshape else 0
        if bcount % n:
            raise self.error(f"ssd: the anchors (input {self.anchor_options().input_hw}, strides "
                             f"{list(self.strides)}) number {n}, but output '{boxes}' holds "
                             f"{bcount} values, not a multiple of {n}: check input, strides, "
                             f"aspect-ratios and interpolated")
        coords = bcount // n
        k = self.keypoints if self.keypoints is not None else max(0, (coords - 4) // 2)
        if coords < 4 + 2 * k:
            raise self.error(f"ssd: output '{boxes}' has {coords} values an anchor, fewer than the "
                             f"4 + 2 x {k} keypoints asked for; give keypoints:{max(0, (coords - 4) // 2)}")
        scount = int(np.prod(sshape)) if sshape else 0
        if scount % n or scount == 0:
            raise self.error(f"ssd: output '{scores}' holds {scount} values, not one or more "
                             f"scores for each of the {n} anchors")
        classes = scount // n
        if self.labels is not None and len(self.labels) != classes:
            raise self.error(f"ssd: {len(self.labels)} labels for {classes} class(es)")
        return k, classes

    def outputs_used(self) -> list[str]:
        if self.network is None:
            return [n for n in (self.boxes_name, self.scores_name) if n]
        return list(self._names(self.network.outputs))

    # --- decoding -------------------------------------------------------------------------------

    def _scale(self) -> list[float]:
        if self.box_scale is not None:
            return list(self.box_scale)
        h, w = self.anchor_options().input_hw
        return [w, h, w, h]

    def _apply(self, outputs, n, maps) -> list[Result]:
        shapes = {k: tuple(np.shape(v)[1:]) for k, v in outputs.items()}
        bname, sname = self._names(shapes)
        anchors = self.anchors()
        a = len(anchors)
        braw = output_array(self, outputs, bname)
        sraw = output_array(self, outputs, sname)
        k, classes = self._check_shapes(braw.shape[1:], sraw.shape[1:], bname, sname)
        braw = braw.reshape(n, a, -1)
        sraw = sraw.reshape(n, a, classes)
        boxes, kps = decode_ssd(braw, anchors, self._scale(), self.order, self.exp, k)
        scores, cls = ssd_scores(sraw, self.use_sigmoid, self.clip)
        return [self._detections(boxes[i], kps[i], scores[i], cls[i], maps[i], k)
                for i in range(n)]

    def _detections(self, boxes, kps, scores, cls, mapping, k) -> Result:
        keep = np.flatnonzero(scores >= self.min_score)
        idx, boxes, kps = suppress(boxes[keep], scores[keep], kps[keep], cls[keep],
                                   self.nms_threshold, self.nms_mode, self.agnostic,
                                   self.max_detections)
        idx = keep[idx]
        return to_result(boxes, kps if k else None, scores[idx], cls[idx], mapping, self._label)

    def _label(self, c: int) -> str:
        if self.labels:
            return self.labels[c] if c < len(self.labels) else f"class {c}"
        return f"class {c}"


def suppress(boxes, scores, kps, cls, threshold: float, mode: str = "hard",
             agnostic: bool = True, max_out: int | None = None):
    """NMS ("hard" or "weighted", module boxes) over all boxes (agnostic) or within each class:
    (indices kept, best first; their boxes; their keypoints), merged boxes for "weighted"."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    kps = np.zeros((len(boxes), 0, 2)) if kps is None else np.asarray(kps, np.float64)
    groups = [np.arange(len(boxes))] if agnostic else \
        [np.flatnonzero(cls == c) for c in np.unique(cls)]
    idx, out_b, out_k = [], [], []
    for g in groups:
        if mode == "weighted":
            kept, merged, merged_kp = bx.weighted_nms(boxes[g], scores[g], threshold, kps[g])
        else:
            kept = bx.nms(boxes[g], scores[g], threshold)
            merged, merged_kp = boxes[g][kept], kps[g][kept]
        idx.extend(g[kept])
        out_b.extend(merged)
        out_k.extend(merged_kp)
    idx = np.array(idx, np.int64)
    order = np.argsort(-scores[idx], kind="stable")[:max_out]
    out_b = np.array(out_b, np.float64).reshape(-1, 4)[order]
    out_k = np.array(out_k, np.float64).reshape(len(idx), *kps.shape[1:])[order]
    return idx[order], out_b, out_k


def to_result(boxes, kps, scores, cls, mapping, label) -> Result:
    """Normalized boxes / keypoints of one image -> a Result in the image's pixels (boxes
    clipped to the image)."""
    px = bx.clip(mapping.boxes(boxes), mapping.image_hw)
    pk = mapping.points(kps) if kps is not None else None
    return Result([Detection(tuple(float(v) for v in px[j]), float(scores[j]), int(cls[j]),
                             label(int(cls[j])), pk[j] if pk is not None else None)
                   for j in range(len(px))])
