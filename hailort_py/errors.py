"""Exceptions of the Python runtime, one per C status code.

Naming scheme: the C status name in CamelCase plus ``Error``:
``HAILO_INVALID_ARGUMENT`` -> ``HailoInvalidArgumentError``. Every class derives from
``HailoRTError`` (which carries ``.status``, the C ``hailo_status`` value) and, where Python
has a builtin for the same meaning, from that builtin too (``HailoInvalidArgumentError`` is a
``ValueError``, ``HailoTimeoutError`` a ``TimeoutError``...), so generic handlers work.

Status values are HailoRT's, as in native/include/hailo_stream.h; a test keeps the two equal.
A status this module does not know raises plain ``HailoRTError`` with that status.
"""
from __future__ import annotations

__all__ = [
    "HailoRTError",
    "HailoUninitializedError",
    "HailoInvalidArgumentError",
    "HailoOutOfHostMemoryError",
    "HailoTimeoutError",
    "HailoInsufficientBufferError",
    "HailoInvalidOperationError",
    "HailoNotImplementedError",
    "HailoInternalFailureError",
    "HailoDataAlignmentFailureError",
    "HailoInvalidFrameError",
    "HailoNotFoundError",
    "HailoCommunicationClosedError",
    "HailoRpcFailedError",
    "HailoInvalidServiceVersionError",
    "HailoNotSupportedError",
    "HailoQueueIsFullError",
    "STATUS_NAMES",
    "error_class",
    "make_error",
]


class HailoRTError(Exception):
    """Base of every error of the runtime. ``status`` is the C ``hailo_status`` value."""

    status: int = 8  # HAILO_INTERNAL_FAILURE unless a subclass or the raiser says otherwise

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = int(status)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "HAILO_UNKNOWN_STATUS")


class HailoUninitializedError(HailoRTError):
    status = 1


class HailoInvalidArgumentError(HailoRTError, ValueError):
    status = 2


class HailoOutOfHostMemoryError(HailoRTError, MemoryError):
    status = 3


class HailoTimeoutError(HailoRTError, TimeoutError):
    status = 4


class HailoInsufficientBufferError(HailoRTError, ValueError):
    status = 5


class HailoInvalidOperationError(HailoRTError):
    status = 6


class HailoNotImplementedError(HailoRTError, NotImplementedError):
    status = 7


class HailoInternalFailureError(HailoRTError):
    status = 8


class HailoDataAlignmentFailureError(HailoRTError):
    status = 9


class HailoInvalidFrameError(HailoRTError):
    status = 25


class HailoNotFoundError(HailoRTError, LookupError):
    status = 61


class HailoCommunicationClosedError(HailoRTError, ConnectionError):
    status = 62


class HailoRpcFailedError(HailoRTError):
    status = 77


class HailoInvalidServiceVersionError(HailoRTError):
    status = 78


class HailoNotSupportedError(HailoRTError, NotImplementedError):
    status = 79


class HailoQueueIsFullError(HailoRTError):
    status = 82


_CLASSES: dict[int, type[HailoRTError]] = {
    cls.status: cls
    for cls in (
        HailoUninitializedError,
        HailoInvalidArgumentError,
        HailoOutOfHostMemoryError,
        HailoTimeoutError,
        HailoInsufficientBufferError,
        HailoInvalidOperationError,
        HailoNotImplementedError,
        HailoInternalFailureError,
        HailoDataAlignmentFailureError,
        HailoInvalidFrameError,
        HailoNotFoundError,
        HailoCommunicationClosedError,
        HailoRpcFailedError,
        HailoInvalidServiceVersionError,
        HailoNotSupportedError,
        HailoQueueIsFullError,
    )
}

#: C status value -> C status name ("HAILO_INVALID_ARGUMENT").
STATUS_NAMES: dict[int, str] = {0: "HAILO_SUCCESS"} | {
    status: "HAILO_" + "".join("_" + ch if ch.isupper() else ch.upper()
                               for ch in cls.__name__[len("Hailo"):-len("Error")]).lstrip("_")
    for status, cls in _CLASSES.items()
}


def error_class(status: int) -> type[HailoRTError]:
    """The exception class of a nonzero C status (``HailoRTError`` for an unknown one)."""
    return _CLASSES.get(int(status), HailoRTError)


def make_error(status: int, message: str) -> HailoRTError:
    """The exception for a nonzero C status, with ``message`` and ``.status`` set."""
    return error_class(status)(message, status)
