"""YOLO-style decoding: one output per detection scale, a grid of cells each holding A anchors of
5 + C values (x, y, w, h, objectness, C class scores), anchor-major along the channels
((gh, gw, A * (5 + C)), or (gh, gw, A, 5 + C)).

Per cell (cx, cy) of a gh x gw grid, anchor (aw, ah) in input pixels, input W x H, s = sigmoid:
    version 3:  x = (s(tx) + cx) / gw         w = aw * exp(tw) / W
    version 5:  x = (2 s(tx) - 0.5 + cx) / gw  w = (2 s(tw))^2 * aw / W
(y, h alike), normalized to the input; score = s(objectness) * max s(class), class = its
argmax. `sigmoid:no` for outputs that hold s(.) already (version 3's w, h stay exp(t)).
Detections under `score` are dropped, then NMS (per class unless agnostic:yes).
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .results import Result
from .spec import Items, PostProcess, output_array, sigmoid
from .ssd import suppress, to_result


def decode_yolo(raw: np.ndarray, anchors: np.ndarray, input_hw, version: int = 3,
                activated: bool = False):
    """raw (N, gh, gw, A * (5 + C)) or (N, gh, gw, A, 5 + C), anchors (A, 2) in input pixels ->
    boxes (N, gh * gw * A, 4) normalized (x0, y0, x1, y1), objectness (N, M), class scores
    (N, M, C); M runs over rows, columns, then anchors."""
    raw = np.asarray(raw, np.float64)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    a = len(anchors)
    n, gh, gw = raw.shape[:3]
    t = raw.reshape(n, gh, gw, a, -1)
    act = (lambda v: v) if activated else sigmoid
    cx = np.arange(gw)[None, None, :, None]
    cy = np.arange(gh)[None, :, None, None]
    ih, iw = input_hw
    if version == 5:
        x = (2 * act(t[..., 0]) - 0.5 + cx) / gw
        y = (2 * act(t[..., 1]) - 0.5 + cy) / gh
        w = (2 * act(t[..., 2])) ** 2 * anchors[:, 0] / iw
        h = (2 * act(t[..., 3])) ** 2 * anchors[:, 1] / ih
    else:
        x = (act(t[..., 0]) + cx) / gw
        y = (act(t[..., 1]) + cy) / gh
        w = np.exp(t[..., 2]) * anchors[:, 0] / iw
        h = np.exp(t[..., 3]) * anchors[:, 1] / ih
    boxes = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1).reshape(n, -1, 4)
    obj = act(t[..., 4]).reshape(n, -1)
    cls = act(t[..., 5:]).reshape(n, gh * gw * a, -1)
    return boxes, obj, cls


class Yolo(PostProcess):
    kind = "yolo"
    keys = ("anchors, outputs, version, classes, input, sigmoid, score, nms, nms-mode, max, "
            "labels, agnostic")

    @classmethod
    def from_items(cls, text, where, preset, items: Items, base_dir=None) -> Yolo:
        p = cls(text, where, preset)
        if not items.has("anchors"):
            raise UsageError(f"{where}: no 'anchors' item: yolo needs its anchors in input "
                             f"pixels, one group per output: anchors:[[10,13, 16,30, 33,23], "
                             "[30,61, 62,45, 59,119], [116,90, 156,198, 373,326]]")
        groups = items.nested_numbers("anchors", None)
        for g in groups:
            if len(g) % 2 or any(v <= 0 for v in g):
                raise items.error("anchors", "each anchor group is width,height pairs of positive "
                                             "numbers (an even count)")
        p.anchor_groups = [np.array(g, np.float64).reshape(-1, 2) for g in groups]
        p.names = items.words("outputs", None)
        if p.names is not None and len(p.names) != len(groups):
            raise items.error("outputs", f"{len(p.names)} outputs for {len(groups)} anchor groups; "
                                         f"give one output per group, in the same order")
        p.version = int(items.word("version", "3", ("3", "5")))
        p.classes = items.number("classes", None, lo=1, integer=True)
        p.input_size = items.size("input", None)
        p.activated = not items.flag("sigmoid", True)
        p.min_score = items.number("score", 0.25, lo=0)
        p.nms_threshold = items.number("nms", 0.45, lo=0, hi=1)
        p.nms_mode = items.word("nms-mode", "hard", ("weighted", "hard"))
        p.max_detections = items.number("max", 100, lo=1, integer=True)
        p.labels = items.words("labels", None)
        p.agnostic = items.flag("agnostic", False)
        if p.labels is not None and p.classes is not None and len(p.labels) != p.classes:
            raise items.error("labels", f"{len(p.labels)} labels for classes:{p.classes}")
        items.done([k.strip() for k in cls.keys.split(",")])
        return p

    def _input_hw(self):
        hw = self.input_size or (self.network.input_hw if self.network else None)
        if hw is None:
            raise self.error("yolo: the anchors are in input pixels; give input:HxW")
        return hw

    def _order(self, shapes: dict[str, tuple]) -> list[str]:
        """The output of each anchor group: named, or by grid size, the largest grid first."""
        if self.names is not None:
            return list(self.names)
        grids = [n for n, s in shapes.items() if len(s) >= 3]
        if len(grids) != len(self.anchor_groups):
            raise self.error(f"yolo: {len(self.anchor_groups)} anchor groups but the network has "
                             f"{len(grids)} grid outputs ({', '.join(shapes)}); name them with "
                             f"outputs:[...] in the order of the anchor groups")
        return sorted(grids, key=lambda n: -shapes[n][0] * shapes[n][1])

    def _check(self, network) -> None:
        self._input_hw()
        for name in self.names or ():
            if name not in network.outputs:
                raise self.error(f"yolo: no output '{name}' in network '{network.name}' (its "
                                 f"outputs: {', '.join(network.outputs)})")
        for name, group in zip(self._order(network.outputs), self.anchor_groups):
            self._classes_of(name, network.outputs[name], len(group))

    def _classes_of(self, name: str, shape: tuple, a: int) -> int:
        if len(shape) == 4:
            per = shape[3]
            ok = shape[2] == a
        else:
            ok = len(shape) == 3 and shape[2] % a == 0
            per = shape[2] // a if ok else 0
        if not ok or per < 6:
            raise self.error(f"yolo: output '{name}' of shape {list(shape)} is not a grid of {a} "
                             f"anchors x (5 + classes) values; check anchors and outputs")
        classes = per - 5
        if self.classes is not None and classes != self.classes:
            raise self.error(f"yolo: output '{name}' holds {classes} classes an anchor, not "
                             f"classes:{self.classes}")
        if self.labels is not None and len(self.labels) != classes:
            raise self.error(f"yolo: {len(self.labels)} labels for {classes} classes")
        return classes

    def outputs_used(self) -> list[str]:
        if self.names is not None:
            return list(self.names)
        return self._order(self.network.outputs) if self.network else []

    def _apply(self, outputs, n, maps) -> list[Result]:
        shapes = {k: tuple(np.shape(v)[1:]) for k, v in outputs.items()}
        hw = self._input_hw()
        boxes, scores, classes = [], [], []
        for name, group in zip(self._order(shapes), self.anchor_groups):
            raw = output_array(self, outputs, name)
            self._classes_of(name, raw.shape[1:], len(group))
            b, obj, cls = decode_yolo(raw, group, hw, self.version, self.activated)
            boxes.append(b)
            scores.append(obj * cls.max(axis=-1))
            classes.append(cls.argmax(axis=-1))
        boxes = np.concatenate(boxes, axis=1)
        scores = np.concatenate(scores, axis=1)
        classes = np.concatenate(classes, axis=1)
        results = []
        for i in range(n):
            keep = np.flatnonzero(scores[i] >= self.min_score)
            idx, b, _ = suppress(boxes[i][keep], scores[i][keep], None, classes[i][keep],
                                 self.nms_threshold, self.nms_mode, self.agnostic,
                                 self.max_detections)
            idx = keep[idx]
            results.append(to_result(b, None, scores[i][idx], classes[i][idx], maps[i],
                                     self._label))
        return results

    def _label(self, c: int) -> str:
        if self.labels:
            return self.labels[c] if c < len(self.labels) else f"class {c}"
        return f"class {c}"

