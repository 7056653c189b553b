"""Every error path of the stream layer: the right exception (named after the C status), a
message naming the stream, and no write outside the destination."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import golden
import reference_stream as ref
import stream_cases
from hailort_py import (Format, FormatFlags, FormatOrder as O, FormatType as T,
                        HailoInsufficientBufferError, HailoInvalidArgumentError,
                        HailoInvalidFrameError, HailoInvalidOperationError, HailoRTError,
                        ImageShape, InputTransformContext, NmsInfo, OutputTransformContext,
                        QuantInfo, StreamDirection, StreamInfo, TransformParams,
                        VStreamParams)
from hailort_py._raw import ffi, lib
from hailort_py.errors import error_class
from test_stream_transform import GUARD, GUARD_BYTE, assert_guards_intact, guarded_empty

IN, OUT = StreamDirection.H2D, StreamDirection.D2H
QP = QuantInfo(128, 1 / 64, -2, 1.984375)


def stream(name="cam0", direction=IN, dtype=T.UINT8, order=O.NHCW, shape=(2, 5, 3),
           hw=(2, 8, 3), qp=QP, qps=(), nms=None, flags=FormatFlags.NONE):
    return StreamInfo(name, direction, Format(dtype, order, flags), ImageShape(*shape),
                      ImageShape(*hw), qp, tuple(qps), nms)


def context_class(s):
    return InputTransformContext if s.direction == IN else OutputTransformContext


def assert_create_fails(s, user, expected_cls):
    with pytest.raises(expected_cls) as info:
        context_class(s)(s, user)
    message = str(info.value)
    assert f"'{s.name}'" in message, message
    assert info.value.status == expected_cls.status
    return message


# ------------------------------------------------------------- creation errors ---
CREATION_ERRORS = [
    ("in_u16_to_u8", stream(), Format(T.UINT16, O.NHWC), HailoInvalidOperationError),
    ("out_u16_to_u8", stream(direction=OUT, dtype=T.UINT16), Format(T.UINT8, O.NHWC),
     HailoInvalidOperationError),
    ("float32_device", stream(dtype=T.FLOAT32), Format(T.FLOAT32), HailoInvalidOperationError),
    ("auto_device_type", stream(dtype=T.AUTO), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("nv12_into_nhcw", stream(shape=(2, 4, 3), hw=(2, 4, 3)), Format(T.UINT8, O.NV12),
     HailoInvalidOperationError),
    ("shape_zero", stream(shape=(2, 0, 3)), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("hw_smaller", stream(shape=(2, 9, 3)), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("unknown_user_order", stream(), Format(T.FLOAT32, 99), HailoInvalidArgumentError),
    ("unknown_user_type", stream(), Format(17, O.NHWC), HailoInvalidArgumentError),
    ("unknown_device_order", stream(order=77), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("unknown_flags", stream(), Format(T.FLOAT32, O.NHWC, 64), HailoInvalidArgumentError),
    ("huge_order", stream(), Format(T.FLOAT32, 0xFFFFFFFF), HailoInvalidArgumentError),
    ("unknown_direction", stream(direction=5), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("qp_count_off", stream(direction=OUT, qps=[QP, QP]), Format(T.FLOAT32),
     HailoInvalidArgumentError),
    ("scale_zero", stream(qp=QuantInfo(0, 0, 0, 1)), Format(T.FLOAT32), HailoInvalidArgumentError),
    ("scale_negative", stream(qp=QuantInfo(0, -1, 0, 1)), Format(T.FLOAT32),
     HailoInvalidArgumentError),
    ("scale_nan", stream(qp=QuantInfo(0, float("nan"), 0, 1)), Format(T.FLOAT32),
     HailoInvalidArgumentError),
    ("scale_inf", stream(qp=QuantInfo(0, float("inf"), 0, 1)), Format(T.FLOAT32),
     HailoInvalidArgumentError),
    ("rgb4_as_output", stream(direction=OUT), Format(T.UINT8, O.RGB4), HailoInvalidOperationError),
    ("nhw_as_input", stream(order=O.NHW, shape=(2, 3, 1), hw=(2, 3, 1)), Format(T.UINT8, O.NHW),
     HailoInvalidOperationError),
    ("yuy2_with_float", stream(order=O.YUY2, shape=(2, 4, 2), hw=(2, 4, 2)),
     Format(T.FLOAT32, O.YUY2), HailoInvalidOperationError),
    ("nms_by_class_uint8", stream(direction=OUT, dtype=T.UINT16, order=O.HAILO_NMS_ON_CHIP,
                                  shape=(1, 1, 1), hw=(1, 1, 1), nms=NmsInfo(2, 2)),
     Format(T.UINT8, O.HAILO_NMS_BY_CLASS), HailoInvalidOperationError),
    ("nms_by_score_uint16", stream(direction=OUT, dtype=T.UINT16, order=O.HAILO_NMS_ON_CHIP,
                                   shape=(1, 1, 1), hw=(1, 1, 1), nms=NmsInfo(2, 2)),
     Format(T.UINT16, O.HAILO_NMS_BY_SCORE), HailoInvalidOperationError),
    ("nms_burst_type", stream(direction=OUT, dtype=T.UINT16, order=O.HAILO_NMS_ON_CHIP,
                              shape=(1, 1, 1), hw=(1, 1, 1), nms=NmsInfo(2, 2, burst_type=5)),
     Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS), HailoInvalidArgumentError),
    ("limvals_inverted", stream(qp=QuantInfo(128, 1 / 64, 1, -1)), Format(T.FLOAT32),
     HailoInvalidArgumentError),
    ("limvals_nan", stream(qp=QuantInfo(128, 1 / 64, float("nan"), 1)), Format(T.FLOAT32),
     HailoInvalidArgumentError),
]


@pytest.mark.parametrize("name,s,user,expected_cls", CREATION_ERRORS,
                         ids=[c[0] for c in CREATION_ERRORS])
def test_creation_error(name, s, user, expected_cls):
    status, _ = ref.check(s, user)
    assert status == expected_cls.status, "the reference disagrees with the table above"
    message = assert_create_fails(s, user, expected_cls)
    assert lib_status_name(expected_cls.status) in message


def lib_status_name(status):
    from hailort_py.errors import STATUS_NAMES
    return STATUS_NAMES[status]


@pytest.mark.parametrize("direction", [IN, OUT])
def test_wrong_direction_is_invalid_argument(direction):
    s = stream(direction=direction)
    cls, right = ((OutputTransformContext, "InputTransformContext") if direction == IN
                  else (InputTransformContext, "OutputTransformContext"))
    with pytest.raises(HailoInvalidArgumentError, match=f"'cam0'.*use {right}"):
        cls(s, Format(T.FLOAT32))


@pytest.mark.parametrize("direction", [IN, OUT])
def test_every_unsupported_order_pair_is_invalid_operation(direction):
    """All (device order, host order) pairs outside the doc's table, exhaustively."""
    checked = 0
    for device_order, (host_orders, directions) in ref.ORDER_PAIRS.items():
        for host_order in O:
            supported = (direction in directions and host_order in host_orders
                         and not (direction == OUT and host_order in ref.INPUT_ONLY_HOST_ORDERS))
            if supported or host_order == O.AUTO:
                continue
            config = stream_cases.Config(direction if direction in directions else directions[0],
                                         T.UINT8, device_order, Format(T.UINT8, host_order))
            s = stream_cases.random_stream(np.random.default_rng(checked), config, name="pair")
            s = dataclasses.replace(s, direction=direction)
            status, _ = ref.check(s, Format(T.UINT8, host_order))
            assert status == ref.INVALID_OPERATION, (device_order, host_order)
            assert_create_fails(s, Format(T.UINT8, host_order), HailoInvalidOperationError)
            checked += 1
    assert checked > 150


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mutation=st.sampled_from(
    ["zero_dim", "hw_smaller", "qp_count", "scale", "device_type_auto", "device_float32",
     "narrowing", "limvals"]))
def test_single_fault_streams_fail_as_the_reference_says(seed, mutation):
    rng = np.random.default_rng(seed)
    configs = [c for c in stream_cases.supported_configs()
               if c.device_order != O.HAILO_NMS_ON_CHIP]
    config = configs[rng.integers(len(configs))]
    s = stream_cases.random_stream(rng, config, name="fault")
    user = config.user
    h, w, c = s.shape
    if mutation == "zero_dim":
        dims = [h, w, c]
        dims[rng.integers(3)] = 0
        s = dataclasses.replace(s, shape=ImageShape(*dims))
    elif mutation == "hw_smaller":
        hw = list(s.hw_shape)
        axis = rng.integers(3)
        hw[axis] = list(s.shape)[axis] - 1
        s = dataclasses.replace(s, hw_shape=ImageShape(*hw))
    elif mutation == "qp_count":
        if config.direction != OUT or c < 2:
            return
        s = dataclasses.replace(s, quant_infos=(s.quant_info,) * (c + 1))
    elif mutation == "scale":
        bad = float(rng.choice([0.0, -0.5, np.inf, np.nan]))
        s = dataclasses.replace(s, quant_info=dataclasses.replace(s.quant_info, qp_scale=bad))
    elif mutation == "limvals":  # inverted or NaN: refused where a quantize step uses them
        qp = s.quant_info
        above = float(np.nextafter(np.float32(qp.limvals_max), np.float32(np.inf)))
        lo, hi = ((above, qp.limvals_max) if rng.random() < 0.7
                  else (float(rng.choice([np.nan, qp.limvals_min])), np.nan))
        s = dataclasses.replace(s, quant_info=dataclasses.replace(qp, limvals_min=lo, limvals_max=hi))
        quantizes = (config.direction == IN and ref.resolve(s, user).type == T.FLOAT32
                     and not s.quant_info.is_identity)
        if not quantizes:
            assert ref.check(s, user)[0] == ref.SUCCESS
            context_class(s)(s, user)  # not used: accepted
            return
        assert ref.check(s, user)[0] == ref.INVALID_ARGUMENT
    elif mutation == "device_type_auto":
        s = dataclasses.replace(s, format=dataclasses.replace(s.format, type=T.AUTO))
    elif mutation == "device_float32":
        s = dataclasses.replace(s, format=dataclasses.replace(s.format, type=T.FLOAT32))
    elif mutation == "narrowing":
        s = dataclasses.replace(s, format=dataclasses.replace(s.format, type=T.UINT16))
        if config.device_order in ref.YUV_DEVICE_ORDERS:
            return
        user = dataclasses.replace(user, type=T.UINT8)
        if config.direction == IN:
            user, s = (dataclasses.replace(user, type=T.UINT16),
                       dataclasses.replace(s, format=dataclasses.replace(s.format, type=T.UINT8)))
    status, _ = ref.check(s, user)
    if status == ref.SUCCESS:
        return  # the mutation did not break this particular stream (e.g. 0 on a hw pad axis)
    assert_create_fails(s, user, error_class(status))


def test_unordered_limvals_are_refused_where_a_quantize_uses_them():
    """HailoRT's clip (x >= hi -> hi, else x <= lo -> lo) and this layer's (x to lo, then to
    hi) agree only for lo <= hi: with lo > hi (or a NaN bound) a quantizing context is refused,
    naming the stream, rather than pick one result."""
    bad = QuantInfo(128, 1 / 64, 1, -1)
    message = assert_create_fails(stream(qp=bad), Format(T.FLOAT32), HailoInvalidArgumentError)
    assert "limvals [1, -1] are not ordered" in message
    # no quantize step, an output (dequantize only), the identity QP (never clips): accepted
    InputTransformContext(stream(qp=bad), Format(T.UINT8))
    OutputTransformContext(stream(direction=OUT, qp=bad), Format(T.FLOAT32))
    InputTransformContext(stream(qp=QuantInfo(0, 1, 1, -1)), Format(T.FLOAT32))
    InputTransformContext(stream(qp=bad), TransformParams(Format(T.FLOAT32), 0))  # NO_TRANSFORM
    # the standalone quantize refuses them too (not for the identity), dequantize does not care
    from hailort_py import dequantize, quantize
    with pytest.raises(HailoInvalidArgumentError):
        quantize(np.float32([0.5]), bad)
    assert quantize(np.float32([0.5, 7]), QuantInfo(0, 1, 1, -1)).tolist() == [0, 7]
    assert dequantize(np.uint8([130]), bad).tolist() == [0.03125]
    # equal limvals are ordered
    InputTransformContext(stream(qp=QuantInfo(128, 1 / 64, 1, 1)), Format(T.FLOAT32))


def test_directed_checks_say_what_creation_says():
    """hailo_check_input/output_transform_params take the direction the context would have."""
    out = stream(direction=OUT)
    params = TransformParams(Format(T.FLOAT32))._to_c()
    msg = ffi.new("char[]", 512)
    c = out._to_c()
    assert lib.hailo_check_transform_params(c.ptr, params, msg, 512) == lib.HAILO_SUCCESS
    assert lib.hailo_check_output_transform_params(c.ptr, params, msg, 512) == lib.HAILO_SUCCESS
    assert lib.hailo_check_input_transform_params(c.ptr, params, msg, 512) == \
        lib.HAILO_INVALID_ARGUMENT
    assert ffi.string(msg).decode() == ("stream 'cam0': the stream is an output (D2H), but this "
                                        "is an input transform context")


# --------------------------------------------------------- buffer errors (Python) ---
@pytest.fixture
def in_ctx():
    return InputTransformContext(stream(), Format(T.FLOAT32, O.NHWC))


def test_wrong_source_dtype(in_ctx):
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'.*float64.*float32"):
        in_ctx.transform(np.zeros((2, 5, 3)))


@pytest.mark.parametrize("shape", [(2, 5, 4), (5, 2, 3), (30,), (1, 2, 2, 5, 3), ()])
def test_wrong_source_shape(in_ctx, shape):
    with pytest.raises(HailoInsufficientBufferError, match="'cam0'.*shape"):
        in_ctx.transform(np.zeros(shape, np.float32))


def test_non_contiguous_source(in_ctx):
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'.*contiguous"):
        in_ctx.transform(np.zeros((2, 10, 3), np.float32)[:, ::2])


def test_source_not_an_array(in_ctx):
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'"):
        in_ctx.transform(None)
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'"):
        in_ctx.transform(b"\0" * 120)  # host frames must be arrays; only device frames may be bytes


def test_destination_errors(in_ctx):
    src = np.zeros((2, 5, 3), np.float32)
    size = in_ctx.dst_frame_size
    with pytest.raises(HailoInsufficientBufferError, match="'cam0'"):
        in_ctx.transform(src, np.zeros(size - 8, np.uint8))
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'.*dtype"):
        in_ctx.transform(src, np.zeros(size // 2, np.uint16))
    read_only = np.zeros(size, np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(HailoInvalidArgumentError, match="'cam0'.*read-only"):
        in_ctx.transform(src, read_only)
    with pytest.raises(HailoInsufficientBufferError, match="'cam0'.*frame"):
        in_ctx.transform(np.zeros((3, 2, 5, 3), np.float32), np.zeros((2, size), np.uint8))
    with pytest.raises(HailoInsufficientBufferError, match="'cam0'"):
        in_ctx.transform(np.zeros((1, 2, 5, 3), np.float32), np.zeros(size, np.uint8))


def test_overlapping_buffers_are_refused():
    s = stream(shape=(2, 4, 4), hw=(2, 4, 4), order=O.NHWC)
    ctx = InputTransformContext(s, Format(T.UINT8, O.NHWC, FormatFlags.TRANSPOSED))
    buf = np.zeros(32, np.uint8)
    with pytest.raises(HailoInvalidArgumentError, match="overlap"):
        ctx.transform(buf.reshape(4, 2, 4), buf)


def test_bad_arguments_to_the_constructor():
    with pytest.raises(HailoInvalidArgumentError):
        InputTransformContext({"name": "x"})
    with pytest.raises(HailoInvalidArgumentError):
        InputTransformContext(stream(), "NHWC")
    with pytest.raises(HailoInvalidArgumentError, match="threads"):
        InputTransformContext(stream(), threads=0)
    # VStreamParams carry a user format too
    ctx = InputTransformContext(stream(), VStreamParams(format_type=T.FLOAT32))
    assert ctx.user_format == Format(T.FLOAT32, O.NHWC)


# ------------------------------------------------------------ raw C error paths ---
@pytest.mark.parametrize("delta", [-8, -1, 1, 8])
def test_c_rejects_wrong_sizes_without_writing(delta):
    s = stream()
    ctx = InputTransformContext(s, Format(T.FLOAT32))
    c_ctx = ctx._free_contexts[0]
    src = np.ones(ctx.src_frame_size + 16, np.uint8)
    dst, backing = guarded_empty(ctx.dst_frame_size + 16, np.uint8)
    dst[:] = GUARD_BYTE
    status = lib.hailo_transform_frame_by_input_transform_context(
        c_ctx, ffi.from_buffer(src), ctx.src_frame_size + delta, ffi.from_buffer(dst),
        ctx.dst_frame_size)
    assert status == lib.HAILO_INSUFFICIENT_BUFFER
    status = lib.hailo_transform_frame_by_input_transform_context(
        c_ctx, ffi.from_buffer(src), ctx.src_frame_size, ffi.from_buffer(dst),
        ctx.dst_frame_size + delta)
    assert status == lib.HAILO_INSUFFICIENT_BUFFER
    assert (backing == GUARD_BYTE).all(), "nothing may be written on a size error"


def test_c_rejects_null_pointers():
    s = stream()
    c_info = s._to_c()
    params = Format(T.FLOAT32)
    c_params = TransformParams(params)._to_c()
    ctx_ptr = ffi.new("hailo_input_transform_context *")
    assert lib.hailo_create_input_transform_context(ffi.NULL, c_params, ctx_ptr) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_create_input_transform_context(c_info.ptr, ffi.NULL, ctx_ptr) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_create_input_transform_context(c_info.ptr, c_params, ffi.NULL) == lib.HAILO_INVALID_ARGUMENT
    out_ptr = ffi.new("hailo_output_transform_context *")
    assert lib.hailo_create_output_transform_context(ffi.NULL, c_params, out_ptr) == lib.HAILO_INVALID_ARGUMENT
    ctx = InputTransformContext(s, params)
    c_ctx = ctx._free_contexts[0]
    buf = ffi.new("uint8_t[]", 4096)
    for args in ((ffi.NULL, buf, ctx.src_frame_size, buf, ctx.dst_frame_size),
                 (c_ctx, ffi.NULL, ctx.src_frame_size, buf, ctx.dst_frame_size),
                 (c_ctx, buf, ctx.src_frame_size, ffi.NULL, ctx.dst_frame_size)):
        assert lib.hailo_transform_frame_by_input_transform_context(*args) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_release_input_transform_context(ffi.NULL) == lib.HAILO_SUCCESS
    assert lib.hailo_release_output_transform_context(ffi.NULL) == lib.HAILO_SUCCESS
    qp = QP._to_c()
    assert lib.hailo_quantize_input_buffer(ffi.NULL, buf, 4, T.UINT8, qp) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_quantize_input_buffer(ffi.cast("float *", buf), buf + 64, 4, T.UINT8,
                                           ffi.NULL) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_dequantize_output_buffer(buf, ffi.NULL, 4, T.UINT8, qp) == lib.HAILO_INVALID_ARGUMENT
    required = ffi.new("bool *")
    assert lib.hailo_is_quantization_required(T.FLOAT32, T.UINT8, ffi.NULL) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_is_input_transformation_required(ffi.NULL, c_params, required) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_get_hw_frame_size(ffi.NULL) == 0
    assert lib.hailo_get_shape_size(ffi.NULL, O.NHWC) == 0
    assert lib.hailo_get_host_frame_size(ffi.NULL, c_params) == 0
    assert lib.hailo_get_library_version(ffi.NULL) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_fill_hw_frame_size(ffi.NULL) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_check_transform_params(ffi.NULL, c_params, ffi.NULL, 0) == lib.HAILO_INVALID_ARGUMENT
    resolved = ffi.new("hailo_format_t *")
    assert lib.hailo_resolve_user_format(c_info.ptr, ffi.NULL, resolved) == lib.HAILO_INVALID_ARGUMENT


def test_c_decisions_reject_unknown_enums():
    required = ffi.new("bool *")
    assert lib.hailo_is_quantization_required(9, T.UINT8, required) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_is_quantization_required(T.FLOAT32, 0xFFFFFFFD, required) == lib.HAILO_INVALID_ARGUMENT
    a, b = ffi.new("hailo_format_t *"), ffi.new("hailo_format_t *")
    a.type, a.order, b.type, b.order = T.FLOAT32, 55, T.UINT8, O.NHCW
    b.flags = 8
    assert lib.hailo_is_transpose_required(b, a, required) == lib.HAILO_INVALID_ARGUMENT
    b.flags = 0
    shape = ffi.new("hailo_3d_image_shape_t *", (2, 2, 2))
    assert lib.hailo_is_reorder_required(shape, a, shape, b, required) == lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_get_format_type_size(7) == 0
    assert lib.hailo_get_shape_size(shape, 200) == 0


@pytest.mark.parametrize("field,value", [("order", 55), ("type", 9)])
def test_c_transpose_decision_rejects_unknown_type_or_order(field, value):
    a, b = ffi.new("hailo_format_t *"), ffi.new("hailo_format_t *")
    a.type, a.order, b.type, b.order = T.FLOAT32, O.NHWC, T.UINT8, O.NHCW
    setattr(a, field, value)
    required = ffi.new("bool *")
    assert lib.hailo_is_transpose_required(a, b, required) == lib.HAILO_INVALID_ARGUMENT


def test_check_transform_params_message_names_the_stream():
    s = stream(name="the_camera")
    c_params = TransformParams(Format(T.UINT16, O.NHWC))._to_c()
    msg = ffi.new("char[]", 512)
    status = lib.hailo_check_transform_params(s._to_c().ptr, c_params, msg, 512)
    assert status == lib.HAILO_INVALID_OPERATION
    assert "the_camera" in ffi.string(msg).decode()
    # a tiny message buffer is truncated and terminated, never overrun
    small = ffi.new("char[]", b"\xaa" * 16)
    lib.hailo_check_transform_params(s._to_c().ptr, c_params, small, 8)
    raw = bytes(ffi.buffer(small, 16))
    assert b"\0" in raw[:8] and raw[8:] == b"\xaa" * 8


# ---------------------------------------------------------------------- NMS ---
NMS = NmsInfo(3, 4, 5, 8, 2)
NMS_STREAM = stream(name="detections", direction=OUT, dtype=T.UINT16, order=O.HAILO_NMS_ON_CHIP,
                    shape=(1, 1, 1), hw=(1, 1, 1), qp=QuantInfo(0, 1 / 4096, 0, 16), nms=NMS)


@pytest.mark.parametrize("host_order", [O.HAILO_NMS_BY_CLASS, O.HAILO_NMS_BY_SCORE])
@pytest.mark.parametrize("bad", ["count_above_max", "count_past_frame", "second_chunk"])
def test_nms_overrun_is_invalid_frame_without_writing_past_dst(host_order, bad):
    frame = bytearray(ref.hw_frame_size(NMS_STREAM))
    if bad == "count_above_max":
        frame[0:2] = (NMS.max_bboxes_per_class + 1).to_bytes(2, "little")
    elif bad == "count_past_frame":
        frame[0:2] = (0xFFFF).to_bytes(2, "little")
    else:  # a valid first chunk, then a class of the second chunk overruns
        good = ref.nms_encode(NMS_STREAM, [[[ref.nms_pack(9, 1, 2, 3, 4)]] * 3])
        frame[:] = good
        offset = 3 * (2 + 8)  # three classes of one proposal each
        frame[offset:offset + 2] = (NMS.max_bboxes_per_class + 3).to_bytes(2, "little")
    with pytest.raises(ref.NmsFrameError):
        ref.output_frame(NMS_STREAM, Format(T.FLOAT32, host_order), bytes(frame))
    ctx = OutputTransformContext(NMS_STREAM, Format(T.FLOAT32, host_order))
    dst, backing = guarded_empty(ctx.host_shape, ctx.host_dtype)
    with pytest.raises(HailoInvalidFrameError, match="'detections'"):
        ctx.transform(bytes(frame), dst)
    assert_guards_intact(backing)


def test_nms_decode_functions_size_errors():
    qp = NMS_STREAM.quant_info._to_c()
    nms = ffi.new("hailo_nms_info_t *")
    NMS._fill_c(nms)
    src = ffi.new("uint8_t[]", ref.hw_frame_size(NMS_STREAM))
    by_class = ref.host_frame_size(NMS_STREAM, Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS))
    dst = ffi.new("float[]", by_class // 4 + 16)
    assert lib.hailo_nms_decode_by_class(src, len(src), dst, by_class - 4, nms, qp) == \
        lib.HAILO_INSUFFICIENT_BUFFER
    assert lib.hailo_nms_decode_by_class(src, len(src) - 8, dst, by_class, nms, qp) == \
        lib.HAILO_INSUFFICIENT_BUFFER
    assert lib.hailo_nms_decode_by_class(src, len(src), dst, by_class, ffi.NULL, qp) == \
        lib.HAILO_INVALID_ARGUMENT
    assert lib.hailo_nms_decode_by_class(src, len(src), dst, by_class, nms, qp) == lib.HAILO_SUCCESS


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), by_score=st.booleans())
def test_nms_decode_functions_match_reference(seed, by_score):
    rng = np.random.default_rng(seed)
    config = stream_cases.Config(OUT, T.UINT16, O.HAILO_NMS_ON_CHIP,
                                 Format(T.FLOAT32, O.HAILO_NMS_BY_SCORE if by_score else O.HAILO_NMS_BY_CLASS))
    s = stream_cases.random_stream(rng, config, name="nms")
    frame = golden.random_nms_frame(rng, s)
    expected = ref.output_frame(s, config.user, frame).tobytes()
    nms = ffi.new("hailo_nms_info_t *")
    s.nms_info._fill_c(nms)
    dst, backing = guarded_empty(len(expected), np.uint8)
    fn = lib.hailo_nms_decode_by_score if by_score else lib.hailo_nms_decode_by_class
    dst_ptr = ffi.from_buffer("float[]" if not by_score else "uint8_t[]", dst, require_writable=True)
    status = fn(frame, len(frame), dst_ptr, len(expected), nms, s.quant_info._to_c())
    assert status == lib.HAILO_SUCCESS
    assert dst.tobytes() == expected
    assert_guards_intact(backing)


def test_unknown_status_becomes_base_error():
    from hailort_py.errors import make_error

    err = make_error(1234, "boom")
    assert type(err) is HailoRTError and err.status == 1234
