"""host-app is fast and quiet (issue "host-app for real deployments").

- Every usage error returns within a second, exit 2, with a message that names the file and the
  next step, and without importing TensorFlow: the commands run in a fresh interpreter that
  reports, after each command, its time and whether `tensorflow` was imported.
- A missing optional package names the extra to install (exit 2).
- Output piped to a file has no progress bar and no TensorFlow log line; on a terminal (a pty)
  the long steps show a bar on stderr. These load TensorFlow: marked slow.
"""
from __future__ import annotations

import json
import os
import pty
import re
import struct
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import data_sources as ds
from host_app import cli

REPO = Path(__file__).resolve().parents[2]
ALL_OPS = REPO / "tests" / "data" / "har_v1" / "all_ops.har"  # committed, quantized, 13x11x3 in

# runs each argv list through host_app.cli.main in this one interpreter, with the modules named
# in "block" made unimportable, and prints per command: exit code, seconds (from before the
# import of host_app.cli for the first), whether TensorFlow / Keras got imported, out and err
_RUNNER = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
spec = json.loads(sys.argv[1])
for name in spec["block"]:
    sys.modules[name] = None
from host_app.cli import main
results = []
for argv in spec["runs"]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"argv": argv, "code": code, "seconds": time.perf_counter() - t0,
                    "tensorflow": sys.modules.get("tensorflow") is not None,
                    "keras": sys.modules.get("keras") is not None,
                    "out": out.getvalue(), "err": err.getvalue()})
    t0 = time.perf_counter()
print(json.dumps(results))
"""


def run_commands(runs: list[list], cwd: Path, block=()) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-c", _RUNNER,
                           json.dumps({"runs": [[str(a) for a in r] for r in runs],
                                       "block": list(block)})],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def files(tmp_path):
    """A directory with one real image, an empty one, a text file named .tflite, a .keras zip,
    a calibration .npy for the all-ops network, and the real FER model files (HDF5, TFLite)."""
    import cv2

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "face.png"), (ds.photos()[0][:64, :64]).copy())
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.tflite").write_text("these are my notes, not a model\n")
    with zipfile.ZipFile(tmp_path / "sub.keras", "w") as z:
        z.writestr("metadata.json", "{}")
    np.save(tmp_path / "calib.npy", np.zeros((5, 13, 11, 3), np.float32))
    (tmp_path / "keys").mkdir()
    return {"dir": tmp_path, "imgs": imgs, "h5": ds.fer_model_path(),
            "tflite": ds.fer_quantized_tflite_path()}


# (argv, words the message holds); f: the files fixture
USAGE_ERRORS = [
    (lambda f: ["infer", "missing.har", f["imgs"]],
     ["HAR 'missing.har' does not exist", "host-app parse MODEL -o missing.har"]),
    (lambda f: ["compare", "missing.har", f["imgs"]],  # the step that makes a quantized HAR
     ["HAR 'missing.har' does not exist", "compare needs a quantized HAR",
      "host-app quantize net.har --calib IMAGES_DIR -o missing.har"]),
    (lambda f: ["parse", "missing.tflite"], ["model 'missing.tflite' does not exist"]),
    (lambda f: ["infer", ALL_OPS, f["imgs"], "--preprocess", "gain:2"],
     ["--preprocess 'gain:2': unknown key 'gain'"]),
    (lambda f: ["compare", ALL_OPS, f["imgs"], "--preprocess", "scale:abc"],
     ["'abc' is not a number"]),
    (lambda f: ["parse", "notes.tflite"],
     ["'notes.tflite' is named .tflite but is a text file, not a TFLite model"]),
    (lambda f: ["quantize", f["h5"], "--calib", f["imgs"]],
     ["emotion_model.hdf5' is an HDF5 file", "not a HAR", "run `host-app parse",
      "-o emotion_model.har` first"]),
    (lambda f: ["infer", f["tflite"], f["imgs"]],
     ["emotion_model_quantized.tflite' is a TFLite model, not a HAR", "run `host-app parse"]),
    (lambda f: ["compare", f["tflite"], f["imgs"]],
     ["is a TFLite model, not a HAR", "then `host-app quantize emotion_model_quantized.har"]),
    (lambda f: ["parse", ALL_OPS], ["is a HAR (a tar with hn.json) already",
                                    "host-app quantize"]),
    (lambda f: ["compare", ALL_OPS, f["imgs"], "--keys", f["dir"] / "keys"],
     ["--keys DIR goes with --device tcp://HOST:PORT"]),
    (lambda f: ["infer", ALL_OPS, f["imgs"], "--target", "numeric", "--device", "driver:emulator"],
     ["needs --target device, not --target numeric"]),
    (lambda f: ["infer", ALL_OPS, f["dir"] / "empty"], ["directory", "holds no images"]),
    (lambda f: ["quantize", ALL_OPS, "--calib", f["dir"] / "calib.npy", "--calib-num-batch", "4",
                "--batch-size", "8", "-o", f["dir"] / "q.har"],
     ["--calib: OutOfRange", "32", "holds only 5"]),
    (lambda f: ["parse", "sub.keras", "--custom-objects", "no_such_module_here"],
     ["--custom-objects 'no_such_module_here': no module named"]),
    (lambda f: ["serve", "--model", "missing.har", "--insecure"],
     ["--model 'missing.har' does not exist"]),
    (lambda f: ["frobnicate"], ["invalid choice: 'frobnicate'"]),
    (lambda f: [], ["give a command"]),
]


def test_usage_errors_are_fast_and_do_not_import_tensorflow(files):
    runs = [make(files) for make, _ in USAGE_ERRORS]
    results = run_commands(runs, files["dir"])
    for (_, words), r in zip(USAGE_ERRORS, results):
        where = (r["argv"], r["err"])
        assert r["code"] == 2, where
        for w in words:
            assert w in r["err"], (w, where)
        assert "Traceback" not in r["err"], where
        # what makes an error slow is importing TensorFlow (seconds); its absence is the check,
        # the time itself is a benchmark's business, not a pass/fail figure on a shared machine
        assert not r["tensorflow"] and not r["keras"], where
    assert not (files["dir"] / "q.har").exists()


def test_the_console_script_reports_usage_errors_at_once(files):
    """The installed `host-app` (interpreter start included): well under TensorFlow's import."""
    exe = Path(sys.executable).with_name("host-app")
    if not exe.is_file():
        pytest.skip("no host-app console script next to this Python")
    proc = subprocess.run([str(exe), "parse", "notes.tflite"], cwd=files["dir"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a TFLite model" in proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    # the interpreter's own import log: the console script never reaches TensorFlow
    traced = subprocess.run([str(exe), "parse", "notes.tflite"], cwd=files["dir"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines() if "|" in line}
    assert traced.returncode == 2 and imported and not {"tensorflow", "keras"} & imported


def test_a_missing_optional_package_names_the_extra(files):
    results = run_commands([["keys", files["dir"] / "k"], ["parse", "notes.tflite"]],
                           files["dir"], block=["rich"])
    for r in results:
        assert r["code"] == 2, r
        assert "needs rich" in r["err"] and "pip install 'hailo-toolkit[app]'" in r["err"], r
        assert "Traceback" not in r["err"] and not r["tensorflow"], r
    assert not (files["dir"] / "k").exists()
    (r,) = run_commands([["infer", ALL_OPS, files["imgs"]]], files["dir"], block=["tensorflow"])
    assert r["code"] == 2 and "needs tensorflow-cpu" in r["err"] and "[app]" in r["err"], r


def test_a_module_missing_inside_a_command_is_named(monkeypatch, capsys, tmp_path):
    def keys(args):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(cli, "cmd_keys", keys)
    assert cli.main(["keys", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and "pip install 'hailo-toolkit[app]'" in err

    def bug(args):
        raise ModuleNotFoundError("No module named 'not_a_dependency'", name="not_a_dependency")

    monkeypatch.setattr(cli, "cmd_keys", bug)
    with pytest.raises(ModuleNotFoundError):  # not an optional package: a bug, traceback kept
        cli.main(["keys", str(tmp_path)])


# --- TensorFlow's log lines ----------------------------------------------------------------------

TF_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796192078.169460   20430 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results",
    "I0000 00:00:1796192115.013624   20789 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with "
    "the appropriate compiler flags.",
    "2026-01-30 22:44:42.456316: I tensorflow/core/util/port.cc:153] oneDNN custom operations",
]
KEPT = [
    "E0000 00:00:1796192078.169460   20430 some.cc:1] a real error",
    "2026-01-30 22:44:42.456316: E tensorflow/core/foo.cc:1] failed",
    "Traceback (most recent call last):",
    "host-app: error: something",
]


def test_tensorflow_noise_is_recognised_and_errors_are_kept():
    for line in TF_NOISE:
        assert cli.is_tensorflow_noise(line), line
    for line in KEPT:
        assert not cli.is_tensorflow_noise(line), line


def test_filtered_stderr_drops_the_noise_written_to_descriptor_2(capfd):
    with cli.filtered_stderr():
        os.write(2, ("\n".join(TF_NOISE + KEPT) + "\n").encode())
    err = capfd.readouterr().err
    assert err.splitlines() == KEPT


# --- piped and on a terminal (TensorFlow loads: slow) --------------------------------------------

NOISE_MARKS = ("absl", "oneDNN", "cpu_feature_guard", "InitializeLog", "\r", "█", "img/s", "it/s",
               "calibration statistics")


def _quantize_and_infer_argv(tmp_path) -> list[list[str]]:
    np.save(tmp_path / "x.npy",
            np.random.default_rng(0).uniform(-1, 1, (8, 13, 11, 3)).astype(np.float32))
    q = tmp_path / "q.har"
    return [["quantize", str(ALL_OPS), "--calib", str(tmp_path / "x.npy"), "--calib-num-batch",
             "1", "--batch-size", "8", "-o", str(q)],
            ["infer", str(q), str(tmp_path / "x.npy"), "--target", "numeric", "--batch-size", "4"]]


@pytest.mark.slow
def test_piped_output_has_no_progress_bars_nor_tensorflow_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TF_CPP_MIN_LOG_LEVEL")}
    outputs = []
    for argv in _quantize_and_infer_argv(tmp_path):
        with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
            code = subprocess.run([sys.executable, "-m", "host_app", *argv], cwd=tmp_path,
                                  env=env, stdout=out, stderr=err, timeout=600).returncode
        stdout, stderr = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
        assert code == 0, stderr
        assert stderr == "", stderr
        for mark in NOISE_MARKS:
            assert mark not in stdout, (mark, stdout)
        table_lines = [ln for ln in stdout.splitlines() if "  " in ln]  # notes are not wrapped
        assert table_lines and max(len(ln) for ln in table_lines) <= 120
        outputs.append(stdout)
    assert "calibrated ranges of 'allops' (8 images)" in outputs[0]
    assert "output_layer1: top-3" in outputs[1] and "x.npy[7]" in outputs[1]


@pytest.mark.slow
def test_verbose_shows_tensorflow_lines(tmp_path):
    argv = _quantize_and_infer_argv(tmp_path)[0] + ["--verbose"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "host_app", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "oneDNN" in proc.stderr or "absl" in proc.stderr, proc.stderr  # TensorFlow's own words
    assert "emulator.quantization: calibration" in proc.stderr  # the emulator's step log


def _run_on_a_terminal(argv, cwd, columns=100):
    """argv with stderr on a pty of `columns` columns (stdout to a file): (exit code, what the
    terminal got, stdout)."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TF_CPP_MIN_LOG_LEVEL")}
    with open(cwd / "tty_out.txt", "w") as out:
        try:
            code = subprocess.run([sys.executable, "-m", "host_app", *argv], cwd=cwd, env=env,
                                  stdout=out, stderr=slave, timeout=600).returncode
        finally:
            os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace"), (cwd / "tty_out.txt").read_text()


@pytest.mark.slow
def test_a_terminal_gets_progress_bars_and_no_tensorflow_lines(tmp_path):
    quantize, infer = _quantize_and_infer_argv(tmp_path)
    code, tty, out = _run_on_a_terminal(quantize, tmp_path)
    assert code == 0, tty
    assert "quantize: importing TensorFlow" in tty and "calibration statistics" in tty, tty
    code, tty, out = _run_on_a_terminal(infer, tmp_path)
    assert code == 0, tty
    assert re.search(r"infer: numeric: +\d+%\|.*\| \d/8 \[", tty) and "\r" in tty, tty
    for mark in ("absl", "oneDNN", "cpu_feature_guard"):
        assert mark not in tty, (mark, tty)
    assert "█" not in out and "\r" not in out  # stdout is a file: plain tables only
    assert "output_layer1: top-3" in out


# --- bench ---------------------------------------------------------------------------------------

def test_bench_prints_the_ratios_of_a_real_benchmark(capsys):
    """The stream-layer benchmark (a few seconds, no TensorFlow), quick: its ratio table, not
    its per-case C step lines."""
    assert cli.main(["bench", "--quick", "--only", "stream"]) == 0
    out = capsys.readouterr().out
    assert "1 benchmark(s), quick runs" in out and "about" in out
    assert "== stream:" in out and "$ python bench/bench_stream.py --repeats 5" in out
    assert re.search(r"C/memcpy +numpy/memcpy", out)
    assert re.search(r"640x640x3 f32 NHWC -> u8 NHCW +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+", out)
    assert "C steps:" not in out and re.search(r"\(stream: \d+ s\)", out)


def test_bench_reports_a_failing_benchmark(monkeypatch, capsys):
    script = ("import sys; print('table line'); print('ratio 1.5x'); "
              "print('Traceback: it broke', file=sys.stderr); sys.exit(3)")
    monkeypatch.setattr(cli, "BENCHES", (
        cli.Bench("ok", "prints a ratio", ("{python}", "-c", "print('a/b 0.50x'); print('noise')"),
                  (), (1, 1), lambda line: "x" in line),
        cli.Bench("broken", "fails", ("{python}", "-c", script), (), (1, 1),
                  lambda line: "ratio" in line)))
    assert cli.main(["bench"]) == 1
    captured = capsys.readouterr()
    assert "a/b 0.50x" in captured.out and "\nnoise\n" not in captured.out
    assert "ratio 1.5x" in captured.out and "| Traceback: it broke" in captured.out
    assert "broken: FAILED (exit 3)" in captured.out
    assert "benchmark(s) broken failed" in captured.err
    assert cli.main(["bench", "--only", "ok", "--full-output"]) == 0
    assert "\nnoise\n" in capsys.readouterr().out


# --- a subclassed Keras model: --custom-objects --------------------------------------------------

@pytest.mark.slow
def test_parse_a_subclassed_keras_model_with_custom_objects(capsys, tmp_path, monkeypatch):
    """MTCNN's ONet is a subclassed keras.Model: saved as .keras, Keras cannot load it without
    its class; --custom-objects names the module that defines it."""
    from host_app.outputs import file_kind

    model = tmp_path / "onet.keras"
    ds.mtcnn_net("onet").save(model)
    # a .keras zip stores model.weights.h5 uncompressed: not to be taken for an HDF5 file
    assert file_kind(model)[0] == "keras"
    monkeypatch.chdir(tmp_path)
    assert cli.main(["parse", str(model), "-o", "a.har"]) == 1
    err = capsys.readouterr().err
    assert "Could not locate class 'ONet'" in err and "--custom-objects MODULE" in err
    assert cli.main(["parse", str(model), "-o", "a.har", "--custom-objects",
                     "mtcnn.network.onet"]) == 0
    out = capsys.readouterr().out
    assert "wrote a.har" in out and re.search(r"outputs: output_layer1 4, output_layer2 10", out)
    # a .py file works too, and its `custom_objects` dict is used
    (tmp_path / "my_objects.py").write_text(
        "from mtcnn.network.onet import ONet\ncustom_objects = {'ONet': ONet}\n")
    assert cli.main(["parse", str(model), "-o", "b.har", "--custom-objects",
                     str(tmp_path / "my_objects.py")]) == 0
    (tmp_path / "broken_objects.py").write_text("raise RuntimeError('not today')\n")
    assert cli.main(["parse", str(model), "-o", "c.har", "--custom-objects",
                     "broken_objects.py"]) == 1
    err = capsys.readouterr().err
    assert "--custom-objects 'broken_objects.py': importing it failed: RuntimeError: not today" in err
