"""host-app: the CLI end to end on the real FER model and real faces (in-process through
host_app.cli.main), its exit codes and messages, the byte-identity check catching real
differences, the HTML / JSON reports, and the demo."""
from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest

import data_sources as ds
from host_app import cli
from host_app.errors import AppError, UsageError
from host_app.images import parse_preprocess, preprocess_image


# --- shared material: faces on disk, a parsed and a quantized HAR -------------------------------

@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Real faces written as PNG files by the demo's own writer: calib/ (lfw + camera / Grace
    Hopper crops) and faces/ (held-out lfw + astronaut); few/ holds 10 of the held-out ones."""
    from host_app.demo import write_faces

    root = tmp_path_factory.mktemp("faces")
    calib, held, notes = write_faces(root)
    assert not notes, notes
    few = root / "few"
    few.mkdir()
    picked = sorted(held.glob("lfw_*.png"))[:8] + sorted(held.glob("astronaut_*.png"))
    for p in picked:
        shutil.copy(p, few / p.name)
    return {"calib": calib, "held": held, "few": few, "root": root}


@pytest.fixture(scope="module")
def fer_qhar(fer_har, faces):
    out = fer_har.with_name("fer_quantized.har")
    assert cli.main(["quantize", str(fer_har), "--calib", str(faces["calib"]),
                     "--calib-num-batch", "4", "--batch-size", "8", "-o", str(out)]) == 0
    return out


def _run(capsys, argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- bad usage: exit 2, a clear message, no traceback --------------------------------------------

def test_no_command_and_bad_options_are_usage_errors(capsys):
    code, _, err = _run(capsys, [])
    assert code == 2 and "give a command" in err
    code, _, err = _run(capsys, ["infer", "x.har", "a.png", "--top-k", "0"])
    assert code == 2 and "--top-k" in err and "at least 1" in err
    code, _, err = _run(capsys, ["infer", "x.har", "a.png", "--target", "gpu"])
    assert code == 2 and "invalid choice" in err
    assert _run(capsys, ["--help"])[0] == 0


def test_missing_files_are_named(capsys, tmp_path, fer_qhar):
    code, _, err = _run(capsys, ["parse", tmp_path / "nope.tflite"])
    assert code == 2 and "nope.tflite" in err and "does not exist" in err
    code, _, err = _run(capsys, ["compare", tmp_path / "nope.har", tmp_path])
    assert code == 2 and "nope.har" in err and "host-app parse" in err
    code, _, err = _run(capsys, ["infer", fer_qhar, tmp_path / "missing.png"])
    assert code == 2 and "missing.png" in err and "does not exist" in err
    assert "Traceback" not in err


def test_wrong_kinds_of_file(capsys, tmp_path, fer_har):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = _run(capsys, ["parse", notes])
    assert code == 2 and "notes.txt" in err and ".tflite" in err
    # a model where a HAR is expected
    code, _, err = _run(capsys, ["quantize", ds.fer_model_path(), "--calib", tmp_path])
    assert code == 2 and "emotion_model.hdf5" in err and "not a HAR" in err
    # an image that OpenCV cannot decode
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    code, _, err = _run(capsys, ["infer", fer_har, bad])
    assert code == 2 and "broken.png" in err and "decode" in err


def test_unusable_output_paths_are_named(capsys, tmp_path, fer_har, faces):
    """Outputs are checked before any work: a directory where a file is wanted, a location
    that cannot be created, a file where the demo wants a directory."""
    (tmp_path / "adir").mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    for argv, flag, path in (
            (["parse", ds.fer_model_path(), "-o", tmp_path / "adir"], "-o/--output", "adir"),
            (["quantize", fer_har, "--calib", faces["few"], "-o", blocker / "q.har"], "-o/--output",
             "blocker"),
            (["infer", fer_har, faces["few"], "--target", "native", "--save", tmp_path / "adir"],
             "--save", "adir"),
            (["demo", "--out", blocker], "--out", "blocker")):
        code, _, err = _run(capsys, argv)
        assert code == 2 and flag in err and path in err and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "blocker"]  # no stray file


def test_uint8_npy_images(capsys, tmp_path, fer_har):
    """A .npy of raw uint8 images: grey, RGB and RGBA (alpha dropped) give the same inputs; any
    other channel count is bad usage naming the file."""
    rgb = ds.random_crops(3, (40, 40), seed=9)
    rgba = np.concatenate([rgb, np.full((3, 40, 40, 1), 7, np.uint8)], axis=3)
    saved = {}
    for name, arr in (("rgb", rgb), ("rgba", rgba)):
        np.save(tmp_path / f"{name}.npy", arr)
        code, _, err = _run(capsys, ["infer", fer_har, tmp_path / f"{name}.npy", "--target", "native",
                                     "--save", tmp_path / f"{name}_out.npz"])
        assert code == 0, err
        saved[name] = np.load(tmp_path / f"{name}_out.npz")["output_layer1"]
    assert np.array_equal(saved["rgb"], saved["rgba"])
    np.save(tmp_path / "empty.npy", np.zeros((0, 64, 64, 1), np.float32))
    code, _, err = _run(capsys, ["quantize", fer_har, "--calib", tmp_path / "empty.npy"])
    assert code == 2 and "empty.npy" in err and "holds no inputs" in err
    np.save(tmp_path / "two.npy", rgb[..., :2])
    code, _, err = _run(capsys, ["infer", fer_har, tmp_path / "two.npy", "--target", "native"])
    assert code == 2 and "two.npy" in err and "(3, 40, 40, 2)" in err and "Traceback" not in err


def test_wrong_image_dir(capsys, tmp_path, fer_qhar):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, ["compare", fer_qhar, empty])
    assert code == 2 and "empty" in err and "holds no images" in err
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "readme.md").write_text("x")
    code, _, err = _run(capsys, ["quantize", fer_qhar, "--calib", texts])
    assert code == 2 and "holds no images" in err and "readme.md" in err


def test_unquantized_har_and_bad_preprocess(capsys, fer_har, faces):
    code, _, err = _run(capsys, ["compare", fer_har, faces["few"]])
    assert code == 2 and "not quantized" in err and f"host-app quantize {fer_har}" in err
    code, _, err = _run(capsys, ["infer", fer_har, faces["few"], "--target", "numeric"])
    assert code == 2 and "not quantized" in err
    code, _, err = _run(capsys, ["infer", fer_har, faces["few"], "--preprocess", "gain:2"])
    assert code == 2 and "unknown key 'gain'" in err
    code, _, err = _run(capsys, ["infer", fer_har, faces["few"], "--preprocess", "color:rgb"])
    assert code == 2 and "1 channel" in err and "color:gray" in err


def test_calibration_out_of_range_is_usage(capsys, fer_har, faces, tmp_path):
    code, _, err = _run(capsys, ["quantize", fer_har, "--calib", faces["few"], "--calib-num-batch",
                                 "4", "--batch-size", "8", "-o", tmp_path / "q.har"])
    assert code == 2 and "OutOfRange" in err and "32" in err and "10" in err
    assert not (tmp_path / "q.har").exists()


def _hostile_keras_files(tmp_path):
    """Files Keras cannot load, one per kind of exception it raises on them."""
    import json
    import zipfile

    import h5py

    files = {}
    broken = files["OSError"] = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n but not really")
    with h5py.File(tmp_path / "listconfig.h5", "w") as f:  # TypeError inside Keras
        f.attrs["model_config"] = json.dumps([1, 2])
    files["TypeError"] = tmp_path / "listconfig.h5"
    with h5py.File(tmp_path / "badjson.h5", "w") as f:  # a JSONDecodeError (a ValueError)
        f.attrs["model_config"] = "{not json"
    files["JSONDecodeError"] = tmp_path / "badjson.h5"
    empty = files["KeyError"] = tmp_path / "empty.keras"  # a zip without config.json
    with zipfile.ZipFile(empty, "w"):
        pass
    corrupt = files["BadZipFile"] = tmp_path / "corrupt.keras"  # a member fails its CRC
    with zipfile.ZipFile(corrupt, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    data = bytearray(corrupt.read_bytes())
    data[data.index(b"Sequential")] ^= 0x20
    corrupt.write_bytes(bytes(data))
    return files


def test_a_model_that_does_not_load_is_a_failure(capsys, tmp_path):
    for kind, path in _hostile_keras_files(tmp_path).items():
        code, _, err = _run(capsys, ["parse", path, "-o", tmp_path / "x.har"])
        assert code == 1 and path.name in err and "cannot load Keras model" in err, (kind, err)
        assert kind in err and "Traceback" not in err


# --- one way to open a device -----------------------------------------------------------------

def test_open_device_from_each_kind_of_spec(fer_qhar, tmp_path):
    from hailort_py.device import Device
    from host_app.pipeline import load_har, open_device

    runner = load_har(fer_qhar)
    for spec in (runner, fer_qhar, str(fer_qhar), "driver:emulator"):
        device = open_device(spec, runner=runner, models=[fer_qhar])
        try:
            assert isinstance(device, Device) and device.network_names() == ["fer"]
            assert device.stream_infos() == runner.get_stream_infos()
        finally:
            device.close()


def test_open_device_errors_name_the_spec(fer_har, fer_qhar, tmp_path):
    from host_app.pipeline import load_har, open_device

    runner = load_har(fer_qhar)
    with pytest.raises(UsageError, match="nope.har' does not exist"):
        open_device(tmp_path / "nope.har")
    with pytest.raises(UsageError, match="is not quantized, and the emulated chip needs"):
        open_device(fer_har)
    with pytest.raises(UsageError, match="no device driver 'tpu'.*emulator"):
        open_device("driver:tpu", models=[fer_qhar])
    with pytest.raises(UsageError, match="CURVE keys .* go with a device server endpoint"):
        open_device(runner, keys=tmp_path)
    with pytest.raises(UsageError, match="cannot open a device from an object of type int"):
        open_device(42)
    with pytest.raises(AppError, match="device driver 'emulator' \\(no model\\).*--model"):
        open_device("driver:emulator")
    with pytest.raises(AppError, match="cannot start the emulated chip for network 'fer'.*"
                                       "quantized"):
        open_device(load_har(fer_har))
    with pytest.raises(AppError, match="device at tcp://127.0.0.1:1: .*no reply within 300 ms.*"
                                       "needs --keys here too"):
        open_device("tcp://127.0.0.1:1", runner=runner, timeout_ms=300)


@pytest.mark.slow
def test_open_device_refuses_a_device_of_another_quantization(capsys, fer_har, fer_qhar, faces,
                                                               tmp_path):
    from host_app.pipeline import load_har, open_device

    other = tmp_path / "other.har"
    assert cli.main(["quantize", str(fer_har), "--calib", str(faces["calib"]),
                     "--calib-num-batch", "1", "--batch-size", "8", "-o", str(other)]) == 0
    with pytest.raises(AppError, match="serves a network 'fer' whose streams differ from this "
                                       "HAR's"):
        open_device(other, runner=load_har(fer_qhar))


def test_device_options_are_checked(capsys, fer_qhar, faces, tmp_path):
    code, _, err = _run(capsys, ["infer", fer_qhar, faces["few"], "--device", "127.0.0.1:5555"])
    assert code == 2 and "'127.0.0.1:5555' is neither" in err and "tcp://HOST:PORT" in err
    code, _, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--keys", tmp_path])
    assert code == 2 and "--keys DIR goes with --device tcp://HOST:PORT" in err
    code, _, err = _run(capsys, ["infer", fer_qhar, faces["few"], "--target", "native", "--keys",
                                 tmp_path])
    assert code == 2 and "--keys DIR goes with --device" in err
    code, _, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--device", "driver:tpu"])
    assert code == 2 and "no device driver 'tpu'" in err and "Traceback" not in err
    code, _, err = _run(capsys, ["infer", fer_qhar, faces["few"], "--target", "numeric",
                                 "--device", "driver:emulator"])
    assert code == 2 and "needs --target device" in err


@pytest.mark.slow
def test_compare_and_infer_through_a_driver(capsys, fer_qhar, faces, tmp_path):
    js = tmp_path / "drv.json"
    code, out, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--device", "driver:emulator",
                                   "--json", js])
    assert code == 0, err
    data = json.loads(js.read_text())
    assert data["passed"] and "driver 'emulator'" in data["device"]
    assert data["preprocess"] == str(parse_preprocess("fer"))
    code, out, err = _run(capsys, ["infer", fer_qhar, faces["few"], "--device", "driver:emulator",
                                   "--save", tmp_path / "drv.npz"])
    assert code == 0 and "the device of driver 'emulator'" in out, err
    code, _, _ = _run(capsys, ["infer", fer_qhar, faces["few"], "--target", "numeric",
                               "--save", tmp_path / "num.npz"])
    drv, num = np.load(tmp_path / "drv.npz"), np.load(tmp_path / "num.npz")
    assert drv["output_layer1"].tobytes() == num["output_layer1"].tobytes()


# --- pre-processing and metrics -------------------------------------------------------------------

def test_preprocess_specs():
    fer = parse_preprocess("fer")
    assert fer.preset == "fer" and fer.color == "gray" and fer.scale == (1 / 127.5,)
    spec = parse_preprocess("color:bgr,mean:[1,2,3],std:2,resize:crop")
    assert spec.mean == (1.0, 2.0, 3.0) and spec.std == (2.0,) and spec.resize == "crop"
    for bad, words in (("scale:abc", "not a number"), ("std:0", "must not be 0"),
                       ("color:cmyk", "color must be"), ("mean:1,mean:2", "twice"),
                       ("nonsense", "neither a preset")):
        with pytest.raises(UsageError, match=words):
            parse_preprocess(bad)


def test_preprocess_image_grey_and_rgb():
    img = np.zeros((20, 40, 3), np.uint8)
    img[..., 0] = 255  # pure red
    x = preprocess_image(img, (10, 10, 1), parse_preprocess("fer"))
    red_grey = 0.299 * 255
    assert x.shape == (10, 10, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, red_grey / 127.5 - 1, atol=1 / 127.5)
    bgr = preprocess_image(img, (10, 10, 3), parse_preprocess("color:bgr,scale:1/255"))
    assert np.allclose(bgr[..., 2], 1.0) and np.allclose(bgr[..., :2], 0.0)
    per_channel = preprocess_image(img, (5, 5, 3), parse_preprocess("mean:[255,0,0],std:[1,2,4]"))
    assert np.allclose(per_channel, 0.0)
    with pytest.raises(UsageError, match="3 values but the network input has 1"):
        preprocess_image(img, (5, 5, 1), parse_preprocess("color:gray,mean:[1,2,3]"))


def test_compare_takes_its_metrics_from_the_emulator():
    """host_app.compare presents emulator.analysis.metrics' numbers (no copy of its own) and
    judges them: under 10 dB is flagged "poor", 20 dB and above is "good"."""
    from emulator.analysis import metrics
    from host_app import compare

    for name in ("snr_db", "cosine"):
        assert not hasattr(compare, name), name
    assert compare.SNR_FLAG_DB == 10.0 and compare.SNR_GOOD_DB == 20.0
    assert [compare.snr_status(db) for db in (9.99, 10.0, 19.9, 20.0, float("inf"))] == \
        ["poor", "fair", "fair", "good", "good"]
    rng = np.random.default_rng(3)
    native = rng.normal(size=(5, 7)).astype(np.float32)
    quant = native + rng.normal(scale=0.05, size=native.shape).astype(np.float32)
    m = compare.output_metrics("out", "net/out", "output", "out", native, quant, classifier=True)
    ref, q = native.astype(np.float64), quant.astype(np.float64)
    assert m.snr_db == metrics.snr_db(ref, q) and m.cosine == metrics.cosine_similarity(ref, q)
    assert m.rmse == metrics.rmse(ref, q) and m.max_abs_err == metrics.max_abs_error(ref, q)
    assert m.mean_err == metrics.mean_error(ref, q)
    assert m.top1_agreement == metrics.top1_agreement(ref, q)
    assert m.per_image_snr_db == [metrics.snr_db(ref[i], q[i]) for i in range(5)]
    assert m.native_top1 == native.argmax(axis=1).tolist()


def test_compare_names_the_output_whose_values_have_no_metrics():
    from host_app.compare import output_metrics

    native = np.ones((2, 3), np.float32)
    bad = native.copy()
    bad[1, 2] = np.nan
    with pytest.raises(AppError, match=r"output 'out' \(out before softmax, stream 'net/out'\).*"
                                       r"ref holds 1 non-finite"):
        output_metrics("out", "net/out", "stream", "out before softmax", bad, native, False)
    with pytest.raises(AppError, match=r"output 'out'.*ref has shape \(2, 3\) and test has "
                                       r"shape \(2, 2\)"):
        output_metrics("out", "net/out", "output", "out", native, native[:, :2], False)


# --- the journey: parse, quantize, infer, compare --------------------------------------------------

@pytest.mark.slow
def test_parse_records_har_and_prints_layers(capsys, tmp_path):
    code, out, _ = _run(capsys, ["parse", ds.fer_model_path(), "--name", "fer", "--preset", "fer",
                                 "-o", tmp_path / "f.har"])
    assert code == 0
    assert re.search(r"conv1\s+conv\s+62x62x8\s+relu", out)
    assert "56,575 params" in out and "wrote" in out
    from emulator import ClientRunner

    r = ClientRunner(har=str(tmp_path / "f.har"))
    assert r.metadata["preprocess"] == "fer"
    assert r.metadata["labels"]["output_layer1"][3] == "happy"
    assert r.quantized_params is None


@pytest.mark.slow
def test_parse_labels_file(capsys, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    code, _, err = _run(capsys, ["parse", ds.fer_model_path(), "--labels", labels,
                                 "-o", tmp_path / "f.har"])
    assert code == 2 and "labels.txt" in err and "3 labels" in err and "output_layer1 (7 values)" in err
    assert not (tmp_path / "f.har").exists()
    labels.write_text("\n".join(f"mood {i}" for i in range(7)) + "\n")
    code, out, _ = _run(capsys, ["parse", ds.fer_model_path(), "--labels", labels,
                                 "-o", tmp_path / "f.har"])
    assert code == 0 and "labels recorded for output_layer1: mood 0, mood 1" in out
    from emulator import ClientRunner

    r = ClientRunner(har=str(tmp_path / "f.har"))
    assert r.metadata["labels"] == {"output_layer1": [f"mood {i}" for i in range(7)]}
    assert "preprocess" not in r.metadata


@pytest.mark.slow
def test_quantize_prints_ranges_and_streams(capsys, fer_har, faces, tmp_path):
    out_har = tmp_path / "q.har"
    code, out, _ = _run(capsys, ["quantize", fer_har, "--calib", faces["calib"], "--calib-num-batch",
                                 "2", "--batch-size", "8", "-o", out_har])
    assert code == 0, out
    assert "calibrating 'fer' on 2 x 8 = 16 of 64 inputs" in out
    assert re.search(r"global_avg_pool1\s+global_avg_pool\s+a8_w8\s+-?\d", out)
    assert re.search(r"fer/input_layer1\s+in\s+64x64x1\s+64x64x1\s+UINT8 NHCW", out)
    assert "then softmax" in out, out[-1500:]
    from emulator import ClientRunner

    r = ClientRunner(har=str(out_har))
    assert r.quantized_params is not None and r.metadata["calibration"]["images"] == 16


@pytest.mark.slow
def test_infer_device_matches_numeric_and_names_the_emotion(capsys, fer_qhar, faces, tmp_path):
    astronaut = sorted(faces["held"].glob("astronaut_*.png"))
    code, out, _ = _run(capsys, ["infer", fer_qhar, *astronaut, "--target", "device", "--top-k", "2",
                                 "--save", tmp_path / "dev.npz"])
    assert code == 0
    assert "in-process emulated chip" in out
    assert re.search(r"astronaut_x1\.0\.png\s+happy 0\.\d+", out)  # she smiles
    code, _, _ = _run(capsys, ["infer", fer_qhar, *astronaut, "--target", "numeric",
                               "--save", tmp_path / "num.npz"])
    assert code == 0
    dev, num = np.load(tmp_path / "dev.npz"), np.load(tmp_path / "num.npz")
    assert dev["output_layer1"].shape == (len(astronaut), 7)
    assert np.array_equal(dev["output_layer1"].view(np.uint32), num["output_layer1"].view(np.uint32))
    code, out, _ = _run(capsys, ["infer", fer_qhar, *astronaut, "--target", "native"])
    assert code == 0 and "happy" in out


def _pngs(html: str) -> list[bytes]:
    return [base64.b64decode(u) for u in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.mark.slow
def test_compare_passes_with_report_and_json(capsys, fer_qhar, faces, tmp_path):
    import cv2

    report, js = tmp_path / "r" / "report.html", tmp_path / "r" / "report.json"
    code, out, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--report", report,
                                   "--json", js])
    assert code == 0, err
    assert "PASS host pipeline == emulator SdkNumeric: byte-identical" in out
    assert re.search(r"fer/input_layer1\s+input frames\s+40,960\s+0\s+identical", out)
    assert re.search(r"fer/output_layer1\s+output after host ops\s+70\s+0\s+identical", out)
    data = json.loads(js.read_text())
    assert data["byte_identical"] and data["passed"] and data["images"] == 10
    assert data["preprocess"] == str(parse_preprocess("fer"))  # the HAR's, recorded by parse
    assert [c["level"] for c in data["checks"]] == ["input frames", "output codes",
                                                    "output float32", "output after host ops"]
    m = {x["label"]: x for x in data["metrics"]}
    # real numbers of a real 8-bit network: well above the 10 dB flag, well below identity
    assert 12.0 < m["output_layer1"]["snr_db"] < 60.0
    assert 12.0 < m["output_layer1 before softmax"]["snr_db"] < 60.0
    assert m["output_layer1"]["top1_agreement"] >= 0.7
    assert 0 < abs(m["output_layer1"]["mean_err"]) <= m["output_layer1"]["rmse"]
    assert data["per_image"][0]["output_layer1"]["native_top1"] in ds_emotions()
    html = report.read_text()
    for needle in ("PASS", "byte-identical", "Streams", "Per image", "fer/input_layer1",
                   "fer/output_layer1", "UINT8 NHCW", "astronaut_x1.0.png", "top-1 agreement",
                   "Calibration"):
        assert needle in html, needle
    pngs = _pngs(html)
    assert len(pngs) >= 3 + 10  # scatter, histogram, confusion + a thumbnail per image
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.size > 0
    assert f"report: {report.resolve()}" in out


def ds_emotions():
    from host_app.presets import FER_EMOTIONS

    return FER_EMOTIONS


@pytest.mark.slow
def test_compare_catches_a_flipped_input_code(capsys, monkeypatch, fer_qhar, faces, tmp_path):
    """One code flipped by the host's input transform: exit 1, the input stream named."""
    import hailort_py as hrt

    original = hrt.InputTransformContext.transform

    def flipping(self, src, dst=None):
        out = original(self, src, dst)
        if self.user_format.type == hrt.FormatType.FLOAT32 and out.ndim == 2 and len(out) > 1:
            out[1, 100] ^= 1  # image 1, one code
        return out

    monkeypatch.setattr(hrt.InputTransformContext, "transform", flipping)
    report = tmp_path / "fail.html"
    code, out, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--report", report])
    assert code == 1
    assert "FAIL host pipeline != emulator SdkNumeric" in out
    msg = next(line for line in err.splitlines() if "input frames" in line)
    assert "fer/input_layer1" in msg and "1 of 40960 values differ" in msg
    # image 1 of the sorted directory, device byte 100 = row 1, column 36 (NHCW, 64 wide)
    assert "astronaut_x1.3.png" in err and "(h, w, c) = (1, 36, 0)" in err
    assert "InputTransformContext" in err
    html = report.read_text()
    assert "FAIL" in html and "fer/input_layer1" in html and "astronaut_x1.3.png" in html


@pytest.mark.slow
def test_compare_catches_a_one_ulp_dequantize_difference(capsys, monkeypatch, fer_qhar, faces):
    """The host's output transform is off by one ulp on one value: the float32 check names the
    output stream, the codes check stays identical."""
    import hailort_py as hrt

    original = hrt.OutputTransformContext.transform

    def nudged(self, src, dst=None):
        out = original(self, src, dst)
        if self.user_format.type == hrt.FormatType.FLOAT32:
            out.reshape(-1).view(np.uint32)[2] += 1
        return out

    monkeypatch.setattr(hrt.OutputTransformContext, "transform", nudged)
    code, out, err = _run(capsys, ["compare", fer_qhar, faces["few"]])
    assert code == 1
    assert re.search(r"fer/output_layer1\s+output codes\s+70\s+0\s+identical", out)
    assert re.search(r"fer/output_layer1\s+output float32\s+70\s+1\s+DIFFERENT", out)
    line = next(x for x in err.splitlines() if "output float32" in x)
    assert "fer/output_layer1" in line and "OutputTransformContext" in line and "(0, 0, 2)" in line


@pytest.mark.slow
def test_compare_catches_a_device_that_returns_a_wrong_code(capsys, monkeypatch, fer_qhar, faces):
    """The device returns one wrong output code: exit 1, the output stream named."""
    from hailort_py.device import Device

    from host_app import pipeline

    real = pipeline._emulated_device

    class Faulty(Device):
        def __init__(self, inner):
            self.inner = inner

        def network_names(self):
            return self.inner.network_names()

        def stream_infos(self, network_name=None):
            return self.inner.stream_infos(network_name)

        def _infer(self, network_name, raw_inputs):
            out = self.inner.infer(raw_inputs, network_name)
            frames = out["fer/output_layer1"]
            frames[-1, 3] = frames[-1, 3] + 1 if frames[-1, 3] < 255 else 0
            return out

    monkeypatch.setattr(pipeline, "_emulated_device", lambda runner: Faulty(real(runner)))
    code, out, err = _run(capsys, ["compare", fer_qhar, faces["few"]])
    assert code == 1
    codes = next(line for line in err.splitlines() if "output codes" in line)
    assert "fer/output_layer1" in codes and "1 of 70 values differ" in codes
    assert "(0, 0, 3)" in codes and "global_avg_pool1" in codes
    assert re.search(r"fer/input_layer1\s+input frames\s+40,960\s+0\s+identical", out)


@pytest.mark.slow
def test_compare_min_snr_gate(capsys, fer_qhar, faces):
    code, _, err = _run(capsys, ["compare", fer_qhar, faces["few"], "--min-snr", "80"])
    assert code == 1 and "below --min-snr 80 dB" in err and "output_layer1" in err


@pytest.mark.slow
def test_demo_end_to_end(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    code, out, err = _run(capsys, ["demo", "--out", out_dir])
    assert code == 0, err
    for step in ("1/4 parse", "2/4 quantize", "keys:", "serve:", "3/4 compare", "4/4 infer"):
        assert step in out
    assert "byte-identical" in out and "device server at tcp://127.0.0.1:" in out
    assert "CURVE on" in out and "served" in out and "stopped" in out
    data = json.loads((out_dir / "report.json").read_text())
    assert data["byte_identical"] and data["images"] >= 40
    assert data["metrics"][0]["snr_db"] > 15.0 and data["metrics"][0]["top1_agreement"] > 0.8
    html = (out_dir / "report.html").read_text()
    assert "PASS" in html and len(_pngs(html)) > 40
    assert f"Report: {(out_dir / 'report.html').resolve()}" in out
