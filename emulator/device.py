"""EmulatedDevice: the emulated chip behind the hailort_py.Device interface.

It takes raw device frames exactly as a real device would -- the codes the host's C
InputTransformContext wrote, in the stream's device layout (NHCW, row padding) -- runs the
bit-exact integer target (SdkNumeric) on them, and returns raw output frames in the output
streams' device layouts. The device-side layout work reuses the C stream layer in the other
direction: unpacking an input frame is an output transform without dequantization, packing an
output frame is an input transform without quantization. So the host pipeline through this device
is byte-identical to `runner.infer(SdkNumeric(), x)`, and any difference is a bug to point at.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

import hailort_py as hrt
from hailort_py.device import Device, NetworkGroupDevice, device_side_context

from .errors import NotQuantizedError
from .stream_export import chip_source


class EmulatedDevice(Device):
    """The emulated chip running one quantized network.

    `source` is a quantized ClientRunner or the path of a HAR holding one. The network name is
    the HN's; stream infos are the runner's (`runner.get_stream_infos()`). Errors: the HAR's
    (emulator.errors.HarError ...), NotQuantizedError, and hailort_py.HailoInvalidArgumentError
    for a source of another type.
    """

    def __init__(self, source: Any):
        from .runner import ClientRunner

        runner = ClientRunner(har=os.fspath(source)) if isinstance(source, (str, os.PathLike)) \
            else source
        if not isinstance(runner, ClientRunner):
            raise hrt.HailoInvalidArgumentError(f"EmulatedDevice needs a ClientRunner or a HAR "
                                                f"path, got {type(source).__name__}")
        if runner.quantized_params is None:
            raise NotQuantizedError("EmulatedDevice (the chip runs the quantized network)")
        self.runner = runner
        self._infos = list(runner.get_stream_infos())
        hn = runner.hn
        self._network = hn.name
        # streams are named after the scoped input / output layers
        self._inputs = [(hn.layer(s.name).name, s) for s in self._infos if s.is_input]
        # an output stream carries the codes of the last on-chip tensor before its output layer
        self._outputs = [(chip_source(runner, hn.layer(s.name))[0], s)
                         for s in self._infos if not s.is_input]
        self._unpack = {s.name: device_side_context(s, hrt.StreamDirection.D2H)
                        for _, s in self._inputs}
        self._pack = {s.name: device_side_context(s, hrt.StreamDirection.H2D)
                      for _, s in self._outputs}
        self._closed = False

    def network_names(self) -> list[str]:
        return [self._network]

    def stream_infos(self, network_name: str | None = None) -> list[hrt.StreamInfo]:
        self._network_name(network_name)
        return list(self._infos)

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._closed:
            raise hrt.HailoCommunicationClosedError(f"emulated device of '{self._network}' is closed")
        from .quantized_exec import run_codes

        codes = {}
        for layer_name, info in self._inputs:
            unpack = self._unpack[info.name]
            frames = raw_inputs[info.name]
            nhwc = unpack.transform(frames)
            codes[layer_name] = nhwc.reshape(frames.shape[0], *self.runner.hn.layers[layer_name]
                                             .output_shape[1:])
        out_codes = run_codes(self.runner, codes, [name for name, _ in self._outputs])
        raw = {}
        for layer_name, info in self._outputs:
            pack = self._pack[info.name]
            values = out_codes[layer_name]
            host = values.reshape(values.shape[0], *pack.host_shape)
            raw[info.name] = pack.transform(np.ascontiguousarray(host, pack.host_dtype))
        return raw

    def close(self) -> None:
        self._closed = True


def open_emulated_device(models: Sequence[str | os.PathLike]) -> Device:
    """The `emulator` driver of the device server (entry point `hailort_py.drivers`): one
    EmulatedDevice per quantized HAR, several served as one device."""
    from .errors import EmulatorError

    if not models:
        raise hrt.HailoInvalidArgumentError("the emulator driver needs --model NET.har (a "
                                            "quantized HAR; host-app quantize makes one)")
    devices = []
    for path in models:
        try:
            devices.append(EmulatedDevice(path))
        except (EmulatorError, OSError) as e:
            raise hrt.HailoInvalidArgumentError(f"{os.fspath(path)}: {e}") from None
    return devices[0] if len(devices) == 1 else NetworkGroupDevice(devices)
