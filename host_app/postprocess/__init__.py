"""Post-processing as declared: a spec (docs/host-app.md, "Post-processing"), stored in the HAR
like the pre-processing, that turns a network's float outputs into results per image, the same
way for native, emulator and device outputs.

    post = parse_postprocess("blazeface")               # a preset, or kind,key:value,...
    post = post.bind(NetworkInfo.from_runner(runner))   # (postprocess_for does both, for a HAR)
    results = post.apply(outputs, image_shape)          # {name: (N, ...)} -> [Result] * N
    bgr = draw(image_bgr, results[0])                   # OpenCV drawing

One algorithm a module: classify (top-k), ssd (MediaPipe anchors, BlazeFace), yolo, mtcnn (the
P-Net -> R-Net -> O-Net cascade), hooks (module:function); boxes (IoU, NMS), agreement (box
precision / recall / mAP between runs), draw, runtime (targets, FramePipeline).
Nothing here imports TensorFlow until a network runs.
"""
from .agreement import Agreement, agreement, average_precision, match_image, mean_average_precision
from .boxes import iou, nms, weighted_nms
from .classify import Classify, top_k
from .draw import draw, draw_rgb
from .hooks import Hook
from .mtcnn import Mtcnn, Stage
from .registry import KIND_NAMES, POSTPROCESS_PRESETS, parse_postprocess
from .results import Detection, InputMapping, Result, TopClass
from .runtime import FramePipeline, Frames, Infer, open_stages, postprocess_for
from .spec import NetworkInfo, PostProcess
from .ssd import AnchorOptions, Ssd, decode_ssd, ssd_anchors
from .yolo import Yolo, decode_yolo

__all__ = [
    "Agreement", "AnchorOptions", "Classify", "Detection", "FramePipeline", "Frames", "Hook",
    "Infer", "InputMapping", "KIND_NAMES", "Mtcnn", "NetworkInfo", "POSTPROCESS_PRESETS",
    "PostProcess", "Result", "Ssd", "Stage", "TopClass", "Yolo", "agreement",
    "average_precision", "decode_ssd", "decode_yolo", "draw", "draw_rgb", "iou", "match_image",
    "mean_average_precision", "nms", "open_stages", "parse_postprocess", "postprocess_for",
    "ssd_anchors", "top_k", "weighted_nms",
]
