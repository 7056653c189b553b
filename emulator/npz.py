"""Native params (NPZ): load, validate against the HN, save.

Keys are "<net>/<layer>/<name>:0" (see docs/file-formats.md):
  kernel:0  conv HWIO [kh, kw, cin/groups, cout]; dw [kh, kw, cin, multiplier];
            deconv [kh, kw, cin, cout]; dense [cin, cout]
  bias:0    [cout] (conv / dw / deconv / dense)
  alpha:0   [C] per-channel PReLU slopes (any layer whose activation is prelu)
  mean:0, std:0   [C] normalization layers: y = (x - mean) / std
Everything is float32. A missing key, a wrong shape, a non-finite value or a key of no layer is a
ParamsError naming the key, the expected and the actual shape.
"""
from __future__ import annotations

import io
import math
import os
import stat
import struct
import zipfile
import zlib
from typing import Any, BinaryIO, Mapping

import numpy as np

from .errors import ParamsError
from .files import write_bytes
from .hn import MAC_TYPES, HNGraph, Layer
from .limits import LIMITS, LimitError


def expected_params(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Bare param key -> shape the layer needs."""
    p = layer.params
    out: dict[str, tuple[int, ...]] = {}
    if layer.type in MAC_TYPES:
        k = tuple(int(d) for d in p["kernel_shape"])
        out["kernel"] = k
        cout = k[2] * k[3] if layer.type == "dw" else k[-1]
        out["bias"] = (cout,)
    if p.get("activation") == "prelu":
        out["alpha"] = (int(layer.output_shape[-1]),)
    if layer.type == "normalization":
        c = int(layer.output_shape[-1])
        out["mean"] = (c,)
        out["std"] = (c,)
    return out


def optional_params(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Bare param key -> shape the layer may have: `act_clip`, the per-channel upper clip of a
    ReLU6 (equalization scales channels, so 6 becomes 6 / s_c; absent: 6 everywhere)."""
    if layer.params.get("activation") == "relu6":
        return {"act_clip": (int(layer.output_shape[-1]),)}
    return {}


def read_npz(path_or_bytes: str | os.PathLike | bytes | BinaryIO, source: str | None = None,
             allow_compressed: bool = True) -> dict[str, np.ndarray]:
    """All arrays of an .npz file (a path, its bytes, or a seekable binary file object), keys as
    stored, values loaded eagerly.

    Bounded: every member's .npy header (shape, dtype) is read and checked before its data:
    only .npy members, no duplicates, no object dtypes (pickles are never loaded), a declared
    size that matches the member, at most LIMITS.max_tensor_elements elements per array and
    LIMITS.max_member_bytes for the whole file uncompressed. Deflated members (np.savez_compressed)
    are read only when `allow_compressed` (a HAR's members are stored). `source` names the file in
    errors (ParamsError, or LimitError for a limit)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return _read_npz(io.BytesIO(path_or_bytes), source or "params data", allow_compressed)
    if hasattr(path_or_bytes, "read"):
        return _read_npz(path_or_bytes, source or "params data", allow_compressed)
    where = source or f"'{os.fspath(path_or_bytes)}'"
    try:
        fd = os.open(path_or_bytes, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ParamsError(f"params file '{os.fspath(path_or_bytes)}' does not exist") from None
    except OSError as e:
        raise ParamsError(f"{where} cannot be opened: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ParamsError(f"{where} is not a regular file (a directory, device or pipe); "
                          f"give the path of an .npz file")
    with os.fdopen(fd, "rb") as f:
        return _read_npz(f, where, allow_compressed)


# what zipfile / numpy raise on a damaged or hostile file
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError,
                IndexError, TypeError, SyntaxError, struct.error, zlib.error, NotImplementedError,
                RuntimeError, OverflowError)


def _limit(where: str, what: str, figure: int, name: str) -> LimitError:
    return LimitError(f"{where}: {what} ({figure:,}) is more than the limit; if the file is "
                      f"trusted, raise it: {LIMITS.describe(name)}")


def _read_npz(f: BinaryIO, where: str, allow_compressed: bool) -> dict[str, np.ndarray]:
    try:
        head = f.read(4)
        f.seek(0)
    except _READ_ERRORS as e:
        raise ParamsError(f"{where} cannot be read: {e}") from None
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip with members / an empty zip
        if head.startswith(b"\x93NUM"):
            kind = "a single .npy array, not an .npz archive (np.load it, or np.savez it into one)"
        elif head[:1] == b"\x80":
            kind = "a Python pickle, not an .npz archive; pickles are never loaded (they can run code)"
        elif not head:
            kind = "empty"
        else:
            kind = "not an .npz (zip) archive of .npy arrays"
        raise ParamsError(f"{where} is not a readable .npz file: it is {kind}")
    try:
        zf = zipfile.ZipFile(f)
    except _READ_ERRORS as e:
        raise ParamsError(f"{where} is not a readable .npz file: {e}") from None
    with zf:
        plan = _check_members(zf, where, allow_compressed)
        out: dict[str, np.ndarray] = {}
        for key, info in plan:
            try:
                with zf.open(info) as m:
                    out[key] = np.lib.format.read_array(m, allow_pickle=False)
            except LimitError:
                raise
            except _READ_ERRORS as e:
                raise ParamsError(f"{where}: key '{key}' is damaged: {e}") from None
        return out


def _check_members(zf: zipfile.ZipFile, where: str, allow_compressed: bool
                   ) -> list[tuple[str, zipfile.ZipInfo]]:
    """Each member's name, compression, sizes and .npy header checked before any data is read."""
    plan: list[tuple[str, zipfile.ZipInfo]] = []
    seen: set[str] = set()
    total = 0
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise ParamsError(f"{where}: member {name!r} is not an .npy array; an .npz holds only "
                              f".npy members (written by np.savez); refusing it")
        key = name[:-4]
        if key in seen:
            raise ParamsError(f"{where}: key '{key}' appears twice (which one would win is not "
                              f"defined); rewrite the file with np.savez")
        seen.add(key)
        if info.flag_bits & 0x1:
            raise ParamsError(f"{where}: key '{key}' is encrypted; write the file with np.savez")
        if info.compress_type == zipfile.ZIP_DEFLATED and not allow_compressed:
            raise ParamsError(f"{where}: key '{key}' is compressed (deflate); the .npz members of "
                              f"a HAR are stored uncompressed (docs/file-formats.md); re-save the "
                              f"HAR with ClientRunner.save_har")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ParamsError(f"{where}: key '{key}' uses zip compression method "
                              f"{info.compress_type}; an .npz is stored (np.savez) or deflated "
                              f"(np.savez_compressed)")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ParamsError(f"{where}: key '{key}' is stored with {info.compress_size:,} bytes "
                              f"but declares {info.file_size:,}; the file is damaged")
        if info.file_size > LIMITS.max_member_bytes:
            raise _limit(where, f"key '{key}' declares {info.file_size:,} bytes uncompressed; that",
                         info.file_size, "max_member_bytes")
        total += info.file_size
        if total > LIMITS.max_member_bytes:
            raise _limit(where, f"the arrays up to key '{key}' declare {total:,} bytes "
                                f"uncompressed in all; that", total, "max_member_bytes")
        try:
            with zf.open(info) as m:
                version = np.lib.format.read_magic(m)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(m)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(m)
                else:
                    raise ValueError(f".npy format version {version} is not read here (1.0 and 2.0 are)")
                header_bytes = m.tell()
        except _READ_ERRORS as e:
            raise ParamsError(f"{where}: key '{key}' is not a readable .npy array: {e}") from None
        if dtype.hasobject:
            raise ParamsError(f"{where}: key '{key}' has dtype {dtype} (pickled Python objects); "
                              f"object arrays are never loaded (unpickling can run code); store "
                              f"numeric arrays")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ParamsError(f"{where}: key '{key}' declares the shape {shape!r}, which is not "
                              f"a tuple of non-negative ints; the file is damaged")
        count = math.prod(shape)
        if count > LIMITS.max_tensor_elements:
            raise _limit(where, f"key '{key}' declares shape {list(shape)} of {dtype}, "
                                f"{count:,} elements; that", count, "max_tensor_elements")
        if header_bytes + count * dtype.itemsize != info.file_size:
            raise ParamsError(f"{where}: key '{key}' declares shape {list(shape)} of {dtype} "
                              f"({count * dtype.itemsize:,} bytes of data) but the member holds "
                              f"{info.file_size - header_bytes:,}; the file is damaged")
        plan.append((key, info))
    return plan


def npz_bytes(params: Mapping[str, np.ndarray]) -> bytes:
    """Serialize to .npz bytes (uncompressed; dtypes and bytes kept as they are)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in params.items()})
    return buf.getvalue()


def save_npz(path: str | os.PathLike, params: Mapping[str, np.ndarray]) -> None:
    """Write an .npz (uncompressed) atomically: the old file stays whole until the new one is."""
    data = npz_bytes(params)
    write_bytes(path, data)


def validate_params(hn: HNGraph, params: Mapping[str, Any], source: str = "params") -> dict[str, np.ndarray]:
    """Check params against the HN and return them as float32 arrays (scoped keys).

    Accepts scoped keys ("<net>/<layer>/kernel:0") or keys without the net prefix
    ("<layer>/kernel:0"); returns scoped keys.
    """
    out: dict[str, np.ndarray] = {}
    prefix = hn.name + "/"
    for key, v in params.items():
        full = key if key.startswith(prefix) else prefix + key
        parts = full[len(prefix):].split("/")
        if len(parts) != 2 or not parts[1].endswith(":0"):
            raise ParamsError(f"{source}: key '{key}' is not '<net>/<layer>/<param>:0'")
        if parts[0] not in hn.layers:
            raise ParamsError(f"{source}: key '{key}' names layer '{parts[0]}', which is not in "
                              f"network '{hn.name}'; are these the params of another network?")
        out[full] = v
    checked: dict[str, np.ndarray] = {}
    for layer in hn.layers.values():
        optional = optional_params(layer)
        for name, shape in {**expected_params(layer), **optional}.items():
            key = f"{prefix}{layer.name}/{name}:0"
            if key not in out and name in optional:
                continue
            if key not in out:
                raise ParamsError(f"{source}: missing '{key}' (expected shape {list(shape)}) for "
                                  f"{layer.type} layer '{layer.name}'")
            arr = np.asarray(out.pop(key))
            if tuple(arr.shape) != shape:
                raise ParamsError(f"{source}: '{key}' has shape {list(arr.shape)}, expected "
                                  f"{list(shape)} for {layer.type} layer '{layer.name}'")
            if not np.issubdtype(arr.dtype, np.floating):
                raise ParamsError(f"{source}: '{key}' has dtype {arr.dtype}, expected float32")
            arr = arr.astype(np.float32)
            if not np.all(np.isfinite(arr)):
                raise ParamsError(f"{source}: '{key}' holds NaN or inf values")
            if name == "std" and np.any(arr == 0):
                raise ParamsError(f"{source}: '{key}' has zeros; a normalization std must be non-zero")
            if name == "act_clip" and np.any(arr <= 0):
                raise ParamsError(f"{source}: '{key}' has values <= 0; a ReLU6's per-channel clip "
                                  f"must be positive")
            checked[key] = arr
    if out:
        k = sorted(out)[0]
        raise ParamsError(f"{source}: key '{k}' is not a param of layer '{k.split('/')[1]}' "
                          f"({hn.layer(k.split('/')[1]).type}); expected only "
                          f"{sorted({**expected_params(hn.layer(k.split('/')[1])), **optional_params(hn.layer(k.split('/')[1]))})}")
    return checked


def load_params(hn: HNGraph, path_or_dict: Any, source: str | None = None,
                allow_compressed: bool = True) -> dict[str, np.ndarray]:
    """Read (if a path, bytes or a binary file object; bounded, see read_npz) and validate
    native params for `hn`. `source` names the file in errors."""
    if isinstance(path_or_dict, Mapping):
        return validate_params(hn, path_or_dict, source or "params")
    if source is None:
        source = ("params data" if isinstance(path_or_dict, (bytes, bytearray, memoryview))
                  or hasattr(path_or_dict, "read") else f"'{os.fspath(path_or_dict)}'")
    return validate_params(hn, read_npz(path_or_dict, source, allow_compressed), source)


def layer_params(hn: HNGraph, params: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Bare-key view of one layer's params ({"kernel": ..., "bias": ...})."""
    layer = hn.layer(name)
    prefix = f"{hn.name}/{layer.name}/"
    return {k[len(prefix):-2]: v for k, v in params.items() if k.startswith(prefix)}
