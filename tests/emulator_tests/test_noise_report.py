"""The noise analysis's plots and HTML report (emulator/analysis: plots, report_html).

- Every plot is a valid, non-blank PNG, from plain arrays and from a tensor dump loaded back
  from disk (the same pixels: offline work reproduces the report's plots); bounded inputs
  (channels shown, scatter points), infinite SNRs, depthwise kernels; no pyplot state.
- The report of a synthetic analysis (fast): flagged layers first, nothing flagged said plainly,
  every user string escaped (a network and a layer named `<script>...`), a plot that fails
  becomes a note, only embedded images.
- The report of a real analysis: FER quantized with a bad conv6 (a too narrow forced range)
  and equalization, 12 images: conv6 first with its numbers, findings, script and plots, the
  Lerr check, the suggested script, the SNR bars, the weight ranges; in headless Chromium at
  1280 and 800 px the screenshot is not blank, every image loads and nothing overflows.
"""
from __future__ import annotations

import base64
import html as html_lib
import io
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from markupsafe import escape

import data_sources as ds
from browser import SKIP_REASON, assert_not_blank, chromium_path, render
from emulator.analysis import plots, report_html
from emulator.analysis.diagnostics import diagnose, suggest
from emulator.analysis.noise import ErrorStats, LayerNoise, LerrCheck, NoiseReport
from emulator.analysis.tensors import TensorDump, load_tensors
from emulator.numerics.params import TensorQ

BAD_RANGE = "quantization_param(conv6, force_range_out=[0, 0.3])\n"
EQUALIZE = "pre_quantization_optimization(equalization, policy=enabled)\n"
EVIL_NET = '<script>alert("net")</script>'
EVIL_LAYER = "<script>alert(1)</script>&conv$x^2$"
needs_chromium = pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)


def _decode(png: bytes) -> np.ndarray:
    """The pixels of a PNG (float RGB(A) in [0, 1]); fails on anything else."""
    import matplotlib.image as mpimg

    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    return mpimg.imread(io.BytesIO(png), format="png")


def assert_png(png: bytes, min_size: tuple[int, int] = (150, 150)) -> np.ndarray:
    img = _decode(png)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_size[0] and img.shape[1] >= min_size[1], img.shape
    rgb = img[..., :3]
    assert rgb.std() > 0.02, f"blank plot: pixel std {rgb.std():.4f}"
    # something besides the white background and black ink: the plot's colours
    coloured = np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max(axis=2) > 0.15
    assert coloured.mean() > 0.0003, "no coloured pixels: nothing was drawn"
    return img


def _data_uris(html: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', html)


def assert_self_contained(html: str) -> list[bytes]:
    """Only embedded PNGs, no external resource or script; the decoded images."""
    srcs = _data_uris(html)
    assert html.count("<img ") == len(srcs)
    pngs = []
    for s in srcs:
        assert s.startswith("data:image/png;base64,"), s[:60]
        pngs.append(base64.b64decode(s.split(",", 1)[1], validate=True))
    low = html.lower()
    for bad in ("http://", "https://", 'src="//', "<link", "<script", "@import", "url("):
        assert bad not in low, f"external resource or script: {bad}"
    return pngs


# ------------------------------------------------------------------ a synthetic analysis -----

def _stats(ref, test, scale=None):
    return ErrorStats.of(ref, test, scale)


def _synthetic(threshold_db: float = 10.0, network: str = "synthetic_net") -> NoiseReport:
    """A NoiseReport built by hand from random tensors: three layers, the first with 20
    channels saturated by a narrow range and a big (a) error, one output."""
    rng = np.random.default_rng(0)
    names = [EVIL_LAYER, "conv_b", "dw_c"]
    out = "out&1"
    arrays, layers, meta = {}, [], {}
    for i, name in enumerate(names):
        c = 20 if i == 0 else 8
        native = np.abs(rng.normal(0, 1 + np.arange(c) / 4, size=(4, 6, 6, c))).astype(np.float32)
        tq = TensorQ(scale=(0.5 if i == 0 else 4.0) / 255, zp=0, bits=8)
        lo, hi = tq.limvals
        quant = ((np.clip(np.round(native / tq.scale), 0, 255)) * tq.scale).astype(np.float32)
        quant = np.clip(quant, lo, hi)
        local = quant + rng.normal(0, tq.scale / 4, size=quant.shape).astype(np.float32)
        o_ref = rng.normal(size=(4, 5)).astype(np.float32)
        o_q = o_ref + rng.normal(0, 1.5 if i == 0 else 0.02, size=o_ref.shape).astype(np.float32)
        arrays.update({f"native/{name}": native, f"quantized/{name}": quant,
                       f"local/{name}": local, f"local_ref/{name}": native,
                       f"alone/{name}/{out}": o_q, f"alone_ref/{name}/{out}": o_ref})
        cfg = SimpleNamespace(precision_mode="a8_w8", bias_mode="single_scale_decomposition",
                              w_bits=8, force_range_out=[0.0, 0.5] if i == 0 else None,
                              activation_clipping=None)
        diag = diagnose(native, quant, tq, cfg, SimpleNamespace(params={"activation": "relu"}),
                        has_weights=True)
        ln = LayerNoise(layer=name, type="conv" if i < 2 else "dw",
                        alone={out: _stats(o_ref, o_q)},
                        cumulative=_stats(native, quant, tq.scale),
                        local=_stats(native, local, tq.scale), diagnostics=diag)
        ln.flagged = ln.alone_snr_db < threshold_db
        if ln.flagged:
            ln.suggestion = suggest(name, diag, False)
        layers.append(ln)
        meta[name] = {"type": ln.type, "analysed": True, "placement": "chip",
                      "scale": tq.scale, "zero_point": tq.zp, "bits": tq.bits}
    y = rng.normal(size=(4, 5)).astype(np.float32)
    arrays.update({f"native/{out}": y, f"quantized/{out}": y + 0.5, f"lerr/{out}": y + 0.01})
    meta[out] = {"type": "output_layer", "analysed": False, "placement": "chip"}
    flagged = [l.layer for l in layers if l.flagged]
    lerr = LerrCheck(flagged, {out: _stats(y, y + 0.5)}, {out: _stats(y, y + 0.01)}) \
        if flagged else None
    dump = TensorDump(arrays, {"network": network, "reference": "fp_optimized",
                               "outputs": [out], "inputs": [], "layers": meta})
    return NoiseReport(network=network, images=4, threshold_db=threshold_db,
                       reference="fp_optimized", outputs={out: _stats(y, y + 0.5)},
                       layers=layers, lerr=lerr,
                       model_script=f"quantization_param({EVIL_LAYER}, force_range_out=[0, 0.5])\n",
                       seconds={"float and local (c)": 0.5, "total": 2.0}, tensors=dump)


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


# ------------------------------------------------------------------ plots --------------------

def test_channel_histograms_show_at_most_16_channels_and_say_which(synthetic):
    x = synthetic.tensors.native(EVIL_LAYER)  # 20 channels, ranges growing with the channel
    chans, note = plots.pick_channels(x)
    assert len(chans) == 16 and chans == sorted(chans)
    ranges = x.reshape(-1, 20).max(0) - x.reshape(-1, 20).min(0)
    assert int(np.argmax(ranges)) in chans and int(np.argmin(ranges)) in chans
    assert "16 of 20 channels" in note
    assert plots.pick_channels(x[..., :5])[0] == [0, 1, 2, 3, 4]
    img = assert_png(plots.channel_histograms(x, synthetic.tensors.quantized(EVIL_LAYER),
                                              (0.0, 0.5), layer=EVIL_LAYER))
    assert img.shape[1] > 600
    assert_png(plots.channel_histograms(x[..., :1]))  # one channel, no grid, no quantized


def test_dead_channels_are_not_shown_but_counted():
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 24)).astype(np.float32)
    x[..., :6] = 0.0
    chans, note = plots.pick_channels(x)
    assert not set(chans) & set(range(6)) and "6 dead channels not shown" in note


def test_scatter_is_bounded_and_coloured_by_channel(synthetic):
    t = synthetic.tensors
    assert_png(plots.scatter(t.native(EVIL_LAYER), t.quantized(EVIL_LAYER), (0, 0.5),
                             layer=EVIL_LAYER, max_points=500))
    big = np.random.default_rng(2).normal(size=(8, 64, 64, 16)).astype(np.float32)  # 524k values
    assert_png(plots.scatter(big, big + 0.1))
    assert_png(plots.scatter(np.arange(10.0), np.arange(10.0)))  # 1-d: one channel
    with pytest.raises(ValueError, match="shape"):
        plots.scatter(big, big[:1])


def test_snr_bars_with_infinite_and_flagged_values():
    png = plots.snr_bars(["a", "b$x$", "c", "d"], [5.0, np.inf, 30.0, -np.inf],
                         [3.0, 40.0, np.nan, 12.0], threshold_db=10.0)
    img = assert_png(png)
    # flagged (a) bars are red: the report's red #cf222e is in the image
    rgb = (img[..., :3] * 255).round().astype(int)
    assert (np.abs(rgb - [0xcf, 0x22, 0x2e]).max(axis=2) < 12).any()
    with pytest.raises(ValueError, match="one of each per layer"):
        plots.snr_bars(["a"], [1.0, 2.0], [1.0], 10.0)


def test_weight_ranges_per_output_channel_and_depthwise():
    rng = np.random.default_rng(3)
    k = rng.normal(size=(3, 3, 4, 6))
    lo, hi = plots.per_channel_ranges(k, "conv")
    np.testing.assert_array_equal(hi, k.reshape(-1, 6).max(0))
    dw = rng.normal(size=(3, 3, 4, 2))  # 4 input channels x multiplier 2 = 8 outputs
    lo, hi = plots.per_channel_ranges(dw, "dw")
    assert lo.shape == (8,)
    assert hi[5] == dw[:, :, 2, 1].max() and lo[5] == dw[:, :, 2, 1].min()
    scale = np.linspace(0.2, 5, 6)
    assert_png(plots.weight_ranges([("conv1", "conv", k * scale, k),
                                    ("dw1", "dw", dw, dw * 0.5)]))
    with pytest.raises(ValueError, match="no layers"):
        plots.weight_ranges([])


def test_plots_from_a_dump_loaded_back(synthetic, tmp_path):
    synthetic.tensors.save(tmp_path / "t.npz")
    back = load_tensors(tmp_path / "t.npz")
    for fn in (plots.channel_histograms_of, plots.scatter_of):
        a, b = _decode(fn(synthetic.tensors, EVIL_LAYER)), _decode(fn(back, EVIL_LAYER))
        np.testing.assert_array_equal(a, b)
    s = plots.layer_snrs(back)
    assert s["layers"] == [l.layer for l in synthetic.layers]
    np.testing.assert_allclose(s["alone_db"], [l.alone_snr_db for l in synthetic.layers])
    np.testing.assert_allclose(s["cumulative_db"], [l.cumulative.snr_db for l in synthetic.layers])
    np.testing.assert_allclose(s["local_db"], [l.local.snr_db for l in synthetic.layers])
    np.testing.assert_array_equal(_decode(plots.snr_bars_of(back, 10.0)),
                                  _decode(plots.snr_bars_of_report(synthetic)))


def test_plots_leave_no_pyplot_state():
    code = ("import sys, numpy as np\n"
            "from emulator.analysis import plots\n"
            "x = np.random.default_rng(0).normal(size=(2, 4, 4, 3))\n"
            "plots.scatter(x, x + 0.1); plots.channel_histograms(x)\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


# ------------------------------------------------------------------ the report, synthetic ----

def test_every_user_string_is_escaped():
    rep = _synthetic(network=EVIL_NET)
    html = report_html.render_html(rep)
    assert "<script" not in html.lower()
    assert str(escape(EVIL_NET)) in html and str(escape(EVIL_LAYER)) in html
    assert "out&amp;1" in html and "out&1" not in html
    # the flagged layer's script lines and the model script, escaped inside <pre>
    assert str(escape(f"quantization_param({EVIL_LAYER}, force_range_out=[0, 0.5])")) in html
    assert_self_contained(html)


def test_flagged_layers_first_then_the_sections_in_order(synthetic):
    html = report_html.render_html(synthetic, generated="today")
    pngs = assert_self_contained(html)
    for png in pngs:
        assert_png(png)
    assert len(pngs) == 3  # histograms and scatter of the one flagged layer, the SNR bars
    order = [html.index(f'id="{s}"') for s in ("layers", "lerr", "script", "snr", "weights",
                                                "ranked")]
    assert order == sorted(order)
    first = re.search(r'<article class="layer[^"]*"[^>]*>(.*?)</article>', html, re.S).group(1)
    esc = html_lib.escape(EVIL_LAYER)
    assert esc in first and "flagged" in first
    for word in ("(a) only this layer quantized", "(b) everything quantized",
                 "(c) fed the float inputs", "cosine", "mean error", "max |error|", "rmse (LSB)",
                 "Saturation", "The seed:", "Model-script lines"):
        assert html_lib.escape(word, quote=False) in first, word
    assert '<pre class="script">' in first
    assert html.count('<article class="layer') == 1
    assert "The report has no runner" in html  # no weights without a runner, said plainly
    assert "Generated today" in html


def test_nothing_flagged_is_said_plainly():
    rep = _synthetic(threshold_db=-100.0)
    assert rep.flagged == []
    html = report_html.render_html(rep)
    assert "No layer is under the -100 dB threshold" in html
    assert "Nothing flagged: the worst 3 layers" in html
    assert html.count('<article class="layer worst"') == 3
    assert "Not needed: no layer is flagged" in html and "Nothing to suggest" in html
    assert len(assert_self_contained(html)) == 3 * 2 + 1


def test_a_plot_that_fails_becomes_a_note(synthetic, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no <luck>")

    monkeypatch.setattr(plots, "scatter_of", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        html = report_html.render_html(synthetic)
    assert any("could not draw" in str(w.message) for w in caught)
    assert "Some plots could not be drawn" in html and "no &lt;luck&gt;" in html
    assert len(assert_self_contained(html)) == 2


def test_without_tensors_the_numbers_remain(synthetic):
    import dataclasses

    html = report_html.render_html(dataclasses.replace(synthetic, tensors=None))
    assert "no tensors in this report" in html
    assert len(assert_self_contained(html)) == 1  # the SNR bars come from the numbers


@needs_chromium
@pytest.mark.slow
def test_escaped_names_render_as_text_in_chromium(tmp_path):
    path = tmp_path / "evil.html"
    _synthetic(network=EVIL_NET).save_html(path)
    r = render(path, width=1000, screenshot=tmp_path / "evil.png")
    assert r.title == f"Noise analysis: {EVIL_NET}"  # the tag is text, not markup
    assert r.images_broken == [] and r.images_total == 3
    assert not r.overflows, r.overflowing_elements
    assert_not_blank(r.screenshot_png_path)


# ------------------------------------------------------------------ the report, FER ----------

@pytest.fixture(scope="module")
def fer_report(fer_runner, fer_images, tmp_path_factory):
    """FER with a too narrow forced range on conv6 and equalization, analysed on 12 held-out
    images; the report saved to HTML. (report, html text, path)."""
    from emulator import ClientRunner, run_quantization_from_np
    from emulator.analysis.noise import analyze_noise

    r = ClientRunner(hn=fer_runner.hn)
    r.load_params(fer_runner.native_params)
    run_quantization_from_np(r, fer_images[:32], 4, 8, model_script=BAD_RANGE + EQUALIZE)
    rep = analyze_noise(r, ds.fer_inputs(12, seed=11), progress=False)
    path = tmp_path_factory.mktemp("noise_report") / "fer_noise.html"
    rep.save_html(path)
    return rep, path.read_text(encoding="utf-8"), path


@pytest.mark.real_model
def test_fer_report_puts_the_bad_layer_first(fer_report):
    rep, html, _ = fer_report
    assert [l.layer for l in rep.flagged] == ["conv6"]
    assert "1 layer under 10 dB:</b>" in html
    first = re.search(r'<article class="layer[^"]*"[^>]*>(.*?)</article>', html, re.S).group(1)
    assert "<code>conv6</code>" in first and "Saturation" in first
    # its numbers, as the report has them
    ln = rep.layer("conv6")
    for v in (ln.alone_snr_db, ln.cumulative.snr_db, ln.local.snr_db):
        assert report_html.fmt_db(v) in first
    assert report_html.fmt_cos(ln.cumulative.cosine) in first
    # its lines, ready to paste, and the whole suggested script
    for line in ln.suggestion.script:
        assert html_lib.escape(line, quote=False) in first
    script = rep.suggested_script
    assert "force_range_out=[0, " in script
    assert f'<pre class="script">{html_lib.escape(script, quote=False)}</pre>' in html
    # the Lerr check, the ranked table with every layer
    lerr = html[html.index('id="lerr"'):html.index('id="script"')]
    assert "<code>conv6</code>" in lerr and report_html.fmt_db(
        min(s.snr_db for s in rep.lerr.flagged_float.values())) in lerr
    ranked = html[html.index('id="ranked"'):]
    assert ranked.count("<tr") == len(rep.layers) + 1


@pytest.mark.real_model
def test_fer_report_embeds_its_plots(fer_report):
    rep, html, _ = fer_report
    pngs = assert_self_contained(html)
    # conv6's histograms and scatter, the SNR bars, the weight ranges (equalization ran)
    assert len(pngs) == 4
    for png in pngs:
        assert_png(png)
    weights = html[html.index('id="weights"'):html.index('id="ranked"')]
    assert "<img " in weights and "equalized weights" in weights
    assert rep.seconds["total"] > 0
    assert len(html) < 2_000_000, f"the report is {len(html)} bytes"


@needs_chromium
@pytest.mark.real_model
@pytest.mark.parametrize("width", [1280, 800])
def test_fer_report_in_chromium(fer_report, width, tmp_path):
    _, html, path = fer_report
    r = render(path, width=width, screenshot=tmp_path / f"fer_noise_{width}.png")
    assert_not_blank(r.screenshot_png_path)
    assert r.images_broken == []
    assert r.images_total >= html.count("<img ") == 4
    assert not r.overflows and r.overflowing_elements == [], r.overflowing_elements
    if width >= 1280:
        assert r.scrolling_boxes == [], r.scrolling_boxes
