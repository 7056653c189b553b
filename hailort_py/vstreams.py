"""vstream-style inference over a `Device`, in pyhailort's shape:

    with VDevice(device) as vdevice:
        network = vdevice.configure()
        in_params = InputVStreamParams.make(network, format_type=FormatType.FLOAT32)
        out_params = OutputVStreamParams.make(network, format_type=FormatType.FLOAT32)
        with InferVStreams(network, in_params, out_params) as pipeline:
            results = pipeline.infer({"net/input_layer1": batch})

The host side of every stream (quantize, reorder, pad; and back) runs in the C transform
contexts; the device sees raw frames only.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .device import Device
from .errors import HailoInvalidArgumentError, HailoInvalidOperationError, HailoNotFoundError
from .stream import FormatFlags, FormatOrder, FormatType, StreamInfo, VStreamParams
from .transform import InputTransformContext, OutputTransformContext


class ConfiguredNetwork:
    """One network of a device, ready for inference: its name and stream infos."""

    def __init__(self, device: Device, name: str):
        self.device = device
        self.name = name
        infos = device.stream_infos(name)
        self._inputs = [s for s in infos if s.is_input]
        self._outputs = [s for s in infos if not s.is_input]

    def get_input_stream_infos(self) -> list[StreamInfo]:
        return list(self._inputs)

    def get_output_stream_infos(self) -> list[StreamInfo]:
        return list(self._outputs)

    def __repr__(self) -> str:
        return (f"<ConfiguredNetwork '{self.name}' inputs={[s.name for s in self._inputs]} "
                f"outputs={[s.name for s in self._outputs]}>")


class VDevice:
    """A virtual device over one `Device` backend (a context manager that closes it)."""

    def __init__(self, device: Device):
        if not isinstance(device, Device):
            raise HailoInvalidArgumentError(
                f"VDevice needs a hailort_py.Device, got {type(device).__name__}")
        self.device = device

    def configure(self, network_name: str | None = None) -> ConfiguredNetwork:
        """The network `network_name` (the device's default when None)."""
        return ConfiguredNetwork(self.device, self.device._network_name(network_name))

    def close(self) -> None:
        self.device.close()

    def __enter__(self) -> VDevice:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _make_params(streams: list[StreamInfo], format_type, format_order, format_flags,
                 queue_size, timeout_ms) -> dict[str, VStreamParams]:
    return {s.name: VStreamParams(format_type, format_order, format_flags, queue_size, timeout_ms)
            for s in streams}


class InputVStreamParams:
    @staticmethod
    def make(network: ConfiguredNetwork, format_type=FormatType.AUTO,
             format_order=FormatOrder.AUTO, format_flags=FormatFlags.NONE,
             queue_size: int = 2, timeout_ms: int = 10000) -> dict[str, VStreamParams]:
        """One VStreamParams per input stream of the network (AUTO fields resolve to what the
        stream needs: the device type, NHWC for NHCW devices, ...)."""
        return _make_params(network.get_input_stream_infos(), format_type, format_order,
                            format_flags, queue_size, timeout_ms)


class OutputVStreamParams:
    @staticmethod
    def make(network: ConfiguredNetwork, format_type=FormatType.AUTO,
             format_order=FormatOrder.AUTO, format_flags=FormatFlags.NONE,
             queue_size: int = 2, timeout_ms: int = 10000) -> dict[str, VStreamParams]:
        """One VStreamParams per output stream of the network."""
        return _make_params(network.get_output_stream_infos(), format_type, format_order,
                            format_flags, queue_size, timeout_ms)


class InferVStreams:
    """Batch inference through the host transforms and the device."""

    def __init__(self, network: ConfiguredNetwork, input_params: Mapping[str, VStreamParams],
                 output_params: Mapping[str, VStreamParams]):
        self.network = network
        self._inputs = self._contexts(network.get_input_stream_infos(), input_params,
                                      InputTransformContext, "input")
        self._outputs = self._contexts(network.get_output_stream_infos(), output_params,
                                       OutputTransformContext, "output")

    @staticmethod
    def _contexts(streams, params, context_cls, kind):
        if not isinstance(params, Mapping):
            raise HailoInvalidArgumentError(
                f"{kind} vstream params must be a mapping {{stream name: VStreamParams}} (as "
                f"{kind.capitalize()}VStreamParams.make returns), got {type(params).__name__}")
        names = {s.name for s in streams}
        unknown = sorted(set(params) - names)
        if unknown:
            raise HailoNotFoundError(
                f"vstream params name {unknown}, which are not {kind} streams of the network; "
                f"its {kind} streams are {sorted(names)}")
        return {s.name: context_cls(s, params.get(s.name, VStreamParams())) for s in streams}

    def infer(self, input_data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Transforms each input batch (N, ...user frame...) into device frames, runs the device,
        and transforms the outputs into the user formats. Returns {output stream name: batch}."""
        if not isinstance(input_data, Mapping):
            raise HailoInvalidArgumentError(
                f"input data must be a mapping {{input stream name: batch}}, got "
                f"{type(input_data).__name__}")
        missing = sorted(set(self._inputs) - set(input_data))
        if missing:
            raise HailoInvalidArgumentError(f"no data given for input stream(s) {missing}")
        unknown = sorted(set(input_data) - set(self._inputs))
        if unknown:
            raise HailoNotFoundError(
                f"{unknown} are not input streams of '{self.network.name}'; "
                f"its inputs are {sorted(self._inputs)}")
        raw_inputs = {}
        for name, ctx in self._inputs.items():
            batch = np.ascontiguousarray(input_data[name])
            if batch.ndim != len(ctx.host_shape) + 1:
                raise HailoInvalidArgumentError(
                    f"input stream '{name}': expected a batch of shape (N, "
                    f"{', '.join(map(str, ctx.host_shape))}), got {batch.shape}")
            raw_inputs[name] = ctx.transform(batch).reshape(batch.shape[0], -1)
        raw_outputs = self.network.device.infer(raw_inputs, self.network.name)
        results = {}
        for name, ctx in self._outputs.items():
            if name not in raw_outputs:
                raise HailoInvalidOperationError(
                    f"the device returned no frames for output stream '{name}'")
            results[name] = ctx.transform(raw_outputs[name])
        return results

    def __enter__(self) -> InferVStreams:
        return self

    def __exit__(self, *exc) -> None:
        pass
