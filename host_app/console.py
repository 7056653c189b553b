"""Terminal output: aligned tables with `rich`, fitted to the width they are printed at.

On a terminal: colour, the terminal's width. Piped or captured: plain text, as wide as the
COLUMNS environment variable says, else 120 columns.

Tables (`table`) never break a cell inside a word. Each column has a kind and a priority:
  left, right   never wrapped nor cut (names, numbers)
  wrap          wrapped between words only (lists of values, notes)
  clip          cut with an ellipsis when space is short (source names)
When the columns do not fit, the least important ones are left out, and the caption says which.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 120  # columns of piped or captured output when COLUMNS is not set
GAP = 2  # characters between two columns
CLIP_MIN = 10  # a clip column is shown at least this wide, or left out

_out: Console | None = None
_err: Console | None = None


def out() -> Console:
    global _out
    if _out is None or _out.file is not sys.stdout:
        _out = _make(sys.stdout)
    return _out


def err() -> Console:
    global _err
    if _err is None or _err.file is not sys.stderr:
        _err = _make(sys.stderr)
    return _err


def piped_width() -> int:
    """The width of output that does not go to a terminal: COLUMNS when set, else 120."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def _make(file) -> Console:
    probe = Console(file=file)
    return probe if probe.is_terminal else Console(file=file, width=piped_width(), no_color=True,
                                                   highlight=False)


def error(message: str) -> None:
    err().print(f"[bold red]host-app: error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err().print(f"[bold yellow]host-app: warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    out().print(message, soft_wrap=True, highlight=False)


# ==== tables that fit ============================================================================

KINDS = ("left", "right", "wrap", "clip")


@dataclass(frozen=True)
class Col:
    """A column: header, kind (KINDS) and priority (lower is more important; the least
    important columns are left out first when the table does not fit)."""

    header: str
    kind: str = "left"
    priority: int = 0


def _cell_text(cell: Any) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(str(cell))


def _longest_line(text: Text) -> int:
    return max((Text(line).cell_len for line in text.plain.split("\n")), default=0)


def _longest_word(text: Text) -> int:
    return max((Text(word).cell_len for word in text.plain.split()), default=0)


class FitTable:
    """A table laid out for the width it is printed at (`table` makes one; module doc).

    `add_row(*cells)`: cells are rich markup strings (escape names with `escape`) or Text.
    `caption`, `caption_justify` as on rich's Table. `render(width)` gives the rich Table for a
    width; printing the FitTable on a Console renders it for that console's width."""

    def __init__(self, title: str | None, columns: Sequence[Col]):
        self.title = title
        self.columns = list(columns)
        for c in self.columns:
            if c.kind not in KINDS:
                raise ValueError(f"column {c.header!r}: kind {c.kind!r} is not one of {KINDS}")
        self.rows: list[list[Text]] = []
        self.caption: str | None = None
        self.caption_justify = "left"

    def add_row(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([_cell_text(c) for c in cells])

    def _bounds(self, i: int) -> tuple[int, int]:
        """(narrowest, widest) width of column i: its cells never broken inside a word."""
        col = self.columns[i]
        cells = [row[i] for row in self.rows]
        header = Text(col.header)
        widest = max([header.cell_len, *(_longest_line(c) for c in cells)])
        if col.kind == "wrap":
            return max([_longest_word(header), *(_longest_word(c) for c in cells)]), widest
        if col.kind == "clip":
            return min(widest, max(CLIP_MIN, header.cell_len)), widest
        return widest, widest

    def layout(self, width: int) -> tuple[dict[int, int], list[int]]:
        """({column: width} of the columns shown, [columns left out]) for `width` columns."""
        bounds = [self._bounds(i) for i in range(len(self.columns))]
        order = sorted(range(len(self.columns)), key=lambda i: (self.columns[i].priority, i))
        shown = list(order)

        def need(cols):
            return sum(bounds[i][0] for i in cols) + GAP * max(0, len(cols) - 1)

        while len(shown) > 1 and need(shown) > width:
            shown.pop()  # the least important
        widths = {i: bounds[i][0] for i in shown}
        spare = width - need(shown)
        if spare < 0:  # one column, too wide even alone: cut to the width
            widths[shown[0]] = max(1, width)
        for i in shown:  # the room left goes to the most important columns first
            grow = max(0, min(spare, bounds[i][1] - widths[i]))
            widths[i] += grow
            spare -= grow
        dropped = [i for i in range(len(self.columns)) if i not in widths]
        return widths, dropped

    def render(self, width: int) -> Table:
        widths, dropped = self.layout(width)
        caption = self.caption or ""
        if dropped:
            left_out = ", ".join(self.columns[i].header for i in dropped)
            caption += ("; " if caption else "") + f"left out at {width} columns: {left_out}"
        t = Table(title=self.title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0), title_justify="left", title_style="bold",
                  header_style="bold", caption=escape(caption) or None,
                  caption_justify=self.caption_justify, caption_style="", expand=False)
        shown = [i for i in range(len(self.columns)) if i in widths]
        for i in shown:
            col = self.columns[i]
            t.add_column(col.header, justify="right" if col.kind == "right" else "left",
                         width=widths[i], no_wrap=col.kind != "wrap",
                         overflow="fold" if col.kind == "wrap" else "ellipsis")
        for row in self.rows:
            t.add_row(*[row[i] for i in shown])
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width)
        yield Text("")  # a blank line after each table, between it and what follows

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widths, _ = self.layout(options.max_width)
        used = sum(widths.values()) + GAP * max(0, len(widths) - 1)
        return Measurement(used, used)


def table(title: str | None, columns: Iterable[Col | tuple]) -> FitTable:
    """A plain aligned table that fits the width it is printed at. Columns are Col, or tuples
    (header, kind[, priority]); without a priority, earlier columns are more important."""
    cols = []
    for i, c in enumerate(columns):
        if not isinstance(c, Col):
            header, kind, *rest = c
            c = Col(header, kind, rest[0] if rest else i)
        cols.append(c)
    return FitTable(title, cols)


def fmt_num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    v = float(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if math.isnan(v):
        return "nan"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def fmt_db(v: float) -> str:
    if math.isinf(v):
        return "identical" if v > 0 else "-inf"
    return f"{v:.2f}"


def fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape[1:]) if shape and shape[0] == -1 else "x".join(map(str, shape))


# ==== parse ======================================================================================

def layer_table(runner) -> Table:
    from emulator.float_ops import layer_macs

    hn = runner.hn
    t = table(f"network '{hn.name}': {len(hn.layers)} layers",
               [("#", "right", 7), ("layer", "left", 1), ("type", "left", 2),
                ("output", "left", 3), ("activation", "left", 5), ("params", "right", 4),
                ("MACs", "right", 6), ("from", "clip", 8)])
    total_p = total_m = 0
    for i, layer in enumerate(hn.topological(), 1):
        params = sum(int(v.size) for v in runner.layer_params(layer.name).values())
        macs = int(layer_macs(layer))  # 0 for layers without multiply-accumulates
        total_p += params
        total_m += macs
        names = layer.original_names
        src = (names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")) if names else ""
        act = layer.activation if layer.type not in ("input_layer", "output_layer") else ""
        t.add_row(str(i), escape(layer.name), layer.type, fmt_shape(layer.output_shape),
                  "" if act == "linear" else act, f"{params:,}" if params else "",
                  f"{macs:,}" if macs else "", escape(src))
    t.caption = f"{total_p:,} params, {total_m:,} MACs a frame"
    t.caption_justify = "left"
    return t


# ==== quantize ===================================================================================

def ranges_table(runner) -> Table:
    cal = runner.metadata.get("calibration") or {}
    folded = cal.get("folded_normalization") or {}
    hn = runner.hn
    rows = []
    for name, q in (cal.get("layers") or {}).items():
        rng = q.get("range") or [None, None]
        layer = hn.layers.get(name)
        notes = []
        if name in folded.values():
            notes.append("normalization folded in")
        rows.append([escape(name), layer.type if layer else "", str(q.get("precision_mode", "")),
                     fmt_num(rng[0]), fmt_num(rng[1]), fmt_num(q.get("scale")), str(q.get("zp", "")),
                     ", ".join(notes)])
    columns = [("layer", "left", 1), ("type", "left", 6), ("precision", "left", 7),
               ("min", "right", 2), ("max", "right", 3), ("scale", "right", 4), ("zp", "right", 5),
               ("note", "wrap", 8)]
    if not any(r[-1] for r in rows):  # no notes: no empty column
        columns.pop()
        rows = [r[:-1] for r in rows]
    t = table(f"calibrated ranges of '{hn.name}' ({cal.get('images', '?')} images)", columns)
    for r in rows:
        t.add_row(*r)
    return t


def stream_table(infos, host_ops: dict[str, list[str]] | None = None) -> Table:
    t = table("streams", [("stream", "left", 1), ("dir", "left", 2), ("shape", "left", 3),
                           ("hw_shape", "left", 8), ("format", "left", 4), ("scale", "right", 5),
                           ("zp", "right", 6), ("limvals", "wrap", 9), ("frame B", "right", 10),
                           ("host side", "wrap", 7)])
    for s in infos:
        qi = s.quant_info
        host = []
        if host_ops and host_ops.get(s.name):
            host.append("then " + ", ".join(host_ops[s.name]))
        t.add_row(escape(s.name), "in" if s.is_input else "out", str(s.shape), str(s.hw_shape),
                  str(s.format), fmt_num(qi.qp_scale), fmt_num(qi.qp_zp),
                  escape(f"[{fmt_num(qi.limvals_min)}, {fmt_num(qi.limvals_max)}]"),
                  str(s.hw_frame_size),
                  escape(" ".join(host)))
    return t


# ==== compare ====================================================================================

def comparison_tables(c) -> list:
    """The byte-identity verdict and checks, then accuracy against native."""
    items: list = []
    checks = table(None, [("stream", "left", 1), ("check", "wrap", 2), ("values", "right", 5),
                           ("differing", "right", 4), ("result", "left", 3)])
    for ch in c.checks:
        result = "[green]identical[/]" if ch.ok else "[bold red]DIFFERENT[/]"
        checks.add_row(escape(ch.stream), ch.level, f"{ch.values:,}", f"{ch.differing:,}", result)
    items.append(checks)
    acc = table(f"accuracy vs SdkNative ({len(c.batch)} images)",
                 [("output", "wrap", 1), ("SNR dB", "right", 2), ("cosine", "right", 4),
                  ("max |err|", "right", 5), ("RMSE", "right", 6), ("native range", "wrap", 7),
                  ("top-1 agree", "wrap", 3)])
    colours = {"good": "green", "fair": "yellow", "poor": "red"}
    for m in c.metrics:
        top1 = "-" if m.top1_agreement is None else \
            f"{m.top1_agreement:.1%} ({sum(a == b for a, b in zip(m.native_top1, m.quantized_top1))}" \
            f"/{len(m.native_top1)})"
        acc.add_row(escape(m.label), f"[{colours[m.snr_status]}]{fmt_db(m.snr_db)}[/]",
                    f"{m.cosine:.6f}", fmt_num(m.max_abs_err), fmt_num(m.rmse),
                    escape(f"[{fmt_num(m.native_range[0])}, {fmt_num(m.native_range[1])}]"), top1)
    items.append(acc)
    return items


def print_comparison(c) -> None:
    con = out()
    values = sum(ch.values for ch in c.checks)
    streams = len({ch.stream for ch in c.checks})
    if c.byte_identical:
        con.print(f"[bold green]PASS[/] host pipeline == emulator SdkNumeric: byte-identical "
                  f"({len(c.checks)} checks on {streams} streams, {values:,} values)")
    else:
        con.print(f"[bold red]FAIL[/] host pipeline != emulator SdkNumeric: "
                  f"{len(c.mismatches)} of {len(c.checks)} checks differ")
    for item in comparison_tables(c):
        con.print(item)
    for ch in c.mismatches:
        error(ch.message())
