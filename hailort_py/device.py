"""The device interface: a chip that runs configured networks on raw device frames.

A backend implements `Device`: the in-process emulated chip (`emulator.EmulatedDevice`), a device
behind the device server (`hailort_py.remote.RemoteDevice`), a real chip through HailoRT
(`hailort_py.hailort_driver.HailoRTDevice`), or several of them as one (`NetworkGroupDevice`). Everything host-side -- quantization, format
conversion, padding -- stays in the transform contexts, exactly as with a real device: a
`Device` only ever sees device frames, flat arrays of `hw_frame_size` bytes.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Mapping, Sequence

import numpy as np

from .errors import HailoInvalidArgumentError, HailoNotFoundError, HailoNotSupportedError
from .stream import Format, FormatOrder, FormatType, StreamDirection, StreamInfo
from .transform import InputTransformContext, OutputTransformContext, device_frame_layout


class Device(abc.ABC):
    """A chip with one or more networks on it.

    `infer` takes and returns raw device frames: for each stream, an array of shape
    (N, elements) of the stream's device dtype (uint8, or uint16 for 16-bit streams) where
    elements * itemsize == StreamInfo.hw_frame_size.
    """

    @abc.abstractmethod
    def network_names(self) -> list[str]:
        """The networks this device serves, the default first."""

    @abc.abstractmethod
    def stream_infos(self, network_name: str | None = None) -> list[StreamInfo]:
        """Every input and output stream of a network (the default one when None)."""

    @abc.abstractmethod
    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs validated raw inputs; returns one raw array per output stream."""

    def infer(self, raw_inputs: Mapping[str, np.ndarray],
              network_name: str | None = None) -> dict[str, np.ndarray]:
        """Runs a batch of raw device frames through a network and returns raw output frames,
        keyed by stream name. Raises HailoInvalidArgumentError naming the stream when a frame
        has the wrong dtype or size, or a stream is missing or unknown."""
        return self._infer(*self.check_inputs(raw_inputs, network_name))

    def check_inputs(self, raw_inputs: Mapping[str, np.ndarray], network_name: str | None = None
                     ) -> tuple[str, dict[str, np.ndarray]]:
        """(network name, {input stream: (N, elements) frames}) after the checks of `infer`."""
        if not isinstance(raw_inputs, Mapping):
            raise HailoInvalidArgumentError(
                f"raw inputs must be a mapping {{input stream name: frames}}, got "
                f"{type(raw_inputs).__name__}")
        network = self._network_name(network_name)
        infos = self.stream_infos(network)
        inputs = {s.name: s for s in infos if s.is_input}
        unknown = sorted(set(raw_inputs) - set(inputs))
        if unknown:
            raise HailoNotFoundError(
                f"network '{network}' has no input stream {unknown}; its inputs are {sorted(inputs)}")
        missing = sorted(set(inputs) - set(raw_inputs))
        if missing:
            raise HailoInvalidArgumentError(
                f"network '{network}': no frames given for input stream(s) {missing}")
        batch = None
        checked = {}
        for name, info in inputs.items():
            frames = check_raw_frames(info, raw_inputs[name])
            if batch is not None and frames.shape[0] != batch:
                raise HailoInvalidArgumentError(
                    f"network '{network}': input stream '{name}' has {frames.shape[0]} frames, "
                    f"the other inputs {batch}; every input needs the same batch size")
            batch = frames.shape[0]
            checked[name] = frames
        return network, checked

    def _network_name(self, network_name: str | None) -> str:
        names = self.network_names()
        if network_name is None:
            return names[0]
        if network_name not in names:
            raise HailoNotFoundError(
                f"no network '{network_name}' on this device; it serves {names}")
        return network_name

    def close(self) -> None:
        """Releases the device. Closing twice is harmless."""

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_raw_frames(info: StreamInfo, frames) -> np.ndarray:
    """Validates a batch of raw device frames of a stream; returns it as (N, elements)."""
    (elements,), dtype = device_frame_layout(info)
    if not isinstance(frames, np.ndarray):
        raise HailoInvalidArgumentError(
            f"{info}: raw frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != dtype:
        raise HailoInvalidArgumentError(
            f"{info}: raw frames have dtype {frames.dtype}, the device stream takes {dtype}")
    if frames.ndim == 1:
        frames = frames[None]
    if frames.ndim != 2 or frames.shape[1] != elements:
        raise HailoInvalidArgumentError(
            f"{info}: raw frames have shape {frames.shape}, expected (N, {elements}) "
            f"({info.hw_frame_size} bytes a frame)")
    return np.ascontiguousarray(frames)


class NetworkGroupDevice(Device):
    """Several devices as one: the networks of all of them (names must differ), each request
    routed to the device that serves its network. The default network is the first device's."""

    def __init__(self, devices: Sequence[Device]):
        if not devices:
            raise HailoInvalidArgumentError("NetworkGroupDevice needs at least one device")
        self.devices = list(devices)
        self._owner: dict[str, Device] = {}
        for d in self.devices:
            for name in d.network_names():
                if name in self._owner:
                    raise HailoInvalidArgumentError(
                        f"two models define the network '{name}': network names must differ "
                        f"(rename one when parsing it, e.g. host-app parse --net-name)")
                self._owner[name] = d

    def network_names(self) -> list[str]:
        return list(self._owner)

    def stream_infos(self, network_name: str | None = None) -> list[StreamInfo]:
        name = self._network_name(network_name)
        return self._owner[name].stream_infos(name)

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._owner[network_name]._infer(network_name, raw_inputs)

    def close(self) -> None:
        for d in self.devices:
            d.close()


def device_side_context(info: StreamInfo, direction: StreamDirection):
    """A transform context for the chip's side of a stream: it converts device frames to NHWC
    codes (direction D2H: an output transform of the mirrored stream, no dequantization) or NHWC
    codes to device frames (H2D: an input transform, no quantization). Drivers use it to speak
    raw device frames to the host while their chip takes and gives codes in NHWC.
    HailoNotSupportedError for a stream whose device elements are not codes (NMS, FLOAT32,
    AUTO)."""
    code_type = {1: FormatType.UINT8, 2: FormatType.UINT16}.get(info.hw_data_bytes)
    if code_type is None or info.is_nms:
        raise HailoNotSupportedError(
            f"{info}: a chip-side transform takes streams of UINT8 / UINT16 codes in an image or "
            f"vector order, not device format {info.format}")
    mirrored = dataclasses.replace(info, direction=direction)
    user = Format(code_type, FormatOrder.NC if info.format.order == FormatOrder.NC
                  else FormatOrder.NHWC)
    if direction == StreamDirection.D2H:
        return OutputTransformContext(mirrored, user)
    return InputTransformContext(mirrored, user)
