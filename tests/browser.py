"""Rendering HTML files in headless Chromium, for tests: a screenshot, and checks evaluated in the
page, without Playwright or a WebDriver.

    from browser import chromium_path, render, assert_not_blank

    result = render(report_html, width=1280)
    assert result.page_width <= result.viewport_width, result.overflowing_elements
    assert result.images_broken == []
    assert_not_blank(result.screenshot_png_path)

How: a temporary copy of the HTML gets a `<base href>` pointing at the original's directory (so
relative images still load) and a small script that, once the page has loaded, measures the
page and writes the measures as JSON into the DOM (a `<script type="application/json">`
element, never rendered). Chromium runs twice, each headless with a throw-away profile: once
with `--dump-dom` (the serialized DOM after `--virtual-time-budget` ms of virtual time: the
measures are in it), once with `--screenshot`, at the height of the whole page unless a height
is given. Nothing touches the network (file:// only; background networking, component updates,
sync and QUIC off).

Debian's package is `chromium` (`apt-get install chromium`); `chromium_path()` is None without
it, and tests skip with SKIP_REASON. A page whose Content-Security-Policy forbids inline
scripts cannot be measured this way (RuntimeError: no measures).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SKIP_REASON = ("headless Chromium is not installed (Debian / Ubuntu: apt-get install chromium; "
               "or set CHROMIUM to the browser's path)")
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_MARK = "__render_check__"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--disable-extensions")
DEFAULT_HEIGHT_CAP = 16000  # a full-page screenshot is cut at this many pixels


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable: $CHROMIUM when set, else the first on PATH of
    chromium, chromium-browser, google-chrome; None when there is none."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class BrowserResult:
    """What one render measured. Widths are CSS pixels: `page_width` is the document's
    scrollWidth, `viewport_width` its clientWidth (the window less a scrollbar); the page
    overflows sideways when page_width > viewport_width."""

    screenshot_png_path: Path
    page_width: int
    viewport_width: int
    page_height: int
    # elements that stick out of the page sideways, outermost only ("tag#id.class: left..right")
    overflowing_elements: list[str] = field(default_factory=list)
    # boxes that need a sideways scroll of their own (scrollWidth > clientWidth, overflow-x
    # auto / scroll): the page fits, but part of the box's content is out of sight
    scrolling_boxes: list[str] = field(default_factory=list)
    images_total: int = 0
    images_broken: list[str] = field(default_factory=list)  # src (cut) of images that failed
    title: str = ""

    @property
    def overflows(self) -> bool:
        return self.page_width > self.viewport_width


# The script injected into the copy. It measures after `load` (images decoded) and one more
# task, with every <details> opened first when asked (content that is folded away by default
# must fit too), and writes JSON where --dump-dom will show it.
_SCRIPT = r"""
<script>
(function () {
  function describe(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (typeof el.className === "string" && el.className.trim())
      s += "." + el.className.trim().split(/\s+/).join(".");
    var r = el.getBoundingClientRect();
    return s + ": " + Math.round(r.left) + ".." + Math.round(r.right) + " px";
  }
  function clips(el) {
    var o = getComputedStyle(el).overflowX;
    return o === "auto" || o === "scroll" || o === "hidden" || o === "clip";
  }
  function measure() {
    if (OPEN_DETAILS) {
      var ds = document.querySelectorAll("details");
      for (var i = 0; i < ds.length; i++) ds[i].open = true;
    }
    var doc = document.documentElement;
    var vw = doc.clientWidth, out = [], boxes = [], reported = [];
    var all = document.body ? document.body.querySelectorAll("*") : [];
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (el.tagName === "SCRIPT" || el.tagName === "STYLE") continue;
      var cs = getComputedStyle(el);
      if (cs.display === "none" || cs.position === "fixed") continue;
      if (clips(el) && el.scrollWidth > el.clientWidth + 1 &&
          (cs.overflowX === "auto" || cs.overflowX === "scroll"))
        boxes.push(describe(el) + " (content " + el.scrollWidth + " px in " +
                   el.clientWidth + " px)");
      var r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right <= vw + 1 && r.left >= -1) continue;
      var inside = false;
      for (var a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (clips(a) || reported.indexOf(a) >= 0) { inside = true; break; }
      }
      if (inside) continue;
      reported.push(el);
      out.push(describe(el));
    }
    var imgs = document.images, broken = [];
    for (var i = 0; i < imgs.length; i++) {
      if (!(imgs[i].complete && imgs[i].naturalWidth > 0))
        broken.push((imgs[i].getAttribute("src") || "(no src)").slice(0, 80));
    }
    var result = {
      page_width: doc.scrollWidth, viewport_width: vw,
      page_height: Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0),
      overflowing_elements: out.slice(0, 50), scrolling_boxes: boxes.slice(0, 50),
      images_total: imgs.length, images_broken: broken, title: document.title
    };
    var holder = document.createElement("script");
    holder.type = "application/json";
    holder.id = "MARK";
    holder.textContent = JSON.stringify(result).replace(/</g, "\\u003c");
    document.documentElement.appendChild(holder);
  }
  window.addEventListener("load", function () { setTimeout(measure, 0); });
})();
</script>
"""


def _instrumented_copy(html_path: Path, directory: Path, open_details: bool) -> Path:
    text = html_path.read_text(encoding="utf-8", errors="replace")
    base = f'<base href="{html_path.resolve().parent.as_uri()}/">'
    if not re.search(r"<base\s", text, re.I):
        m = re.search(r"<head[^>]*>", text, re.I)
        text = text[:m.end()] + base + text[m.end():] if m else base + text
    script = _SCRIPT.replace("MARK", _MARK).replace("OPEN_DETAILS",
                                                     "true" if open_details else "false")
    ends = [m.start() for m in re.finditer(r"</body\s*>", text, re.I)]
    text = text[:ends[-1]] + script + text[ends[-1]:] if ends else text + script
    copy = directory / ("page_" + html_path.name)
    copy.write_text(text, encoding="utf-8")
    return copy


def _run(browser: str, profile: Path, args: list[str],
         timeout: float) -> subprocess.CompletedProcess:
    """Chromium in a session of its own, so that on a timeout its helper processes (zygote,
    renderer) are ended with it, by their process group."""
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"Chromium did not finish in {timeout:.0f} s: {' '.join(cmd)}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _stderr_tail(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(lines[-8:])


def render(html_path: str | os.PathLike, width: int = 1280, height: int | None = None, *,
           screenshot: str | os.PathLike | None = None, open_details: bool = True,
           budget_ms: int = 5000, timeout: float = 90.0,
           browser: str | None = None) -> BrowserResult:
    """Render `html_path` in headless Chromium at `width` CSS pixels (scrollbars hidden, so
    the viewport is the window's width): measure it, then screenshot `height` pixels of it, or
    the whole page (up to DEFAULT_HEIGHT_CAP) when None. The PNG goes to `screenshot`, else to
    a temporary file the caller removes. `open_details` opens every <details>
    before measuring and in the screenshot. RuntimeError when Chromium is missing or fails."""
    browser = browser or chromium_path()
    if browser is None:
        raise RuntimeError(SKIP_REASON)
    html_path = Path(html_path)
    if not html_path.is_file():
        raise FileNotFoundError(f"no HTML file at {html_path}")
    work = Path(tempfile.mkdtemp(prefix="render_"))
    try:
        copy = _instrumented_copy(html_path, work, open_details)
        url = copy.as_uri()
        probe_height = height or 1000
        proc = _run(browser, work / "profile-dom", [
            f"--window-size={width},{probe_height}", f"--virtual-time-budget={budget_ms}",
            "--dump-dom", url], timeout)
        dom = proc.stdout.decode("utf-8", "replace")
        m = re.search(rf'<script type="application/json" id="{_MARK}">(.*?)</script>', dom, re.S)
        if proc.returncode != 0 or m is None:
            raise RuntimeError(f"Chromium --dump-dom of {html_path} gave no measures (exit "
                               f"{proc.returncode}; {len(dom)} bytes of DOM):\n"
                               f"{_stderr_tail(proc)}")
        data = json.loads(m.group(1))
        shot_height = height or max(200, min(int(data["page_height"]), DEFAULT_HEIGHT_CAP))
        if screenshot:
            png = Path(screenshot)
            png.parent.mkdir(parents=True, exist_ok=True)
            png.unlink(missing_ok=True)  # an old screenshot must not pass for a new one
        else:
            fd, name = tempfile.mkstemp(prefix=f"{html_path.stem}_{width}_", suffix=".png")
            os.close(fd)
            png = Path(name)
        proc = _run(browser, work / "profile-shot", [
            f"--window-size={width},{shot_height}", f"--virtual-time-budget={budget_ms}",
            f"--screenshot={png}", url], timeout)
        if proc.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
            png.unlink(missing_ok=True)
            raise RuntimeError(f"Chromium --screenshot of {html_path} wrote nothing (exit "
                               f"{proc.returncode}):\n{_stderr_tail(proc)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BrowserResult(screenshot_png_path=png, page_width=int(data["page_width"]),
                         viewport_width=int(data["viewport_width"]),
                         page_height=int(data["page_height"]),
                         overflowing_elements=list(data["overflowing_elements"]),
                         scrolling_boxes=list(data["scrolling_boxes"]),
                         images_total=int(data["images_total"]),
                         images_broken=list(data["images_broken"]), title=data.get("title", ""))


def pixel_stats(png_path: str | os.PathLike) -> tuple[float, float]:
    """(standard deviation of the pixel values, fraction of pixels that differ from the most
    common colour) of a PNG."""
    import cv2
    import numpy as np

    img = cv2.imread(os.fspath(png_path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise AssertionError(f"{png_path} is not a readable image")
    flat = img.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.uint32) << 16) | (flat[:, 1].astype(np.uint32) << 8) | flat[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    return float(img.std()), 1.0 - float(counts.max()) / len(packed)


def assert_not_blank(png_path: str | os.PathLike, min_std: float = 2.0,
                     min_fraction: float = 0.001) -> None:
    """AssertionError unless the image shows something: its pixel values vary (std at least
    `min_std`) and at least `min_fraction` of its pixels differ from the dominant colour."""
    std, fraction = pixel_stats(png_path)
    if std < min_std or fraction < min_fraction:
        raise AssertionError(f"{png_path} looks blank: pixel std {std:.2f} (want >= {min_std}), "
                             f"{fraction:.2%} of pixels differ from the dominant colour "
                             f"(want >= {min_fraction:.2%})")
