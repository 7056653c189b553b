"""Box geometry and non-maximum suppression, in numpy.

Boxes are (n, 4) arrays of (x0, y0, x1, y1); a box with x1 <= x0 or y1 <= y0 is empty (area 0).

NMS (`nms`): boxes in descending score order (ties: the earlier box first); the best remaining
box is kept and every remaining box that overlaps it by more than `threshold` is suppressed,
until none remains. `overlap` is "iou" (intersection over union) or "min" (intersection over
the smaller area, MTCNN's last stage). `weighted=True` is the same clustering, but each kept box
is replaced by the score-weighted mean of its cluster (itself and the boxes it suppressed), its
keypoints too (MediaPipe's weighted NMS); its score stays the best one of the cluster.
"""
from __future__ import annotations

import numpy as np


def areas(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def overlaps(a: np.ndarray, b: np.ndarray, overlap: str = "iou") -> np.ndarray:
    """(len(a), len(b)) overlap of every pair: "iou" or "min" (intersection / smaller area).
    Two empty boxes overlap 0."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    aa, ab = areas(a)[:, None], areas(b)[None, :]
    if overlap == "iou":
        denom = aa + ab - inter
    elif overlap == "min":
        denom = np.minimum(aa, ab)
    else:
        raise ValueError(f"overlap must be 'iou' or 'min', not {overlap!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, inter / np.where(denom > 0, denom, 1), 0.0)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return overlaps(a, b, "iou")


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, overlap: str = "iou",
        max_out: int | None = None) -> np.ndarray:
    """Indices of the kept boxes, best score first (module doc)."""
    return np.array([k for k, _ in _clusters(boxes, scores, threshold, overlap, max_out)], np.int64)


def _clusters(boxes, scores, threshold, overlap, max_out):
    """(kept index, indices of its cluster incl. itself), best first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out = []
    while remaining.size and (max_out is None or len(out) < max_out):
        best = remaining[0]
        ov = overlaps(boxes[best:best + 1], boxes[remaining], overlap)[0]
        suppressed = ov > threshold
        suppressed[0] = True
        out.append((int(best), remaining[suppressed]))
        remaining = remaining[~suppressed]
    return out


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float,
                 keypoints: np.ndarray | None = None, *, overlap: str = "iou",
                 max_out: int | None = None):
    """(kept indices, merged boxes (k, 4), merged keypoints (k, K, 2) or None): the clusters of
    `nms`, each box (and its keypoints) the score-weighted mean of its cluster."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    kps = None if keypoints is None else np.asarray(keypoints, np.float64)
    kept, merged, merged_kp = [], [], []
    for best, members in _clusters(boxes, scores, threshold, overlap, max_out):
        w = scores[members]
        w = w / w.sum() if w.sum() > 0 else np.full(len(members), 1.0 / len(members))
        kept.append(best)
        merged.append(w @ boxes[members])
        if kps is not None:
            merged_kp.append(np.tensordot(w, kps[members], axes=1))
    k = np.array(kept, np.int64)
    b = np.array(merged, np.float64).reshape(-1, 4)
    if kps is None:
        return k, b, None
    return k, b, np.array(merged_kp, np.float64).reshape(len(kept), *kps.shape[1:])


def batched_nms(boxes, scores, classes, threshold: float, *, overlap: str = "iou",
                max_out: int | None = None) -> np.ndarray:
    """NMS within each class (boxes of two classes never suppress each other); indices best
    score first."""
    classes = np.asarray(classes).reshape(-1)
    keep = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        keep.extend(idx[nms(boxes[idx], scores[idx], threshold, overlap=overlap)])
    keep = np.array(keep, np.int64)
    keep = keep[np.argsort(-np.asarray(scores, np.float64)[keep], kind="stable")]
    return keep[:max_out] if max_out is not None else keep


def square(b: np.ndarray) -> np.ndarray:
    """Each box grown to a square of its longer side, about the same centre."""
    b = np.asarray(b, np.float64).reshape(-1, 4).copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    cx, cy = b[:, 0] + w / 2, b[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def clip(b: np.ndarray, hw) -> np.ndarray:
    """Boxes clipped to an (H, W) image."""
    b = np.asarray(b, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, hw[1])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, hw[0])
    return b
