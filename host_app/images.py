"""Images in, network inputs out: OpenCV loading and the pre-processing pipelines.

A pre-processing is given as a spec (docs/host-app.md):

    spec   := PRESET | item ("," item)*            e.g.  scale:1/127.5,offset:-1
    item   := color:rgb|bgr|gray | resize:stretch|crop
            | scale:V | offset:V | mean:V | std:V
    V      := number | a/b | [v, v, ...] (one per channel)

Each image is loaded with OpenCV (8-bit; 16-bit images are scaled to 8 bits, alpha dropped),
converted to the network's channels (gray, or RGB / BGR; RGB is the default for 3 channels),
resized to the network input (`stretch`, the default, or a centred `crop` to the input's aspect
first; INTER_AREA when shrinking, INTER_LINEAR when enlarging), then normalized:

    y = ((x - mean) / std) * scale + offset          (float32, per channel when lists are given)

A `.npy` file is taken as a batch: float arrays (N, H, W, C) as already pre-processed network
inputs, uint8 arrays (N, h, w[, c]) as raw images to pre-process: grey (no c, or c = 1), RGB
(c = 3) or RGBA (c = 4, the alpha dropped as for image files).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UsageError
from .postprocess.spec import split_items
from .presets import PRESETS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm",
                    ".pbm", ".jp2")
COLORS = ("rgb", "bgr", "gray")
RESIZE_MODES = ("stretch", "crop")
_NUMERIC_KEYS = ("scale", "offset", "mean", "std")
THUMB_SIZE = 56


# ==== the pre-processing spec ====================================================================

@dataclass(frozen=True)
class Preprocess:
    """A parsed --preprocess spec. `text` is the spec itself (a preset expanded), `preset` the
    preset's name when one was named."""

    text: str
    color: str | None = None  # None: gray for 1 channel, rgb for 3
    resize: str = "stretch"
    scale: tuple[float, ...] = (1.0,)
    offset: tuple[float, ...] = (0.0,)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    preset: str | None = None

    def __str__(self) -> str:
        return f"{self.preset} ({self.text})" if self.preset else self.text

    @property
    def is_identity(self) -> bool:
        return all(v == (d,) for v, d in ((self.scale, 1.0), (self.offset, 0.0), (self.mean, 0.0),
                                          (self.std, 1.0)))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """((x - mean) / std) * scale + offset over the last axis (channels), float32."""
        c = x.shape[-1]
        vals = []
        for key in _NUMERIC_KEYS:
            v = getattr(self, key)
            if len(v) not in (1, c):
                raise UsageError(f"--preprocess '{self.text}': {key} has {len(v)} values but the "
                                 f"network input has {c} channel(s); give one value or {c}")
            vals.append(np.asarray(v, np.float32))
        scale, offset, mean, std = vals
        y = (np.asarray(x, np.float32) - mean) / std * scale + offset
        return y.astype(np.float32, copy=False)


def _number(tok: str, where: str) -> float:
    tok = tok.strip()
    m = re.fullmatch(r"([^/]+)/([^/]+)", tok)
    try:
        value = float(m.group(1)) / float(m.group(2)) if m else float(tok)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{where}: '{tok}' is not a number (write 0.5, 1/127.5 or -1)") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: '{tok}' is not a finite number")
    return value


def parse_preprocess(text: str) -> Preprocess:
    """A Preprocess from a spec or a preset name (module doc). Raises UsageError."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("--preprocess is empty: give a preset "
                         f"({', '.join(PRESETS)}) or a spec such as scale:1/127.5,offset:-1")
    text = text.strip()
    if text in PRESETS:
        return _parse_items(PRESETS[text].preprocess, preset=text)
    if ":" not in text:
        raise UsageError(f"--preprocess '{text}' is neither a preset ({', '.join(PRESETS)}) nor a "
                         f"spec of key:value items such as scale:1/127.5,offset:-1")
    return _parse_items(text, preset=None)


def _parse_items(text: str, preset: str | None) -> Preprocess:
    where = f"--preprocess '{text}'"
    fields: dict = {}
    for item in split_items(text):
        key, sep, value = item.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise UsageError(f"{where}: item '{item}' is not key:value")
        if key in fields:
            raise UsageError(f"{where}: '{key}' is given twice")
        if key == "color":
            if value.lower() not in COLORS:
                raise UsageError(f"{where}: color must be one of {', '.join(COLORS)}, not '{value}'")
            fields[key] = value.lower()
        elif key == "resize":
            if value.lower() not in RESIZE_MODES:
                raise UsageError(f"{where}: resize must be one of {', '.join(RESIZE_MODES)}, "
                                 f"not '{value}'")
            fields[key] = value.lower()
        elif key in _NUMERIC_KEYS:
            if value.startswith("["):
                if not value.endswith("]") or len(value) < 3:
                    raise UsageError(f"{where}: {key} list '{value}' must look like [a, b, c]")
                nums = tuple(_number(t, f"{where}, {key}") for t in value[1:-1].split(","))
            else:
                nums = (_number(value, f"{where}, {key}"),)
            if key == "std" and any(v == 0 for v in nums):
                raise UsageError(f"{where}: std must not be 0")
            fields[key] = nums
        else:
            raise UsageError(f"{where}: unknown key '{key}'; the keys are color, resize, scale, "
                             f"offset, mean, std")
    return Preprocess(text=text, preset=preset, **fields)


# ==== finding and loading images =================================================================

@dataclass
class InputBatch:
    """Pre-processed network inputs and where they came from."""

    x: np.ndarray  # float32 (N, H, W, C) (or (N, C) for vector inputs)
    names: list[str]  # one display name per input
    sources: list[str] = field(default_factory=list)  # file of each input
    thumbnails: list[np.ndarray | None] = field(default_factory=list)  # uint8 small previews

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, idx: Sequence[int]) -> InputBatch:
        idx = list(idx)
        return InputBatch(self.x[idx], [self.names[i] for i in idx],
                          [self.sources[i] for i in idx], [self.thumbnails[i] for i in idx])


def find_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files from files and directories (a directory's images, sorted by name; not
    recursive). Raises UsageError naming the path that is missing or holds no images."""
    if not paths:
        raise UsageError("no images given: pass image files or a directory of images")
    found: list[Path] = []
    exts = ", ".join(IMAGE_EXTENSIONS[:6])
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                others = sorted(f.name for f in p.iterdir())[:5]
                raise UsageError(
                    f"directory '{p}' holds no images ({exts}, ...)"
                    + (f"; it has {', '.join(others)}{'...' if len(others) == 5 else ''}" if others
                       else "; it is empty")
                    + ". Give a directory of image files, or a .npy of pre-processed inputs")
            found.extend(files)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise UsageError(f"'{p}' is not an image file ({exts}, ...); give image files, a "
                                 f"directory of images, or one .npy of inputs")
            found.append(p)
        else:
            raise UsageError(f"'{p}' does not exist; give image files or a directory of images")
    unique = list(dict.fromkeys(found))
    return unique


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3) or grey (H, W). Raises UsageError if OpenCV cannot
    decode it."""
    import cv2

    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise UsageError(f"cannot read image '{path}': OpenCV could not decode it (corrupt, or not "
                         f"an image format OpenCV reads)")
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 + 32767) // 65535
    elif img.dtype != np.uint8:
        raise UsageError(f"image '{path}' has {img.dtype} pixels; give 8- or 16-bit images")
    img = img.astype(np.uint8, copy=False)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        code = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(img.shape[2])
        if code is None:
            raise UsageError(f"image '{path}' has {img.shape[2]} channels; give grey, RGB or RGBA")
        img = cv2.cvtColor(img, code)
    return np.ascontiguousarray(img)


def _to_channels(img: np.ndarray, channels: int, spec: Preprocess, where: str) -> np.ndarray:
    """uint8 RGB / grey image -> (h, w, channels) in the spec's colour order."""
    import cv2

    color = spec.color or ("gray" if channels == 1 else "rgb")
    if channels == 1:
        if color != "gray":
            raise UsageError(f"{where}: the network input has 1 channel but --preprocess says "
                             f"color:{color}; use color:gray")
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return grey[..., None]
    if channels != 3:
        raise UsageError(f"{where}: the network input has {channels} channels; images give 1 or 3. "
                         f"Pass a .npy of pre-processed (N, H, W, {channels}) float32 inputs instead")
    if color == "gray":
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return np.repeat(grey[..., None], 3, axis=2)
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    return np.ascontiguousarray(rgb[..., ::-1]) if color == "bgr" else rgb


def _resize(img: np.ndarray, h: int, w: int, mode: str) -> np.ndarray:
    import cv2

    ih, iw = img.shape[:2]
    if mode == "crop":
        target = w / h
        if iw / ih > target:  # too wide: crop the sides
            cw = max(1, round(ih * target))
            x0 = (iw - cw) // 2
            img = img[:, x0:x0 + cw]
        else:
            ch = max(1, round(iw / target))
            y0 = (ih - ch) // 2
            img = img[y0:y0 + ch]
        ih, iw = img.shape[:2]
    if (ih, iw) == (h, w):
        return img
    interp = cv2.INTER_AREA if ih >= h and iw >= w else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=interp)
    return out if out.ndim == img.ndim else out[..., None]


def preprocess_image(img: np.ndarray, shape: Sequence[int], spec: Preprocess,
                     where: str = "image") -> np.ndarray:
    """One uint8 RGB / grey image -> float32 network input of shape (H, W, C)."""
    if len(shape) != 3:
        raise UsageError(f"{where}: the network input has shape {list(shape)}, not an image "
                         f"(H, W, C); pass a .npy of pre-processed inputs")
    h, w, c = (int(v) for v in shape)
    x = _resize(_to_channels(img, c, spec, where), h, w, spec.resize)
    return spec.normalize(x.astype(np.float32))


def thumbnail(img: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """A small uint8 preview (longest side `size`) of an RGB / grey image, for reports."""
    import cv2

    h, w = img.shape[:2]
    f = size / max(h, w)
    out = cv2.resize(np.ascontiguousarray(img), (max(1, round(w * f)), max(1, round(h * f))),
                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    return out


def load_inputs(paths: Sequence[str | os.PathLike], shape: Sequence[int], spec: Preprocess | None,
                what: str = "images") -> InputBatch:
    """Network inputs from image files / directories, or from one .npy file (module doc).
    `shape` is the network input shape without the batch axis. spec None: only a float .npy is
    accepted (nothing says how to pre-process images)."""
    paths = [Path(p) for p in paths]
    npys = [p for p in paths if p.suffix.lower() == ".npy"]
    if npys:
        if len(paths) != 1:
            raise UsageError(f"{what}: give either one .npy file or image files / directories, "
                             f"not both ({', '.join(map(str, paths))})")
        return _load_npy(paths[0], shape, spec, what)
    files = find_images(paths)
    if spec is None:
        raise UsageError(f"{what}: nothing says how to pre-process the images for this network. "
                         f"Give --preprocess (a preset: {', '.join(PRESETS)}; or a spec such as "
                         f"scale:1/127.5,offset:-1), or record it once with "
                         f"`host-app parse MODEL --preset NAME / --preprocess SPEC`")
    frame = 4
    for d in shape:
        frame *= int(d)
    _check_budget(what, f"{len(files)} images", frame * len(files))
    xs, thumbs = [], []
    for f in files:
        img = load_image(f)
        xs.append(preprocess_image(img, shape, spec, where=f"image '{f}'"))
        thumbs.append(thumbnail(img))
    names = _display_names(files)
    return InputBatch(np.stack(xs), names, [str(f) for f in files], thumbs)


def _display_names(files: list[Path]) -> list[str]:
    """File names, with the parent directory where two files share a name."""
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        return names
    return [f"{f.parent.name}/{f.name}" for f in files]


def _load_npy(path: Path, shape: Sequence[int], spec: Preprocess | None, what: str) -> InputBatch:
    if not path.is_file():
        raise UsageError(f"{what}: '{path}' does not exist")
    try:
        a = np.load(path, allow_pickle=False, mmap_mode="r")  # the header first, no data read yet
    except (ValueError, OSError) as e:
        raise UsageError(f"{what}: '{path}' is not a readable .npy array: {e}") from None
    if not isinstance(a, np.ndarray):  # np.load opened an .npz archive
        keys = list(a.files)
        a.close()
        raise UsageError(f"{what}: '{path}' is an .npz archive (arrays {keys[:5]}), not one .npy "
                         f"array; save the batch with np.save, or give the image files")
    _check_budget(what, path, a.size * max(a.itemsize, 4))
    if a.ndim == 0 or a.size == 0:
        raise UsageError(f"{what}: '{path}' holds no inputs (shape {a.shape}); give a batch of "
                         f"images or pre-processed inputs")
    shape = tuple(int(v) for v in shape)
    if a.dtype == np.uint8:
        if spec is None:
            raise UsageError(f"{what}: '{path}' holds uint8 images; give --preprocess to say how "
                             f"to pre-process them")
        if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[3] not in (1, 3, 4)):
            raise UsageError(f"{what}: '{path}' holds uint8 images of shape {a.shape}; expected "
                             f"grey (N, h, w) or (N, h, w, 1), RGB (N, h, w, 3) or RGBA (N, h, w, 4)")
        if a.ndim == 4 and a.shape[3] != 3:  # grey as (N, h, w); RGBA: the alpha dropped, as for files
            a = a[..., 0] if a.shape[3] == 1 else np.ascontiguousarray(a[..., :3])
        xs = [preprocess_image(img, shape, spec, where=f"'{path}'[{i}]") for i, img in enumerate(a)]
        names = [f"{path.name}[{i}]" for i in range(len(a))]
        return InputBatch(np.stack(xs), names, [str(path)] * len(a), [thumbnail(img) for img in a])
    if not np.issubdtype(a.dtype, np.floating):
        raise UsageError(f"{what}: '{path}' has dtype {a.dtype}; give float32 pre-processed inputs "
                         f"(N, {', '.join(map(str, shape))}) or uint8 images")
    if a.shape == shape:
        a = a[None]
    if a.shape[1:] != shape:
        raise UsageError(f"{what}: '{path}' has shape {a.shape}; the network takes pre-processed "
                         f"inputs of shape (N, {', '.join(map(str, shape))})")
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{what}: '{path}' holds NaN or inf")
    with np.errstate(over="ignore"):  # overflow is detected just below, with a message
        x = np.ascontiguousarray(a, np.float32)
    if not np.all(np.isfinite(x)):  # finite in float64, beyond float32 (the network's type)
        big = float(np.max(np.abs(np.asarray(a, np.float64))))
        raise UsageError(f"{what}: '{path}' holds values beyond float32's range (largest "
                         f"magnitude {big:.3g}); give pre-processed inputs in the network's range")
    names = [f"{path.name}[{i}]" for i in range(len(a))]
    return InputBatch(x, names, [str(path)] * len(a), [None] * len(a))


def _check_budget(what: str, path: Path | str, nbytes: int) -> None:
    """Inputs larger than the emulator's memory budget are refused before they are read."""
    from emulator.limits import LIMITS

    if nbytes > LIMITS.memory_budget_bytes:
        raise UsageError(f"{what}: '{path}' would take {nbytes / 2**30:.1f} GiB as float32 "
                         f"inputs, over the memory budget of "
                         f"{LIMITS.memory_budget_bytes / 2**30:.1f} GiB; give fewer or smaller "
                         f"inputs, or raise it (EMULATOR_LIMITS=\"memory_budget_bytes=...\")")
