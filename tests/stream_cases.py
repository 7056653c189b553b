"""Every supported (direction, device format, user format) configuration of the stream layer,
and random streams / frames for each: shared by the hypothesis tests and the random golden
vectors. Independent of the C code (built from docs/stream-layer.md through the reference)."""
from __future__ import annotations

import dataclasses
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reference_stream as ref  # noqa: E402
from hailort_py.stream import (Format, FormatFlags, FormatOrder as O, FormatType as T,  # noqa: E402
                               ImageShape, NmsBurstType, NmsInfo, QuantInfo, StreamDirection,
                               StreamInfo)

IN, OUT = StreamDirection.H2D, StreamDirection.D2H
NO_TRANSPOSE_ORDERS = {O.NC, O.RGB888, O.HAILO_NMS_ON_CHIP} | ref.YUV_DEVICE_ORDERS


@dataclasses.dataclass(frozen=True)
class Config:
    direction: StreamDirection
    device_type: T
    device_order: O
    user: Format

    @property
    def id(self) -> str:
        flags = "_T" if self.user.flags & FormatFlags.TRANSPOSED else ""
        return (f"{'in' if self.direction == IN else 'out'}-{self.device_order.name}-"
                f"{self.device_type.name}-{self.user.order.name}-{self.user.type.name}{flags}")


def _user_types(direction, device_type, device_order, host_order):
    if device_order in ref.YUV_DEVICE_ORDERS or host_order == O.HAILO_NMS_ON_CHIP:
        return [device_type]
    if host_order in ref.NMS_HOST_TYPES:  # by class FLOAT32; by score UINT8 (or FLOAT32)
        return [*ref.NMS_HOST_TYPES[host_order], T.AUTO]
    types = [T.FLOAT32, device_type]
    if direction == IN and device_type == T.UINT16:
        types.append(T.UINT8)  # widening
    if direction == OUT and device_type == T.UINT8:
        types.append(T.UINT16)  # widening
    return types


def supported_configs() -> list[Config]:
    configs = []
    for device_order, (host_orders, directions) in ref.ORDER_PAIRS.items():
        for direction, device_type, host_order in itertools.product(
                directions, (T.UINT8, T.UINT16), host_orders):
            if direction == OUT and host_order in ref.INPUT_ONLY_HOST_ORDERS:
                continue
            flag_sets = [FormatFlags.NONE]
            if device_order not in NO_TRANSPOSE_ORDERS:
                flag_sets.append(FormatFlags.TRANSPOSED)
            for utype, flags in itertools.product(
                    _user_types(direction, device_type, device_order, host_order), flag_sets):
                configs.append(Config(direction, device_type, device_order,
                                      Format(utype, host_order, flags)))
    return configs


# --------------------------------------------------------------- random streams ---
def random_quant_info(rng: np.random.Generator, device_type: T) -> QuantInfo:
    top = 65535 if device_type == T.UINT16 else 255
    zp = float(rng.integers(0, top + 1)) if rng.random() < 0.8 else float(rng.uniform(0, top))
    scale = float(2.0 ** -rng.integers(0, 12)) if rng.random() < 0.5 else float(rng.uniform(1e-4, 4))
    scale = float(np.float32(scale)) or 1.0
    lo = float((np.float32(0) - np.float32(zp)) * np.float32(scale))
    hi = float((np.float32(top) - np.float32(zp)) * np.float32(scale))
    if rng.random() < 0.3:  # limvals narrower than the code range
        lo, hi = lo / 2, hi / 2
    if rng.random() < 0.1:
        return QuantInfo(0.0, 1.0, lo, hi)  # identity
    return QuantInfo(zp, scale, lo, hi)


def random_shapes(rng: np.random.Generator, config: Config, wide: bool = False) -> tuple[tuple, tuple]:
    """(shape, hw_shape) that satisfy the device order's constraints. `wide` frames are big
    enough for the C library's vector loops (widths and feature counts past 64) and their
    tails; the default small ones keep the examples fast."""
    order, dtype = config.device_order, config.device_type
    k = 9 if wide else 1  # widths and feature counts scale by this
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    pad = lambda: r(0, 3 * (1 + wide * 4)) if rng.random() < 0.6 else 0  # noqa: E731
    if order == O.NC:
        c = r(1, 40 * k)
        return (1, 1, c), (1, 1, c + pad())
    if order == O.NHW:
        h, w = r(1, 6), r(1, 11 * k)
        return (h, w, 1), (h + pad(), w + pad(), 1)
    if order == O.RGB888:
        h, w = r(1, 5), r(1, 9 * k)
        return (h, w, 3), (h + pad(), w + pad(), 4)
    if order == O.YUY2:
        h, w = r(1, 5), r(1, 9 * k)
        hh, hw = h + pad(), w + pad()
        while (hh * hw * 2 * ref.TYPE_BYTES[dtype]) % ref.ALIGN:
            hw += 1
        return (h, w, 2), (hh, hw, 2)
    if order in ref.NV_DEVICE_ORDERS:
        h, w = 2 * r(1, 3), 2 * r(1, 5 * k)
        return (h, w, 3), (h + 2 * r(0, 1), w + 2 * r(0, 2 * k), 3)
    if order == O.HAILO_NMS_ON_CHIP:
        return (1, 1, 1), (1, 1, 1)
    h = r(1, 5 if not wide else 3)
    w = r(1, 11 * k)
    c = r(1, 20 * (1 + 2 * wide) if order == O.F8CR else 9 * k)
    hw_shape = (h + pad(), w + pad(), c + pad())
    if order == O.F8CR:
        hw_shape = (hw_shape[0], hw_shape[1], ref.align_up(c, 8) + 8 * int(rng.random() < 0.2))
    if rng.random() < 0.25:
        hw_shape = (h, w, c if order != O.F8CR else hw_shape[2])
    return (h, w, c), hw_shape


def random_nms_info(rng: np.random.Generator) -> NmsInfo:
    """1 to 3 chunks; sometimes bursts (below or above max_bboxes_per_class), which change
    the device frame's size and nothing else."""
    classes, per_class, chunks = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    total = 0 if rng.random() < 0.3 else int(rng.integers(1, classes * chunks * per_class + 3))
    burst = int(rng.integers(1, 9)) if rng.random() < 0.3 else 0
    return NmsInfo(classes, per_class, total, 8, chunks, burst_size=burst,
                   burst_type=NmsBurstType(int(rng.integers(0, 5))) if burst else NmsBurstType.H8_BBOX)


def random_stream(rng: np.random.Generator, config: Config, name: str = "s",
                  wide: bool = False) -> StreamInfo:
    shape, hw_shape = random_shapes(rng, config, wide)
    qp = random_quant_info(rng, config.device_type)
    qps: tuple[QuantInfo, ...] = ()
    nms = None
    numeric_float_output = (config.direction == OUT and config.user.type == T.FLOAT32
                            and config.device_order not in (O.NHW, O.HAILO_NMS_ON_CHIP))
    if numeric_float_output and rng.random() < 0.5:
        qps = tuple(random_quant_info(rng, config.device_type) for _ in range(shape[2]))
    if config.device_order == O.HAILO_NMS_ON_CHIP:
        nms = random_nms_info(rng)
        qp = QuantInfo(float(rng.integers(0, 8)), float(2.0 ** -rng.integers(8, 14)), 0.0, 1.0)
    device_flags = FormatFlags.QUANTIZED if rng.random() < 0.2 else FormatFlags.NONE
    if config.device_order not in NO_TRANSPOSE_ORDERS and rng.random() < 0.15:
        device_flags |= FormatFlags.TRANSPOSED  # a transpose runs iff the two flags differ
    return StreamInfo(name=name, direction=config.direction,
                      format=Format(config.device_type, config.device_order, device_flags),
                      shape=ImageShape(*shape), hw_shape=ImageShape(*hw_shape), quant_info=qp,
                      quant_infos=qps, nms_info=nms)


def random_user_format(rng: np.random.Generator, config: Config) -> Format:
    """The config's user format, sometimes with the legacy QUANTIZED flag (ignored)."""
    if rng.random() < 0.2:
        return dataclasses.replace(config.user, flags=config.user.flags | FormatFlags.QUANTIZED)
    return config.user


def random_golden_cases(count: int, seed: int):
    """`count` random golden cases over all supported configs (see tests/golden.py)."""
    import golden

    rng = np.random.default_rng(seed)
    configs = supported_configs()
    for i in range(count):
        config = configs[i % len(configs)] if i < len(configs) else configs[rng.integers(len(configs))]
        name = f"random_{seed}_{i:04d}_{config.id}"
        stream = random_stream(rng, config, name=f"random_{i}")
        yield golden.make_case(name, stream, random_user_format(rng, config), rng)
