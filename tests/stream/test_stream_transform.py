"""C transforms (through hailort_py) against the numpy reference, for every supported
(direction, device format, user format) configuration, on random shapes, QPs and frames."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import golden
import reference_stream as ref
import stream_cases
from hailort_py import (Format, FormatFlags, FormatOrder as O, FormatType as T, ImageShape,
                        InputTransformContext, OutputTransformContext, QuantInfo, StreamDirection,
                        StreamInfo)
import hailort_py.transform as transform_module

CONFIGS = stream_cases.supported_configs()
PER_CONFIG = settings(max_examples=8, deadline=None, derandomize=False,
                      suppress_health_check=[HealthCheck.too_slow])
GUARD = 64
GUARD_BYTE = 0xA5


def make_context(stream: StreamInfo, user: Format):
    cls = InputTransformContext if stream.direction == StreamDirection.H2D else OutputTransformContext
    return cls(stream, user)


def guarded_empty(shape, dtype):
    """An uninitialised array with GUARD canary bytes on both sides; returns (array, backing)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    backing = np.full(nbytes + 2 * GUARD, GUARD_BYTE, np.uint8)
    array = backing[GUARD:GUARD + nbytes].view(dtype).reshape(shape)
    return array, backing


def assert_guards_intact(backing):
    assert (backing[:GUARD] == GUARD_BYTE).all() and (backing[-GUARD:] == GUARD_BYTE).all(), \
        "the C library wrote outside the destination"


def random_source_frames(rng, stream, user, frames):
    """`frames` random source frames (numpy arrays of the context's source layout)."""
    resolved = ref.resolve(stream, user)
    if stream.direction == StreamDirection.H2D:
        return [golden.random_host_frame(rng, stream, resolved) for _ in range(frames)]
    if stream.format.order == O.HAILO_NMS_ON_CHIP:
        raw = [golden.random_nms_frame(rng, stream) for _ in range(frames)]
    else:
        raw = [golden.random_device_frame(rng, stream) for _ in range(frames)]
    dtype = np.uint8 if stream.is_nms else ref.NP_TYPE[stream.format.type]
    return [np.frombuffer(r, dtype).copy() for r in raw]


def reference_result(stream, user, frame):
    resolved = ref.resolve(stream, user)
    if stream.direction == StreamDirection.H2D:
        return ref.input_frame(stream, resolved, frame)
    return ref.output_frame(stream, resolved, frame.tobytes()).tobytes()


def test_reference_never_calls_c(monkeypatch):
    """The numpy reference and the case generators must stay independent of the C path they
    judge: they run here, over every config, with each C function of the native module
    replaced by one that fails (the dataclasses read only its integer constants)."""
    import hailort_py.stream as stream_module

    real = stream_module.lib

    class ConstantsOnly:
        def __getattr__(self, name):
            value = getattr(real, name)
            if callable(value):
                raise AssertionError(f"the reference called C: lib.{name}")
            return value

    monkeypatch.setattr(stream_module, "lib", ConstantsOnly())
    rng = np.random.default_rng(0)
    for config in CONFIGS:
        stream = stream_cases.random_stream(rng, config)
        user = stream_cases.random_user_format(rng, config)
        status, resolved = ref.check(stream, user)
        assert status == ref.SUCCESS, config.id
        ref.is_transformation_required(stream, user)
        ref.host_frame_size(stream, resolved)
        reference_result(stream, user, random_source_frames(rng, stream, user, 1)[0])


@pytest.mark.parametrize("config", CONFIGS, ids=[c.id for c in CONFIGS])
@PER_CONFIG
@given(seed=st.integers(0, 2**32 - 1), batch=st.sampled_from([None, 1, 3]))
def test_c_matches_reference(config, seed, batch):
    rng = np.random.default_rng(seed)
    stream = stream_cases.random_stream(rng, config, name=f"s{seed % 1000}")
    user = stream_cases.random_user_format(rng, config)
    status, resolved = ref.check(stream, user)
    assert status == ref.SUCCESS, (stream, user)
    ctx = make_context(stream, user)
    assert ctx.user_format == resolved
    assert ctx.is_transformation_required == ref.is_transformation_required(stream, user)

    frames = random_source_frames(rng, stream, user, batch or 1)
    src = frames[0] if batch is None else np.stack(frames)
    dst_shape, dst_dtype = ctx._dst
    dst, backing = guarded_empty(((batch,) if batch else ()) + dst_shape, dst_dtype)
    out = ctx.transform(src, dst)
    assert out is dst
    assert_guards_intact(backing)
    got = [dst.tobytes()] if batch is None else [d.tobytes() for d in dst]
    for i, frame in enumerate(frames):
        assert got[i] == reference_result(stream, user, frame), f"frame {i} of {ctx!r}"

    # allocated destination, and the zero-copy view when no step runs
    again = ctx.transform(src)
    assert again.tobytes() == dst.tobytes()
    assert again.shape == dst.shape and again.dtype == dst.dtype
    assert np.shares_memory(again, src) == (not ctx.is_transformation_required)


WIDE = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("config", CONFIGS, ids=[c.id for c in CONFIGS])
@WIDE
@given(seed=st.integers(0, 2**32 - 1))
def test_c_matches_reference_on_wide_frames(config, seed):
    """Frames wide enough for the C library's vector loops, their tails and misalignments."""
    rng = np.random.default_rng(seed)
    stream = stream_cases.random_stream(rng, config, name="wide", wide=True)
    user = stream_cases.random_user_format(rng, config)
    ctx = make_context(stream, user)
    frames = random_source_frames(rng, stream, user, 2)
    out = ctx.transform(np.stack(frames))
    for i, frame in enumerate(frames):
        assert out[i].tobytes() == reference_result(stream, user, frame), f"frame {i} of {ctx!r}"


def _nhcw_stream(direction=StreamDirection.H2D, shape=(6, 10, 3), hw=(6, 16, 3)):
    return StreamInfo("bulk", direction, Format(T.UINT8, O.NHCW), ImageShape(*shape),
                      ImageShape(*hw), QuantInfo(128, 1 / 64, -2, 1.984375))


@pytest.mark.parametrize("direction", [StreamDirection.H2D, StreamDirection.D2H])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_split_across_threads_matches_reference(monkeypatch, direction, threads):
    monkeypatch.setattr(transform_module, "PARALLEL_MIN_BYTES", 1)
    rng = np.random.default_rng(threads)
    stream = _nhcw_stream(direction)
    user = Format(T.FLOAT32, O.NHWC)
    ctx = (InputTransformContext if direction == StreamDirection.H2D else OutputTransformContext)(
        stream, user, threads=threads)
    chunks = []
    run_chunk = ctx._run_chunk

    def recording_run_chunk(src_ptr, dst_ptr, first, count):
        chunks.append((first, count))
        return run_chunk(src_ptr, dst_ptr, first, count)

    monkeypatch.setattr(ctx, "_run_chunk", recording_run_chunk)
    frames = random_source_frames(rng, stream, user, 7)
    out = ctx.transform(np.stack(frames))
    for i, frame in enumerate(frames):
        assert out[i].tobytes() == reference_result(stream, user, frame)
    # the batch was cut into `threads` contiguous chunks covering every frame once
    assert len(chunks) == threads
    assert sorted(chunks)[0][0] == 0
    assert sum(count for _, count in chunks) == 7
    covered = sorted(i for first, count in chunks for i in range(first, first + count))
    assert covered == list(range(7))
    # every C context taken for a chunk went back to the free list
    assert 1 <= len(ctx._free_contexts) <= threads


def test_failed_batch_split_leaves_no_chunk_running(monkeypatch):
    """When the calling thread's chunk raises, transform() still waits for the pool's chunks:
    nothing writes into the destination after it has raised."""
    import time

    monkeypatch.setattr(transform_module, "PARALLEL_MIN_BYTES", 1)
    ctx = InputTransformContext(_nhcw_stream(), Format(T.FLOAT32), threads=3)
    run_chunk, finished = ctx._run_chunk, []

    def slow_or_failing_chunk(src_ptr, dst_ptr, first, count):
        if first == 0:
            raise MemoryError("no C context for the calling thread")
        time.sleep(0.05)
        result = run_chunk(src_ptr, dst_ptr, first, count)
        finished.append(first)
        return result

    monkeypatch.setattr(ctx, "_run_chunk", slow_or_failing_chunk)
    with pytest.raises(MemoryError):
        ctx.transform(np.zeros((6, 6, 10, 3), np.float32))
    assert sorted(finished) == [2, 4]


def test_empty_batch_returns_empty_destination():
    ctx = InputTransformContext(_nhcw_stream(), Format(T.FLOAT32))
    out = ctx.transform(np.empty((0, 6, 10, 3), np.float32))
    assert out.shape == (0,) + ctx.device_shape and out.dtype == ctx.device_dtype


def test_context_shared_between_python_threads():
    from concurrent.futures import ThreadPoolExecutor

    stream = _nhcw_stream()
    ctx = InputTransformContext(stream, Format(T.FLOAT32))
    rng = np.random.default_rng(5)
    frames = [golden.random_host_frame(rng, stream, ctx.user_format) for _ in range(32)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(ctx.transform, frames))
    for frame, got in zip(frames, results):
        assert got.tobytes() == ref.input_frame(stream, ctx.user_format, frame)


@pytest.mark.parametrize("direction", [StreamDirection.H2D, StreamDirection.D2H])
def test_zero_copy_when_no_step_runs(direction):
    stream = StreamInfo("plain", direction, Format(T.UINT8, O.NHWC), ImageShape(2, 4, 4),
                        ImageShape(2, 4, 4))
    cls = InputTransformContext if direction == StreamDirection.H2D else OutputTransformContext
    ctx = cls(stream, Format(T.UINT8, O.NHWC))
    assert not ctx.is_transformation_required
    assert "copy" in ctx.description
    src = np.arange(2 * 32, dtype=np.uint8).reshape((2,) + ctx._src[0])
    out = ctx.transform(src)
    assert np.shares_memory(out, src)
    assert out.shape == (2,) + ctx._dst[0] and out.tobytes() == src.tobytes()
    # an explicit destination is always written
    dst = np.zeros_like(out)
    assert ctx.transform(src, dst) is dst and not np.shares_memory(dst, src)
    assert dst.tobytes() == src.tobytes()


def test_raw_byte_device_buffers_are_accepted():
    stream = StreamInfo("u16", StreamDirection.D2H, Format(T.UINT16, O.NHCW), ImageShape(2, 3, 2),
                        ImageShape(2, 4, 2), QuantInfo(100, 0.5, -50, 50))
    ctx = OutputTransformContext(stream, Format(T.FLOAT32))
    rng = np.random.default_rng(1)
    raw = golden.random_device_frame(rng, stream)
    expected = ref.output_frame(stream, ctx.user_format, raw)
    for src in (raw, memoryview(raw), np.frombuffer(raw, np.uint8),
                np.frombuffer(raw, np.uint16)):
        assert ctx.transform(src).tobytes() == expected.tobytes()
    # input side: a raw uint8 destination
    in_stream = StreamInfo("in16", StreamDirection.H2D, Format(T.UINT16, O.NHCW),
                           ImageShape(2, 3, 2), ImageShape(2, 4, 2), QuantInfo(100, 0.5, -50, 50))
    in_ctx = InputTransformContext(in_stream, Format(T.FLOAT32))
    host = golden.random_host_frame(rng, in_stream, in_ctx.user_format)
    dst = np.empty(in_stream.hw_frame_size, np.uint8)
    in_ctx.transform(host, dst)
    assert dst.tobytes() == ref.input_frame(in_stream, in_ctx.user_format, host)


def test_properties_and_description():
    stream = _nhcw_stream()
    ctx = InputTransformContext(stream, Format(T.FLOAT32))
    assert ctx.host_shape == (6, 10, 3) and ctx.host_dtype == np.float32
    assert ctx.device_shape == (stream.hw_frame_size,) and ctx.device_dtype == np.uint8
    assert ctx.src_frame_size == 6 * 10 * 3 * 4 == ref.host_frame_size(stream, ctx.user_format)
    assert ctx.dst_frame_size == stream.hw_frame_size == ref.hw_frame_size(stream)
    assert ctx.user_format == Format(T.FLOAT32, O.NHWC)
    text = ctx.description
    assert "quantize" in text and "reorder" in text
    assert "bulk" in repr(ctx)


def test_nms_by_score_frame_is_a_structured_scalar():
    from hailort_py import NmsInfo, nms_by_class_detections

    nms = NmsInfo(3, 2, 4, 8, 1)
    stream = StreamInfo("nms", StreamDirection.D2H, Format(T.UINT16, O.HAILO_NMS_ON_CHIP),
                        ImageShape(1, 1, 1), ImageShape(1, 1, 1), QuantInfo(0, 1 / 4096, 0, 16),
                        nms_info=nms)
    proposals = [[ref.nms_pack(300, 10, 20, 30, 40)], [], [ref.nms_pack(500, 1, 2, 3, 4),
                                                           ref.nms_pack(100, 5, 6, 7, 8)]]
    frame = ref.nms_encode(stream, [proposals])
    by_score = OutputTransformContext(stream, Format(T.FLOAT32, O.HAILO_NMS_BY_SCORE)).transform(frame)
    assert by_score.shape == () and by_score.dtype.itemsize == 2 + 4 * 22
    assert by_score["count"] == 3
    dets = by_score["detections"][:3]
    assert list(dets["class_id"]) == [2, 0, 2]
    np.testing.assert_array_equal(dets["score"], np.float32([500, 300, 100]) / 4096)
    by_class = OutputTransformContext(stream, Format(T.FLOAT32, O.HAILO_NMS_BY_CLASS)).transform(frame)
    per_class = nms_by_class_detections(by_class, 3)
    assert [len(d) for d in per_class] == [1, 0, 2]
    np.testing.assert_array_equal(per_class[0][0], np.float32([10, 20, 30, 40, 300]) / 4096)


@pytest.mark.parametrize("device_flags,user_flags", [
    (FormatFlags.NONE, FormatFlags.NONE), (FormatFlags.NONE, FormatFlags.TRANSPOSED),
    (FormatFlags.TRANSPOSED, FormatFlags.NONE), (FormatFlags.TRANSPOSED, FormatFlags.TRANSPOSED),
])
def test_context_transposes_iff_the_decision_function_says_so(device_flags, user_flags):
    from hailort_py._raw import ffi, lib

    s = StreamInfo("t", StreamDirection.H2D, Format(T.UINT8, O.NHWC, device_flags),
                   ImageShape(2, 4, 1), ImageShape(2, 4, 1))
    user = Format(T.UINT8, O.NHWC, user_flags)
    device_format, user_format = ffi.new("hailo_format_t *"), ffi.new("hailo_format_t *")
    s.format._fill_c(device_format)
    user._fill_c(user_format)
    required = ffi.new("bool *")
    assert lib.hailo_is_transpose_required(user_format, device_format, required) == 0
    ctx = InputTransformContext(s, user)
    assert ("transpose" in ctx.description) == bool(required[0]), ctx.description
    assert ctx.host_shape == ((4, 2, 1) if required[0] else (2, 4, 1))
    host = np.arange(8, dtype=np.uint8).reshape(ctx.host_shape)
    assert ctx.transform(host).tobytes() == ref.input_frame(s, ctx.user_format, host)
