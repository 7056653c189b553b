"""The device protocol: what travels between a client and the device server (docs/device-protocol.md).

A message is multipart: one msgpack header (a map), then one raw part per tensor, in the order of
the header's "tensors" list. This module only turns headers and numpy arrays into parts and back
(no sockets, no TensorFlow): the server and RemoteDevice share it, and a C or C++ client
reimplements it from the doc page alone.

Zero copy: `tensor_parts` returns the arrays' own buffers for sending with copy=False, and
`decode_tensors` wraps received buffers (zmq.Frame.buffer) with np.frombuffer.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import msgpack
import numpy as np

from .errors import (HailoInvalidArgumentError, HailoNotSupportedError, HailoRTError,
                     HailoInvalidServiceVersionError, make_error)

PROTOCOL_VERSION = 1
VERBS = ("hello", "stream_infos", "infer", "stats", "ping")
DTYPES = {"uint8": np.dtype(np.uint8), "uint16": np.dtype("<u2"), "float32": np.dtype("<f4")}

MAX_HEADER_BYTES = 64 * 1024  # a header is small; a larger part 0 is refused before decoding
MAX_TENSORS = 256
_MAX_ID = 2**64 - 1


class ProtocolError(HailoRTError):
    """A message that does not follow the protocol; `.status` is the reply's status and
    `.request_id` the id it answers when the header was readable enough to have one."""

    def __init__(self, message: str, status: int, request_id: int | None = None,
                 verb: str | None = None):
        super().__init__(message, status)
        self.request_id = request_id
        self.verb = verb


def pack_header(header: Mapping[str, Any]) -> bytes:
    return msgpack.packb(dict(header), use_bin_type=True)


def unpack_header(part: bytes | memoryview) -> dict[str, Any]:
    """The header map of part 0; a ProtocolError (HAILO_INVALID_ARGUMENT) for anything that is
    not a msgpack map of at most MAX_HEADER_BYTES with string keys."""
    if len(part) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(part)} bytes is larger than {MAX_HEADER_BYTES}",
                            HailoInvalidArgumentError.status)
    try:
        header = msgpack.unpackb(bytes(part), raw=False, strict_map_key=True,
                                 max_str_len=MAX_HEADER_BYTES, max_bin_len=MAX_HEADER_BYTES,
                                 max_array_len=4 * MAX_TENSORS, max_map_len=256)
    except (ValueError, msgpack.exceptions.UnpackException) as e:
        # what msgpack raises on junk: ValueError and its subclasses (ExtraData, FormatError,
        # StackError, UnicodeDecodeError, bad timestamps, limits) and UnpackException
        raise ProtocolError(f"header is not msgpack: {type(e).__name__}: {e}",
                            HailoInvalidArgumentError.status) from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header is a msgpack {type(header).__name__}, not a map",
                            HailoInvalidArgumentError.status)
    return header


def check_request(header: Mapping[str, Any]) -> tuple[int, str]:
    """(request id, verb) of a request header, or a ProtocolError naming what is wrong."""
    rid = header.get("id")
    rid = rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= _MAX_ID else None
    verb = header.get("verb") if isinstance(header.get("verb"), str) else None
    if rid is None:
        raise ProtocolError("header has no request id (\"id\": an unsigned 64-bit integer)",
                            HailoInvalidArgumentError.status, None, verb)
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version!r} is not served; this server speaks "
                            f"version {PROTOCOL_VERSION}", HailoInvalidServiceVersionError.status,
                            rid, verb)
    if verb not in VERBS:
        raise ProtocolError(f"unknown verb {header.get('verb')!r}; the verbs are {list(VERBS)}",
                            HailoNotSupportedError.status, rid, verb)
    network = header.get("network")
    if network is not None and not isinstance(network, str):
        raise ProtocolError("\"network\" must be a string or nil", HailoInvalidArgumentError.status,
                            rid, verb)
    return rid, verb


def tensor_descs(arrays: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """The header's "tensors" list for named arrays (in the dict's order)."""
    out = []
    for name, a in arrays.items():
        if not isinstance(name, str) or not name:
            raise HailoInvalidArgumentError(f"tensor name {name!r}: tensors are named by "
                                            f"non-empty strings (stream names)")
        if not isinstance(a, np.ndarray):
            raise HailoInvalidArgumentError(f"tensor '{name}': a {type(a).__name__}, not a numpy "
                                            f"array")
        dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        dname = next((k for k, d in DTYPES.items() if d == dtype), None)
        if dname is None:
            raise HailoInvalidArgumentError(f"tensor '{name}': dtype {a.dtype} does not travel; "
                                            f"use one of {sorted(DTYPES)}")
        out.append({"name": name, "dtype": dname, "shape": [int(d) for d in a.shape]})
    return out


def tensor_parts(arrays: Mapping[str, np.ndarray]) -> list[Any]:
    """One buffer per array, C order, little-endian; no copy when the array already is."""
    parts = []
    for a in arrays.values():
        a = np.ascontiguousarray(a)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        parts.append(memoryview(a).cast("B") if a.size else b"")
    return parts


def decode_tensors(header: Mapping[str, Any], parts: Sequence[Any],
                   max_elements: int | None = None) -> dict[str, np.ndarray]:
    """{name: array} from the header's "tensors" and the raw parts after it, viewing the parts'
    buffers (no copy). A ProtocolError (HAILO_INVALID_ARGUMENT) names the tensor whose
    description or size is wrong."""
    descs = header.get("tensors", [])
    rid, verb = header.get("id"), header.get("verb")

    def bad(msg: str) -> ProtocolError:
        return ProtocolError(msg, HailoInvalidArgumentError.status, rid, verb)

    if not isinstance(descs, list):
        raise bad("\"tensors\" must be a list")
    if len(descs) > MAX_TENSORS:
        raise bad(f"{len(descs)} tensors; at most {MAX_TENSORS}")
    if len(descs) != len(parts):
        raise bad(f"the header describes {len(descs)} tensors but {len(parts)} data parts follow it")
    out: dict[str, np.ndarray] = {}
    for i, (d, part) in enumerate(zip(descs, parts)):
        if not isinstance(d, dict):
            raise bad(f"tensor {i}: description is not a map")
        name, dname, shape = d.get("name"), d.get("dtype"), d.get("shape")
        if not isinstance(name, str) or not name:
            raise bad(f"tensor {i}: \"name\" must be a non-empty string")
        if name in out:
            raise bad(f"tensor '{name}' appears twice")
        if dname not in DTYPES:
            raise bad(f"tensor '{name}': dtype {dname!r} is not one of {sorted(DTYPES)}")
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 8
                or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**40
                           for n in shape)):
            raise bad(f"tensor '{name}': \"shape\" must be a list of 1 to 8 non-negative integers")
        count = int(np.prod(shape, dtype=object))
        if max_elements is not None and count > max_elements:
            raise bad(f"tensor '{name}': {count} elements is more than this server takes")
        dtype = DTYPES[dname]
        buf = memoryview(part) if not isinstance(part, memoryview) else part
        if buf.nbytes != count * dtype.itemsize:
            raise bad(f"tensor '{name}': shape {shape} of {dname} is {count * dtype.itemsize} bytes, "
                      f"its data part has {buf.nbytes}")
        out[name] = np.frombuffer(buf, dtype=dtype).reshape(shape) if count else \
            np.zeros(shape, dtype)
    return out


def error_of_reply(header: Mapping[str, Any], where: str) -> HailoRTError | None:
    """The exception a reply's nonzero status stands for (None for success)."""
    status = header.get("status", 0)
    if status == 0:
        return None
    if not isinstance(status, int) or isinstance(status, bool):
        status = HailoInvalidArgumentError.status
    message = header.get("error") if isinstance(header.get("error"), str) else "no message"
    return make_error(status, f"{where}: {message}")
