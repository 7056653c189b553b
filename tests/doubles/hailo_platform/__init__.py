"""A TEST DOUBLE of HailoRT's Python package `hailo_platform` -- not HailoRT, and no chip.

It implements only the documented surface that hailort_py.hailort_driver uses (HEF, VDevice,
ConfigureParams, HailoStreamInterface, InputVStreamParams / OutputVStreamParams.make,
InferVStreams, FormatType, FormatOrder, HailoRTException), with HailoRT's names, argument
names and checks where the driver depends on them: vstreams take and return NHWC arrays of
(N, *vstream shape); the user format type must be the device type for raw codes (a 16-bit input
given as uint8 is HailoRT's "item size" error); every input must be given.

Its "HEF" is a JSON file {"har": PATH} naming a quantized HAR, and its chip is the emulator's
integer executor run directly on the NHWC codes (emulator.quantized_exec.run_codes) -- a path
independent of the driver's own layout conversions, so a test of the driver against
EmulatedDevice checks those conversions. Stream names differ from vstream names ("net/stream0"
...) as they may in real HEFs.
"""
from __future__ import annotations

import enum
import json
from types import SimpleNamespace

import numpy as np

__version__ = "0.0.0-test-double"


class HailoRTException(Exception):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class FormatType(enum.IntEnum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(enum.IntEnum):
    AUTO = 0
    NHWC = 1
    NHCW = 2
    NC = 6


class HailoStreamDirection(enum.IntEnum):
    H2D = 0
    D2H = 1


class HailoStreamInterface(enum.Enum):
    PCIe = 0
    INTEGRATED = 1
    ETH = 2


def _format(t, order, flags=0):
    return SimpleNamespace(type=FormatType(int(t)), order=FormatOrder(int(order)), flags=int(flags))


class HEF:
    def __init__(self, hef_source):
        if not isinstance(hef_source, (str, bytes)):
            raise ValueError("HEF() expects a str path or bytes")
        with open(hef_source, encoding="utf-8") as f:
            spec = json.load(f)
        from emulator import ClientRunner

        self.path = hef_source
        self.runner = ClientRunner(har=spec["har"])

    def get_network_group_names(self):
        return [self.runner.hn.name]


class ConfigureParams:
    @staticmethod
    def create_from_hef(hef, interface):
        if not isinstance(interface, HailoStreamInterface):
            raise HailoRTInvalidArgumentException("interface must be a HailoStreamInterface")
        return {name: SimpleNamespace(batch_size=0) for name in hef.get_network_group_names()}


class ConfiguredNetwork:
    def __init__(self, hef: HEF):
        from emulator.stream_export import chip_source

        r = self._runner = hef.runner
        self.name = r.hn.name
        self._vstreams, self._streams, self._stream_of, self._layer = [], [], {}, {}
        for i, s in enumerate(r.get_stream_infos()):
            host_order = FormatOrder.NC if int(s.format.order) == FormatOrder.NC else FormatOrder.NHWC
            q = SimpleNamespace(qp_zp=s.quant_info.qp_zp, qp_scale=s.quant_info.qp_scale,
                                limvals_min=s.quant_info.limvals_min,
                                limvals_max=s.quant_info.limvals_max)
            direction = HailoStreamDirection.H2D if s.is_input else HailoStreamDirection.D2H
            shape = (s.shape.features,) if host_order == FormatOrder.NC else tuple(s.shape)
            hw = (s.hw_shape.features,) if host_order == FormatOrder.NC else tuple(s.hw_shape)
            self._vstreams.append(SimpleNamespace(
                name=s.name, network_name=f"{self.name}/{self.name}", direction=direction,
                format=_format(s.format.type, host_order), quant_info=q, shape=shape))
            stream = f"{self.name}/stream{i}"
            self._streams.append(SimpleNamespace(
                name=stream, direction=direction, format=_format(s.format.type, s.format.order,
                                                                 s.format.flags),
                quant_info=q, shape=hw, sys_index=i, data_bytes=s.hw_data_bytes))
            self._stream_of[s.name] = stream
            layer = r.hn.layer(s.name)
            self._layer[s.name] = layer.name if s.is_input else chip_source(r, layer)[0]

    def get_input_vstream_infos(self, network_name=None):
        return [v for v in self._vstreams if v.direction == HailoStreamDirection.H2D]

    def get_output_vstream_infos(self, network_name=None):
        return [v for v in self._vstreams if v.direction == HailoStreamDirection.D2H]

    def get_input_stream_infos(self, network_name=None):
        return [s for s in self._streams if s.direction == HailoStreamDirection.H2D]

    def get_output_stream_infos(self, network_name=None):
        return [s for s in self._streams if s.direction == HailoStreamDirection.D2H]

    def get_stream_names_from_vstream_name(self, vstream_name):
        return [self._stream_of[vstream_name]]

    def _run(self, codes: dict) -> dict:
        from emulator.quantized_exec import run_codes

        hn = self._runner.hn
        ins = {self._layer[n]: a.reshape(a.shape[0], *hn.layers[self._layer[n]].output_shape[1:])
               for n, a in codes.items()}
        outs = self.get_output_vstream_infos()
        got = run_codes(self._runner, ins, [self._layer[v.name] for v in outs])
        return {v.name: np.ascontiguousarray(got[self._layer[v.name]]).reshape(-1, *v.shape)
                for v in outs}


class VDevice:
    def __init__(self, params=None, *, device_ids=None):
        self.params = params
        self.released = False

    @staticmethod
    def create_params():
        return SimpleNamespace(device_count=1, scheduling_algorithm="ROUND_ROBIN")

    def configure(self, hef, configure_params_by_name={}):  # noqa: B006 (HailoRT's signature)
        return [ConfiguredNetwork(hef)]

    def release(self):
        self.released = True


class _VStreamParamsFactory:
    @classmethod
    def make(cls, configured_network, quantized=None, format_type=None, timeout_ms=None,
             queue_size=None, network_name=None):
        infos = (configured_network.get_input_vstream_infos() if cls is InputVStreamParams
                 else configured_network.get_output_vstream_infos())
        t = FormatType.AUTO if format_type is None else FormatType(int(format_type))
        return {v.name: SimpleNamespace(user_buffer_format=_format(t, FormatOrder.AUTO),
                                        timeout_ms=timeout_ms or 10000, queue_size=queue_size or 2)
                for v in infos}


class InputVStreamParams(_VStreamParamsFactory):
    pass


class OutputVStreamParams(_VStreamParamsFactory):
    pass


_DTYPES = {FormatType.UINT8: np.uint8, FormatType.UINT16: np.uint16, FormatType.FLOAT32: np.float32}


class InferVStreams:
    def __init__(self, configured_net_group, input_vstreams_params, output_vstreams_params,
                 tf_nms_format=False):
        self.ng, self.inp, self.out = configured_net_group, input_vstreams_params, output_vstreams_params
        self.entered = False

    def __enter__(self):
        for infos, params in ((self.ng.get_input_vstream_infos(), self.inp),
                              (self.ng.get_output_vstream_infos(), self.out)):
            for v in infos:
                t = params[v.name].user_buffer_format.type
                if t not in (FormatType.AUTO, v.format.type):
                    raise HailoRTInvalidArgumentException(
                        f"{v.name}: this double serves raw codes only (user type {t.name}, "
                        f"device type {v.format.type.name})")
        self.entered = True
        return self

    def __exit__(self, *exc):
        self.entered = False

    def infer(self, input_data):
        if not self.entered:
            raise HailoRTException("InferVStreams used outside its `with` block")
        ins = self.ng.get_input_vstream_infos()
        if set(input_data) != {v.name for v in ins}:
            raise HailoRTException(f"Not all inputs have been provided: {sorted(input_data)}")
        batch = None
        for v in ins:
            a = input_data[v.name]
            want = _DTYPES[v.format.type]
            if a.dtype.itemsize != np.dtype(want).itemsize:
                raise HailoRTException(f"{v.name} numpy array item size is {a.dtype.itemsize}, "
                                       f"not {np.dtype(want).itemsize}")
            if tuple(a.shape[1:]) != tuple(v.shape):
                raise HailoRTException(f"{v.name}: shape {a.shape} is not (N, {v.shape})")
            if batch is not None and a.shape[0] != batch:
                raise HailoRTException("inputs have different batch sizes")
            batch = a.shape[0]
        return self.ng._run({v.name: np.asarray(input_data[v.name]) for v in ins})
