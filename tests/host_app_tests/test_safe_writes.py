"""host-app never loses data when it writes (issue "Untrusted files and careless users").

- An output that is one of the command's inputs is refused (exit 2), however it is spelled:
  another relative spelling, ../, a symlink either way, an image inside an input directory.
- An existing output of another kind (by content: HAR, Keras HDF5, image, JSON, HTML ...) is not
  replaced without --force; the same kind, or an empty file, is.
- Every write goes through emulator.files.atomic_write: an exception or Ctrl-C in the middle of
  a write, or SIGKILL at any point, leaves the old file whole (or the new one) and no
  temporary; a symlink at the output path is replaced, not followed.
Refused files are checked byte for byte (sha256) afterwards.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import data_sources as ds
from host_app import cli, outputs
from test_host_app import _run, faces, fer_qhar  # noqa: F401  (module fixtures; fer_har: conftest.py)

REPO = Path(__file__).resolve().parents[2]


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def temporaries(directory) -> list[str]:
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def work(tmp_path, fer_qhar, faces):  # noqa: F811
    """A private copy of the quantized HAR, two face images in imgs/, and a photo elsewhere."""
    har = tmp_path / "net.har"
    shutil.copy(fer_qhar, har)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, p in enumerate(sorted(faces["few"].glob("*.png"))[-2:]):  # astronaut crops
        shutil.copy(p, imgs / f"img{i:02d}.png")
    photo = tmp_path / "photo.png"
    shutil.copy(sorted(faces["held"].glob("lfw_*.png"))[0], photo)
    return {"har": har, "imgs": imgs, "photo": photo, "dir": tmp_path}


def refused(capsys, argv, victim, *words):
    """Runs argv, expects exit 2 with `words` in the message, and `victim` byte-identical."""
    before = sha(victim)
    code, _, err = _run(capsys, argv)
    assert code == 2, (argv, err)
    for w in words:
        assert str(w) in err, (w, err)
    assert "Traceback" not in err
    assert sha(victim) == before, f"{victim} changed"
    return err


# --- an output that is one of the inputs ---------------------------------------------------------

def test_parse_output_is_the_model(capsys, tmp_path):
    model = tmp_path / "model.h5"
    shutil.copy(ds.fer_model_path(), model)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.h5").symlink_to(model)
    for out in (model, tmp_path / "sub" / ".." / "model.h5", tmp_path / "link.h5"):
        err = refused(capsys, ["parse", model, "-o", out], model, "-o/--output", out,
                      "the model this command parses", "--force does not override")
    assert "('" in err  # the symlink: the input's own spelling is named too
    # --force does not make an input writable
    refused(capsys, ["parse", model, "-o", model, "--force"], model, "the model this command parses")
    # the model given through a symlink, the output by its real name
    refused(capsys, ["parse", tmp_path / "link.h5", "-o", model], model, "the model")


def test_infer_save_is_the_har(capsys, work):
    har, imgs = work["har"], work["imgs"]
    (work["dir"] / "x").mkdir()
    (work["dir"] / "har_link.npz").symlink_to(har)
    for out in (har, work["dir"] / "x" / ".." / "net.har", work["dir"] / "har_link.npz"):
        refused(capsys, ["infer", har, imgs, "--save", out], har, "--save", out,
                "the HAR this command reads")
    # the HAR through a symlink, --save its real name
    (work["dir"] / "link.har").symlink_to(har)
    refused(capsys, ["infer", work["dir"] / "link.har", imgs, "--save", har, "--force"], har,
            "the HAR this command reads", "('")
    # an image given on the command line
    img = imgs / "img00.png"
    refused(capsys, ["infer", har, img, "--save", img], img, "an input of this command")


def test_compare_outputs_are_inputs(capsys, work):
    har, imgs = work["har"], work["imgs"]
    refused(capsys, ["compare", har, imgs, "--report", har], har, "--report", "the HAR this command reads")
    img = imgs / "img00.png"
    refused(capsys, ["compare", har, imgs, "--json", img], img, "--json", img,
            f"an image this command reads from '{imgs}'")
    (work["dir"] / "x").mkdir()
    refused(capsys, ["compare", har, imgs, "--json", work["dir"] / "x" / ".." / "imgs" / "img01.png"],
            imgs / "img01.png", "an image this command reads")
    # --report and --json naming one file
    out = work["dir"] / "r.out"
    code, _, err = _run(capsys, ["compare", har, imgs, "--json", out, "--report",
                                 work["dir"] / "." / "r.out"])
    assert code == 2 and "--report" in err and "--json" in err and "same file" in err
    assert not out.exists()


def test_quantize_default_output_is_the_input(capsys, work, faces):  # noqa: F811
    """quantize X_quantized.har writes X_quantized.har by default: its own input."""
    qhar = work["dir"] / "fer_quantized.har"
    shutil.copy(work["har"], qhar)
    refused(capsys, ["quantize", qhar, "--calib", faces["few"], "--batch-size", "5"], qhar,
            "the default -o/--output", "the HAR this command quantizes")
    img = sorted(faces["few"].glob("*.png"))[0]
    refused(capsys, ["quantize", qhar, "--calib", faces["few"], "--batch-size", "5", "-o", img],
            img, "-o/--output", "an image this command reads")


# --- an existing output of another kind ------------------------------------------------------------

def test_kind_checks(capsys, work):
    """--save / --json / --report / -o over a file of another kind: exit 2 naming the option, the
    path and what it holds; nothing is run or written."""
    har, imgs, d = work["har"], work["imgs"], work["dir"]
    other_har = d / "other.har"
    shutil.copy(har, other_har)
    keras = d / "model.h5"
    shutil.copy(ds.fer_model_path(), keras)
    tflite = d / "model.tflite"
    shutil.copy(ds.fer_quantized_tflite_path(), tflite)
    js, html = d / "old.json", d / "old.html"
    js.write_text('{"passed": true}\n')
    html.write_text("<!DOCTYPE html>\n<html><body>old</body></html>\n")
    notes = d / "notes.txt"
    notes.write_text("my notes\n")
    cases = [
        (["infer", har, imgs, "--save", other_har], other_har, "--save", "a HAR"),
        (["infer", har, imgs, "--save", work["photo"]], work["photo"], "--save", "an image (PNG)"),
        (["infer", har, imgs, "--save", keras], keras, "--save", "an HDF5 file"),
        (["infer", har, imgs, "--save", tflite], tflite, "--save", "a TFLite model"),
        (["infer", har, imgs, "--save", js], js, "--save", "JSON"),
        (["compare", har, imgs, "--json", other_har], other_har, "--json", "a HAR"),
        (["compare", har, imgs, "--json", html], html, "--json", "an HTML document"),
        (["compare", har, imgs, "--json", notes], notes, "--json", "a text file"),
        (["compare", har, imgs, "--report", js], js, "--report", "JSON"),
        (["compare", har, imgs, "--report", work["photo"]], work["photo"], "--report", "an image"),
        (["quantize", har, "--calib", imgs, "--batch-size", "2", "-o", keras], keras, "-o/--output",
         "an HDF5 file"),
        (["parse", ds.fer_model_path(), "-o", work["photo"]], work["photo"], "-o/--output",
         "an image (PNG)"),
    ]
    for argv, victim, flag, what in cases:
        refused(capsys, argv, victim, flag, victim, f"already holds {what}", "--force")


@pytest.mark.slow
def test_same_kind_empty_and_force(capsys, work):
    """An .npz over an .npz and over an empty file is fine; --force replaces a HAR by an .npz
    and a Keras model by a HAR."""
    har, imgs, d = work["har"], work["imgs"], work["dir"]
    old = d / "old.npz"
    np.savez(old, something=np.arange(3))
    empty = d / "empty.npz"
    empty.write_bytes(b"")
    victim = d / "other.har"
    shutil.copy(har, victim)
    for out, extra in ((old, []), (empty, []), (victim, ["--force"])):
        code, out_text, err = _run(capsys, ["infer", har, imgs, "--target", "native", "--save", out,
                                            *extra])
        assert code == 0, err
        with np.load(out) as z:
            assert sorted(z.files) == ["images", "output_layer1"] and z["output_layer1"].shape == (2, 7)
    keras = d / "model.h5"
    shutil.copy(ds.fer_model_path(), keras)
    code, _, err = _run(capsys, ["parse", ds.fer_model_path(), "--preset", "fer", "-o", keras, "--force"])
    assert code == 0, err
    assert outputs.file_kind(keras)[0] == "har"
    assert temporaries(d) == []


def test_file_kinds(tmp_path):
    """The sniffing, by content whatever the name."""
    import cv2

    cases = {}
    np.savez(tmp_path / "a", x=np.zeros(2))
    cases["a.npz"] = "npz"
    np.save(tmp_path / "a.json", np.zeros(2))
    cases["a.json.npy"] = "npy"
    (tmp_path / "page.npz").write_text("  <!doctype HTML><html></html>")
    cases["page.npz"] = "html"
    (tmp_path / "data.html").write_text('\ufeff[1, 2]')
    cases["data.html"] = "json"
    (tmp_path / "empty").write_bytes(b"")
    cases["empty"] = "empty"
    (tmp_path / "blob").write_bytes(bytes(range(256)) * 4)
    cases["blob"] = "unknown"
    for ext in (".png", ".jpg", ".bmp", ".tif", ".webp", ".pgm"):
        ok, buf = cv2.imencode(ext, np.zeros((8, 8) if ext == ".pgm" else (8, 8, 3), np.uint8))
        assert ok, ext
        (tmp_path / f"img{ext}.out").write_bytes(buf.tobytes())
        cases[f"img{ext}.out"] = "image"
    shutil.copy(ds.fer_model_path(), tmp_path / "m.bin")
    cases["m.bin"] = "hdf5"
    shutil.copy(ds.fer_quantized_tflite_path(), tmp_path / "m2.bin")
    cases["m2.bin"] = "tflite"
    for name, kind in cases.items():
        assert outputs.file_kind(tmp_path / name)[0] == kind, name
    assert outputs.file_kind(tmp_path / "missing") is None
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    assert outputs.file_kind(tmp_path / "dangling") is None
    assert outputs.file_kind("/dev/null")[0] == "special"
    # a truncated npz / HAR still tells its kind (the old non-atomic writes left such files)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:60])
    assert outputs.file_kind(tmp_path / "cut.npz")[0] == "npz"


def test_special_output_is_refused_even_with_force(capsys, work):
    fifo = work["dir"] / "pipe.npz"
    os.mkfifo(fifo)
    code, _, err = _run(capsys, ["infer", work["har"], work["imgs"], "--save", fifo, "--force"])
    assert code == 2 and "a FIFO" in err and str(fifo) in err


# --- interrupted writes ----------------------------------------------------------------------------

class _Interrupting:
    """A file object that lets `allowed` write calls through, then writes half of the next
    one and raises KeyboardInterrupt (Ctrl-C in the middle of a write)."""

    def __init__(self, f, allowed):
        self._f, self._left = f, allowed

    def write(self, data):
        if self._left <= 0:
            self._f.write(data[:max(1, len(data) // 2)])
            self._f.flush()
            raise KeyboardInterrupt
        self._left -= 1
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _interrupting_atomic_write(allowed):
    from emulator.files import atomic_write as real

    @contextlib.contextmanager
    def fake(path, mode="wb", encoding=None):
        with real(path, mode, encoding) as f:
            yield _Interrupting(f, allowed)

    return fake


@pytest.mark.slow
def test_ctrl_c_mid_write_keeps_the_old_file(capsys, monkeypatch, work):
    har, imgs, d = work["har"], work["imgs"], work["dir"]
    npz, js, html = d / "out.npz", d / "out.json", d / "out.html"
    np.savez(npz, old=np.arange(5))
    js.write_text('{"old": true}')
    html.write_text("<!DOCTYPE html><html>old</html>")
    hashes = {p: sha(p) for p in (npz, js, html)}
    listing = sorted(os.listdir(d))

    from host_app import report

    # np.savez writes the zip in several calls: Ctrl-C on the third
    monkeypatch.setattr(cli, "atomic_write", _interrupting_atomic_write(allowed=2))
    code, _, err = _run(capsys, ["infer", har, imgs, "--target", "native", "--save", npz])
    assert code == 130 and "interrupted" in err
    # the JSON and the report are one write each: Ctrl-C half-way through it
    monkeypatch.setattr(cli, "atomic_write", _interrupting_atomic_write(allowed=0))
    monkeypatch.setattr(report, "atomic_write", _interrupting_atomic_write(allowed=0))
    for out in ("--json", js), ("--report", html):
        code, _, err = _run(capsys, ["compare", har, imgs, *out])
        assert code == 130 and "interrupted" in err
    assert {p: sha(p) for p in hashes} == hashes  # the old files, whole
    assert sorted(os.listdir(d)) == listing and temporaries(d) == []


# --- symlinks at the output path ---------------------------------------------------------------------

@pytest.mark.slow
def test_symlink_output_is_replaced_not_followed(capsys, work, tmp_path_factory):
    har, imgs = work["har"], work["imgs"]
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    target_npz, target_json = elsewhere / "t.npz", elsewhere / "t.json"
    np.savez(target_npz, keep=np.arange(4))
    target_json.write_text('{"keep": 1}')
    hashes = {target_npz: sha(target_npz), target_json: sha(target_json)}
    link_npz, link_json = work["dir"] / "out.npz", work["dir"] / "out.json"
    link_npz.symlink_to(target_npz)
    link_json.symlink_to(target_json)
    code, _, err = _run(capsys, ["infer", har, imgs, "--target", "native", "--save", link_npz])
    assert code == 0, err
    code, _, err = _run(capsys, ["compare", har, imgs, "--json", link_json])
    assert code == 0, err
    assert not link_npz.is_symlink() and not link_json.is_symlink()
    with np.load(link_npz) as z:
        assert "output_layer1" in z.files
    assert json.loads(link_json.read_text())["images"] == 2
    assert {p: sha(p) for p in hashes} == hashes
    assert temporaries(work["dir"]) == [] and temporaries(elsewhere) == []


# --- SIGKILL at several points -----------------------------------------------------------------------

# Runs host-app's main with emulator.files.atomic_write slowed down (small chunks, a pause after
# each) so that a kill lands inside the write; a marker file appears when the first byte goes out.
_DRIVER = textwrap.dedent("""
    import contextlib, os, sys, time
    import emulator.files as files
    real, marker = files.atomic_write, os.environ["SAFE_WRITES_MARKER"]
    chunk, pause = int(os.environ["SAFE_WRITES_CHUNK"]), float(os.environ["SAFE_WRITES_PAUSE"])

    class Slow:
        def __init__(self, f):
            self._f = f
        def write(self, data):
            open(marker, "a").close()
            for i in range(0, len(data), chunk):
                self._f.write(data[i:i + chunk])
                self._f.flush()
                time.sleep(pause)
            return len(data)
        def __getattr__(self, name):
            return getattr(self._f, name)

    @contextlib.contextmanager
    def slow(path, mode="wb", encoding=None):
        with real(path, mode, encoding) as f:
            yield Slow(f)

    files.atomic_write = slow
    from host_app.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _kill_runs(tmp_path, argv, out, is_new, chunk, pause, kill_points):
    """Runs argv once per kill point: a number of seconds after the start, ("write", s): s
    seconds after the write began, or None: let it finish. After each, `out` is the old file or
    a whole new one, and its directory holds no temporary."""
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    old = sha(out)
    outcomes = []
    for point in kill_points:
        marker = tmp_path / "marker"
        marker.unlink(missing_ok=True)
        env = dict(os.environ, SAFE_WRITES_MARKER=str(marker), SAFE_WRITES_CHUNK=str(chunk),
                   SAFE_WRITES_PAUSE=str(pause), TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.Popen([sys.executable, str(driver), *map(str, argv)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if point is None:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err.decode()[-2000:]
            else:
                if isinstance(point, tuple):
                    deadline = time.monotonic() + 120
                    while not marker.exists():
                        assert proc.poll() is None, f"ended before writing: {proc.stderr.read()}"
                        assert time.monotonic() < deadline, "the write never started"
                        time.sleep(0.005)
                    time.sleep(point[1])
                else:
                    time.sleep(point)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        state = "old" if sha(out) == old else "new"
        if state == "new":
            assert is_new(out), f"{out} is neither the old file nor a whole new one ({point})"
            old = sha(out)  # the next run replaces this one
        assert temporaries(out.parent) == [], (point, temporaries(out.parent))
        outcomes.append((point, proc.returncode, state))
    return outcomes


def _valid_npz(path) -> bool:
    with np.load(path) as z:
        return z["output_layer1"].shape == (2, 7) and list(z["images"]) == ["img00.png", "img01.png"]


def _valid_html(path) -> bool:
    text = path.read_text(encoding="utf-8")
    return text.lstrip().lower().startswith("<!doctype html") and text.rstrip().endswith("</html>") \
        and "byte-identical" in text


@pytest.mark.slow
def test_sigkill_during_infer_save(work):
    out = work["dir"] / "out.npz"
    np.savez(out, old=np.arange(5))
    outcomes = _kill_runs(work["dir"], ["infer", work["har"], work["imgs"], "--target", "native",
                                        "--save", out], out, _valid_npz, chunk=64, pause=0.05,
                          kill_points=[1.0, ("write", 0.0), None, ("write", 0.25)])
    # the last run is killed while replacing the third run's .npz: that one stays, whole
    assert [s for _, _, s in outcomes] == ["old", "old", "new", "old"], outcomes
    assert [rc for _, rc, _ in outcomes] == [-signal.SIGKILL] * 2 + [0, -signal.SIGKILL], outcomes


@pytest.mark.slow
def test_sigkill_during_compare_report(work):
    out = work["dir"] / "report.html"
    out.write_text("<!DOCTYPE html><html>old report</html>")
    outcomes = _kill_runs(work["dir"], ["compare", work["har"], work["imgs"], "--report", out], out,
                          _valid_html, chunk=4096, pause=0.02,
                          kill_points=[("write", 0.2)])
    # (a whole new report after an uninterrupted run: test_sigkill_during_infer_save does it for
    # the .npz through the same driver, test_host_app for the report)
    assert [(rc, s) for _, rc, s in outcomes] == [(-signal.SIGKILL, "old")], outcomes
