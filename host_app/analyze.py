"""`host-app analyze`: the emulator's per-layer noise analysis (emulator/analysis/noise.py) of a
quantized HAR on real images, presented: the ranked layers, the Lerr check and the suggested
model-script lines on the terminal; the HTML report, JSON and the tensor dump as files.

    host-app analyze NET_q.har IMAGES... [--report HTML] [--json JSON] [--dump NPZ]
                     [--threshold DB] [--batch-size N] [--preprocess SPEC] [--force]
"""
from __future__ import annotations

import argparse

SHOWN = 12  # layers in the terminal table when none or few are flagged


def add_parser(sub, add, positive_int, number, force_argument, pre_help: str) -> None:
    s = add(sub, "analyze", help="per-layer noise analysis: which layers cause the error, why, "
                                 "and the model-script lines that fix them",
            description="Quantize one layer at a time, everything, and each layer on float "
                        "inputs; rank the layers by the SNR they cost at the outputs, diagnose "
                        "the flagged ones (range, outliers, channels, bias), check that keeping "
                        "them float recovers the output (the Lerr check), and suggest "
                        "model-script lines.")
    s.add_argument("har", help="a quantized HAR (host-app quantize)")
    s.add_argument("images", nargs="+", help="image files, directories, or one .npy (16 real "
                                             "images are plenty)")
    s.add_argument("--threshold", type=number, default=10.0, metavar="DB",
                   help="flag layers whose SNR at the outputs, alone, is below DB (default 10)")
    s.add_argument("--report", metavar="HTML", help="write the HTML report here")
    s.add_argument("--json", metavar="JSON", help="write the analysis as JSON here")
    s.add_argument("--dump", metavar="NPZ", help="save every layer's float and quantized "
                                                 "tensors here (.npz) for offline work")
    s.add_argument("--no-lerr", action="store_true", help="skip the Lerr check")
    force_argument(s)
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                   help="frames per inference call (default 16)")
    s.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .cli import (Progress, _check_inputs, _check_preprocess, _image_command_inputs,
                      _import_tensorflow, _write_failed, har_path)
    from .errors import UsageError
    from .outputs import output_file

    if args.threshold != args.threshold or abs(args.threshold) == float("inf"):
        raise UsageError(f"--threshold {args.threshold}: give a finite number of dB, e.g. 10")
    _check_preprocess(args)
    har = har_path(args.har, "analyze")
    _check_inputs(args.images)
    inputs = _image_command_inputs(args)
    taken: list = []
    paths = {}
    for opt, attr, kind in (("--json", "json", "json"), ("--report", "report", "html"),
                            ("--dump", "dump", "npz")):
        value = getattr(args, attr)
        if value:
            paths[attr] = output_file(value, opt, kind, inputs=inputs, force=args.force,
                                      taken=list(taken))
            taken.append((opt, paths[attr]))

    from . import console
    from .images import load_inputs
    from .pipeline import load_har, preprocess_for, single_input

    runner = load_har(har, need_quantized=True, command="analyze")
    _, shape = single_input(runner)
    batch = load_inputs(args.images, shape, preprocess_for(runner, args.preprocess))
    console.note(f"analysing '{runner.hn.name}' on {len(batch)} image(s): each layer alone, "
                 f"everything, each layer on float inputs")
    with Progress("analyze", None) as progress:
        _import_tensorflow(progress)
        progress.stage("noise analysis")
        from emulator.analysis.noise import analyze_noise

        report = analyze_noise(runner, batch.x, batch_size=args.batch_size,
                               threshold_db=args.threshold, lerr=not args.no_lerr,
                               dump=paths.get("dump"), progress=progress.enabled)
    print_report(report)
    for attr, write in (("json", report.save_json), ("report", report.save_html)):
        if attr in paths:
            try:
                write(paths[attr])
            except OSError as e:
                raise _write_failed(paths[attr], e) from None
            console.note(f"wrote {paths[attr]}")
    if "dump" in paths:
        console.note(f"wrote {paths['dump']} (emulator.analysis.tensors.load_tensors reads it)")
    return 0


def print_report(report) -> None:
    """The analysis on the terminal: the outputs, the ranked layers, the Lerr check and the
    suggested script (printed plain, so that it can be copied or piped)."""
    from rich.markup import escape

    from . import console

    con = console.out()
    outs = ", ".join(f"{escape(o)} {console.fmt_db(s.snr_db)} dB" for o, s in report.outputs.items())
    con.print(f"SdkNumeric vs float at the outputs: {outs}")
    flagged = report.flagged
    ranked = report.ranked_layers
    shown = ranked[:max(len(flagged), min(SHOWN, len(ranked)))]
    t = console.table(
        f"layers, worst first ({len(shown)} of {len(ranked)}; (a) alone, (b) everything "
        f"quantized, (c) on float inputs)",
        [("layer", "left", 1), ("type", "left", 6), ("(a) dB", "right", 2), ("(b) dB", "right", 4),
         ("(c) dB", "right", 3), ("rmse LSB", "right", 7), ("findings", "wrap", 5)])
    for l in shown:
        a = console.fmt_db(l.alone_snr_db)
        t.add_row(escape(l.layer), l.type, f"[bold red]{a}[/]" if l.flagged else a,
                  console.fmt_db(l.cumulative.snr_db), console.fmt_db(l.local.snr_db),
                  console.fmt_num(l.local.rmse_lsb, 3), ", ".join(l.diagnostics.findings))
    con.print(t)
    if not flagged:
        con.print(f"[green]no layer is under {report.threshold_db:g} dB[/] alone; the error at "
                  f"the outputs is spread over the layers")
        return
    for l in flagged:
        con.print(f"[bold]{escape(l.layer)}[/] ({l.type}): " + "; ".join(
            escape(a) for a in l.suggestion.advice))
    if report.lerr is not None:
        lerr = report.lerr
        before = min(s.snr_db for s in lerr.all_quantized.values())
        after = min(s.snr_db for s in lerr.flagged_float.values())
        con.print(f"Lerr check: with {', '.join(map(escape, lerr.kept_float))} float, the "
                  f"outputs go from {console.fmt_db(before)} dB to {console.fmt_db(after)} dB "
                  f"({lerr.remaining_error_pct:.2g}% error left"
                  + ("; the flagged layers explain the error)" if lerr.remaining_error_pct <= 5
                     else "; other layers add to it: lower --threshold to see them)"))
    con.print("suggested model-script lines (append to the network's script, then quantize "
              "again):")
    console.out().print(report.suggested_script.rstrip(), markup=False, highlight=False,
                        soft_wrap=True)
