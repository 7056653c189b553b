"""Terminal output: aligned tables with `rich` (installed with TensorFlow, through Keras).

Colour only on a terminal; piped or captured output is plain text, up to 160 columns wide.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def _make(file) -> Console:
    probe = Console(file=file)
    return probe if probe.is_terminal else Console(file=file, width=160, no_color=True,
                                                   highlight=False)


def error(message: str) -> None:
    err().print(f"[bold red]host-app: error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err().print(f"[bold yellow]host-app: warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    out().print(message, soft_wrap=True, highlight=False)


def table(title: str | None, columns: Iterable[tuple[str, str]]) -> Table:
    """A plain aligned table; columns are (header, "left" | "right" | "clip"). Right-aligned
    columns (numbers) never wrap, left ones wrap when the terminal is too narrow, "clip" ones
    are cut with an ellipsis instead."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold",
              header_style="bold", pad_edge=False)
    for name, justify in columns:
        if justify == "clip":
            t.add_column(name, no_wrap=True, overflow="ellipsis", ratio=1)
        else:
            t.add_column(name, justify=justify, no_wrap=justify == "right", overflow="fold")
    return t


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
               [("#", "right"), ("layer", "left"), ("type", "left"), ("output", "left"),
                ("activation", "left"), ("params", "right"), ("MACs", "right"), ("from", "clip")])
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
    columns = [("layer", "left"), ("type", "left"), ("precision", "left"), ("min", "right"),
               ("max", "right"), ("scale", "right"), ("zp", "right"), ("note", "left")]
    if not any(r[-1] for r in rows):  # no notes: no empty column
        columns.pop()
        rows = [r[:-1] for r in rows]
    t = table(f"calibrated ranges of '{hn.name}' ({cal.get('images', '?')} images)", columns)
    for r in rows:
        t.add_row(*r)
    return t


def stream_table(infos, host_ops: dict[str, list[str]] | None = None) -> Table:
    t = table("streams", [("stream", "left"), ("dir", "left"), ("shape", "left"),
                           ("hw_shape", "left"), ("format", "left"), ("scale", "right"),
                           ("zp", "right"), ("limvals", "left"), ("frame B", "right"),
                           ("host side", "left")])
    for s in infos:
        qi = s.quant_info
        host = []
        if host_ops and host_ops.get(s.name):
            host.append("then " + ", ".join(host_ops[s.name]))
        t.add_row(escape(s.name), "in" if s.is_input else "out", str(s.shape), str(s.hw_shape),
                  str(s.format), fmt_num(qi.qp_scale), fmt_num(qi.qp_zp),
                  f"[{fmt_num(qi.limvals_min)}, {fmt_num(qi.limvals_max)}]", str(s.hw_frame_size),
                  escape(" ".join(host)))
    return t


# ==== compare ====================================================================================

def comparison_tables(c) -> list:
    """The byte-identity verdict and checks, then accuracy against native."""
    items: list = []
    checks = table(None, [("stream", "left"), ("check", "left"), ("values", "right"),
                           ("differing", "right"), ("result", "left")])
    for ch in c.checks:
        result = "[green]identical[/]" if ch.ok else "[bold red]DIFFERENT[/]"
        checks.add_row(escape(ch.stream), ch.level, f"{ch.values:,}", f"{ch.differing:,}", result)
    items.append(checks)
    acc = table(f"accuracy vs SdkNative ({len(c.batch)} images)",
                 [("output", "left"), ("SNR dB", "right"), ("cosine", "right"),
                  ("max |err|", "right"), ("RMSE", "right"), ("native range", "left"),
                  ("top-1 agree", "right")])
    colours = {"good": "green", "fair": "yellow", "poor": "red"}
    for m in c.metrics:
        top1 = "-" if m.top1_agreement is None else \
            f"{m.top1_agreement:.1%} ({sum(a == b for a, b in zip(m.native_top1, m.quantized_top1))}" \
            f"/{len(m.native_top1)})"
        acc.add_row(escape(m.label), f"[{colours[m.snr_status]}]{fmt_db(m.snr_db)}[/]",
                    f"{m.cosine:.6f}", fmt_num(m.max_abs_err), fmt_num(m.rmse),
                    f"[{fmt_num(m.native_range[0])}, {fmt_num(m.native_range[1])}]", top1)
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
