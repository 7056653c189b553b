"""The MTCNN cascade as one pipeline: P-Net over an image pyramid, then R-Net, then O-Net, each
stage a network of its own (a HAR run on any target, or a device).

    mtcnn[,rnet:RNET.har][,onet:ONET.har][,min-face:20][,factor:0.709]
         [,thresholds:[0.6, 0.7, 0.8]][,nms:[0.5, 0.7, 0.7, 0.7]][,max:100]

The HAR the spec is given to (or recorded in) is P-Net's; `rnet` and `onet` name the other
stages' HARs (relative paths: from the current directory on the command line, from the HAR's
directory when recorded). Without onet the cascade ends after R-Net (no keypoints), without both
after P-Net.

P-Net (12 x 12 windows, stride 2): the image is scaled by 12 / min-face x factor^k while its
shorter side stays >= 12 px; each level is cut into tiles of P-Net's fixed input (the HAR's
input shape), overlapping so that every window lies whole in one tile: P-Net is fully
convolutional, so a window's output is the same as on the whole level. All tiles of all levels
and images go through the network as one batch. Windows with face probability > thresholds[0]
are kept; NMS per level (IoU nms[0]), across levels (nms[1]); then each box moves by its
regression (dx0, dy0, dx1, dy1) x its size and is squared.
R-Net: each box is cropped from the image (black outside it), resized to R-Net's input,
pre-processed with R-Net's HAR's recorded pre-processing, scored; kept above thresholds[1],
NMS (nms[2]), regressed, squared. O-Net: the same at its input size above thresholds[2]; the 5
keypoints (x = x0 + w * p[k], y = y0 + h * p[5 + k], on the box O-Net saw); boxes regressed;
NMS over the smaller area (nms[3]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import boxes as bx
from .results import Detection, Result
from .spec import Items, PostProcess

CELL = 12  # P-Net's window
STRIDE = 2  # P-Net's output stride
KEYPOINT_NAMES = ("left eye", "right eye", "nose", "mouth left", "mouth right")


@dataclass
class Stage:
    """One network of the cascade: `infer(x)` runs a float32 batch (N, H, W, C) of pre-processed
    inputs (on whatever target: the runtime opens it) and returns {output name: (N, ...)};
    `prepare(image_rgb_uint8, (h, w, c))` resizes and pre-processes an image (or crop) to it."""

    name: str
    infer: Callable[[np.ndarray], dict[str, np.ndarray]]
    input_shape: tuple[int, int, int]
    prepare: Callable[[np.ndarray, tuple[int, int, int]], np.ndarray]
    output_shapes: dict[str, tuple[int, ...]]

    def roles(self, needed: Sequence[int]) -> dict[int, str]:
        """The output holding each of `needed` values per position (4: box regression, 2: face
        probability, 10: keypoints), told apart by their last axis."""
        found: dict[int, str] = {}
        for name, shape in self.output_shapes.items():
            last = shape[-1] if shape else 1
            if last in needed:
                if last in found:
                    raise _stage_error(self.name, f"two outputs ({found[last]}, {name}) have {last} "
                                                  f"values; MTCNN's stages have one each")
                found[last] = name
        missing = [k for k in needed if k not in found]
        if missing:
            have = ", ".join(f"{n} {list(s)}" for n, s in self.output_shapes.items())
            raise _stage_error(self.name, f"no output with {missing[0]} values a position (its "
                                          f"outputs: {have}); is this the right stage's HAR?")
        return found


def _stage_error(name, problem):
    from ..errors import UsageError

    return UsageError(f"MTCNN stage {name}: {problem}")


def pyramid_scales(hw, min_face: float, factor: float) -> list[float]:
    """The P-Net scales of an (H, W) image: 12 / min_face x factor^k while the shorter side
    stays at least 12 px."""
    m = CELL / min_face
    short = min(hw)
    scales = []
    s = m
    while short * s >= CELL:
        scales.append(s)
        s *= factor
    return scales


def tile_origins(size: int, out_cells: int) -> list[int]:
    """Tile offsets (input pixels, even) along one axis of a level of `size` pixels, for a P-Net
    input whose output has `out_cells` cells along it: every window of the level lies whole in
    one tile."""
    cells = (size - CELL) // STRIDE + 1
    if cells <= 0:
        return []
    return [t * out_cells * STRIDE for t in range(math.ceil(cells / out_cells))]


def crop(image: np.ndarray, box) -> np.ndarray:
    """The pixels of box (x0, y0, x1, y1) (rounded), black where it leaves the image."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    out = np.zeros((h, w) + image.shape[2:], image.dtype)
    ih, iw = image.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(iw, x0 + w), min(ih, y0 + h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Each box moved by (dx0, dy0, dx1, dy1) x its width / height."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + np.asarray(reg, np.float64).reshape(-1, 4) * wh


class Mtcnn(PostProcess):
    kind = "mtcnn"
    keys = "rnet, onet, min-face, factor, thresholds, nms, max"
    needs_images = True

    @classmethod
    def from_items(cls, text, where, preset, items: Items, base_dir=None) -> Mtcnn:
        p = cls(text, where, preset)
        p.base_dir = Path(base_dir) if base_dir is not None else None
        p.rnet = items.word("rnet", None)
        p.onet = items.word("onet", None)
        p.min_face = items.number("min-face", 20, lo=CELL)
        p.factor = items.number("factor", 0.709, lo=0.1, hi=0.95)
        p.thresholds = items.numbers("thresholds", [0.6, 0.7, 0.8], count=3, lo=0, hi=1)
        p.nms = items.numbers("nms", [0.5, 0.7, 0.7, 0.7], count=4, lo=0, hi=1)
        p.max_detections = items.number("max", 100, lo=1, integer=True)
        items.done([k.strip() for k in cls.keys.split(",")])
        return p

    def stage_hars(self) -> dict[str, Path]:
        """{"rnet": path, "onet": path} of the stages named (relative to base_dir)."""
        out = {}
        for name in ("rnet", "onet"):
            v = getattr(self, name)
            if v:
                p = Path(v)
                if not p.is_absolute() and self.base_dir is not None:
                    p = self.base_dir / p
                out[name] = p
        return out

    def stored_for(self, har_dir: Path, cwd: Path | None = None) -> str:
        """The spec to record in a HAR written in `har_dir`: stage paths relative to it."""
        import os

        items = [self.kind]
        for name, p in self.stage_hars().items():
            absolute = (Path(cwd or Path.cwd()) / p).resolve()
            try:
                rel = os.path.relpath(absolute, Path(har_dir).resolve())
            except ValueError:  # another drive
                rel = str(absolute)
            items.append(f"{name}:{rel}")
        items += [f"min-face:{self.min_face:g}", f"factor:{self.factor:g}",
                  f"thresholds:[{', '.join(f'{t:g}' for t in self.thresholds)}]",
                  f"nms:[{', '.join(f'{t:g}' for t in self.nms)}]", f"max:{self.max_detections}"]
        return ",".join(items)

    def _apply(self, outputs, n, maps):
        raise self.error("mtcnn runs its stages on the images themselves (an image pyramid), not "
                         "on one network's outputs: use detect(images, stages), or "
                         "host_app.postprocess.FramePipeline")

    # --- the cascade ----------------------------------------------------------------------------

    def detect(self, images: Sequence[np.ndarray], pnet: Stage, rnet: Stage | None = None,
               onet: Stage | None = None) -> list[Result]:
        """The cascade on RGB uint8 images (module doc): one Result per image, boxes and
        keypoints in its pixels."""
        cands = self._pnet(images, pnet)
        if rnet is not None:
            cands = self._refine(images, cands, rnet, 1, self.nms[2], keypoints=False)
        if onet is not None:
            cands = self._refine(images, cands, onet, 2, self.nms[3], keypoints=True)
        results = []
        for i, img in enumerate(images):
            b, s, k = cands[i]
            b = bx.clip(b, img.shape[:2])
            dets = [Detection(tuple(float(v) for v in b[j]), float(s[j]), 0, "face",
                              k[j] if k is not None else None) for j in range(len(b))]
            results.append(Result(dets[:self.max_detections], image_shape=img.shape[:2]))
        return results

    def _pnet(self, images, stage: Stage):
        th, tw = stage.input_shape[:2]
        roles = stage.roles((4, 2))
        oh, ow = stage.output_shapes[roles[2]][:2]
        if STRIDE * (oh - 1) + CELL > th or STRIDE * (ow - 1) + CELL > tw:
            raise _stage_error(stage.name, f"output {oh}x{ow} does not fit 12x12 windows of "
                                           f"stride 2 on its {th}x{tw} input; is this P-Net?")
        tiles, where = [], []  # where: (image, level, scale, y0, x0)
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            for level, s in enumerate(pyramid_scales((h, w), self.min_face, self.factor)):
                hs, ws = int(math.ceil(h * s)), int(math.ceil(w * s))
                lv = stage.prepare(img, (hs, ws, stage.input_shape[2]))
                for y0 in tile_origins(hs, oh):
                    for x0 in tile_origins(ws, ow):
                        t = np.zeros((th, tw, lv.shape[2]), np.float32)
                        part = lv[y0:y0 + th, x0:x0 + tw]
                        t[:part.shape[0], :part.shape[1]] = part
                        tiles.append(t)
                        where.append((i, level, s, y0, x0, hs, ws))
        per_image = [[] for _ in images]  # (level, boxes, scores, regs)
        if tiles:
            out = stage.infer(np.stack(tiles))
            reg_all = np.asarray(out[roles[4]], np.float32)
            prob_all = np.asarray(out[roles[2]], np.float32)
            for t, (i, level, s, y0, x0, hs, ws) in enumerate(where):
                prob = prob_all[t].reshape(oh, ow, 2)[..., 1]
                reg = reg_all[t].reshape(oh, ow, 4)
                rows = min(oh, (hs - CELL) // STRIDE + 1 - y0 // STRIDE)
                cols = min(ow, (ws - CELL) // STRIDE + 1 - x0 // STRIDE)
                yy, xx = np.nonzero(prob[:rows, :cols] > self.thresholds[0])
                if not len(yy):
                    continue
                gy = (y0 + STRIDE * yy) / s
                gx = (x0 + STRIDE * xx) / s
                boxes = np.stack([gx, gy, gx + CELL / s, gy + CELL / s], axis=1)
                per_image[i].append((level, boxes, prob[yy, xx], reg[yy, xx]))
        cands = []
        for i in range(len(images)):
            parts = per_image[i]
            if not parts:
                cands.append((np.zeros((0, 4)), np.zeros(0), None))
                continue
            kept_b, kept_s, kept_r = [], [], []
            for level in sorted({p[0] for p in parts}):
                b = np.concatenate([p[1] for p in parts if p[0] == level])
                s = np.concatenate([p[2] for p in parts if p[0] == level])
                r = np.concatenate([p[3] for p in parts if p[0] == level])
                k = bx.nms(b, s, self.nms[0])
                kept_b.append(b[k]), kept_s.append(s[k]), kept_r.append(r[k])
            b, s, r = np.concatenate(kept_b), np.concatenate(kept_s), np.concatenate(kept_r)
            k = bx.nms(b, s, self.nms[1])
            cands.append((bx.square(regress(b[k], r[k])), s[k], None))
        return cands

    def _refine(self, images, cands, stage: Stage, index: int, nms_threshold: float,
                keypoints: bool):
        roles = stage.roles((4, 2, 10) if keypoints else (4, 2))
        size = stage.input_shape
        patches, owner = [], []
        for i, (b, _, _) in enumerate(cands):
            for box in b:
                patches.append(stage.prepare(crop(images[i], box), size))
                owner.append(i)
        if not patches:
            return [(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)) if keypoints else None)
                    for _ in images]
        out = stage.infer(np.stack(patches))
        prob = np.asarray(out[roles[2]], np.float64).reshape(len(patches), 2)[:, 1]
        reg = np.asarray(out[roles[4]], np.float64).reshape(len(patches), 4)
        lm = np.asarray(out[roles[10]], np.float64).reshape(len(patches), 10) if keypoints else None
        owner = np.array(owner)
        refined = []
        for i in range(len(images)):
            rows = np.flatnonzero((owner == i) & (prob > self.thresholds[index]))
            seen = cands[i][0][rows - np.flatnonzero(owner == i)[0]] if len(rows) else \
                np.zeros((0, 4))
            s = prob[rows]
            if keypoints:
                w = (seen[:, 2] - seen[:, 0])[:, None]
                h = (seen[:, 3] - seen[:, 1])[:, None]
                kp = np.stack([seen[:, 0:1] + w * lm[rows, :5],
                               seen[:, 1:2] + h * lm[rows, 5:]], axis=-1)  # (n, 5, 2)
                b = regress(seen, reg[rows])
                k = bx.nms(b, s, nms_threshold, overlap="min")
                refined.append((b[k], s[k], kp[k]))
            else:
                k = bx.nms(seen, s, nms_threshold)
                refined.append((bx.square(regress(seen[k], reg[rows][k])), s[k], None))
        return refined
