"""parse_postprocess: a spec (or a preset) -> the PostProcess of its kind; the presets."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError
from .spec import Items, PostProcess, split_items

# presets: known models' post-processing, spelled out as specs (docs/host-app.md)
_BLAZEFACE = ("ssd,input:{s}x{s},strides:{strides},min-scale:0.1484375,max-scale:0.75,"
              "offset:0.5,aspect-ratios:[1.0],interpolated:{interp},fixed-size:yes,order:xywh,"
              "box-scale:{s},keypoints:6,sigmoid:yes,clip:100,score:{score},nms:0.3,"
              "nms-mode:weighted,labels:[face]")
POSTPROCESS_PRESETS: dict[str, tuple[str, str]] = {
    "blazeface": ("MediaPipe BlazeFace short range (face_detection_short_range.tflite, also "
                  "front): 128x128, 896 anchors, 6 keypoints",
                  _BLAZEFACE.format(s=128, strides="[8,16,16,16]", interp=1, score=0.5)),
    "blazeface-back": ("MediaPipe BlazeFace back camera (face_detection_back.tflite): 256x256, "
                       "896 anchors, 6 keypoints",
                       _BLAZEFACE.format(s=256, strides="[16,32,32,32]", interp=1, score=0.5)),
    "blazeface-full": ("MediaPipe BlazeFace full range (face_detection_full_range.tflite): "
                       "192x192, 2304 anchors, 6 keypoints",
                       _BLAZEFACE.format(s=192, strides="[4]", interp=0, score=0.5)),
    "classify": ("top-k classes of the classifier outputs, with the recorded labels", "classify"),
}


def _kinds():
    from .classify import Classify
    from .hooks import Hook
    from .mtcnn import Mtcnn
    from .ssd import Ssd
    from .yolo import Yolo

    return {k.kind: k for k in (Classify, Ssd, Yolo, Mtcnn, Hook)}


KIND_NAMES = ("classify", "ssd", "yolo", "mtcnn", "hook:MODULE:FUNCTION")


def _key_values(items: list[str], where: str, text: str, taken: dict | None = None) -> dict:
    out: dict[str, tuple[str, str]] = {}
    for item in items:
        key, sep, value = item.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not item:
            raise UsageError(f"{where}: an empty item (two commas in a row, or a comma at the "
                             f"end); write kind,key:value,key:value")
        if not sep or not value or not key:
            raise UsageError(f"{where}: item '{item}' is not key:value (write e.g. score:0.5)")
        if key in out:
            raise UsageError(f"{where}: '{key}' is given twice ('{out[key][1]}' and '{item}'); "
                             f"give it once")
        out[key] = (value, item)
    return out


def parse_postprocess(text: str, *, where: str | None = None,
                      base_dir: str | os.PathLike | None = None) -> PostProcess:
    """The PostProcess of a spec (docs/host-app.md, "Post-processing"): its syntax and values
    checked, nothing imported or loaded. `where` starts error messages (default
    "--postprocess 'SPEC'"); `base_dir` is where relative paths in the spec (MTCNN's stage HARs,
    a hook's .py file) are found (default: the current directory).

    UsageError names the item and what to write instead."""
    if not isinstance(text, str):
        raise UsageError(f"a post-processing spec is text, not {type(text).__name__}")
    where = where or f"--postprocess '{text}'"
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{where}: empty; give a preset ({', '.join(POSTPROCESS_PRESETS)}) or a "
                         f"kind ({', '.join(KIND_NAMES)}) with key:value items")
    items = split_items(stripped)
    head, rest = items[0], items[1:]
    preset = None
    defaults: dict[str, tuple[str, str]] = {}
    low = head.lower()
    if low in POSTPROCESS_PRESETS:
        preset = low
        expanded = split_items(POSTPROCESS_PRESETS[low][1])
        head = expanded[0]
        defaults = _key_values(expanded[1:], where, text)
    kinds = _kinds()
    if head.lower().startswith("hook:"):
        kind = "hook"
    elif head.lower() in kinds:
        kind = head.lower()
    else:
        guess = head.split(":")[0]
        raise UsageError(f"{where}: unknown post-processing '{guess}'; start with a preset "
                         f"({', '.join(POSTPROCESS_PRESETS)}) or a kind ({', '.join(KIND_NAMES)})")
    given = _key_values(rest, where, text)
    merged = dict(defaults)
    merged.update(given)  # a preset's items, overridden by those given after it
    cls = kinds[kind]
    base = Path(base_dir) if base_dir is not None else None
    spec_items = Items(where, kind if preset is None else f"{kind} (preset {preset})", merged,
                       cls.keys)
    if kind == "hook":
        return cls.from_items(stripped, where, preset, spec_items, base, head=head)
    return cls.from_items(stripped, where, preset, spec_items, base)


def describe_presets() -> str:
    return "; ".join(f"{name}: {what}" for name, (what, _) in POSTPROCESS_PRESETS.items())
