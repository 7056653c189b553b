"""hailort_py: the Python runtime of the toolkit. Stream and format types, transforms between
user buffers and device frames (through the C stream layer in native/), and the errors.

Names mirror HailoRT / pyhailort; see docs/python-api.md.
"""
from __future__ import annotations

from ._raw import _check as _check_status, ffi as _ffi, lib as _lib
from .errors import (HailoCommunicationClosedError, HailoDataAlignmentFailureError,
                     HailoInsufficientBufferError, HailoInternalFailureError,
                     HailoInvalidArgumentError, HailoInvalidFrameError, HailoInvalidOperationError,
                     HailoInvalidServiceVersionError, HailoNotFoundError,
                     HailoNotImplementedError, HailoNotSupportedError, HailoOutOfHostMemoryError,
                     HailoQueueIsFullError, HailoRpcFailedError, HailoRTError, HailoTimeoutError,
                     HailoUninitializedError)
from .stream import (DEFAULT_VSTREAM_QUEUE_SIZE, DEFAULT_VSTREAM_TIMEOUT_MS, Format, FormatFlags,
                     FormatOrder, FormatType, ImageShape, NmsBurstType, NmsDefuseInfo, NmsInfo,
                     NmsShape, QuantInfo, StreamDirection,
                     StreamInfo, StreamTransformMode, TransformParams, UserBufferFormat,
                     VStreamParams)
from .transform import (NMS_BY_SCORE_DETECTION_DTYPE, InputTransformContext,
                        OutputTransformContext, dequantize, nms_by_class_detections,
                        nms_by_score_frame_dtype, quantize)

__version__ = "0.1.0"


def library_version() -> tuple[int, int, int]:
    """(major, minor, revision) of the C stream layer compiled into this module."""
    version = _ffi.new("hailo_version_t *")
    _check_status(_lib.hailo_get_library_version(version), "querying the C library version")
    return (version.major, version.minor, version.revision)


__all__ = [
    "HailoRTError", "HailoUninitializedError", "HailoInvalidArgumentError",
    "HailoOutOfHostMemoryError", "HailoTimeoutError", "HailoInsufficientBufferError",
    "HailoInvalidOperationError", "HailoNotImplementedError", "HailoInternalFailureError",
    "HailoDataAlignmentFailureError", "HailoInvalidFrameError", "HailoNotFoundError",
    "HailoCommunicationClosedError", "HailoRpcFailedError", "HailoInvalidServiceVersionError",
    "HailoNotSupportedError", "HailoQueueIsFullError",
    "FormatType", "FormatOrder", "FormatFlags", "StreamDirection", "StreamTransformMode",
    "Format", "UserBufferFormat", "TransformParams", "VStreamParams", "QuantInfo", "ImageShape",
    "NmsInfo", "NmsBurstType", "NmsDefuseInfo", "NmsShape", "StreamInfo",
    "DEFAULT_VSTREAM_QUEUE_SIZE", "DEFAULT_VSTREAM_TIMEOUT_MS",
    "InputTransformContext", "OutputTransformContext", "quantize", "dequantize",
    "NMS_BY_SCORE_DETECTION_DTYPE", "nms_by_score_frame_dtype", "nms_by_class_detections",
    "library_version", "__version__",
]
