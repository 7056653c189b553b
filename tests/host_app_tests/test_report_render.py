"""The compare report in a real browser (Debian's headless Chromium, tests/browser.py): on FER
and on BlazeFace (whose streams table, with its long C transform descriptions, used to run past
the page; with its detections section), at 1280 px and at a narrow 800 px, the screenshot is
not blank, the page does not overflow sideways, every image loads, and at 1280 px no table needs
a sideways scroll of its own. Then the helper itself, on pages made to fail each check.

Skipped, naming the package, where Chromium is not installed.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest

import data_sources as ds
from browser import SKIP_REASON, assert_not_blank, chromium_path, pixel_stats, render

pytestmark = pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)

WIDTHS = (1280, 800)
LONG_COMMAND = ("host-app compare /a/rather/long/path/to/the/models/of/this/project/"
                "network_quantized_with_a_long_name.har /data/images/held_out_faces_of_the_"
                "validation_set --report /tmp/reports/report_of_the_device_comparison.html")


def _report(runner, x: np.ndarray, crops: np.ndarray, path, postprocess=None):
    """A compare report of `runner` (quantized) on inputs `x` through the emulated chip, each
    image given a long name (names are the widest cells of the per-image table)."""
    from emulator import EmulatedDevice
    from host_app.compare import compare
    from host_app.images import InputBatch, thumbnail
    from host_app.report import write_report

    name = runner.hn.name
    batch = InputBatch(x, [f"{name}_held_out_photo_crop_with_a_long_name_{i:03d}.png"
                           for i in range(len(x))],
                       [f"/data/{i}.png" for i in range(len(x))], [thumbnail(c) for c in crops])
    device = EmulatedDevice(runner)
    try:
        c = compare(runner, device, batch, har=f"/a/rather/long/path/{name}_quantized.har",
                    device_name="the in-process emulated chip (emulator.EmulatedDevice)",
                    preprocess="color:rgb,scale:1/127.5,offset:-1", batch_size=8,
                    postprocess=postprocess)
    finally:
        device.close()
    return write_report(c, path, LONG_COMMAND)


@pytest.fixture(scope="module")
def fer_report(fer_keras, tmp_path_factory):
    from emulator import parse_keras, run_quantization_from_np
    from host_app.presets import FER_EMOTIONS

    runner = parse_keras(fer_keras, net_name="fer")
    runner.metadata["labels"] = {runner.hn.output_layers[0].name: list(FER_EMOTIONS)}
    run_quantization_from_np(runner, ds.fer_inputs(16, seed=31), calib_num_batch=1, batch_size=16)
    return _report(runner, ds.fer_inputs(10, seed=32), ds.random_crops(10, (64, 64), seed=32),
                   tmp_path_factory.mktemp("fer_report") / "report.html")


@pytest.fixture(scope="module")
def blazeface_report(blazeface_path, tmp_path_factory):
    from emulator import parse_tflite, run_quantization_from_np
    from host_app.images import parse_preprocess
    from host_app.postprocess import postprocess_for

    runner = parse_tflite(str(blazeface_path), net_name="blazeface")
    run_quantization_from_np(runner, ds.blazeface_inputs(16, seed=33), calib_num_batch=1,
                             batch_size=16)
    post = postprocess_for(runner, "blazeface", preprocess=parse_preprocess("blazeface"))
    return _report(runner, ds.blazeface_inputs(8, seed=34),
                   ds.random_crops(8, (128, 128), seed=34),
                   tmp_path_factory.mktemp("blazeface_report") / "report.html", post)


@pytest.mark.real_model
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("net", ["fer", "blazeface"])
def test_report_fits_the_page(net, width, request, tmp_path):
    report = request.getfixturevalue(f"{net}_report")
    shot = tmp_path / f"{net}_{width}.png"
    r = render(report, width=width, screenshot=shot)
    assert r.title.startswith(f"{net}: device vs emulator")
    assert_not_blank(shot)
    assert r.page_width <= r.viewport_width == width, (
        f"the {net} report overflows the page at {width} px ({r.page_width} px wide): "
        f"{r.overflowing_elements}")
    assert r.overflowing_elements == []
    assert r.images_broken == [] and r.images_total >= 3 + 8  # plots + a thumbnail per image
    if width >= 1280:
        assert r.scrolling_boxes == [], f"tables that need a sideways scroll: {r.scrolling_boxes}"
    assert r.page_height > 2 * 1000  # the whole page was laid out, not an error page


# --- the helper on pages made to fail ------------------------------------------------------------

def _page(body: str, head: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>{head}</head>"
            f"<body style='margin: 0; font: 16px sans-serif'>{body}</body></html>")


PNG_1PX = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2217bc4"
    "0000000049454e44ae426082")).decode()


def test_the_helper_sees_overflow_broken_images_and_blank_pages(tmp_path):
    wide = tmp_path / "wide.html"
    wide.write_text(_page(
        "<h1>A page</h1><div id='wide' style='width: 1500px; background: #38c'>wide</div>"
        "<div style='overflow-x: auto; width: 300px'><div style='width: 900px'>boxed</div></div>"
        f"<img src='data:image/png;base64,{PNG_1PX}'><img src='missing.png'>"
        "<details><summary>more</summary><pre style='width: 1400px'>folded</pre></details>"))
    r = render(wide, width=800, screenshot=tmp_path / "wide.png")
    assert r.page_width >= 1500 and r.viewport_width == 800 and r.overflows
    assert any(e.startswith("div#wide:") for e in r.overflowing_elements)
    assert any(e.startswith("pre:") for e in r.overflowing_elements)  # <details> are opened
    assert len(r.scrolling_boxes) == 1 and "content 900 px in 300 px" in r.scrolling_boxes[0]
    assert r.images_total == 2 and r.images_broken == ["missing.png"]
    # relative images load from the page's own directory (the helper renders a copy elsewhere)
    import cv2

    cv2.imwrite(str(tmp_path / "pic.png"), np.full((20, 30, 3), 90, np.uint8))
    fits = tmp_path / "fits.html"
    fits.write_text(_page("<p>Some text that fits</p><img src='pic.png'>"))
    r = render(fits, width=640, height=480)
    assert not r.overflows and r.overflowing_elements == [] and r.images_broken == []
    assert r.images_total == 1
    from PIL import Image

    assert Image.open(r.screenshot_png_path).size == (640, 480)
    assert_not_blank(r.screenshot_png_path)
    r.screenshot_png_path.unlink()  # no `screenshot` given: a temporary file, the caller's
    blank = tmp_path / "blank.html"
    blank.write_text(_page(""))
    r = render(blank, width=400, height=300, screenshot=tmp_path / "blank.png")
    std, fraction = pixel_stats(r.screenshot_png_path)
    assert std == 0 and fraction == 0
    with pytest.raises(AssertionError, match="looks blank"):
        assert_not_blank(r.screenshot_png_path)
