"""The typed layer: enums and errors equal the C header, dict round trips are exact, frame
sizes and step decisions agree with docs/stream-layer.md (through the reference)."""
from __future__ import annotations

import dataclasses
import json
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import reference_stream as ref
import stream_cases
import hailort_py
from hailort_py import (Format, FormatFlags, FormatOrder as O, FormatType as T, HailoRTError,
                        HailoInvalidArgumentError, ImageShape, NmsInfo, QuantInfo,
                        StreamDirection, StreamInfo, StreamTransformMode, TransformParams,
                        VStreamParams)
from hailort_py import errors
from hailort_py._raw import ffi, lib, status_message

CONFIGS = stream_cases.supported_configs()


# ------------------------------------------------------------------ C constants ---
def _c_constants(prefix: str) -> dict[str, int]:
    return {name[len(prefix):]: getattr(lib, name) for name in dir(lib)
            if name.startswith(prefix) and not name.endswith("MAX_ENUM")}


@pytest.mark.parametrize("enum_cls,prefix", [
    (T, "HAILO_FORMAT_TYPE_"), (O, "HAILO_FORMAT_ORDER_"), (FormatFlags, "HAILO_FORMAT_FLAGS_"),
    (StreamTransformMode, "HAILO_STREAM_"),
])
def test_enums_equal_the_c_header(enum_cls, prefix):
    c_values = _c_constants(prefix)
    if enum_cls is StreamTransformMode:
        c_values = {k: v for k, v in c_values.items() if "TRANSFORM" in k}
    renamed = {"12_BIT_BAYER_RGB": "BAYER_RGB_12_BIT"}
    expected = {renamed.get(k, k): v for k, v in c_values.items()}
    assert {name: int(m) for name, m in enum_cls.__members__.items()} == expected


def test_stream_direction_equals_the_c_header():
    assert int(StreamDirection.H2D) == lib.HAILO_H2D_STREAM
    assert int(StreamDirection.D2H) == lib.HAILO_D2H_STREAM


def test_every_c_status_has_its_exception():
    c_statuses = ffi.typeof("hailo_status").relements
    for name, value in c_statuses.items():
        if name in ("HAILO_SUCCESS", "HAILO_STATUS_MAX_ENUM"):
            continue
        cls = errors.error_class(value)
        camel = "".join(part.capitalize() for part in name[len("HAILO_"):].split("_"))
        assert cls.__name__ == f"Hailo{camel}Error", name
        assert cls.status == value and issubclass(cls, HailoRTError)
        assert errors.STATUS_NAMES[value] == name
        assert status_message(value).startswith(name), status_message(value)
        assert getattr(hailort_py, cls.__name__) is cls
    assert len(errors.STATUS_NAMES) == len(c_statuses) - 1
    assert status_message(987654).startswith("HAILO_UNKNOWN_STATUS")


def test_errors_are_also_builtin_exceptions():
    assert issubclass(hailort_py.HailoInvalidArgumentError, ValueError)
    assert issubclass(hailort_py.HailoTimeoutError, TimeoutError)
    assert issubclass(hailort_py.HailoNotImplementedError, NotImplementedError)
    err = hailort_py.HailoInvalidFrameError("bad frame")
    assert err.status == 25 and err.status_name == "HAILO_INVALID_FRAME"


def test_library_version():
    assert hailort_py.library_version() == (lib.HAILO_STREAM_LAYER_VERSION_MAJOR,
                                            lib.HAILO_STREAM_LAYER_VERSION_MINOR,
                                            lib.HAILO_STREAM_LAYER_VERSION_REVISION)


# ---------------------------------------------------------------- dict round trips ---
float32s = st.floats(width=32, allow_nan=False)


@given(st.tuples(float32s, float32s, float32s, float32s))
def test_quant_info_round_trips_bit_for_bit_through_json(values):
    qp = QuantInfo(*values)
    back = QuantInfo.from_dict(json.loads(json.dumps(qp.to_dict(), allow_nan=False)))
    for a, b in zip(dataclasses.astuple(qp), dataclasses.astuple(back)):
        assert struct.pack("<f", a) == struct.pack("<f", b)


def test_quant_info_non_finite_values_travel_as_strings():
    qp = QuantInfo(float("nan"), 1.0, float("-inf"), float("inf"))
    d = qp.to_dict()
    assert d == {"qp_zp": "nan", "qp_scale": 1.0, "limvals_min": "-inf", "limvals_max": "inf"}
    back = QuantInfo.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert math.isnan(back.qp_zp) and back.limvals_min == -math.inf and back.limvals_max == math.inf


def test_quant_info_rounds_to_float32():
    assert QuantInfo(0.1, 1, 0, 1).qp_zp == float(np.float32(0.1))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_stream_info_round_trips_through_json(seed):
    rng = np.random.default_rng(seed)
    config = CONFIGS[rng.integers(len(CONFIGS))]
    s = stream_cases.random_stream(rng, config, name=f"layer_{seed}")
    s = dataclasses.replace(s, index=int(rng.integers(0, 256)))
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    back = StreamInfo.from_dict(d)
    assert back == s
    assert back.to_dict() == s.to_dict()
    assert d["hw_frame_size"] == ref.hw_frame_size(s)
    assert d["hw_data_bytes"] == ref.TYPE_BYTES[config.device_type]


def test_stream_info_dict_is_readable():
    s = StreamInfo("conv1", StreamDirection.H2D, Format(T.UINT8, O.NHCW), ImageShape(2, 3, 4),
                   ImageShape(2, 4, 4), QuantInfo(128, 0.5, -64, 63.5))
    assert s.to_dict() == {
        "name": "conv1", "direction": "H2D",
        "format": {"type": "UINT8", "order": "NHCW", "flags": 0},
        "shape": [2, 3, 4], "hw_shape": [2, 4, 4],
        "quant_info": {"qp_zp": 128.0, "qp_scale": 0.5, "limvals_min": -64.0, "limvals_max": 63.5},
        "quant_infos": [], "nms_info": None, "index": 0, "hw_data_bytes": 1, "hw_frame_size": 32,
    }


def test_stream_info_from_dict_rejects_a_frame_size_mismatch():
    s = StreamInfo("conv1", StreamDirection.H2D, Format(T.UINT8, O.NHCW), ImageShape(2, 3, 4),
                   ImageShape(2, 4, 4))
    d = s.to_dict()
    d["hw_frame_size"] = 24
    with pytest.raises(HailoInvalidArgumentError, match="conv1.*hw_frame_size"):
        StreamInfo.from_dict(d)
    with pytest.raises(HailoInvalidArgumentError, match="missing key 'shape'"):
        StreamInfo.from_dict({k: v for k, v in d.items() if k != "shape"})


def test_enum_fields_accept_names_ints_and_keep_unknown_ints():
    f = Format("FLOAT32", 1, ["QUANTIZED", "TRANSPOSED"])
    assert f == Format(T.FLOAT32, O.NHWC, FormatFlags.QUANTIZED | FormatFlags.TRANSPOSED)
    assert Format(order=99).order == 99 and type(Format(order=99).order) is int
    assert Format.from_dict(Format(T.UINT16, 99, 64).to_dict()) == Format(T.UINT16, 99, 64)
    with pytest.raises(HailoInvalidArgumentError, match="NOPE"):
        Format(order="NOPE")
    with pytest.raises(HailoInvalidArgumentError):
        Format(type=2**40)
    with pytest.raises(HailoInvalidArgumentError, match="out of range"):
        Format(order=-1)  # C enums are unsigned: never reaches C
    with pytest.raises(HailoInvalidArgumentError):
        ImageShape(1, -1, 3)
    with pytest.raises(HailoInvalidArgumentError):
        StreamInfo("x" * 200, 0, Format(), ImageShape(1, 1, 1), ImageShape(1, 1, 1))


def test_params_round_trip():
    p = VStreamParams(format_type=T.FLOAT32, format_order=O.NHWC, queue_size=4, timeout_ms=500)
    assert VStreamParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.transform_params == TransformParams(Format(T.FLOAT32, O.NHWC))
    assert VStreamParams().queue_size == 2 and VStreamParams().timeout_ms == 10000
    t = TransformParams(Format(T.UINT8, O.NCHW, FormatFlags.TRANSPOSED))
    assert TransformParams.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    n = NmsInfo(80, 100, 300, 8, 2)
    assert NmsInfo.from_dict(json.loads(json.dumps(n.to_dict()))) == n


# ------------------------------------------------------------ sizes and decisions ---
def _seed(text: str) -> int:
    """A seed that is the same in every run (str hashes are randomized per process)."""
    return zlib.crc32(text.encode())


@pytest.mark.parametrize("config", CONFIGS, ids=[c.id for c in CONFIGS])
def test_frame_sizes_and_resolution_match_reference(config):
    rng = np.random.default_rng(_seed(config.id))
    for i in range(6):
        s = stream_cases.random_stream(rng, config, name=f"sz{i}")
        user = stream_cases.random_user_format(rng, config)
        status, resolved = ref.check(s, user)
        assert status == ref.SUCCESS
        c_info = s._to_c()
        assert s.hw_frame_size == ref.hw_frame_size(s)
        assert c_info.ptr.hw_frame_size == ref.hw_frame_size(s)
        filled = s._to_c()
        filled.ptr.hw_frame_size = 0
        filled.ptr.hw_data_bytes = 0
        assert lib.hailo_fill_hw_frame_size(filled.ptr) == lib.HAILO_SUCCESS
        assert filled.ptr.hw_frame_size == ref.hw_frame_size(s)
        assert filled.ptr.hw_data_bytes == ref.TYPE_BYTES[config.device_type]
        params = TransformParams(user)._to_c()
        assert lib.hailo_get_host_frame_size(c_info.ptr, params) == ref.host_frame_size(s, resolved)
        c_resolved = ffi.new("hailo_format_t *")
        assert lib.hailo_resolve_user_format(c_info.ptr, ffi.addressof(params, "user_buffer_format"),
                                             c_resolved) == lib.HAILO_SUCCESS
        assert Format._from_c(c_resolved) == resolved
        msg = ffi.new("char[]", 512)
        assert lib.hailo_check_transform_params(c_info.ptr, params, msg, 512) == lib.HAILO_SUCCESS


@pytest.mark.parametrize("order,shape,expected", [
    (O.NHWC, (3, 5, 7), 105), (O.NHCW, (3, 5, 7), 105), (O.NCHW, (2, 3, 4), 24),
    (O.FCR, (2, 3, 4), 24), (O.F8CR, (2, 3, 11), 66), (O.RGB4, (2, 3, 3), 2 * 12),
    (O.RGB4, (2, 4, 3), 24), (O.RGB4, (1, 1, 1), 4), (O.NHW, (3, 5, 1), 15),
    (O.NC, (1, 1, 17), 17), (O.YUY2, (2, 4, 2), 16), (O.NV12, (4, 6, 3), 36),
    (O.NV21, (2, 2, 3), 6), (O.I420, (4, 8, 3), 48),
])
def test_shape_size_table(order, shape, expected):
    c_shape = ffi.new("hailo_3d_image_shape_t *", shape)
    assert lib.hailo_get_shape_size(c_shape, order) == expected


def test_format_type_sizes():
    assert [lib.hailo_get_format_type_size(t) for t in T] == [0, 1, 2, 4]


@pytest.mark.parametrize("src,dst", [(a, b) for a in T for b in T])
def test_is_quantization_required(src, dst):
    required = ffi.new("bool *")
    status = lib.hailo_is_quantization_required(src, dst, required)
    assert status == lib.HAILO_SUCCESS
    assert required[0] == (src != dst and T.AUTO not in (src, dst))


@pytest.mark.parametrize("src_flags,dst_flags", [(a, b) for a in range(4) for b in range(4)])
def test_is_transpose_required_compares_only_the_transposed_flag(src_flags, dst_flags):
    a, b = ffi.new("hailo_format_t *"), ffi.new("hailo_format_t *")
    a.type, a.order, a.flags = T.FLOAT32, O.NHWC, src_flags
    b.type, b.order, b.flags = T.UINT8, O.NHCW, dst_flags
    required = ffi.new("bool *")
    assert lib.hailo_is_transpose_required(a, b, required) == lib.HAILO_SUCCESS
    assert required[0] == bool((src_flags ^ dst_flags) & FormatFlags.TRANSPOSED)


@pytest.mark.parametrize("src_order,dst_order,shape,hw,expected", [
    (O.NHWC, O.NHWC, (2, 3, 4), (2, 3, 4), False),
    (O.NHWC, O.NHCW, (2, 3, 4), (2, 3, 4), True),
    (O.NHWC, O.NHWC, (2, 3, 4), (2, 4, 4), True),
    (O.NHWC, O.NHWC, (2, 3, 4), (3, 3, 4), True),
    (O.NHWC, O.NHWC, (2, 3, 4), (2, 3, 5), True),
    (O.F8CR, O.F8CR, (2, 3, 8), (2, 3, 8), False),
    (O.F8CR, O.F8CR, (2, 3, 16), (2, 3, 16), True),
    (O.FCR, O.FCR, (1, 1, 3), (1, 1, 3), False),
])
def test_is_reorder_required(src_order, dst_order, shape, hw, expected):
    a, b = ffi.new("hailo_format_t *"), ffi.new("hailo_format_t *")
    a.type, a.order, b.type, b.order = T.UINT8, src_order, T.UINT8, dst_order
    s, h = ffi.new("hailo_3d_image_shape_t *", shape), ffi.new("hailo_3d_image_shape_t *", hw)
    required = ffi.new("bool *")
    assert lib.hailo_is_reorder_required(s, a, h, b, required) == lib.HAILO_SUCCESS
    assert required[0] == expected


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 15, 16, 150528, 150529])
def test_is_periph_padding_required(size):
    required = ffi.new("bool *")
    assert lib.hailo_is_periph_padding_required(size, required) == lib.HAILO_SUCCESS
    assert required[0] == (size % 8 != 0)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.id for c in CONFIGS])
def test_transformation_required_matches_reference(config):
    rng = np.random.default_rng(_seed(config.id) + 1)
    for i in range(6):
        s = stream_cases.random_stream(rng, config, name=f"req{i}")
        user = stream_cases.random_user_format(rng, config)
        fn = (lib.hailo_is_input_transformation_required if config.direction == StreamDirection.H2D
              else lib.hailo_is_output_transformation_required)
        required = ffi.new("bool *")
        assert fn(s._to_c().ptr, TransformParams(user)._to_c(), required) == lib.HAILO_SUCCESS
        assert required[0] == ref.is_transformation_required(s, user), (s, user)


def test_cdef_is_the_public_header():
    """The cffi declarations come from native/include/hailo_stream.h: every function and
    integer #define of the header is in the module, and nothing C++ or preprocessor leaks."""
    import re

    from hailort_py import _build

    header = _build.HEADER.read_text()
    cdef = _build.cdef_from_header(header)
    assert "extern" not in cdef and "__cplusplus" not in cdef
    assert all(line.startswith("#define") for line in cdef.splitlines() if line.startswith("#"))
    functions = set(re.findall(r"\b(hailo_\w+)\s*\(", header))
    assert len(functions) > 25
    for name in functions:
        assert hasattr(lib, name), name
    for name, value in re.findall(r"#define\s+(HAILO_\w+)\s+(\d+)\s*$", header, re.M):
        assert getattr(lib, name) == int(value)
