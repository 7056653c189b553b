"""The host side of inference: HAR loading with user-facing errors, the host pipeline through a
`hailort_py.Device`, and the emulation targets.

The host pipeline is what an application on the device host runs, in pyhailort's shape:

    float32 NHWC batch --InputTransformContext (C)--> raw device frames --Device.infer-->
    raw output frames --OutputTransformContext (C)--> float32 --host ops (softmax / argmax)-->

through `hailort_py.vstreams` (VDevice / InferVStreams) over any `Device`, which `open_device`
opens from a spec: the in-process emulated chip `emulator.EmulatedDevice` (a runner or a HAR),
a device server (`tcp://HOST:PORT`) or a driver (`driver:NAME`). A `RecordingDevice` in between
keeps the raw frames that crossed the device boundary, for the byte-identity check of
`host_app.compare`.
Softmax / argmax at an output run on the host after dequantization (the stream carries the
tensor before them, emulator/stream_export.py); they run here with the emulator's own float op,
batch by batch as `runner.infer` runs them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hailort_py.device import Device

from .errors import AppError, UsageError

TARGETS = ("native", "fp-optimized", "quantized", "numeric", "device")
DEFAULT_BATCH = 32  # runner.infer's default batch; the host pipeline feeds the device the same


# ==== HAR and network ============================================================================

def load_har(path: str | os.PathLike, need_quantized: bool = False, command: str = ""):
    """A ClientRunner from a HAR, or UsageError naming the file and what to do."""
    from emulator import ClientRunner
    from emulator.errors import EmulatorError

    p = Path(path)
    if not p.exists():
        raise UsageError(f"HAR '{p}' does not exist; create one with `host-app parse MODEL -o {p}`")
    if p.is_dir():
        raise UsageError(f"'{p}' is a directory, not a HAR file")
    try:
        runner = ClientRunner(har=str(p))
    except EmulatorError as e:
        raise UsageError(f"'{p}' is not a HAR this tool can read: {e}. Create one with "
                         f"`host-app parse MODEL` (a .tflite, .h5 or .keras file)") from None
    if runner.native_params is None:
        raise UsageError(f"HAR '{p}' has no native params; re-create it with `host-app parse MODEL`")
    if need_quantized:
        require_quantized(runner, p, command)
    return runner


def require_quantized(runner, path, command: str = "") -> None:
    if runner.quantized_params is None:
        raise UsageError(f"HAR '{path}' is not quantized, and {command or 'this command'} needs "
                         f"the quantized network: run `host-app quantize {path} --calib IMAGES_DIR` "
                         f"first and use the HAR it writes")


def single_input(runner) -> tuple[Any, list[int]]:
    """(input layer, shape without batch) of a single-input network, or UsageError."""
    ins = runner.hn.input_layers
    if len(ins) != 1:
        raise UsageError(f"network '{runner.hn.name}' has {len(ins)} inputs "
                         f"({', '.join(l.name for l in ins)}); host-app's image commands take "
                         f"single-input networks. Use the Python API (runner.infer with a dict)")
    return ins[0], list(ins[0].output_shape[1:])


def preprocess_for(runner, override: str | None):
    """The pre-processing to use: --preprocess when given, else the one recorded in the HAR's
    metadata (by parse --preset / --preprocess, or by quantize), else None."""
    from .images import parse_preprocess

    if override:
        return parse_preprocess(override)
    recorded = runner.metadata.get("preprocess")
    return parse_preprocess(recorded) if recorded else None


def labels_for(runner, output: str) -> list[str] | None:
    """Class labels recorded for an output layer (bare name), or None."""
    labels = runner.metadata.get("labels") or {}
    got = labels.get(output)
    return list(got) if got else None


def is_classifier(runner, output: str) -> bool:
    """An output is a classifier when labels are recorded for it, or when a softmax produces it
    as a vector of scores."""
    hn = runner.hn
    layer = hn.layer(output)
    if labels_for(runner, layer.name):
        return True
    src = hn.layers[layer.input[0]]
    return src.type == "softmax" and len(layer.output_shape) == 2 and layer.output_shape[1] >= 2


# ==== host ops ===================================================================================

@dataclass(frozen=True)
class OutputRoute:
    """How an output layer is produced: the stream carrying the on-chip tensor `source`, then
    the host layers (softmax / argmax) applied after dequantization, in order."""

    output: str  # bare output-layer name
    stream: str  # scoped stream name
    source: str  # bare name of the on-chip layer the stream carries
    host_layers: tuple = ()


def output_routes(runner) -> list[OutputRoute]:
    """The route of every output layer of a quantized runner, in output_layers_order (the
    emulator's emulator.stream_export.chip_source decides what runs on the host)."""
    from emulator.stream_export import chip_source

    hn = runner.hn
    routes = []
    for layer in hn.output_layers:
        src, host_layers = chip_source(runner, layer)
        routes.append(OutputRoute(layer.name, hn.scoped(layer.name), src, tuple(host_layers)))
    return routes


def apply_host_ops(route: OutputRoute, values: np.ndarray, shape: list[int]) -> np.ndarray:
    """The route's host layers on dequantized stream values (reshaped to the source tensor's
    logical shape `shape`, batch first), with the emulator's own host-op implementation
    (emulator.quantized_exec.host_op_numpy: the same bytes whatever the batch size)."""
    x = np.ascontiguousarray(values, np.float32).reshape(values.shape[0], *shape[1:])
    if not route.host_layers:
        return x
    from emulator.quantized_exec import host_op_numpy

    for layer in route.host_layers:
        x = host_op_numpy(layer, x)
    return x


# ==== the host pipeline ==========================================================================

class RecordingDevice(Device):
    """A Device that forwards to another and keeps copies of the raw frames that crossed it
    ({stream: [batch, ...]}). Closing it does not close the wrapped device."""

    def __init__(self, device):
        self.device = device
        self.raw_inputs: dict[str, list[np.ndarray]] = {}
        self.raw_outputs: dict[str, list[np.ndarray]] = {}

    def network_names(self) -> list[str]:
        return self.device.network_names()

    def stream_infos(self, network_name: str | None = None):
        return self.device.stream_infos(network_name)

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, frames in raw_inputs.items():
            self.raw_inputs.setdefault(name, []).append(frames.copy())
        out = self.device.infer(raw_inputs, network_name)
        for name, frames in out.items():
            self.raw_outputs.setdefault(name, []).append(np.array(frames, copy=True))
        return out


@dataclass
class HostRun:
    """What the host pipeline produced, keyed by bare output-layer names (outputs,
    stream_values) or stream names (raw frames)."""

    outputs: dict[str, np.ndarray]  # after host ops: what the application gets
    stream_values: dict[str, np.ndarray]  # float32 from the OutputTransformContext, (N, ...)
    raw_inputs: dict[str, np.ndarray]  # device frames sent, (N, elements)
    raw_outputs: dict[str, np.ndarray]  # device frames received, (N, elements)
    descriptions: dict[str, str] = field(default_factory=dict)  # stream -> C transform steps


def host_formats():
    import hailort_py as hrt

    return hrt.Format(hrt.FormatType.FLOAT32, hrt.FormatOrder.AUTO)


def transform_descriptions(infos) -> dict[str, str]:
    """Per stream, the steps the C transform context runs for float32 user buffers."""
    import hailort_py as hrt

    out = {}
    for s in infos:
        cls = hrt.InputTransformContext if s.is_input else hrt.OutputTransformContext
        try:
            out[s.name] = cls(s, host_formats()).description
        except hrt.HailoRTError as e:
            out[s.name] = f"(no float32 transform: {e})"
    return out


def run_host_pipeline(device, runner, x: np.ndarray, batch_size: int = DEFAULT_BATCH) -> HostRun:
    """float32 inputs (N, ...) of the single input stream through VDevice / InferVStreams over
    `device`, batch by batch; then the host ops of each output."""
    import hailort_py as hrt
    from hailort_py.vstreams import InferVStreams, InputVStreamParams, OutputVStreamParams, VDevice

    recorder = RecordingDevice(device)
    hn = runner.hn
    routes = {r.stream: r for r in output_routes(runner)}
    with VDevice(recorder) as vdevice:
        network = vdevice.configure(hn.name)
        ins = network.get_input_stream_infos()
        if len(ins) != 1:
            raise UsageError(f"network '{network.name}' has {len(ins)} input streams; the host "
                             f"pipeline here takes single-input networks")
        in_params = InputVStreamParams.make(network, format_type=hrt.FormatType.FLOAT32)
        out_params = OutputVStreamParams.make(network, format_type=hrt.FormatType.FLOAT32)
        values: dict[str, list] = {}
        finals: dict[str, list] = {}
        with InferVStreams(network, in_params, out_params) as pipeline:
            for s in range(0, len(x), batch_size):
                got = pipeline.infer({ins[0].name: np.ascontiguousarray(x[s:s + batch_size])})
                for stream, v in got.items():
                    route = routes[stream]
                    shape = hn.layers[route.source].output_shape
                    values.setdefault(route.output, []).append(v.reshape(v.shape[0], -1))
                    finals.setdefault(route.output, []).append(apply_host_ops(route, v, shape))
        infos = network.get_input_stream_infos() + network.get_output_stream_infos()
    return HostRun(
        outputs={k: np.concatenate(v) for k, v in finals.items()},
        stream_values={k: np.concatenate(v) for k, v in values.items()},
        raw_inputs={k: np.concatenate(v) for k, v in recorder.raw_inputs.items()},
        raw_outputs={k: np.concatenate(v) for k, v in recorder.raw_outputs.items()},
        descriptions=transform_descriptions(infos),
    )


# ==== opening a device ===========================================================================

DEFAULT_TIMEOUT_MS = 30000  # a RemoteDevice call's deadline
DRIVER_PREFIX = "driver:"


def open_device(spec: Any, *, runner=None, models: Sequence[str | os.PathLike] = (),
                keys: str | os.PathLike | None = None,
                timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Device:
    """The one way the host app opens the device its host pipeline runs on. `spec` is:

      a quantized ClientRunner            the in-process emulated chip (emulator.EmulatedDevice)
      a HAR path (str or PathLike)        the same, for the quantized network of that HAR
      "tcp://HOST:PORT" (any "scheme://"  the device server there (hailort_py.remote.RemoteDevice),
        ZeroMQ endpoint), or a list        with CURVE when `keys` (a `host-app keys` directory)
      "driver:NAME"                       the device of driver NAME, found by name in the
                                          `hailort_py.drivers` entry points, serving `models`

    With `runner`, the device must serve the runner's network with the runner's stream infos
    (a device server of another HAR, a driver's other model): AppError otherwise. The caller
    closes the device. Errors: UsageError for a spec that names nothing to open (a missing or
    unquantized HAR, an unknown driver, keys without an endpoint, a spec of another type);
    AppError for a device that cannot be opened or serves another network.
    """
    from emulator.runner import ClientRunner

    endpoints = _endpoints(spec)
    if keys is not None and endpoints is None:
        raise UsageError(f"CURVE keys ('{os.fspath(keys)}') go with a device server endpoint "
                         f"(tcp://HOST:PORT); the device {_describe(spec)} takes none")
    if isinstance(spec, ClientRunner):
        device, built_from = _emulated_device(spec), spec
    elif endpoints is not None:
        device, built_from = _remote_device(endpoints, keys, timeout_ms), None
    elif isinstance(spec, str) and spec.startswith(DRIVER_PREFIX):
        device, built_from = _driver_device(spec[len(DRIVER_PREFIX):], models), None
    elif isinstance(spec, (str, os.PathLike)):
        built_from = load_har(spec, need_quantized=True, command="the emulated chip")
        device = _emulated_device(built_from)
    else:
        raise UsageError(f"cannot open a device from {_describe(spec)}: give a quantized "
                         f"ClientRunner, a HAR path, a tcp://HOST:PORT endpoint or "
                         f"'{DRIVER_PREFIX}NAME'")
    if runner is not None and built_from is not runner:
        try:
            check_serves(device, runner, _describe(spec))
        except BaseException:
            device.close()
            raise
    return device


def _describe(spec: Any) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return f"'{os.fspath(spec)}'"
    if isinstance(spec, (list, tuple)):
        return ", ".join(_describe(s) for s in spec)
    return f"an object of type {type(spec).__name__}"


def _endpoints(spec: Any) -> list[str] | None:
    """The ZeroMQ endpoints a spec names ("scheme://..."), or None when it names none."""
    items = [spec] if isinstance(spec, str) else spec if isinstance(spec, (list, tuple)) else None
    if not items or not all(isinstance(s, str) and "://" in s for s in items):
        return None
    return list(items)


def _emulated_device(runner) -> Device:
    """The in-process emulated chip for a quantized runner (AppError if it cannot be made)."""
    from emulator.device import EmulatedDevice
    from emulator.errors import EmulatorError

    try:
        return EmulatedDevice(runner)
    except EmulatorError as e:
        raise AppError(f"cannot start the emulated chip for network '{runner.hn.name}': {e}") from None


def _remote_device(endpoints: list[str], keys, timeout_ms: int) -> Device:
    import hailort_py as hrt
    from hailort_py.remote import RemoteDevice

    try:
        return RemoteDevice(endpoints, timeout_ms=timeout_ms, keys=keys)
    except hrt.HailoRTError as e:
        hint = "" if keys else " (a server started with --keys needs --keys here too)"
        raise AppError(f"device at {', '.join(endpoints)}: {e}{hint}") from None


def _driver_device(name: str, models: Sequence[str | os.PathLike]) -> Device:
    import hailort_py as hrt
    from hailort_py.drivers import DriverError, open_driver

    try:
        return open_driver(name, models)
    except DriverError as e:
        raise UsageError(str(e)) from None
    except hrt.HailoRTError as e:
        raise AppError(f"device driver '{name}' ({', '.join(map(os.fspath, models)) or 'no model'}"
                       f"): {e}") from None


def check_serves(device: Device, runner, where: str) -> None:
    """AppError unless `device` serves the runner's network with the runner's stream infos."""
    net = runner.hn.name
    names = device.network_names()
    if net not in names:
        raise AppError(f"the device {where} serves {names}, not this HAR's network '{net}': "
                       f"serve this HAR (host-app serve --model HAR)")
    if device.stream_infos(net) != runner.get_stream_infos():
        raise AppError(f"the device {where} serves a network '{net}' whose streams differ from "
                       f"this HAR's (another quantization?): serve this very HAR")


def run_target(runner, target: str, x: np.ndarray, batch_size: int = DEFAULT_BATCH,
               device: Any = None, keys: str | os.PathLike | None = None,
               models: Sequence[str | os.PathLike] = ()) -> dict[str, np.ndarray]:
    """Outputs {bare output-layer name: array} of one target (TARGETS); "device" is the host
    pipeline through open_device(device, ...) (the runner's own emulated chip when None)."""
    from emulator import SdkFPOptimized, SdkNative, SdkNumeric, SdkQuantized

    if target == "device":
        dev = open_device(runner if device is None else device, runner=runner, models=models,
                          keys=keys)
        try:
            return run_host_pipeline(dev, runner, x, batch_size).outputs
        finally:
            dev.close()
    if device is not None:
        raise UsageError(f"a device ({_describe(device)}) runs the host pipeline; it needs "
                         f"target 'device', not '{target}'")
    targets = {"native": SdkNative, "fp-optimized": SdkFPOptimized, "quantized": SdkQuantized,
               "numeric": SdkNumeric}
    if target not in targets:
        raise UsageError(f"unknown target '{target}'; one of {', '.join(TARGETS)}")
    return runner.infer(targets[target](), x, batch_size=batch_size)
