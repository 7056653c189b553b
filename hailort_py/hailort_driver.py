"""The `hailort` driver: a real chip through HailoRT's Python package, `hailo_platform`.

HailoRT is imported when the driver opens, never before, so this runtime installs and runs
without it. Without it the driver fails with a DriverError saying what to install.

The device speaks raw device frames, like every hailort_py.Device, so the host side (the C
transform contexts, vstreams, RemoteDevice) is the same as with the emulated chip. HailoRT's
vstreams take NHWC buffers, so each input frame is unpacked to NHWC codes with the C stream
layer (`device_side_context`), run through `InferVStreams` with user format = device format
(UINT8 / UINT16: HailoRT neither quantizes nor dequantizes), and each output's NHWC codes are
packed back into the output stream's device layout.

What this uses of `hailo_platform` (its documented surface, HailoRT 4.16 - 5.x): `HEF(path)`,
`HEF.get_network_group_names()`, `VDevice(params)` with `VDevice.create_params()` (the
scheduler is on by default: no `activate()`), `ConfigureParams.create_from_hef(hef, interface=
HailoStreamInterface.PCIe)`, `vdevice.configure(hef, params)` -> configured networks with
`.name`, `get_input_vstream_infos()`, `get_output_vstream_infos()`,
`get_stream_names_from_vstream_name(name)`, `get_input_stream_infos()`,
`get_output_stream_infos()`; `InputVStreamParams.make(ng, format_type=...)`,
`OutputVStreamParams.make(...)`; `InferVStreams(ng, in_params, out_params)` with
`.infer({vstream: (N, H, W, C) array})`; `FormatType`; `HailoRTException`.
Vstreams that HailoRT splits over several streams, and NMS outputs, are refused by name.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .device import Device, device_side_context
from .drivers import DriverError
from .errors import (HailoCommunicationClosedError, HailoInternalFailureError,
                     HailoInvalidArgumentError, HailoNotFoundError, HailoNotSupportedError,
                     HailoRTError, HailoTimeoutError)
from .stream import (Format, FormatFlags, FormatOrder, ImageShape, QuantInfo, StreamDirection,
                     StreamInfo)

INSTALL_HINT = ("the 'hailort' driver needs HailoRT's Python package `hailo_platform` "
                "(pyhailort) and the HailoRT driver for the board: install the wheel of the "
                "HailoRT release that matches the board's driver (`pip install "
                "hailort-<version>-cp3X-...whl`, from Hailo's developer zone; it is not on PyPI)")

# pyhailort's exception class names -> our status classes (the rest: internal failure)
_ERRORS = {"HailoRTTimeout": HailoTimeoutError, "HailoRTInvalidArgumentException":
           HailoInvalidArgumentError, "HailoRTNotFoundException": HailoNotFoundError,
           "HailoRTInvalidHEFException": HailoInvalidArgumentError,
           "HailoCommunicationClosedException": HailoCommunicationClosedError}


def import_hailo_platform():
    try:
        import hailo_platform
    except ImportError as e:
        raise DriverError(f"{INSTALL_HINT} ({e})") from None
    return hailo_platform


def _as_error(e: BaseException, where: str) -> HailoRTError:
    cls = _ERRORS.get(type(e).__name__, HailoInternalFailureError)
    return cls(f"{where}: HailoRT: {type(e).__name__}: {e}")


class _Network:
    """One configured network group: its stream infos and the vstream params for raw codes."""

    def __init__(self, hp, ng, hef_path: str):
        self.ng, self.name = ng, ng.name
        where = f"{hef_path}: network '{self.name}'"
        streams = {s.name: s for s in [*ng.get_input_stream_infos(), *ng.get_output_stream_infos()]}
        self.infos: list[StreamInfo] = []
        for direction, vinfos in ((StreamDirection.H2D, ng.get_input_vstream_infos()),
                                  (StreamDirection.D2H, ng.get_output_vstream_infos())):
            for v in vinfos:
                names = list(ng.get_stream_names_from_vstream_name(v.name))
                if len(names) != 1:
                    raise HailoNotSupportedError(f"{where}: vstream '{v.name}' is carried by "
                                                 f"{len(names)} streams {names}; this driver "
                                                 f"serves one stream per vstream")
                self.infos.append(_stream_info(v, streams[names[0]], direction,
                                               len(self.infos), where))
        self.in_params = _raw_params(hp.InputVStreamParams, ng, ng.get_input_vstream_infos())
        self.out_params = _raw_params(hp.OutputVStreamParams, ng, ng.get_output_vstream_infos())
        self.unpack = {s.name: device_side_context(s, StreamDirection.D2H)
                       for s in self.infos if s.is_input}
        self.pack = {s.name: device_side_context(s, StreamDirection.H2D)
                     for s in self.infos if not s.is_input}


def _stream_info(vinfo: Any, sinfo: Any, direction: StreamDirection, index: int,
                 where: str) -> StreamInfo:
    """Our StreamInfo of a vstream: its name, logical shape and quant info; the device format
    and hw_shape of the stream under it."""
    order = int(sinfo.format.order)  # an order this runtime does not know stays an int
    if order in (FormatOrder.HAILO_NMS, FormatOrder.HAILO_NMS_ON_CHIP, FormatOrder.HAILO_NMS_BY_CLASS,
                 FormatOrder.HAILO_NMS_BY_SCORE, FormatOrder.HAILO_NMS_WITH_BYTE_MASK):
        raise HailoNotSupportedError(f"{where}: vstream '{vinfo.name}' is an NMS output; this "
                                     f"driver serves image and vector streams only")
    q = vinfo.quant_info
    shape, hw = tuple(vinfo.shape), tuple(sinfo.shape)
    if len(shape) == 1:  # NC: (features,)
        shape, hw = (1, 1, shape[0]), (1, 1, hw[-1])
    elif len(shape) == 2:  # NHW
        shape, hw = (*shape, 1), (*hw, 1)
    if len(shape) != 3 or len(hw) != 3:
        raise HailoNotSupportedError(f"{where}: vstream '{vinfo.name}' has shape {tuple(vinfo.shape)} "
                                     f"over a stream of shape {tuple(sinfo.shape)}; this driver "
                                     f"serves rank 1 to 3 frames")
    try:
        return StreamInfo(name=vinfo.name, direction=direction,
                          format=Format(int(sinfo.format.type), order,
                                        FormatFlags(int(sinfo.format.flags) & int(FormatFlags.TRANSPOSED))),
                          shape=ImageShape(*shape), hw_shape=ImageShape(*hw),
                          quant_info=QuantInfo(q.qp_zp, q.qp_scale, q.limvals_min, q.limvals_max),
                          index=index)
    except HailoRTError as e:  # a value our StreamInfo refuses (hailort_py.stream checks each)
        raise HailoNotSupportedError(f"{where}: vstream '{vinfo.name}': {e}") from None


def _raw_params(params_cls: Any, ng: Any, vinfos: Sequence[Any]) -> dict[str, Any]:
    """vstream params whose user type is each vstream's device type (no host quantization).
    make() applies one type to every vstream, so it is called once per type present."""
    made: dict[int, dict[str, Any]] = {}
    out = {}
    for v in vinfos:
        t = v.format.type
        if int(t) not in made:
            made[int(t)] = params_cls.make(ng, format_type=t)
        out[v.name] = made[int(t)][v.name]
    return out


class HailoRTDevice(Device):
    """The networks of one or more HEFs on a HailoRT VDevice (the default device, scheduler on).
    `hailo_platform` is imported here; without it a DriverError says what to install."""

    def __init__(self, hef_paths: Sequence[str | os.PathLike], vdevice_params: Any = None):
        if not hef_paths:
            raise HailoInvalidArgumentError("the hailort driver needs --model NET.hef")
        hp = self._hp = import_hailo_platform()
        # HailoRT's own failures (hailo_platform.HailoRTException and its subclasses) become our
        # status classes; anything else HailoRT or this driver raises is a bug, with its traceback
        failures = self._failures = hp.HailoRTException
        try:
            self._vdevice = hp.VDevice(vdevice_params if vdevice_params is not None
                                       else hp.VDevice.create_params())
        except failures as e:
            raise _as_error(e, "opening the Hailo device (VDevice)") from None
        self._networks: dict[str, _Network] = {}
        self._closed = False
        try:
            for path in map(os.fspath, hef_paths):
                try:
                    hef = hp.HEF(path)
                    params = hp.ConfigureParams.create_from_hef(
                        hef, interface=hp.HailoStreamInterface.PCIe)
                    groups = self._vdevice.configure(hef, params)
                except failures as e:
                    raise _as_error(e, f"{path}: loading and configuring the HEF") from None
                for ng in groups:
                    if ng.name in self._networks:
                        raise HailoInvalidArgumentError(f"{path}: network '{ng.name}' is already "
                                                        f"loaded from another HEF")
                    self._networks[ng.name] = _Network(hp, ng, path)
        except BaseException:
            self.close()
            raise
        self.device_id = f"hailort:{','.join(self._networks)}"

    def network_names(self) -> list[str]:
        return list(self._networks)

    def stream_infos(self, network_name: str | None = None) -> list[StreamInfo]:
        return list(self._networks[self._network_name(network_name)].infos)

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._closed:
            raise HailoCommunicationClosedError("the HailoRT device is closed")
        net = self._networks[network_name]
        n = next(iter(raw_inputs.values())).shape[0]
        codes = {}
        for s in net.infos:
            if s.is_input:
                unpack = net.unpack[s.name]
                codes[s.name] = unpack.transform(raw_inputs[s.name]).reshape(n, *unpack.host_shape)
        try:
            with self._hp.InferVStreams(net.ng, net.in_params, net.out_params) as pipeline:
                results = pipeline.infer(codes)
        except self._failures as e:
            raise _as_error(e, f"network '{network_name}': inference") from None
        raw = {}
        for s in net.infos:
            if not s.is_input:
                pack = net.pack[s.name]
                host = np.ascontiguousarray(results[s.name], pack.host_dtype)
                raw[s.name] = pack.transform(host.reshape(n, *pack.host_shape))
        return raw

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        vdevice = getattr(self, "_vdevice", None)
        if vdevice is not None:
            vdevice.release()


def open_hailort_device(models: Sequence[str | os.PathLike]) -> Device:
    """The `hailort` driver of the device server (entry point `hailort_py.drivers`)."""
    return HailoRTDevice(models)
