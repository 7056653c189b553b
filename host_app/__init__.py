"""host_app: the host inference application of the toolkit, one CLI (`host-app`).

    host-app parse MODEL.tflite|.h5|.keras      -> NET.har (HN + native params)
    host-app quantize NET.har --calib DIR        -> NET_quantized.har
    host-app infer NET.har IMAGES...|VIDEO       -> outputs, top-k labels, detections, annotated
    host-app compare NET.har IMAGES_OR_DIR       -> device-vs-emulator check, HTML report
    host-app analyze NET.har IMAGES_OR_DIR       -> per-layer noise analysis, suggested script
    host-app demo                                -> the whole journey on a bundled model
    host-app serve / keys                        -> a device server, its CURVE keys
    host-app bench [--quick]                     -> the project's benchmarks, their ratios

Modules: cli (argparse, one function per subcommand; checks before TensorFlow, quiet
TensorFlow import, progress bars, bench), images (OpenCV loading and
pre-processing), presets (known models' pre-processing and labels), pipeline (HAR loading,
open_device: the one way to open a device, the host pipeline through a hailort_py.Device,
emulation targets), compare (the byte-identity check, and the accuracy numbers of
emulator.analysis.metrics judged and presented), console (terminal tables that fit the
width), outputs (file kinds by content, output checks), report (HTML report), postprocess
(declared post-processing: top-k, SSD / BlazeFace, MTCNN cascade, YOLO, hooks; drawing; box
agreement), video (video files and cameras), analyze (the analyze command), demo.
Decisions (exit codes, the --preprocess grammar, HAR metadata keys): docs/host-app.md.
"""
from __future__ import annotations

__version__ = "0.1.0"
