"""`host-app analyze` and `quantize --model-script`: the user's loop on the command line.

quantize with a script that ruins one layer -> analyze ranks it first, writes the report, JSON and
the tensor dump, and prints the lines to append -> quantize again with them -> analyze flags
nothing. Usage errors come before TensorFlow is imported.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import data_sources as ds
from emulator.analysis.tensors import load_tensors
from host_app import cli

BAD = "# conv6's output range forced far too narrow\nquantization_param(conv6, force_range_out=[0, 0.3])\n"


def _run(capsys, argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real faces as PNG files (the demo's writer): calib/ and held-out faces/."""
    from host_app.demo import write_faces

    root = tmp_path_factory.mktemp("faces")
    calib, held, notes = write_faces(root)
    assert not notes, notes
    return {"calib": calib, "held": held}


def test_the_analysis_loop(fer_har, photos, tmp_path, capsys):
    script = tmp_path / "bad.alls"
    script.write_text(BAD)
    bad = tmp_path / "bad_q.har"
    code, out, err = _run(capsys, ["quantize", fer_har, "--calib", photos["calib"],
                                   "--calib-num-batch", "4", "--batch-size", "8",
                                   "--model-script", script, "-o", bad])
    assert code == 0, err
    assert "model script" in out and "bad.alls" in out and "force_range_out" in out

    report, js, dump = tmp_path / "noise.html", tmp_path / "noise.json", tmp_path / "t.npz"
    code, out, err = _run(capsys, ["analyze", bad, photos["held"], "--report", report,
                                   "--json", js, "--dump", dump])
    assert code == 0, err
    table = out[out.index("layers, worst first"):]
    assert table.split("\n")[3].split()[0] == "conv6", table  # the first row, under the header
    assert "Lerr check: with conv6 float" in out
    assert "quantization_param(conv6, force_range_out=[" in out
    data = json.loads(js.read_text())
    assert data["flagged_layers"] == ["conv6"] and data["ranked_layers"][0] == "conv6"
    assert load_tensors(dump).layers[0] == "input_layer1"
    assert report.read_text().startswith("<!DOCTYPE html>")

    # the user appends the suggested lines and quantizes again
    fixed = tmp_path / "fixed.alls"
    fixed.write_text(BAD + data["suggested_script"])
    good = tmp_path / "fixed_q.har"
    code, _, err = _run(capsys, ["quantize", fer_har, "--calib", photos["calib"],
                                 "--calib-num-batch", "4", "--batch-size", "8",
                                 "--model-script", fixed, "-o", good])
    assert code == 0, err
    code, out, err = _run(capsys, ["analyze", good, photos["held"]])
    assert code == 0, err
    assert "no layer is under 10 dB" in out


def test_usage_errors_before_tensorflow(tmp_path, fer_har):
    """Each error names what is wrong and returns 2, and TensorFlow is never imported."""
    import cv2

    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "face.png"), ds.photos()[0][:64, :64].copy())
    (tmp_path / "broken.alls").write_text("quantization_param(conv6, precision_mode=a8_w9)\n")
    runs = [
        (["analyze", "missing.har", "imgs"], "HAR 'missing.har' does not exist"),
        (["analyze", str(fer_har), "imgs", "--threshold", "nan"], "--threshold nan"),
        (["analyze", str(fer_har), "imgs", "--dump", str(fer_har)], "--dump"),
        (["quantize", str(fer_har), "--calib", "imgs", "--model-script", "missing.alls"],
         "--model-script 'missing.alls'"),
        (["quantize", str(fer_har), "--calib", "imgs", "--model-script", "broken.alls"],
         "broken.alls:1:"),
    ]
    code = (
        "import json, sys\n"
        "from host_app.cli import main\n"
        "c = main(sys.argv[1:])\n"
        "print(json.dumps([c, 'tensorflow' in sys.modules]))\n")
    for argv, words in runs:
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == [2, False], \
            (argv, proc.stdout, proc.stderr)
        assert words in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr, (argv, proc.stderr)
