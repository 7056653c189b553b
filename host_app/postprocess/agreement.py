"""Box agreement between two runs of a detector: one taken as ground truth (native float), the
other tested (the emulator, the device), image by image.

Matching (per image, per class): the tested detections in descending score order (ties: their
order), each to the not yet matched reference box of its class with the highest IoU, if that IoU
is at least `iou_threshold`; a matched tested box is a true positive, the others false
positives, the unmatched reference boxes misses.
  precision = TP / tested boxes, recall = TP / reference boxes (1 when the denominator is 0)
  AP (per class) = the area under the precision / recall curve of the tested boxes ranked by
    score over all images, precision made non-increasing (all-point interpolation):
    AP = sum over ranks k of (R_k - R_(k-1)) * max_(j >= k) P_j
  mAP = the mean AP over the classes the reference holds (no reference box at all: 1 when the
    test has none either, else 0)
  mean IoU: over the matched pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .boxes import iou
from .results import Result, boxes_of

DEFAULT_IOU = 0.5


def match_image(ref: Result, test: Result, iou_threshold: float = DEFAULT_IOU
                ) -> list[tuple[int, int, float]]:
    """(reference index, tested index, IoU) of the matched pairs of one image (module doc)."""
    rb, tb = boxes_of(ref), boxes_of(test)
    if not len(rb) or not len(tb):
        return []
    m = iou(tb, rb)
    rc = np.array([d.class_id for d in ref.detections])
    tc = np.array([d.class_id for d in test.detections])
    m[tc[:, None] != rc[None, :]] = -1.0
    order = np.argsort(-np.array([d.score for d in test.detections], np.float64), kind="stable")
    used = np.zeros(len(rb), bool)
    pairs = []
    for t in order:
        cand = np.where(used, -1.0, m[t])
        r = int(np.argmax(cand))
        if cand[r] >= iou_threshold:
            used[r] = True
            pairs.append((r, int(t), float(cand[r])))
    return pairs


def average_precision(refs: Sequence[Result], tests: Sequence[Result], class_id: int,
                      iou_threshold: float = DEFAULT_IOU) -> float:
    """AP of one class (module doc); NaN when the reference has no box of that class."""
    n_gt = sum(1 for r in refs for d in r.detections if d.class_id == class_id)
    if n_gt == 0:
        return float("nan")
    ranked = [(d.score, i, j) for i, t in enumerate(tests) for j, d in enumerate(t.detections)
              if d.class_id == class_id]
    if not ranked:
        return 0.0
    order = np.argsort(-np.array([s for s, _, _ in ranked], np.float64), kind="stable")
    used = [np.zeros(len(r.detections), bool) for r in refs]
    gt = [(boxes_of(r), np.array([d.class_id == class_id for d in r.detections], bool))
          for r in refs]
    tp = np.zeros(len(ranked))
    for k, o in enumerate(order):
        _, i, j = ranked[o]
        rb, is_c = gt[i]
        if not len(rb):
            continue
        ov = iou(np.array([tests[i].detections[j].box]), rb)[0]
        ov[~is_c | used[i]] = -1.0
        r = int(np.argmax(ov))
        if ov[r] >= iou_threshold:
            used[i][r] = True
            tp[k] = 1
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(tp) + 1)
    recall = ctp / n_gt
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def mean_average_precision(refs: Sequence[Result], tests: Sequence[Result],
                           iou_threshold: float = DEFAULT_IOU) -> tuple[float, dict[int, float]]:
    """(mAP, {class: AP}) over the classes of the reference (module doc)."""
    classes = sorted({d.class_id for r in refs for d in r.detections})
    if not classes:
        return (1.0 if not any(t.detections for t in tests) else 0.0), {}
    aps = {c: average_precision(refs, tests, c, iou_threshold) for c in classes}
    return float(np.mean(list(aps.values()))), aps


@dataclass
class Agreement:
    """How the tested run's boxes agree with the reference's (module doc)."""

    reference: str
    test: str
    iou_threshold: float
    reference_boxes: int
    test_boxes: int
    matched: int
    precision: float
    recall: float
    map: float
    mean_iou: float | None
    ap_per_class: dict[str, float] = field(default_factory=dict)
    per_image: list[dict] = field(default_factory=list)  # reference, test, matched, mean_iou

    @property
    def label(self) -> str:
        return f"{self.test} vs {self.reference}"

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 6)

        return {"reference": self.reference, "test": self.test,
                "iou_threshold": self.iou_threshold, "reference_boxes": self.reference_boxes,
                "test_boxes": self.test_boxes, "matched": self.matched,
                "precision": num(self.precision), "recall": num(self.recall),
                "map": num(self.map), "mean_iou": num(self.mean_iou),
                "ap_per_class": {k: num(v) for k, v in self.ap_per_class.items()},
                "per_image": [{k: (num(v) if isinstance(v, float) else v) for k, v in p.items()}
                              for p in self.per_image]}


def agreement(refs: Sequence[Result], tests: Sequence[Result], *, reference: str = "native",
              test: str = "test", iou_threshold: float = DEFAULT_IOU) -> Agreement:
    """Precision, recall, mAP and IoUs of `tests` against `refs` (one Result per image each)."""
    if len(refs) != len(tests):
        raise ValueError(f"{len(refs)} reference results for {len(tests)} tested ones")
    per_image, ious = [], []
    n_ref = n_test = n_match = 0
    for r, t in zip(refs, tests):
        pairs = match_image(r, t, iou_threshold)
        got = [p[2] for p in pairs]
        ious += got
        n_ref += len(r.detections)
        n_test += len(t.detections)
        n_match += len(pairs)
        per_image.append({"reference": len(r.detections), "test": len(t.detections),
                          "matched": len(pairs),
                          "mean_iou": float(np.mean(got)) if got else None,
                          "min_iou": float(np.min(got)) if got else None})
    m, aps = mean_average_precision(refs, tests, iou_threshold)
    names = {d.class_id: (d.label or f"class {d.class_id}") for r in refs for d in r.detections}
    return Agreement(reference, test, iou_threshold, n_ref, n_test, n_match,
                     precision=n_match / n_test if n_test else 1.0,
                     recall=n_match / n_ref if n_ref else 1.0, map=m,
                     mean_iou=float(np.mean(ious)) if ious else None,
                     ap_per_class={names.get(c, f"class {c}"): v for c, v in aps.items()},
                     per_image=per_image)
