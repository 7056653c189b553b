"""NMS as HailoRT does it (docs/stream-layer.md, "NMS"): several chunks keep every proposal
(transform.cpp, transform__d2h_NMS), the device frame has HailoRT's size (hailort_common.hpp,
get_nms_hw_frame_size, bursts included), by-score frames are UINT8 bytes (hailort_defaults.cpp),
and the fields of hailo_nms_info_t round-trip. C against the numpy reference and against
HailoRT's formulas written here once more."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import golden
import reference_stream as ref
from hailort_py import (Format, FormatOrder as O, FormatType as T, HailoInsufficientBufferError,
                        HailoInvalidArgumentError, HailoInvalidOperationError, ImageShape, NmsInfo,
                        OutputTransformContext, QuantInfo, StreamDirection, StreamInfo)
from hailort_py._raw import ffi, lib
from hailort_py.stream import NmsBurstType, NmsDefuseInfo, NmsShape

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nms_stream(nms: NmsInfo, dtype=T.UINT16, qp: QuantInfo | None = None, name="detections"):
    return StreamInfo(name, StreamDirection.D2H, Format(dtype, O.HAILO_NMS_ON_CHIP),
                      ImageShape(1, 1, 1), ImageShape(1, 1, 1),
                      qp or QuantInfo(2, 1 / 1024, 0, 64), nms_info=nms)


def hailort_hw_frame_size(n: NmsInfo) -> int:
    """HailoRTCommon::get_nms_hw_frame_size, as hailort_common.hpp writes it."""
    size_per_class = 2 + n.bbox_size * max(n.burst_size, n.max_bboxes_per_class)
    size_per_chunk = n.number_of_classes * size_per_class
    return n.chunks_per_frame * size_per_chunk + n.bbox_size * n.burst_size


def hailort_by_class_floats(n: NmsInfo) -> int:
    """HailoRTCommon::get_nms_by_class_host_shape_size of the nms_info."""
    return n.number_of_classes * (1 + 5 * n.chunks_per_frame * n.max_bboxes_per_class)


nms_infos = st.builds(
    lambda classes, per_class, chunks, total, burst, burst_type: NmsInfo(
        classes, per_class, total, 8, chunks, burst_size=burst, burst_type=burst_type),
    classes=st.integers(1, 6), per_class=st.integers(1, 6), chunks=st.integers(1, 3),
    total=st.one_of(st.just(0), st.integers(1, 60)), burst=st.one_of(st.just(0), st.integers(1, 10)),
    burst_type=st.sampled_from(list(NmsBurstType)))


def frame_with_counts(draw, stream: StreamInfo) -> bytes:
    """A device frame whose counts cover 0 .. the maximum; scores often tie."""
    n = stream.nms_info
    mode = draw(st.sampled_from(["random", "random", "zero", "full"]))
    chunks = []
    for _ in range(n.chunks_per_frame):
        chunk = []
        for _ in range(n.number_of_classes):
            count = {"zero": 0, "full": n.max_bboxes_per_class}.get(mode)
            if count is None:
                count = draw(st.integers(0, n.max_bboxes_per_class))
            chunk.append([ref.nms_pack(draw(st.sampled_from([5, 300, 301, 65535])),
                                       *draw(st.tuples(*[st.integers(0, 4095)] * 4)))
                          for _ in range(count)])
        chunks.append(chunk)
    return ref.nms_encode(stream, chunks)


# ----------------------------------------------------------------------- the issue ---
def test_issue_example_keeps_the_box_of_every_chunk():
    """NmsInfo(1, 1, 0, 8, 2), identity QP, one box per chunk: [2, box A, box B], 11 floats."""
    stream = nms_stream(NmsInfo(1, 1, 0, 8, 2), qp=QuantInfo(0, 1, 0, 65535))
    assert stream.hw_frame_size == 20
    frame = ref.nms_encode(stream, [[[ref.nms_pack(7, 1, 2, 3, 4)]], [[ref.nms_pack(9, 5, 6, 7, 8)]]])
    ctx = OutputTransformContext(stream)
    assert ctx.host_shape == (11,) and ctx.dst_frame_size == 44
    np.testing.assert_array_equal(ctx.transform(frame), [2, 1, 2, 3, 4, 7, 5, 6, 7, 8, 9])
    assert stream.nms_info.nms_shape == NmsShape(1, 2, 2, 0)


def test_hailort_sized_frame_of_nms_1_1_is_accepted():
    """NMS(1, 1): HailoRT's frame is 10 bytes (2 + 8), not padded to 16."""
    stream = nms_stream(NmsInfo(1, 1))
    assert stream.hw_frame_size == 10
    ctx = OutputTransformContext(stream)
    assert ctx.src_frame_size == 10
    out = ctx.transform(np.zeros(10, np.uint8))
    assert out[0] == 0
    with pytest.raises(HailoInsufficientBufferError):
        ctx.transform(np.zeros(16, np.uint8))  # the old size, padded to 8


# -------------------------------------------------------------------------- sizes ---
@settings(max_examples=300, deadline=None)
@given(classes=st.integers(1, 2**16), per_class=st.integers(1, 2**16), chunks=st.integers(1, 64),
       burst=st.one_of(st.just(0), st.just(1), st.integers(0, 2**17)),
       burst_type=st.sampled_from(list(NmsBurstType)))
def test_frame_sizes_are_hailorts_for_random_nms_infos(classes, per_class, chunks, burst, burst_type):
    n = NmsInfo(classes, per_class, 0, 8, chunks, burst_size=burst, burst_type=burst_type)
    want = hailort_hw_frame_size(n)
    stream = nms_stream(n)
    assert stream.hw_frame_size == (want if want <= 2**32 - 1 else 0)
    assert ref.hw_frame_size(stream) == want
    if want > 2**32 - 1:
        with pytest.raises(HailoInvalidArgumentError, match="does not fit"):
            OutputTransformContext(stream)
        return
    user = Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS)
    size = lib.hailo_get_host_frame_size(stream._to_c().ptr, _params(user))
    by_class = 4 * hailort_by_class_floats(n)
    assert size == (by_class if by_class <= 2**32 - 1 else 0)
    assert ref.host_frame_size(stream, user) == by_class
    total = classes * per_class * chunks
    if total > 2**32 - 1:
        with pytest.raises(HailoInvalidArgumentError, match="host shape"):
            n.nms_shape
    else:
        assert n.nms_shape == NmsShape(classes, per_class * chunks, total, 0)
    by_score = lib.hailo_get_host_frame_size(stream._to_c().ptr,
                                             _params(Format(T.UINT8, O.HAILO_NMS_BY_SCORE)))
    assert by_score == (2 + 22 * total if total <= 65535 and classes <= 65536 else 0)


def _params(user: Format):
    from hailort_py.stream import TransformParams

    return TransformParams(user)._to_c()


@SETTINGS
@given(nms=nms_infos, dtype=st.sampled_from([T.UINT8, T.UINT16]), data=st.data())
def test_a_hailort_sized_buffer_is_accepted_and_its_slack_never_read(nms, dtype, data):
    stream = nms_stream(nms, dtype)
    frame = bytearray(frame_with_counts(data.draw, stream))
    assert len(frame) == hailort_hw_frame_size(nms) == stream.hw_frame_size
    reach = ref.nms_reach(nms)
    want = ref.output_frame(stream, Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS), bytes(frame))
    frame[reach:] = b"\xff" * (len(frame) - reach)  # what a device may leave there
    got = OutputTransformContext(stream, Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS)).transform(
        np.frombuffer(bytes(frame), np.uint8))
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ C against reference ---
@SETTINGS
@given(nms=nms_infos, dtype=st.sampled_from([T.UINT8, T.UINT16]), data=st.data(),
       zp=st.integers(0, 7), shift=st.integers(0, 13))
def test_decode_matches_reference(nms, dtype, data, zp, shift):
    """Every host order and type over 1-3 chunks, counts 0 .. max, UINT8 / UINT16 devices."""
    qp = QuantInfo(float(zp), float(2.0 ** -shift), 0, 1)
    stream = nms_stream(nms, dtype, qp)
    frame = frame_with_counts(data.draw, stream)
    for user in (Format(T.AUTO, O.AUTO), Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS),
                 Format(T.AUTO, O.HAILO_NMS_BY_SCORE), Format(T.UINT8, O.HAILO_NMS_BY_SCORE),
                 Format(T.FLOAT32, O.HAILO_NMS_BY_SCORE), Format(dtype, O.HAILO_NMS_ON_CHIP)):
        status, resolved = ref.check(stream, user)
        assert status == ref.SUCCESS
        ctx = OutputTransformContext(stream, user)
        assert ctx.user_format == resolved
        assert ctx.dst_frame_size == ref.host_frame_size(stream, resolved)
        got = ctx.transform(frame)
        want = ref.output_frame(stream, resolved, frame)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), user
    # the by-class frame holds every proposal of every chunk
    per_class = ref.nms_decode(stream, frame)
    counts = OutputTransformContext(stream).transform(frame)
    pos = 0
    for proposals in per_class:
        assert counts[pos] == len(proposals)
        pos += 1 + 5 * len(proposals)
    assert sum(map(len, per_class)) == sum(
        int.from_bytes(frame[o:o + 2], "little") for o in _count_offsets(stream, frame))


def _count_offsets(stream, frame):
    n, offset = stream.nms_info, 0
    for _ in range(n.chunks_per_frame * n.number_of_classes):
        yield offset
        offset += 2 + 8 * int.from_bytes(frame[offset:offset + 2], "little")


@SETTINGS
@given(nms=nms_infos, data=st.data())
def test_standalone_decoders_match_reference(nms, data):
    stream = nms_stream(nms)
    frame = frame_with_counts(data.draw, stream)
    c_nms = ffi.new("hailo_nms_info_t *")
    nms._fill_c(c_nms)
    qp = stream.quant_info._to_c()
    for user, fn, ctype in ((Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS), lib.hailo_nms_decode_by_class,
                             "float *"),
                            (Format(T.UINT8, O.HAILO_NMS_BY_SCORE), lib.hailo_nms_decode_by_score,
                             "void *")):
        want = ref.output_frame(stream, user, frame).tobytes()
        dst = np.zeros(len(want), np.uint8)
        dst_ptr = ffi.cast(ctype, ffi.from_buffer(dst))
        # the counts' reach is enough for the standalone functions; the frame is more
        for size in (ref.nms_reach(nms), len(frame)):
            dst[:] = 0xCC
            assert fn(frame, size, dst_ptr, len(want), c_nms, qp) == lib.HAILO_SUCCESS
            assert dst.tobytes() == want
        assert fn(frame, ref.nms_reach(nms) - 1, dst_ptr, len(want), c_nms,
                  qp) == lib.HAILO_INSUFFICIENT_BUFFER


def test_by_score_ties_keep_class_then_chunk_then_device_order():
    stream = nms_stream(NmsInfo(2, 2, 0, 8, 2), qp=QuantInfo(0, 1, 0, 65535))
    p = ref.nms_pack
    chunks = [[[p(5, 1, 0, 0, 0), p(9, 2, 0, 0, 0)], [p(9, 3, 0, 0, 0)]],
              [[p(9, 4, 0, 0, 0)], [p(9, 5, 0, 0, 0), p(1, 6, 0, 0, 0)]]]
    frame = ref.nms_encode(stream, chunks)
    out = OutputTransformContext(stream, Format(order=O.HAILO_NMS_BY_SCORE)).transform(frame)
    assert out["count"] == 6
    dets = out["detections"][:6]
    # score 9: class 0 (chunk 0 then chunk 1), then class 1 (chunk 0 then chunk 1); then 5, 1
    assert dets["y_min"].tolist() == [2, 4, 3, 5, 1, 6]
    assert dets["class_id"].tolist() == [0, 0, 1, 1, 0, 1]
    capped = nms_stream(NmsInfo(2, 2, 3, 8, 2), qp=QuantInfo(0, 1, 0, 65535))
    top = OutputTransformContext(capped, Format(order=O.HAILO_NMS_BY_SCORE)).transform(frame)
    assert top["count"] == 3 and top["detections"]["y_min"].tolist() == [2, 4, 3]


# ------------------------------------------------------------------------ types ---
def test_by_score_type_is_uint8_like_hailort():
    stream = nms_stream(NmsInfo(3, 2, 4, 8, 1))
    frame = golden.random_nms_frame(np.random.default_rng(3), stream, "full")
    auto = OutputTransformContext(stream, Format(T.AUTO, O.HAILO_NMS_BY_SCORE))
    assert auto.user_format.type == T.UINT8
    u8 = OutputTransformContext(stream, Format(T.UINT8, O.HAILO_NMS_BY_SCORE)).transform(frame)
    f32 = OutputTransformContext(stream, Format(T.FLOAT32, O.HAILO_NMS_BY_SCORE)).transform(frame)
    assert u8.tobytes() == f32.tobytes() == auto.transform(frame).tobytes()
    with pytest.raises(HailoInvalidOperationError, match="detections.*UINT8.*not UINT16"):
        OutputTransformContext(stream, Format(T.UINT16, O.HAILO_NMS_BY_SCORE))
    with pytest.raises(HailoInvalidOperationError, match="FLOAT32 only"):
        OutputTransformContext(stream, Format(T.UINT8, O.HAILO_NMS_BY_CLASS))


def test_by_score_limits_count_every_chunk():
    # 100 classes x 3 chunks x 300: the default total is beyond a uint16 count
    stream = nms_stream(NmsInfo(100, 300, 0, 8, 3))
    assert ref.check(stream, Format(order=O.HAILO_NMS_BY_SCORE))[0] == ref.INVALID_ARGUMENT
    with pytest.raises(HailoInvalidArgumentError, match="at most 65535"):
        OutputTransformContext(stream, Format(order=O.HAILO_NMS_BY_SCORE))
    OutputTransformContext(nms_stream(NmsInfo(100, 300, 65535, 8, 3)), Format(order=O.HAILO_NMS_BY_SCORE))


def test_unknown_burst_type_is_refused_by_name():
    stream = nms_stream(NmsInfo(2, 2, burst_type=9))
    assert stream.nms_info.burst_type == 9  # kept as an int, like other unknown enum values
    assert ref.check(stream, Format())[0] == ref.INVALID_ARGUMENT
    with pytest.raises(HailoInvalidArgumentError, match="'detections'.*burst_type 9"):
        OutputTransformContext(stream)


# ------------------------------------------------------------------ round trips ---
def test_new_fields_round_trip_and_old_dicts_load():
    n = NmsInfo(80, 100, 300, 8, 2, is_defused=True,
                defuse_info=NmsDefuseInfo(3, "yolov5/conv70"), burst_size=16,
                burst_type=NmsBurstType.H15_PER_CLASS)
    d = json.loads(json.dumps(n.to_dict()))
    assert d["burst_type"] == "H15_PER_CLASS" and d["defuse_info"]["original_name"] == "yolov5/conv70"
    assert list(d) == ["number_of_classes", "max_bboxes_per_class", "max_bboxes_total", "bbox_size",
                       "chunks_per_frame", "is_defused", "defuse_info", "burst_size", "burst_type"]
    assert NmsInfo.from_dict(d) == n
    old = {"number_of_classes": 3, "max_bboxes_per_class": 4, "max_bboxes_total": 5,
           "bbox_size": 8, "chunks_per_frame": 2}
    assert NmsInfo.from_dict(old) == NmsInfo(3, 4, 5, 8, 2)
    # fields at their defaults are left out: a reader that predates them reads the dict
    assert NmsInfo(3, 4, 5, 8, 2).to_dict() == old
    assert NmsInfo(3, 4, 5, 8, 2, burst_size=2).to_dict() == {**old, "burst_size": 2}
    for one in (NmsInfo(1, 1, is_defused=True), NmsInfo(1, 1, defuse_info=NmsDefuseInfo(1)),
                NmsInfo(1, 1, burst_type=NmsBurstType.H15_BBOX), NmsInfo(1, 1, burst_type=7)):
        assert NmsInfo.from_dict(json.loads(json.dumps(one.to_dict()))) == one
    assert NmsInfo(3, 4, 5, 8, 2).burst_size == 0 and not NmsInfo(3, 4).is_defused
    stream = nms_stream(n)
    d = json.loads(json.dumps(stream.to_dict()))
    assert StreamInfo.from_dict(d) == stream
    assert d["hw_frame_size"] == hailort_hw_frame_size(n)
    # a stream dict written before the new fields (and with HailoRT's frame size) loads
    d["nms_info"] = old
    d["hw_frame_size"] = hailort_hw_frame_size(NmsInfo(3, 4, 5, 8, 2))
    assert StreamInfo.from_dict(d).nms_info == NmsInfo(3, 4, 5, 8, 2)
    with pytest.raises(HailoInvalidArgumentError, match="unknown keys"):
        NmsInfo.from_dict({**old, "burst": 1})
    with pytest.raises(HailoInvalidArgumentError, match="is_defused"):
        NmsInfo(1, 1, is_defused=1)
    with pytest.raises(HailoInvalidArgumentError, match="original_name"):
        NmsDefuseInfo(0, "x" * 200)
    assert NmsInfo(1, 1, defuse_info={"class_group_index": 2}).defuse_info == NmsDefuseInfo(2)


def test_defuse_info_reaches_c_and_changes_nothing():
    plain = nms_stream(NmsInfo(2, 3, 0, 8, 2))
    defused = nms_stream(NmsInfo(2, 3, 0, 8, 2, is_defused=True,
                                 defuse_info=NmsDefuseInfo(1, "original")))
    c = defused._to_c()
    assert c.ptr.nms_info.is_defused and c.ptr.nms_info.defuse_info.class_group_index == 1
    assert ffi.string(c.ptr.nms_info.defuse_info.original_name) == b"original"
    frame = golden.random_nms_frame(np.random.default_rng(5), plain)
    assert defused.hw_frame_size == plain.hw_frame_size
    assert (OutputTransformContext(defused).transform(frame).tobytes()
            == OutputTransformContext(plain).transform(frame).tobytes())
