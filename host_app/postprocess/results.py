"""What post-processing gives per image, and where the network input sits in the image.

A `Result` per image: the detections (boxes in pixels of the original image, score, class,
keypoints) and, for classifier outputs, the top-k classes. `InputMapping` maps coordinates
normalized to the network input ([0, 1] on both axes) back to the original image, for the
resize modes of the pre-processing (host_app.images: `stretch`, or a centred `crop` to the
input's aspect, computed exactly as host_app.images crops).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class Detection:
    """One detected object. `box` is (x0, y0, x1, y1) in pixels of the original image (x right,
    y down; x1 > x0 for a non-empty box); `keypoints` (K, 2) rows of (x, y) in the same pixels,
    or None."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int = 0
    label: str = ""
    keypoints: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self, digits: int = 2) -> dict[str, Any]:
        d: dict[str, Any] = {"box": [round(float(v), digits) for v in self.box],
                             "score": round(float(self.score), 4), "class_id": int(self.class_id),
                             "label": self.label}
        if self.keypoints is not None:
            d["keypoints"] = [[round(float(x), digits), round(float(y), digits)]
                              for x, y in np.asarray(self.keypoints).reshape(-1, 2)]
        return d


@dataclass
class TopClass:
    """One entry of a classifier output's top-k."""

    index: int
    label: str
    score: float


@dataclass
class Result:
    """Post-processing of one image: detections, top-k per classifier output, and the (H, W) of
    the image the coordinates refer to. `extra` holds what a user hook returns besides."""

    detections: list[Detection] = field(default_factory=list)
    top_k: dict[str, list[TopClass]] = field(default_factory=dict)
    image_shape: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"detections": [det.to_dict() for det in self.detections]}
        if self.top_k:
            d["top_k"] = {name: [{"index": c.index, "label": c.label, "score": round(c.score, 4)}
                                 for c in classes] for name, classes in self.top_k.items()}
        if self.image_shape is not None:
            d["image_shape"] = list(self.image_shape)
        return d


def boxes_of(result: Result) -> np.ndarray:
    """(n, 4) float64 boxes of a result's detections."""
    return np.array([d.box for d in result.detections], np.float64).reshape(-1, 4)


# ==== network input -> original image ============================================================

@dataclass(frozen=True)
class InputMapping:
    """Affine map of coordinates normalized to the network input onto the original image:
    x_img = x0 + x * width, y_img = y0 + y * height (the region of the image the input shows)."""

    x0: float
    y0: float
    width: float
    height: float
    image_hw: tuple[int, int] = (0, 0)  # the (H, W) of the original image

    @classmethod
    def for_image(cls, image_hw: Sequence[int], input_hw: Sequence[int] | None = None,
                  resize: str = "stretch") -> InputMapping:
        """The region of an (H, W) image the network input of `input_hw` shows after host_app's
        pre-processing resize `resize` ("stretch": all of it; "crop": the centred crop to the
        input's aspect, the same integers as host_app.images)."""
        ih, iw = int(image_hw[0]), int(image_hw[1])
        if resize != "crop" or input_hw is None:
            return cls(0.0, 0.0, float(iw), float(ih), (ih, iw))
        h, w = int(input_hw[0]), int(input_hw[1])
        target = w / h
        if iw / ih > target:  # too wide: the sides were cropped
            cw = max(1, round(ih * target))
            return cls(float((iw - cw) // 2), 0.0, float(cw), float(ih), (ih, iw))
        ch = max(1, round(iw / target))
        return cls(0.0, float((ih - ch) // 2), float(iw), float(ch), (ih, iw))

    def boxes(self, b: np.ndarray) -> np.ndarray:
        """(n, 4) normalized (x0, y0, x1, y1) -> pixels."""
        b = np.asarray(b, np.float64).reshape(-1, 4)
        s = np.array([self.width, self.height, self.width, self.height])
        o = np.array([self.x0, self.y0, self.x0, self.y0])
        return b * s + o

    def points(self, p: np.ndarray) -> np.ndarray:
        """(..., 2) normalized (x, y) -> pixels."""
        p = np.asarray(p, np.float64)
        return p * np.array([self.width, self.height]) + np.array([self.x0, self.y0])


def image_shapes_for(image_shape, n: int) -> list[tuple[int, int]]:
    """One (H, W) per image from one shape for all, or a sequence of n shapes (each (H, W) or
    (H, W, C))."""
    if image_shape is None:
        raise ValueError("image_shape is needed: the (H, W) of the original image(s)")
    if len(image_shape) and np.ndim(image_shape[0]) == 0:  # one shape for all
        hw = (int(image_shape[0]), int(image_shape[1]))
        return [hw] * n
    shapes = [(int(s[0]), int(s[1])) for s in image_shape]
    if len(shapes) != n:
        raise ValueError(f"{len(shapes)} image shapes for {n} images")
    return shapes
