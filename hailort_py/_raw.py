"""Thin private layer over the cffi module: the `ffi` and `lib` objects and the one place
where a C status becomes a Python exception."""
from __future__ import annotations

from ._native import ffi, lib
from .errors import make_error

__all__ = ["ffi", "lib", "_check", "status_message", "MESSAGE_SIZE"]

MESSAGE_SIZE = lib.HAILO_MAX_MESSAGE_SIZE


def status_message(status: int) -> str:
    """The C library's name and meaning of a status ("HAILO_INVALID_ARGUMENT: ...")."""
    return ffi.string(lib.hailo_get_status_message(status)).decode("utf-8", "replace")


def _check(status: int, context_msg: str) -> None:
    """Raises the exception named after `status` unless it is HAILO_SUCCESS. The message is
    `context_msg` (what was being done, to which stream, and the C library's own detail)
    followed by the C status string."""
    if status != lib.HAILO_SUCCESS:
        raise make_error(status, f"{context_msg} [{status_message(status)}]")
