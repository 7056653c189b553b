"""host-app's terminal tables stay readable at any width (issue "host-app for real deployments").

Tables are rendered with a rich Console at 80 and 100 columns and as piped output (120 columns,
or COLUMNS): no line is wider than the console, no cell is broken inside a word (the layer table
of the committed all-ops HAR: every shown cell whole on its row's line), the most important
columns stay and the ones left out are named in the caption. No TensorFlow: a HAR loads without
it, and these tests stay in the fast tier.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from host_app import console
from host_app.console import Col, FitTable

REPO = Path(__file__).resolve().parents[2]
ALL_OPS = REPO / "tests" / "data" / "har_v1" / "all_ops.har"


@pytest.fixture(scope="module")
def all_ops():
    from emulator import ClientRunner

    return ClientRunner(har=ALL_OPS)


def render(renderable, width: int | None = None) -> str:
    """The text of `renderable` printed on a Console `width` wide, or, with None, on the
    console host-app makes for piped output."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, no_color=True) if width else console._make(buf)
    con.print(renderable)
    return buf.getvalue()


def table_lines(text: str) -> tuple[list[str], str, list[str]]:
    """(lines before the header rule, the header line, the body lines up to the blank line
    that ends the table)."""
    lines = text.splitlines()
    rule = next(i for i, ln in enumerate(lines) if ln.strip() and set(ln.strip()) == {"─"})
    end = next((i for i in range(rule + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[:rule - 1], lines[rule - 1], lines[rule + 1:end]


def assert_cells_whole(t: FitTable, text: str, width: int) -> list[str]:
    """Every shown header and cell appears whole: on its row's line when no shown column wraps
    (one line a row), else word by word (a wrap column breaks lines between words only); clip
    cells whole or cut with an ellipsis. Returns the shown headers."""
    widths, _ = t.layout(width)
    _, header, body = table_lines(text)
    shown = [i for i in range(len(t.columns)) if i in widths]
    wraps = any(t.columns[i].kind == "wrap" for i in shown)
    tokens = set(text.split())
    for i in shown:
        for word in t.columns[i].header.split():
            assert word in tokens, (word, text)
    if not wraps:
        assert len(body) >= len(t.rows)
        for i in shown:
            assert f" {t.columns[i].header} " in f" {header} ", (t.columns[i].header, header)
    for r, row in enumerate(t.rows):
        padded = f" {body[r]} " if not wraps else None
        for i in shown:
            cell = row[i].plain
            if not cell:
                continue
            if t.columns[i].kind == "clip":
                if f" {cell} " in f" {text} ".replace("\n", " "):
                    continue
                cuts = [tok[:-1] for tok in tokens if tok.endswith("…")]
                assert any(cell.startswith(c) for c in cuts), (cell, text)
            elif padded is not None:
                assert f" {cell} " in padded, (t.columns[i].header, cell, body[r])
            else:
                for word in cell.split():
                    assert word in tokens, (t.columns[i].header, word, text)
    return [t.columns[i].header for i in shown]


@pytest.mark.parametrize("width", [80, 100, None])
def test_layer_table_keeps_words_whole(all_ops, width):
    t = console.layer_table(all_ops)
    text = render(t, width)
    w = width or console.piped_width()
    assert max(len(ln) for ln in text.splitlines()) <= w
    shown = assert_cells_whole(t, text, w)
    # the columns that say what the network is stay at 80 columns
    for header in ("layer", "type", "output", "activation", "params", "MACs"):
        assert header in shown, (header, shown)
    for word in ("conv", "activation", "global_avg_pool1", "hardswish", "145,152"):
        assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", text, re.M), word
    left_out = [c.header for c in t.columns if c.header not in shown]
    if left_out:
        assert f"left out at {w} columns: {', '.join(left_out)}" in text
    else:
        assert "left out" not in text
    assert "33 layers" in text and "MACs a frame" in text


def test_layer_table_at_80_columns_leaves_out_only_the_source_names(all_ops):
    t = console.layer_table(all_ops)
    text = render(t, 80)
    assert "left out at 80 columns: from" in text
    _, header, body = table_lines(text)
    assert header.split() == ["#", "layer", "type", "output", "activation", "params", "MACs"]
    assert body[2].split() == ["3", "conv1", "conv", "7x6x8", "relu6", "224", "9,072"]
    wide = render(t, 100)  # the source names come back, cut to what fits
    assert "from" in table_lines(wide)[1].split() and "left out" not in wide


def test_piped_output_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console.piped_width() == 120
    monkeypatch.setenv("COLUMNS", "100")
    assert console.piped_width() == 100
    buf = io.StringIO()
    con = console._make(buf)
    assert con.width == 100 and not con.is_terminal and con.no_color
    monkeypatch.setenv("COLUMNS", "not a number")
    assert console.piped_width() == 120


@pytest.mark.parametrize("width", [80, 100])
def test_quantized_tables_keep_words_whole(all_ops, width):
    from emulator.stream_export import host_ops_of

    infos = all_ops.get_stream_infos()
    for t in (console.ranges_table(all_ops),
              console.stream_table(infos, {s.name: host_ops_of(all_ops, s.name) for s in infos})):
        text = render(t, width)
        assert max(len(ln) for ln in text.splitlines()) <= width
        shown = assert_cells_whole(t, text, width)
        assert shown[0] in ("layer", "stream")


def test_fit_table_drops_by_priority_wraps_between_words_and_clips():
    t = console.table("t", [Col("name", "left", 1), Col("values", "wrap", 2),
                            Col("origin", "clip", 4), Col("size", "right", 3)])
    t.add_row("a_rather_long_layer_name", console.escape("0.25 -1.5 3.125 42 [x]"),
              "model/block_1/conv2d_17", "1,024")  # cells are markup: text is escaped
    t.add_row("b", "7", "x", "8")
    full = render(t, 120)
    assert "left out" not in full
    assert "0.25 -1.5 3.125 42 [x]" in full
    for width in (60, 40, 32):
        text = render(t, width)
        assert max(len(ln) for ln in text.splitlines()) <= width, text
        tokens = set(text.split())
        for word in ("a_rather_long_layer_name", "0.25", "-1.5", "3.125", "42", "[x]", "1,024"):
            assert word in tokens or width < 40, (word, text)
    narrow = render(t, 40)
    assert "left out at 40 columns: origin" in narrow  # the least important goes first
    assert "values" in narrow and "size" in narrow
    # the values wrap between numbers (the tokens above), over several lines
    assert "0.25 -1.5 3.125 42 [x]" not in narrow and "-1.5" in narrow
    tiny = render(t, 20)
    assert "name" in tiny and "size" not in table_lines(tiny)[1]


def test_fit_table_clip_column_gets_the_room_left():
    t = console.table(None, [("layer", "left"), ("from", "clip")])
    t.add_row("conv1", "model_1/separable_conv2d_1/depthwise_kernel")
    text = render(t, 30)
    line = table_lines(text)[2][0]
    assert line.startswith("conv1  model_1/") and line.rstrip().endswith("…") and len(line) <= 30


def test_fit_table_checks_its_rows():
    t = console.table(None, [("a", "left"), ("b", "right")])
    with pytest.raises(ValueError, match="a row of 1 cells for 2 columns"):
        t.add_row("x")
    with pytest.raises(ValueError, match="kind 'middle'"):
        FitTable(None, [Col("a", "middle")])
