"""Golden vectors of the stream layer: cases whose expected bytes come from the numpy
reference (tests/reference_stream.py), read by the C++ interop program (native/) and checked
against the Python C path by tests/stream/test_stream_golden.py.

    python -m tests.golden --out tests/golden               # the committed, deterministic set
    python -m tests.golden --out DIR --random 2000 --seed 7  # fixed cases + 2000 random ones

File format (one file per case, `<name>.case`; text lines `key values...`, single spaces, '\\n';
floats are 8-hex-digit IEEE-754 float32 bit patterns):

    HGV1
    name <case-name-no-spaces>
    direction <0|1>
    stream_name <no-spaces>
    device_format <type> <order> <flags>
    shape <h> <w> <c>
    hw_shape <h> <w> <c>
    quant_info <zp> <scale> <lo> <hi>
    quant_infos <n>
    qp <zp> <scale> <lo> <hi>        (exactly n such lines)
    nms_info <classes> <max_bboxes_per_class> <max_bboxes_total> <bbox_size> <chunks_per_frame>
             <burst_size> <burst_type>     (readers also accept the first five alone)
    user_format <type> <order> <flags>
    expected_status <int>
    src_size <bytes>
    expected_size <bytes>
    data
    <src_size raw bytes><expected_size raw bytes>

Semantics: make a context of the stream's direction for (stream, user_format). If that fails,
its status must equal expected_status (then src_size and expected_size are 0). Otherwise
transform the src bytes (src_size bytes, which may differ from the context's frame size on
purpose) into a destination of the context's frame size: the status must equal
expected_status, and on success the destination must equal the expected bytes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import struct
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reference_stream as ref  # noqa: E402
from hailort_py.stream import (Format, FormatFlags, FormatOrder as O, FormatType as T,  # noqa: E402
                               ImageShape, NmsBurstType, NmsDefuseInfo, NmsInfo, QuantInfo,
                               StreamDirection, StreamInfo)

MAGIC = "HGV1"
# The committed set: the fixed cases plus this many random ones of this seed.
DEFAULT_RANDOM_CASES = 240
DEFAULT_SEED = 0
IN, OUT = StreamDirection.H2D, StreamDirection.D2H


@dataclasses.dataclass(frozen=True)
class GoldenCase:
    name: str
    stream: StreamInfo
    user_format: Format
    expected_status: int
    src: bytes
    expected: bytes


# ----------------------------------------------------------------------- file format ---
def _f32(x: float) -> str:
    return struct.pack(">f", x).hex()


def _qp_line(qp: QuantInfo) -> str:
    return " ".join(_f32(v) for v in (qp.qp_zp, qp.qp_scale, qp.limvals_min, qp.limvals_max))


def _fmt(f: Format) -> str:
    return f"{int(f.type)} {int(f.order)} {int(f.flags)}"


def encode(case: GoldenCase) -> bytes:
    s = case.stream
    n = s.nms_info or NmsInfo(0, 0, 0, 0, 0)
    # is_defused / defuse_info are not written: no transform reads them
    assert not n.is_defused and n.defuse_info == NmsDefuseInfo(), case.name
    lines = [
        MAGIC,
        f"name {case.name}",
        f"direction {int(s.direction)}",
        f"stream_name {s.name}",
        f"device_format {_fmt(s.format)}",
        f"shape {s.shape.height} {s.shape.width} {s.shape.features}",
        f"hw_shape {s.hw_shape.height} {s.hw_shape.width} {s.hw_shape.features}",
        f"quant_info {_qp_line(s.quant_info)}",
        f"quant_infos {len(s.quant_infos)}",
        *(f"qp {_qp_line(qp)}" for qp in s.quant_infos),
        f"nms_info {n.number_of_classes} {n.max_bboxes_per_class} {n.max_bboxes_total} "
        f"{n.bbox_size} {n.chunks_per_frame} {n.burst_size} {int(n.burst_type)}",
        f"user_format {_fmt(case.user_format)}",
        f"expected_status {case.expected_status}",
        f"src_size {len(case.src)}",
        f"expected_size {len(case.expected)}",
        "data",
    ]
    for line in lines:
        assert " " not in line.split(" ", 1)[0] and "  " not in line and "\n" not in line, line
    return ("\n".join(lines) + "\n").encode("ascii") + case.src + case.expected


def _read_f32(hex8: str) -> float:
    if len(hex8) != 8:
        raise ValueError(f"float32 must be 8 hex digits, got {hex8!r}")
    return struct.unpack(">f", bytes.fromhex(hex8))[0]


def decode(blob: bytes) -> GoldenCase:
    """Parses one .case file (the inverse of encode; used to check the committed set)."""
    pos = 0
    fields: dict[str, list[str]] = {}
    qps: list[QuantInfo] = []
    while True:
        end = blob.index(b"\n", pos)
        line = blob[pos:end].decode("ascii")
        pos = end + 1
        if line == "data":
            break
        if line == MAGIC:
            fields["magic"] = []
            continue
        key, _, rest = line.partition(" ")
        values = rest.split(" ")
        if key == "qp":
            qps.append(QuantInfo(*map(_read_f32, values)))
        else:
            fields[key] = values
    if "magic" not in fields:
        raise ValueError("not an HGV1 case")
    ints = {k: [int(v) for v in vals] for k, vals in fields.items()
            if k not in ("name", "stream_name", "quant_info", "magic")}
    if len(qps) != ints["quant_infos"][0]:
        raise ValueError("quant_infos count does not match the qp lines")
    nms = ints["nms_info"]
    if len(nms) not in (5, 7):
        raise ValueError(f"nms_info has {len(nms)} values, not 5 or 7")
    nms_fields = ("number_of_classes", "max_bboxes_per_class", "max_bboxes_total", "bbox_size",
                  "chunks_per_frame", "burst_size", "burst_type")
    stream = StreamInfo(
        name=fields["stream_name"][0], direction=ints["direction"][0],
        format=Format(*ints["device_format"]), shape=ImageShape(*ints["shape"]),
        hw_shape=ImageShape(*ints["hw_shape"]),
        quant_info=QuantInfo(*map(_read_f32, fields["quant_info"])), quant_infos=tuple(qps),
        nms_info=NmsInfo(**dict(zip(nms_fields, nms))) if any(nms) else None)
    src_size, expected_size = ints["src_size"][0], ints["expected_size"][0]
    if len(blob) != pos + src_size + expected_size:
        raise ValueError("data size does not match src_size + expected_size")
    return GoldenCase(fields["name"][0], stream, Format(*ints["user_format"]),
                      ints["expected_status"][0], blob[pos:pos + src_size],
                      blob[pos + src_size:])


# -------------------------------------------------------------------------- cases ---
def _qp(zp: float, scale: float, lo: float | None = None, hi: float | None = None) -> QuantInfo:
    """A QP whose limvals are the real range of the uint8 codes unless given."""
    zp32, scale32 = np.float32(zp), np.float32(scale)
    lo = float((np.float32(0) - zp32) * scale32) if lo is None else lo
    hi = float((np.float32(255) - zp32) * scale32) if hi is None else hi
    return QuantInfo(zp, scale, lo, hi)


def _stream(name, direction, dtype, order, shape, hw_shape=None, qp=None, qps=(), nms=None,
            flags=FormatFlags.NONE) -> StreamInfo:
    return StreamInfo(name=name, direction=direction, format=Format(dtype, order, flags),
                      shape=ImageShape(*shape), hw_shape=ImageShape(*(hw_shape or shape)),
                      quant_info=qp or _qp(128, 1 / 64), quant_infos=tuple(qps), nms_info=nms)


def random_host_frame(rng: np.random.Generator, stream: StreamInfo, user: Format) -> np.ndarray:
    """A host frame for an input stream: codes of the user type, or float32 values that
    straddle the limvals with exact .5 ties, ±inf and NaN."""
    shape, dtype = ref.host_shape(stream, user), ref.host_dtype(stream, user)
    if dtype == np.float32:
        qp = stream.quant_info
        top = 65535 if stream.format.type == T.UINT16 else 255
        codes = rng.integers(-8, top + 9, size=shape).astype(np.float32)
        ties = rng.integers(0, 2, size=shape).astype(np.float32) * np.float32(0.5)
        x = ((codes + ties - np.float32(qp.qp_zp)) * np.float32(qp.qp_scale)).astype(np.float32)
        if x.size >= 8:
            flat = x.reshape(-1)
            picks = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
            specials = np.array([np.nan, np.inf, -np.inf, qp.limvals_min, qp.limvals_max,
                                 -0.0], np.float32)
            flat[picks] = specials[: len(picks)]
        return x
    return rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


def random_device_frame(rng: np.random.Generator, stream: StreamInfo) -> bytes:
    dtype = ref.NP_TYPE[stream.format.type]
    count = ref.hw_frame_size(stream) // dtype.itemsize
    return rng.integers(0, np.iinfo(dtype).max + 1, size=count, dtype=dtype).astype(
        dtype.newbyteorder("<")).tobytes()


def random_nms_frame(rng: np.random.Generator, stream: StreamInfo, counts: str | None = None) -> bytes:
    """A valid device NMS frame. counts: "zero", "full" (every count the maximum), "random"
    (each count in [0, max]), or None for one of the three at random (mostly "random")."""
    n = stream.nms_info
    if counts is None:
        counts = str(rng.choice(["random", "random", "random", "random", "zero", "full"]))
    chunks = []
    for _ in range(n.chunks_per_frame):
        chunk = []
        for _ in range(n.number_of_classes):
            count = {"zero": 0, "full": n.max_bboxes_per_class}.get(
                counts, None)
            if count is None:
                count = int(rng.integers(0, n.max_bboxes_per_class + 1))
            # scores from a few values so that ties (across classes) happen
            chunk.append([ref.nms_pack(int(rng.choice([100, 200, 300, int(rng.integers(0, 65536))])),
                                       *map(int, rng.integers(0, 4096, 4))) for _ in range(count)])
        chunks.append(chunk)
    return ref.nms_encode(stream, chunks)


def make_case(name: str, stream: StreamInfo, user: Format, rng: np.random.Generator,
              src: bytes | None = None, expected_status: int | None = None) -> GoldenCase:
    """A case with the reference's status and expected bytes (src random unless given)."""
    status, resolved = ref.check(stream, user)
    if status != ref.SUCCESS:
        assert expected_status in (None, status), (name, status, expected_status)
        return GoldenCase(name, stream, user, status, b"", b"")
    if src is None:
        if stream.direction == IN:
            src = random_host_frame(rng, stream, resolved).tobytes()
        elif stream.format.order == O.HAILO_NMS_ON_CHIP:
            src = random_nms_frame(rng, stream)
        else:
            src = random_device_frame(rng, stream)
    expected = b""
    if expected_status is None:
        expected_status = ref.SUCCESS
        if stream.direction == IN:
            host = np.frombuffer(src, ref.host_dtype(stream, resolved)).reshape(
                ref.host_shape(stream, resolved))
            expected = ref.input_frame(stream, resolved, host)
        else:
            try:
                expected = ref.output_frame(stream, resolved, src).tobytes()
            except ref.NmsFrameError:
                expected_status = ref.INVALID_FRAME
    return GoldenCase(name, stream, user, expected_status, src, expected)


def fixed_cases() -> Iterator[GoldenCase]:
    """The committed set: every layout, both directions, per-feature QPs, NMS, errors."""
    rng = np.random.default_rng(20261127)
    A = Format()
    F32, U8, U16 = T.FLOAT32, T.UINT8, T.UINT16
    tr = FormatFlags.TRANSPOSED

    def case(name, direction, dtype, order, shape, hw=None, user=A, **kw):
        stream = _stream(name, direction, dtype, order, shape, hw, **kw)
        return make_case(name, stream, user, rng)

    # ---- inputs
    yield case("in_nhcw_f32_nhwc_pad", IN, U8, O.NHCW, (3, 5, 3), (3, 8, 3), Format(F32, O.NHWC))
    yield case("in_nhcw_f32_auto_u16", IN, U16, O.NHCW, (2, 7, 5), (2, 8, 6), Format(F32),
               qp=_qp(1000, 1 / 4096, -0.25, 15.5))
    yield case("in_nhcw_u8_nchw", IN, U8, O.NHCW, (4, 3, 5), (4, 4, 5), Format(U8, O.NCHW))
    yield case("in_nhcw_u8_nhcw_copy", IN, U8, O.NHCW, (2, 8, 3), None, Format(U8, O.NHCW))
    yield case("in_nhcw_u8_to_u16_widen", IN, U16, O.NHCW, (3, 3, 3), (3, 4, 3), Format(U8, O.NHWC))
    yield case("in_nhcw_u16_copy", IN, U16, O.NHCW, (2, 3, 2), (2, 4, 2), Format(U16, O.NHWC))
    yield case("in_nhcw_rgb4", IN, U8, O.NHCW, (3, 5, 3), (3, 6, 3), Format(U8, O.RGB4))
    yield case("in_nhcw_f32_transposed", IN, U8, O.NHCW, (3, 5, 2), (3, 6, 2), Format(F32, O.NHWC, tr))
    yield case("in_nhcw_identity_qp", IN, U8, O.NHCW, (2, 9, 1), None, Format(F32),
               qp=QuantInfo(0, 1, 0, 255))
    yield case("in_nhwc_f32_pad", IN, U8, O.NHWC, (3, 5, 3), (4, 6, 3), Format(F32))
    yield case("in_nhwc_u8_copy", IN, U8, O.NHWC, (2, 4, 4), None, Format(U8))
    yield case("in_nhwc_rgb4", IN, U8, O.NHWC, (2, 3, 3), None, Format(U8, O.RGB4))
    yield case("in_fcr_f32_nhwc", IN, U8, O.FCR, (2, 3, 5), (2, 3, 8), Format(F32, O.NHWC))
    yield case("in_fcr_u8_fcr", IN, U8, O.FCR, (3, 3, 3), (3, 4, 4), Format(U8, O.FCR))
    yield case("in_f8cr_f32_c3", IN, U8, O.F8CR, (2, 3, 3), (2, 4, 8), Format(F32, O.NHWC))
    yield case("in_f8cr_u8_c11", IN, U8, O.F8CR, (2, 3, 11), (2, 3, 16), Format(U8, O.F8CR))
    yield case("in_f8cr_u16_c9", IN, U16, O.F8CR, (1, 5, 9), (2, 5, 16), Format(F32))
    yield case("in_nc_f32", IN, U8, O.NC, (1, 1, 13), (1, 1, 16), Format(F32, O.NC))
    yield case("in_rgb888", IN, U8, O.RGB888, (3, 5, 3), (3, 6, 4), Format(U8, O.NHWC))
    yield case("in_rgb888_f32", IN, U8, O.RGB888, (2, 3, 3), (2, 3, 4), Format(F32, O.NHWC))
    yield case("in_yuy2", IN, U8, O.YUY2, (2, 6, 2), None, Format(U8, O.YUY2))
    yield case("in_nv12", IN, U8, O.HAILO_YYUV, (4, 6, 3), (4, 8, 3), Format(U8, O.NV12))
    yield case("in_nv21", IN, U8, O.HAILO_YYVU, (2, 4, 3), None, Format(U8, O.NV21))
    yield case("in_i420", IN, U8, O.HAILO_YYYYUV, (4, 6, 3), (4, 8, 3), Format(U8, O.I420))
    # ---- outputs
    qps = [_qp(float(z), s) for z, s in ((3, 0.5), (120, 1 / 32), (7, 0.125), (0, 2.0))]
    yield case("out_nhcw_f32_nhwc_per_feature", OUT, U8, O.NHCW, (3, 5, 4), (3, 8, 4),
               Format(F32, O.NHWC), qps=qps)
    yield case("out_nhcw_f32_nchw_per_feature", OUT, U8, O.NHCW, (2, 3, 4), (2, 4, 4),
               Format(F32, O.NCHW), qps=qps)
    yield case("out_nhcw_u8_nhcw", OUT, U8, O.NHCW, (2, 5, 3), (2, 8, 3), Format(U8, O.NHCW))
    yield case("out_nhcw_u16_f32", OUT, U16, O.NHCW, (2, 3, 3), (2, 4, 3), Format(F32),
               qp=_qp(30000, 1 / 1024, -30, 34))
    yield case("out_nhcw_u8_to_u16", OUT, U8, O.NHCW, (2, 3, 2), (2, 4, 2), Format(U16, O.NHWC))
    yield case("out_nhcw_transposed", OUT, U8, O.NHCW, (3, 4, 2), (3, 8, 2), Format(F32, O.NHWC, tr))
    yield case("out_nhwc_f32", OUT, U8, O.NHWC, (3, 3, 5), (3, 4, 5), Format(F32))
    yield case("out_nhwc_u8_copy", OUT, U8, O.NHWC, (2, 2, 4), None, Format(U8))
    yield case("out_fcr_f32", OUT, U8, O.FCR, (2, 3, 3), (2, 3, 8), Format(F32, O.NHWC))
    yield case("out_fcr_fcr_u8", OUT, U8, O.FCR, (2, 3, 5), (2, 4, 8), Format(U8, O.FCR))
    yield case("out_f8cr_f32_c11", OUT, U8, O.F8CR, (2, 3, 11), (2, 4, 16), Format(F32, O.NHWC),
               qps=[_qp(float(i), 1 / (i + 1)) for i in range(11)])
    yield case("out_f8cr_f8cr_u16", OUT, U16, O.F8CR, (1, 3, 8), (1, 3, 8), Format(U16, O.F8CR))
    yield case("out_nc_f32", OUT, U8, O.NC, (1, 1, 10), (1, 1, 16), Format(F32))
    yield case("out_nhw_argmax_cast", OUT, U8, O.NHW, (3, 5, 1), (3, 8, 1), Format(F32, O.NHW))
    yield case("out_nhw_u16", OUT, U16, O.NHW, (2, 3, 1), None, Format(U16))
    nms = NmsInfo(3, 4, 5, 8, 2)
    nms_qp = _qp(0, 1 / 4096, 0, 16)
    yield case("out_nms_by_class", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(F32, O.HAILO_NMS_BY_CLASS), nms=nms, qp=nms_qp)
    yield case("out_nms_by_score", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(F32, O.HAILO_NMS_BY_SCORE), nms=nms, qp=nms_qp)
    yield case("out_nms_by_score_u8", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(U8, O.HAILO_NMS_BY_SCORE), nms=nms, qp=nms_qp)
    yield case("out_nms_by_score_auto_uncapped", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(T.AUTO, O.HAILO_NMS_BY_SCORE), nms=NmsInfo(2, 3, 0, 8, 1), qp=nms_qp)
    yield case("out_nms_raw", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(U16, O.HAILO_NMS_ON_CHIP), nms=nms, qp=nms_qp)
    yield from nms_chunk_cases(rng)
    # ---- errors
    yield case("err_in_u16_to_u8", IN, U8, O.NHCW, (2, 2, 2), None, Format(U16, O.NHWC))
    yield case("err_out_u16_to_u8", OUT, U16, O.NHCW, (2, 2, 2), None, Format(U8, O.NHWC))
    yield case("err_float32_device", IN, F32, O.NHWC, (2, 2, 2), None, Format(F32))
    yield case("err_auto_device_type", IN, T.AUTO, O.NHWC, (2, 2, 2), None, Format(F32))
    yield case("err_nv12_into_nhcw", IN, U8, O.NHCW, (2, 2, 3), None, Format(U8, O.NV12))
    yield case("err_shape_zero", IN, U8, O.NHCW, (2, 0, 3), (2, 4, 3), Format(F32))
    yield case("err_hw_smaller", IN, U8, O.NHWC, (2, 5, 3), (2, 4, 3), Format(F32))
    yield case("err_unknown_user_order", IN, U8, O.NHWC, (2, 2, 3), None, Format(F32, 99))
    yield case("err_qp_count", OUT, U8, O.NHCW, (2, 2, 3), None, Format(F32), qps=qps[:2])
    yield case("err_scale_zero", IN, U8, O.NHCW, (2, 2, 3), None, Format(F32), qp=QuantInfo(0, 0, 0, 1))
    yield case("err_input_only_order_as_output", OUT, U8, O.RGB888, (2, 2, 3), (2, 2, 4),
               Format(U8, O.NHWC))
    yield case("err_limvals_inverted", IN, U8, O.NHCW, (2, 2, 3), None, Format(F32),
               qp=QuantInfo(128, 1 / 64, 1, -1))
    yield case("err_nms_by_score_u16", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(U16, O.HAILO_NMS_BY_SCORE), nms=nms, qp=nms_qp)
    yield case("err_nms_by_score_total", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(U8, O.HAILO_NMS_BY_SCORE), nms=NmsInfo(300, 100, 0, 8, 3), qp=nms_qp)
    yield case("err_nms_burst_type", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), None,
               Format(F32, O.HAILO_NMS_BY_CLASS), nms=NmsInfo(2, 2, burst_type=5), qp=nms_qp)
    overrun = _stream("err_nms_overrun", OUT, U16, O.HAILO_NMS_ON_CHIP, (1, 1, 1), nms=nms, qp=nms_qp)
    bad = bytearray(ref.hw_frame_size(overrun))
    bad[0:2] = (nms.max_bboxes_per_class + 1).to_bytes(2, "little")
    yield make_case("err_nms_overrun", overrun, Format(F32, O.HAILO_NMS_BY_CLASS), rng,
                    src=bytes(bad))
    short = _stream("err_src_size", IN, U8, O.NHCW, (2, 3, 3), (2, 4, 3))
    good = make_case("err_src_size", short, Format(F32), rng)
    yield dataclasses.replace(good, expected_status=ref.INSUFFICIENT_BUFFER, src=good.src + bytes(4),
                              expected=b"")


def nms_chunk_cases(rng: np.random.Generator) -> Iterator[GoldenCase]:
    """HailoRT's NMS rules, case by case: 1 to 3 chunks, UINT8 and UINT16 device types,
    every count 0 / every count the maximum / random counts, by class, by score (UINT8) and
    raw, with and without bursts; and the example of the issue (one box per chunk)."""
    qp = _qp(3, 1 / 512, 0, 16)
    for chunks in (1, 2, 3):
        for dtype in (T.UINT8, T.UINT16):
            for counts in ("zero", "full", "random"):
                burst = {1: 0, 2: 6, 3: 2}[chunks]  # none, above and below max_bboxes_per_class
                nms = NmsInfo(2 + chunks, 4, 0 if counts != "random" else 5 * chunks, 8, chunks,
                              burst_size=burst, burst_type=NmsBurstType.H8_PER_CLASS if burst else 0)
                stream = _stream(f"nms{chunks}", OUT, dtype, O.HAILO_NMS_ON_CHIP, (1, 1, 1),
                                 nms=nms, qp=qp)
                src = random_nms_frame(rng, stream, counts)
                tag = f"{chunks}chunks_{dtype.name.lower()}_{counts}"
                for user, what in ((Format(T.AUTO, O.HAILO_NMS_BY_CLASS), "by_class"),
                                   (Format(T.UINT8, O.HAILO_NMS_BY_SCORE), "by_score"),
                                   (Format(dtype, O.HAILO_NMS_ON_CHIP), "raw")):
                    if what == "raw" and counts != "random":
                        continue
                    yield make_case(f"out_nms_{tag}_{what}", stream, user, rng, src=src)
    # NmsInfo(1, 1, 0, 8, 2), identity QP, one box per chunk: [2, box A, box B], 11 floats
    example = _stream("example", OUT, T.UINT16, O.HAILO_NMS_ON_CHIP, (1, 1, 1),
                      nms=NmsInfo(1, 1, 0, 8, 2), qp=QuantInfo(0, 1, 0, 65535))
    frame = ref.nms_encode(example, [[[ref.nms_pack(7, 1, 2, 3, 4)]], [[ref.nms_pack(9, 5, 6, 7, 8)]]])
    by_class = make_case("out_nms_issue_example", example, Format(), rng, src=frame)
    assert np.frombuffer(by_class.expected, np.float32).tolist() == [2, 1, 2, 3, 4, 7, 5, 6, 7, 8, 9]
    yield by_class


def write_cases(cases, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases:
        path = out / f"{case.name}.case"
        path.write_bytes(encode(case))
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="directory to write .case files to (its old .case files are removed)")
    parser.add_argument("--random", type=int, default=DEFAULT_RANDOM_CASES, metavar="N",
                        help="random cases to add to the fixed ones (tests/stream_cases.py; "
                             f"default {DEFAULT_RANDOM_CASES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the random cases (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    cases = list(fixed_cases())
    for stale in args.out.glob("*.case") if args.out.is_dir() else ():
        stale.unlink()  # the directory holds exactly this set afterwards
    if args.random:
        import stream_cases

        cases += list(stream_cases.random_golden_cases(args.random, args.seed))
    paths = write_cases(cases, args.out)
    print(f"wrote {len(paths)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
