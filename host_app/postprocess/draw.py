"""Drawing results on images with OpenCV: boxes coloured by class, "label score" tags, keypoints,
and the top-k classes of classifier outputs in the top-left corner.

`draw(image_bgr, result)` returns a new BGR uint8 image (a grey image is converted); the input
is not modified. Line widths and text sizes follow the image's size, so a 128 px frame and a
4K frame both stay readable.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .results import Result

# BGR, distinguishable on photos (class id modulo the palette)
PALETTE = ((60, 200, 60), (255, 140, 30), (40, 40, 230), (0, 200, 255), (200, 60, 200),
           (200, 200, 0), (120, 120, 255), (30, 120, 240))
KEYPOINT_COLOR = (0, 255, 255)


def color_of(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def _bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.dtype != np.uint8:
        lo, hi = float(np.min(img)), float(np.max(img))
        img = np.zeros(img.shape, np.uint8) if hi <= lo else \
            np.round((img - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(img).copy()


def _tag(img, text: str, x: int, y: int, color, scale: float, thick: int, below: bool = False):
    """A filled label with dark or light text at (x, y) (its bottom-left; `below`: under y)."""
    import cv2

    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    h, w = img.shape[:2]
    x = int(min(max(0, x), max(0, w - tw - 4)))
    top = y if below else y - th - base - 4
    if top < 0:
        top = 0
    if top + th + base + 4 > h:
        top = max(0, h - th - base - 4)
    cv2.rectangle(img, (x, top), (x + tw + 4, top + th + base + 4), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thick,
                cv2.LINE_AA)


def draw(image_bgr: np.ndarray, result: Result, *, color: Sequence[int] | None = None,
         labels: bool = True, keypoints: bool = True, thickness: int | None = None) -> np.ndarray:
    """A copy of the image with the result drawn (module doc). `color` forces one BGR colour for
    every box (e.g. to overlay two results); `labels` draws the "label score" tags."""
    import cv2

    img = _bgr(image_bgr)
    h, w = img.shape[:2]
    size = max(1, min(h, w))
    thick = thickness or max(1, round(size / 240))
    scale = max(0.35, size / 900)
    text_thick = max(1, round(scale * 1.6))
    for det in result.detections:
        c = tuple(int(v) for v in (color if color is not None else color_of(det.class_id)))
        x0, y0, x1, y1 = (int(round(v)) for v in det.box)
        cv2.rectangle(img, (x0, y0), (x1, y1), c, thick, cv2.LINE_AA)
        if keypoints and det.keypoints is not None:
            r = max(1, thick + 1)
            for x, y in np.asarray(det.keypoints).reshape(-1, 2):
                if np.isfinite(x) and np.isfinite(y):
                    cv2.circle(img, (int(round(x)), int(round(y))), r, KEYPOINT_COLOR, -1,
                               cv2.LINE_AA)
        if labels:
            name = det.label or f"class {det.class_id}"
            _tag(img, f"{name} {det.score:.2f}", x0, y0, c, scale, text_thick)
    y = 0
    for name, classes in result.top_k.items():
        for cls in classes[:3]:
            text = f"{cls.label} {cls.score:.2f}"
            _tag(img, text, 0, y, (40, 40, 40), scale, text_thick, below=True)
            y += int(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, text_thick)[0][1]
                     + 10 * scale + 6)
    return img


def draw_rgb(image_rgb: np.ndarray, result: Result, **kwargs) -> np.ndarray:
    """`draw` for an RGB (or grey) image, as host_app.images.load_image gives; returns BGR,
    ready for cv2.imwrite / a cv2.VideoWriter."""
    img = np.asarray(image_rgb)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]
    return draw(img, result, **kwargs)
