"""Host <-> device frame transforms through the C stream layer, on numpy arrays.

``InputTransformContext`` turns user frames into device frames of an input stream,
``OutputTransformContext`` device frames of an output stream into user frames (dequantized,
reordered, or NMS-decoded). Both wrap one C context each (released by ``ffi.gc``), pass
numpy buffers to C without copying (``ffi.from_buffer``), and accept one frame or a batch.
See docs/python-api.md for shapes, zero copy and threading.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Iterable

import numpy as np

from ._raw import MESSAGE_SIZE, _check, ffi, lib
from .errors import (HailoInsufficientBufferError, HailoInternalFailureError,
                     HailoInvalidArgumentError)
from .stream import (Format, FormatFlags, FormatOrder, FormatType, QuantInfo, StreamDirection,
                     StreamInfo, StreamTransformMode, TransformParams, VStreamParams,
                     _as_quant_infos)

__all__ = [
    "InputTransformContext",
    "OutputTransformContext",
    "quantize",
    "dequantize",
    "NMS_BY_SCORE_DETECTION_DTYPE",
    "nms_by_score_frame_dtype",
    "nms_by_class_detections",
    "PARALLEL_MIN_BYTES",
]

#: One HAILO_NMS_BY_SCORE detection: packed, little endian, 22 bytes.
NMS_BY_SCORE_DETECTION_DTYPE = np.dtype([
    ("y_min", "<f4"), ("x_min", "<f4"), ("y_max", "<f4"), ("x_max", "<f4"), ("score", "<f4"),
    ("class_id", "<u2"),
])
assert NMS_BY_SCORE_DETECTION_DTYPE.itemsize == lib.HAILO_NMS_BY_SCORE_DETECTION_SIZE


def nms_by_score_frame_dtype(max_bboxes_total: int) -> np.dtype:
    """The numpy dtype of one HAILO_NMS_BY_SCORE host frame: a uint16 count, then
    max_bboxes_total detections (the first `count` are valid), packed."""
    return np.dtype([("count", "<u2"), ("detections", NMS_BY_SCORE_DETECTION_DTYPE,
                                        (max_bboxes_total,))])


def nms_by_class_detections(frame: np.ndarray, number_of_classes: int) -> list[np.ndarray]:
    """Splits one HAILO_NMS_BY_CLASS host frame into per-class (count, 5) float32 arrays of
    [y_min, x_min, y_max, x_max, score] (views into the frame)."""
    frame = np.asarray(frame, dtype=np.float32).reshape(-1)
    out, pos = [], 0
    for cls in range(number_of_classes):
        if pos >= frame.size:
            raise HailoInvalidArgumentError(f"NMS by-class frame ends before class {cls}")
        count = int(frame[pos])
        end = pos + 1 + 5 * count
        if count < 0 or end > frame.size:
            raise HailoInvalidArgumentError(f"NMS by-class frame: class {cls} count {count} "
                                            "runs past the frame")
        out.append(frame[pos + 1:end].reshape(count, 5))
        pos = end
    return out


# ------------------------------------------------------------------------- threading ---
#: A batch is split across threads only when its source and destination bytes together
#: reach this many bytes (below it, the thread hand-off costs more than it saves).
PARALLEL_MIN_BYTES = 8 << 20

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _shared_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_default_threads(),
                                           thread_name_prefix="hailort_py-transform")
        return _executor


# ------------------------------------------------------------------------ layouts ---
_NUMPY_TYPES = {FormatType.UINT8: np.dtype(np.uint8), FormatType.UINT16: np.dtype(np.uint16),
                FormatType.FLOAT32: np.dtype(np.float32)}


def _host_layout(stream: StreamInfo, user: Format) -> tuple[tuple[int, ...], np.dtype]:
    """numpy shape and dtype of one host frame of the (resolved) user format."""
    order = user.order
    h, w, c = stream.shape
    if user.is_transposed != stream.format.is_transposed:  # a transpose runs
        h, w = w, h
    if order == FormatOrder.HAILO_NMS_BY_CLASS:  # every chunk's detections (nms_shape)
        shape = stream.nms_info.nms_shape
        return (shape.number_of_classes * (1 + 5 * shape.max_bboxes_per_class),), np.dtype(np.float32)
    if order == FormatOrder.HAILO_NMS_BY_SCORE:  # bytes (user type UINT8 or FLOAT32)
        return (), nms_by_score_frame_dtype(stream.nms_info.nms_shape.max_bboxes_total)
    if order == FormatOrder.HAILO_NMS_ON_CHIP:
        return (stream.hw_frame_size,), np.dtype(np.uint8)
    shapes = {
        FormatOrder.NHWC: (h, w, c), FormatOrder.FCR: (h, w, c), FormatOrder.F8CR: (h, w, c),
        FormatOrder.NHCW: (h, c, w), FormatOrder.NCHW: (c, h, w),
        FormatOrder.RGB4: (h, (w * c + 3) // 4 * 4), FormatOrder.NHW: (h, w),
        FormatOrder.NC: (c,), FormatOrder.YUY2: (h, w, c),
        FormatOrder.NV12: (h * 3 // 2, w), FormatOrder.NV21: (h * 3 // 2, w),
        FormatOrder.I420: (h * 3 // 2, w),
    }
    if order not in shapes or user.type not in _NUMPY_TYPES:
        raise HailoInternalFailureError(f"{stream}: no host layout for user format {user}")
    return shapes[order], _NUMPY_TYPES[user.type]


def device_frame_layout(stream: StreamInfo) -> tuple[tuple[int, ...], np.dtype]:
    """numpy shape and dtype of one device frame: flat device elements (NMS: bytes)."""
    size = stream.hw_frame_size
    if stream.is_nms or stream.hw_data_bytes == 1:
        return (size,), np.dtype(np.uint8)
    return (size // 2,), np.dtype(np.uint16)


def _transform_params(user_format) -> TransformParams:
    if user_format is None:
        return TransformParams()
    if isinstance(user_format, TransformParams):
        return user_format
    if isinstance(user_format, Format):
        return TransformParams(user_format)
    if isinstance(user_format, VStreamParams):
        return user_format.transform_params
    raise HailoInvalidArgumentError(
        f"user_format: expected Format, TransformParams, VStreamParams or None, "
        f"got {type(user_format).__name__}")


# ----------------------------------------------------------------------- contexts ---
class _TransformContext:
    _DIRECTION: StreamDirection
    _KIND: str

    def __init__(self, stream_info: StreamInfo, user_format=None, *, threads: int | None = None):
        if not isinstance(stream_info, StreamInfo):
            raise HailoInvalidArgumentError(
                f"{type(self).__name__}: expected a StreamInfo, got {type(stream_info).__name__}")
        if isinstance(stream_info.direction, StreamDirection) and \
                stream_info.direction != self._DIRECTION:
            # C refuses it too (and its directed check says so); this names the class to use
            other = "Output" if self._DIRECTION == StreamDirection.H2D else "Input"
            raise HailoInvalidArgumentError(
                f"{type(self).__name__}: {stream_info} is not an {self._KIND} stream; use "
                f"{other}TransformContext")
        self.stream_info = stream_info
        params = _transform_params(user_format)
        preposition = "from" if self._DIRECTION == StreamDirection.H2D else "to"
        self._what = (f"{self._KIND} transform of {stream_info} {preposition} user "
                      f"{params.user_buffer_format}")
        self._c_info = stream_info._to_c()
        self._c_params = params._to_c()
        self._free_contexts = [self._new_c_context()]

        if params.transform_mode == StreamTransformMode.NO_TRANSFORM:
            # the user sends / receives device frames as they are
            self.user_format = stream_info.format
        else:
            resolved = ffi.new("hailo_format_t *")
            _check(lib.hailo_resolve_user_format(
                self._c_info.ptr, ffi.addressof(self._c_params, "user_buffer_format"), resolved),
                f"{self._what}: resolving the user format")
            #: The user format with AUTO resolved.
            self.user_format = Format._from_c(resolved)
        self._what = f"{self._KIND} transform of {stream_info} {preposition} user {self.user_format}"

        ctx = self._free_contexts[0]
        #: Bytes of one source / destination frame (C's view).
        self.src_frame_size = int(self._c_src_frame_size(ctx))
        self.dst_frame_size = int(self._c_dst_frame_size(ctx))
        required = ffi.new("bool *")
        _check(self._c_is_required(self._c_info.ptr, self._c_params, required),
               f"{self._what}: deciding the steps")
        #: False when the transform is a plain copy: transform() then returns the source
        #: viewed as the destination, without copying.
        self.is_transformation_required = bool(required[0]) or self.src_frame_size != self.dst_frame_size

        #: numpy shape/dtype of one host frame (the user's side) and one device frame.
        self.device_shape, self.device_dtype = device_frame_layout(stream_info)
        if params.transform_mode == StreamTransformMode.NO_TRANSFORM:
            self.host_shape, self.host_dtype = self.device_shape, self.device_dtype
        else:
            self.host_shape, self.host_dtype = _host_layout(stream_info, self.user_format)
        self._src, self._dst = self._sides()
        # device buffers may be raw uint8 bytes
        self._src_raw_ok = self._DIRECTION == StreamDirection.D2H
        self._dst_raw_ok = self._DIRECTION == StreamDirection.H2D
        for (shape, dtype), size, side in ((self._src, self.src_frame_size, "source"),
                                           (self._dst, self.dst_frame_size, "destination")):
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != size:
                raise HailoInternalFailureError(
                    f"{self._what}: {side} frame shape {shape} {dtype} does not make the "
                    f"{size} bytes the C library expects")
        self._threads = _default_threads() if threads is None else int(threads)
        if self._threads < 1:
            raise HailoInvalidArgumentError(f"{self._what}: threads must be >= 1")

    # -- C contexts: one per concurrent call, reused
    def _new_c_context(self):
        ptr = ffi.new(f"hailo_{self._KIND}_transform_context *")
        status = self._c_create(self._c_info.ptr, self._c_params, ptr)
        if status != lib.HAILO_SUCCESS:
            msg = ffi.new("char[]", MESSAGE_SIZE)
            check_status = self._c_check(self._c_info.ptr, self._c_params, msg, MESSAGE_SIZE)
            detail = ffi.string(msg).decode("utf-8", "replace") if check_status else ""
            _check(status, f"cannot create the {self._what}: {detail or 'creation failed'}")
        return ffi.gc(ptr[0], self._c_release)

    @property
    def description(self) -> str:
        """The steps the C context runs ("quantize ... | reorder ... | periph padding ...")."""
        msg = ffi.new("char[]", MESSAGE_SIZE)
        ctx = self._acquire()
        try:
            _check(self._c_describe(ctx, msg, MESSAGE_SIZE), f"{self._what}: describing")
        finally:
            self._free_contexts.append(ctx)
        return ffi.string(msg).decode("utf-8", "replace")

    def _acquire(self):
        # list.pop / list.append are atomic: concurrent calls each get their own C context.
        try:
            return self._free_contexts.pop()
        except IndexError:
            return self._new_c_context()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._what}>"

    # -- validation
    def _validated(self, array, layout, side: str, raw_bytes_ok: bool, writable: bool = False):
        """(array, frames): frames is None for a single frame, N for a batch (N, *shape)."""
        shape, dtype = layout
        if not isinstance(array, np.ndarray):
            if raw_bytes_ok and not writable and isinstance(array, (bytes, bytearray, memoryview)):
                array = np.frombuffer(array, np.uint8)
            else:
                raise HailoInvalidArgumentError(
                    f"{self._what}: the {side} must be a numpy array, got {type(array).__name__}")
        if array.dtype != dtype:
            if raw_bytes_ok and array.dtype == np.uint8:
                shape = (int(np.prod(shape, dtype=np.int64)) * dtype.itemsize,)
            else:
                raise HailoInvalidArgumentError(
                    f"{self._what}: the {side} has dtype {array.dtype}, expected {dtype}")
        array_shape = array.shape
        if array_shape == shape:
            frames = None
        elif array_shape[1:] == shape and len(array_shape) == len(shape) + 1:
            frames = array_shape[0]
        else:
            raise HailoInsufficientBufferError(
                f"{self._what}: the {side} has shape {array_shape}, expected one frame "
                f"{shape} or a batch (N, {', '.join(map(str, shape))})")
        flags = array.flags
        if not flags.c_contiguous:
            raise HailoInvalidArgumentError(
                f"{self._what}: the {side} must be C-contiguous (np.ascontiguousarray)")
        if writable and not flags.writeable:
            raise HailoInvalidArgumentError(f"{self._what}: the {side} is read-only")
        return array, frames

    # -- the transform
    def transform(self, src, dst: np.ndarray | None = None) -> np.ndarray:
        """Transforms one frame, or a batch of N frames (leading axis), from src into dst and
        returns dst (allocated when None). When no step is required and dst is None, returns
        src viewed as the destination (no copy; shares memory with src)."""
        src, frames = self._validated(src, self._src, "source", self._src_raw_ok)
        dst_shape, dst_dtype = self._dst
        if dst is None:
            batch_shape = dst_shape if frames is None else (frames,) + dst_shape
            if not self.is_transformation_required:
                return src.view(dst_dtype).reshape(batch_shape)
            dst = np.empty(batch_shape, dst_dtype)
        else:
            dst, dst_frames = self._validated(dst, self._dst, "destination", self._dst_raw_ok,
                                              writable=True)
            if dst_frames != frames:
                raise HailoInsufficientBufferError(
                    f"{self._what}: the source holds {_frames_text(frames)}, "
                    f"the destination {_frames_text(dst_frames)}")
            if np.may_share_memory(src, dst):
                raise HailoInvalidArgumentError(f"{self._what}: source and destination overlap")
        if frames is None:
            self._run_single(src, dst)
        elif frames:
            self._run_batch(src, dst, frames)
        return dst

    def _run_single(self, src: np.ndarray, dst: np.ndarray) -> None:
        ctx = self._acquire()
        try:
            status = self._c_transform_frame(ctx, ffi.from_buffer(src), self.src_frame_size,
                                             ffi.from_buffer(dst, require_writable=True),
                                             self.dst_frame_size)
        finally:
            self._free_contexts.append(ctx)
        if status != lib.HAILO_SUCCESS:
            _check(status, f"{self._what}: transforming the frame")

    def _run_batch(self, src: np.ndarray, dst: np.ndarray, frames: int) -> None:
        src_ptr = ffi.from_buffer(src)
        dst_ptr = ffi.from_buffer(dst, require_writable=True)
        total_bytes = frames * (self.src_frame_size + self.dst_frame_size)
        workers = min(self._threads, frames) if total_bytes >= PARALLEL_MIN_BYTES else 1
        if workers == 1:
            results = [self._run_chunk(src_ptr, dst_ptr, 0, frames)]
        else:
            bounds = [frames * k // workers for k in range(workers + 1)]
            chunks = [(bounds[k], bounds[k + 1] - bounds[k]) for k in range(workers)]
            pool = _shared_executor()
            futures = [pool.submit(self._run_chunk, src_ptr, dst_ptr, first, count)
                       for first, count in chunks[1:]]
            try:
                results = [self._run_chunk(src_ptr, dst_ptr, *chunks[0])]
            finally:
                wait(futures)  # no chunk may still write dst once transform() returns or raises
            results += [f.result() for f in futures]
        for status, frame in results:
            if status != lib.HAILO_SUCCESS:
                _check(status, f"{self._what}: transforming frame {frame} of the batch")

    def _run_chunk(self, src_ptr, dst_ptr, first: int, count: int) -> tuple[int, int]:
        """Frames [first, first + count) in one C call -> (status, index of the failed frame)."""
        ctx = self._acquire()
        try:
            failed = ffi.new("size_t *")
            status = self._c_transform_frames(
                ctx, src_ptr + first * self.src_frame_size, self.src_frame_size,
                dst_ptr + first * self.dst_frame_size, self.dst_frame_size, count, failed)
            return status, first + failed[0]
        finally:
            self._free_contexts.append(ctx)


def _frames_text(frames: int | None) -> str:
    return "a single frame" if frames is None else f"a batch of {frames} frame(s)"


class InputTransformContext(_TransformContext):
    """User frames -> device frames of an input (H2D) stream.

    ``transform(src, dst=None)``: src has ``host_shape`` / ``host_dtype`` (or a batch of them);
    dst has ``device_shape`` / ``device_dtype`` (raw uint8 bytes are accepted too)."""

    _DIRECTION = StreamDirection.H2D
    _KIND = "input"
    _c_create = staticmethod(lib.hailo_create_input_transform_context)
    _c_check = staticmethod(lib.hailo_check_input_transform_params)
    _c_release = staticmethod(lib.hailo_release_input_transform_context)
    _c_src_frame_size = staticmethod(lib.hailo_input_transform_context_get_src_frame_size)
    _c_dst_frame_size = staticmethod(lib.hailo_input_transform_context_get_dst_frame_size)
    _c_is_required = staticmethod(lib.hailo_is_input_transformation_required)
    _c_describe = staticmethod(lib.hailo_describe_input_transform_context)
    _c_transform_frame = staticmethod(lib.hailo_transform_frame_by_input_transform_context)
    _c_transform_frames = staticmethod(lib.hailort_py_transform_input_frames)

    def _sides(self):
        return (self.host_shape, self.host_dtype), (self.device_shape, self.device_dtype)


class OutputTransformContext(_TransformContext):
    """Device frames of an output (D2H) stream -> user frames (dequantized, reordered,
    NMS-decoded).

    ``transform(src, dst=None)``: src has ``device_shape`` / ``device_dtype`` (raw uint8 bytes,
    bytes or memoryview are accepted too), dst ``host_shape`` / ``host_dtype``. NMS by class:
    flat float32, every chunk's detections; NMS by score (user type UINT8, HailoRT's, or
    FLOAT32: the same bytes): a structured scalar of ``nms_by_score_frame_dtype``."""

    _DIRECTION = StreamDirection.D2H
    _KIND = "output"
    _c_create = staticmethod(lib.hailo_create_output_transform_context)
    _c_check = staticmethod(lib.hailo_check_output_transform_params)
    _c_release = staticmethod(lib.hailo_release_output_transform_context)
    _c_src_frame_size = staticmethod(lib.hailo_output_transform_context_get_src_frame_size)
    _c_dst_frame_size = staticmethod(lib.hailo_output_transform_context_get_dst_frame_size)
    _c_is_required = staticmethod(lib.hailo_is_output_transformation_required)
    _c_describe = staticmethod(lib.hailo_describe_output_transform_context)
    _c_transform_frame = staticmethod(lib.hailo_transform_frame_by_output_transform_context)
    _c_transform_frames = staticmethod(lib.hailort_py_transform_output_frames)

    def _sides(self):
        return (self.device_shape, self.device_dtype), (self.host_shape, self.host_dtype)


# --------------------------------------------------------- quantize / dequantize ---
_DEVICE_TYPES = {np.dtype(np.uint8): FormatType.UINT8, np.dtype(np.uint16): FormatType.UINT16}


def _device_type(dtype) -> tuple[FormatType, np.dtype]:
    if isinstance(dtype, FormatType):
        if dtype not in (FormatType.UINT8, FormatType.UINT16):
            raise HailoInvalidArgumentError(f"device type must be UINT8 or UINT16, got {dtype.name}")
        return dtype, _NUMPY_TYPES[dtype]
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        raise HailoInvalidArgumentError(f"device dtype must be uint8 or uint16, got {dtype!r}") from None
    if np_dtype not in _DEVICE_TYPES:
        raise HailoInvalidArgumentError(f"device dtype must be uint8 or uint16, got {np_dtype}")
    return _DEVICE_TYPES[np_dtype], np_dtype


def quantize(x, quant_info: QuantInfo, dtype=np.uint8) -> np.ndarray:
    """float32 -> device codes (uint8 or uint16) with the C library's exact arithmetic:
    clip to limvals, divide by scale, add zp, round half to even, saturate. x is converted to
    C-contiguous float32 first (no copy when it already is)."""
    if not isinstance(quant_info, QuantInfo):
        raise HailoInvalidArgumentError(f"quantize: expected a QuantInfo, got {quant_info!r}")
    ftype, np_dtype = _device_type(dtype)
    try:
        x = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise HailoInvalidArgumentError(f"quantize: the values are not float32-convertible: {e}") from None
    out = np.empty(x.shape, np_dtype)
    if x.size:
        _check(lib.hailo_quantize_input_buffer(ffi.from_buffer("float[]", x), ffi.from_buffer(out),
                                               x.size, int(ftype), quant_info._to_c()),
               f"quantize to {ftype.name} with {quant_info}")
    return out


def dequantize(q, quant_info: QuantInfo | Iterable[QuantInfo]) -> np.ndarray:
    """Device codes (uint8 / uint16 array) -> float32: (q - zp) * scale, in float32.
    With a list of QPs, QP[c] applies to feature c of the last axis (channel-last)."""
    q = np.asarray(q)
    ftype, _ = _device_type(q.dtype)
    q = np.ascontiguousarray(q)
    qps = _as_quant_infos(quant_info)
    out = np.empty(q.shape, np.float32)
    if not q.size:
        return out
    if len(qps) == 1:
        _check(lib.hailo_dequantize_output_buffer(ffi.from_buffer(q), ffi.from_buffer("float[]", out),
                                                  q.size, int(ftype), qps[0]._to_c()),
               f"dequantize {ftype.name} with {qps[0]}")
        return out
    if q.ndim == 0 or q.shape[-1] != len(qps):
        raise HailoInvalidArgumentError(
            f"dequantize: {len(qps)} per-feature quant infos for an array of shape {q.shape} "
            "(the last axis must have one feature per quant info)")
    for c, qp in enumerate(qps):
        feature = np.ascontiguousarray(q[..., c])
        values = np.empty(feature.shape, np.float32)
        _check(lib.hailo_dequantize_output_buffer(ffi.from_buffer(feature),
                                                  ffi.from_buffer("float[]", values),
                                                  feature.size, int(ftype), qp._to_c()),
               f"dequantize feature {c} ({ftype.name}) with {qp}")
        out[..., c] = values
    return out
