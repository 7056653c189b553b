"""HAR: one tar archive holding a runner's whole state (see docs/file-formats.md).

Members (a plain, uncompressed tar of regular files, in this order):
  hn.json              the HN
  native.npz           native params (absent if never loaded)
  fp_optimized.npz     fp-optimized params (absent while None)
  quantized.npz        quantized params, opaque here, stored and restored byte for byte
                       (dtype, shape, bytes, key order); absent while None
  model_script.alls    the model script text (may be empty)
  stream_infos.json    list of dicts, or null
  metadata.json        {"har_format": 1, "tool", "tool_version", "created", "network",
                        "metadata": runner.metadata}
ClientRunner(har=path) restores every attribute exactly; the tool / creation fields go to
runner.har_info.

Loading is bounded (a HAR may come from anyone): the tar headers are parsed here, not by
`tarfile` (whose reader loads pax and GNU long-name headers whole, whatever size they declare),
and every member is checked -- a regular file (not compressed, sparse, a link, a directory...),
a known name, not seen before, its size within emulator.limits.LIMITS and within the file --
before any member's bytes are read. The .npz members
are then read in place (never copied whole into memory) with their .npy headers checked before
their data (emulator.npz.read_npz); the JSON members are bounded in size and nesting.
Saving goes through emulator.files.atomic_write: an interrupted save leaves the old HAR whole.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import stat
import tarfile
import time
from typing import Any, BinaryIO

from .errors import HarError
from .limits import LIMITS, LimitError, json_depth, load_json

HAR_FORMAT = 1
TOOL = "hailo-toolkit emulator"

# the members a HAR may hold, in the order save_har writes them
MEMBERS = ("hn.json", "native.npz", "fp_optimized.npz", "quantized.npz", "model_script.alls",
           "stream_infos.json", "metadata.json")
_JSON_MEMBERS = ("hn.json", "stream_infos.json", "metadata.json")

_BLOCK = 512
_COMPRESSED = ((b"\x1f\x8b", "gzip", "gunzip"), (b"BZh", "bzip2", "bunzip2"),
               (b"\xfd7zXZ\x00", "xz", "unxz"), (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
               (b"\x5d\x00\x00", "lzma", "unlzma"))
_TYPES = {  # tar type flags other than a regular file, and what they are
    b"1": "hard link", b"2": "symbolic link", b"3": "character device", b"4": "block device",
    b"5": "directory", b"6": "FIFO", b"7": "contiguous file", b"S": "sparse file (GNU)",
    b"x": "pax extended header", b"g": "pax global header", b"X": "pax extended header (Solaris)",
    b"L": "GNU long-name header", b"K": "GNU long-link header", b"D": "GNU directory dump",
    b"M": "GNU multi-volume continuation", b"N": "GNU old long name", b"V": "GNU volume label",
}
_REPACK = ("a HAR holds only the regular files save_har writes; re-save it with "
           "ClientRunner.save_har, or repack the members with `tar --format=ustar -cf`")


def _tool_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("hailo-toolkit")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree not installed
        return "0.1.0+source"


def _member_limit(name: str) -> tuple[int, str]:
    key = "max_json_bytes" if name in _JSON_MEMBERS else "max_member_bytes"
    return getattr(LIMITS, key), key


# --- saving ----------------------------------------------------------------------------------

def _json_member(name: str, value: Any, what: str) -> bytes:
    try:
        data = json.dumps(value, indent=2, sort_keys=False).encode()
    except (TypeError, ValueError) as e:
        raise HarError(f"{what} must be JSON-serializable to save a HAR: {e}") from None
    depth = json_depth(data)
    if depth > LIMITS.max_json_depth:
        raise LimitError(f"saving a HAR: {what} is nested {depth} levels deep, more than loading "
                         f"its member '{name}' allows; {LIMITS.describe('max_json_depth')}")
    return data


def save_har(runner: Any, path: str | os.PathLike) -> None:
    from .files import atomic_write
    from .npz import npz_bytes

    now = time.time()
    meta = {
        "har_format": HAR_FORMAT, "tool": TOOL, "tool_version": _tool_version(),
        "created": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(),
        "network": runner.hn.name, "metadata": runner.metadata,
    }
    meta_bytes = _json_member("metadata.json", meta, "runner.metadata")
    infos_bytes = _json_member("stream_infos.json", runner.stream_infos, "runner.stream_infos")
    total = 0

    def add(name: str, data: bytes) -> None:
        nonlocal total
        limit, key = _member_limit(name)
        total += len(data)
        # a HAR this toolkit would refuse to load is not written either
        if len(data) > limit:
            raise LimitError(f"saving HAR '{os.fspath(path)}': member '{name}' would be "
                             f"{len(data):,} bytes, more than loading it allows; "
                             f"{LIMITS.describe(key)}")
        if total > LIMITS.max_har_bytes:
            raise LimitError(f"saving HAR '{os.fspath(path)}': the members up to '{name}' would "
                             f"be {total:,} bytes, more than loading them allows; "
                             f"{LIMITS.describe('max_har_bytes')}")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = int(now)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    # the new HAR goes to an unnamed / exclusive temporary renamed over `path` when whole: an
    # exception, Ctrl-C or a kill leaves the old file as it was (and no temporary)
    with atomic_write(path) as f:
        # GNU format: plain headers (the names are short), base-256 sizes for members >= 8 GiB
        with tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT) as tar:
            add("hn.json", runner.hn.to_json().encode())
            if runner.native_params is not None:
                add("native.npz", npz_bytes(runner.native_params))
            if runner.fp_optimized_params is not None:
                add("fp_optimized.npz", npz_bytes(runner.fp_optimized_params))
            if runner.quantized_params is not None:
                add("quantized.npz", npz_bytes(runner.quantized_params))
            add("model_script.alls", (runner.model_script or "").encode())
            add("stream_infos.json", infos_bytes)
            add("metadata.json", meta_bytes)


# --- loading ---------------------------------------------------------------------------------

class _Window(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of an open file."""

    def __init__(self, f: BinaryIO, start: int, size: int):
        super().__init__()
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(b)[:n]) or 0
        self._pos += got
        return got


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or base-256 (GNU) when the first byte has bit 7 set."""
    if field[:1] in (b"\x80", b"\xff"):
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if field[:1] == b"\xff" else n
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        raise ValueError(f"{bytes(field)!r} is not an octal number")
    return int(text, 8)


def _name(header: bytes) -> str:
    name = header[0:100].split(b"\x00", 1)[0]
    if header[257:263] == b"ustar\x00":  # POSIX ustar: a prefix directory in 345..500
        prefix = header[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "backslashreplace")


_PAX_MAX = 64 << 10  # bytes of one pax extended header (a HAR's need a few dozen)
_PAX_RUN = 8         # pax headers in a row before one member


def _shown(name: str) -> str:
    return name if name.isprintable() and len(name) <= 200 else repr(name[:200])


def _pax_records(data: bytes, where: str) -> dict[str, str]:
    """The records ("<len> <key>=<value>\\n") of a pax extended header."""
    out: dict[str, str] = {}
    pos = 0
    data = data.rstrip(b"\x00")
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit() or int(digits) < len(digits) + 3 or pos + int(digits) > len(data):
            raise HarError(f"{where}: a pax extended header is damaged (record at byte {pos})")
        record = data[space + 1:pos + int(digits)]
        key, eq, value = record.partition(b"=")
        if not eq or not record.endswith(b"\n"):
            raise HarError(f"{where}: a pax extended header is damaged (record at byte {pos})")
        out[key.decode("utf-8", "backslashreplace")] = value[:-1].decode("utf-8", "backslashreplace")
        pos += int(digits)
    return out


def _scan(f: BinaryIO, size: int, path: str) -> dict[str, tuple[int, int]]:
    """Member name -> (offset of its data, its size), from the headers alone: every member is
    checked before any member's data is read. pax extended headers (at most _PAX_MAX bytes) are
    applied (path, size); every other kind of entry than a regular file is refused."""
    where = f"HAR '{path}'"
    members: dict[str, tuple[int, int]] = {}
    total = 0
    offset = 0
    pax: dict[str, str] = {}
    pax_run = 0
    while True:
        if offset + _BLOCK > size:
            last = f"after member '{list(members)[-1]}'" if members else "before any member"
            raise HarError(f"{where} is truncated: it ends at byte {size:,}, {last}, without the "
                           f"tar end-of-archive marker; the file was cut short (copy it again)")
        f.seek(offset)
        header = f.read(_BLOCK)
        if len(header) != _BLOCK:
            raise HarError(f"{where} is truncated at byte {offset + len(header):,} (it shrank "
                           f"while being read?)")
        if header == bytes(_BLOCK):  # end of archive
            return members
        try:
            checksum = _number(header[148:156])
        except ValueError:
            checksum = -1
        unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
        signed = sum(b - 256 if b > 127 else b for b in header[:148] + b" " * 8 + header[156:])
        if checksum not in (unsigned, signed):
            what = ("it is not a tar archive" if offset == 0
                    else f"the tar header at byte {offset:,} is damaged (bad checksum)")
            raise HarError(f"'{path}' is not a readable HAR (tar) archive: {what}")
        kind = header[156:157]
        name = _shown(pax.get("path", _name(header)))
        try:
            length = int(pax["size"]) if "size" in pax else _number(header[124:136])
        except ValueError as e:
            raise HarError(f"{where}: member '{name}' has a damaged size field ({e})") from None
        if length < 0:
            raise HarError(f"{where}: member '{name}' declares a negative size ({length:,})")
        data = offset + _BLOCK
        if kind in (b"x", b"g"):  # pax extended / global header: bounded, then applied / ignored
            pax_run += 1
            if length > _PAX_MAX or pax_run > _PAX_RUN:
                raise HarError(f"{where}: the pax extended header at byte {offset:,} declares "
                               f"{length:,} bytes and is number {pax_run} in a row; a HAR's pax "
                               f"headers are at most {_PAX_MAX:,} bytes, at most {_PAX_RUN} in a "
                               f"row; {_REPACK}")
            if data + length > size:
                raise HarError(f"{where} is truncated: the pax header at byte {offset:,} "
                               f"declares {length:,} bytes, but the file ends at byte {size:,}")
            records = _pax_records(f.read(length), where)
            if kind == b"x":
                pax.update(records)
            offset = data + -(-length // _BLOCK) * _BLOCK
            continue
        sparse = kind == b"S" or any(k.startswith("GNU.sparse") for k in pax)
        pax, pax_run = {}, 0
        if kind not in (b"0", b"\x00") or sparse:
            what = "sparse file (GNU)" if sparse else _TYPES.get(kind, f"tar entry of type {kind!r}")
            raise HarError(f"{where}: member '{name}' is a {what}; {_REPACK}")
        if name not in MEMBERS:
            raise HarError(f"{where}: member '{name}' is not a HAR member (they are "
                           f"{', '.join(MEMBERS)}); refusing the file; {_REPACK}")
        if name in members:
            raise HarError(f"{where}: member '{name}' appears twice (which one would win is not "
                           f"defined); refusing the file; {_REPACK}")
        limit, key = _member_limit(name)
        if length > limit:
            raise LimitError(f"{where}: member '{name}' declares {length:,} bytes, more than the "
                             f"limit; if the file is trusted, raise it: {LIMITS.describe(key)}")
        total += length
        if total > LIMITS.max_har_bytes:
            raise LimitError(f"{where}: the members up to '{name}' declare {total:,} bytes in "
                             f"all, more than the limit; if the file is trusted, raise it: "
                             f"{LIMITS.describe('max_har_bytes')}")
        if data + length > size:
            raise HarError(f"{where} is truncated: member '{name}' declares {length:,} bytes "
                           f"from byte {data:,}, but the file ends at byte {size:,}; the file "
                           f"was cut short (copy it again)")
        members[name] = (data, length)
        offset = data + -(-length // _BLOCK) * _BLOCK


def _sniff(head: bytes, path: str) -> None:
    for magic, kind, tool in _COMPRESSED:
        if head.startswith(magic):
            raise HarError(f"HAR '{path}' is compressed ({kind}); a HAR is a plain tar "
                           f"(docs/file-formats.md): decompress it first (e.g. `{tool} -c ... > "
                           f"x.har`), or load the HAR it was made from")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        raise HarError(f"'{path}' is a zip archive (an .npz?), not a HAR (a plain tar written by "
                       f"ClientRunner.save_har); load params with runner.load_params")
    if len(head) == 0:
        raise HarError(f"'{path}' is not a readable HAR (tar) archive: the file is empty")
    if len(head) < _BLOCK:
        raise HarError(f"'{path}' is not a readable HAR (tar) archive: it is {len(head)} bytes, "
                       f"shorter than one tar header")


def load_har(runner: Any, path: str | os.PathLike) -> None:
    """Fill `runner` from a HAR (validating the HN and the native params against it)."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except FileNotFoundError:
        raise HarError(f"HAR '{path}' does not exist") from None
    except OSError as e:
        raise HarError(f"HAR '{path}' cannot be opened: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise HarError(f"HAR '{path}' is not a regular file (a directory, device or pipe); "
                       f"give the path of a .har file")
    with os.fdopen(fd, "rb") as f:
        try:
            _sniff(f.read(_BLOCK), path)
            _load(runner, f, st.st_size, path)
        except OSError as e:
            raise HarError(f"HAR '{path}' cannot be read: {e}") from None


def _load(runner: Any, f: BinaryIO, size: int, path: str) -> None:
    from .hn import HNGraph
    from .npz import load_params, read_npz

    where = f"HAR '{path}'"
    members = _scan(f, size, path)

    def read(name: str) -> bytes:
        start, length = members[name]
        f.seek(start)
        data = f.read(length)
        if len(data) != length:
            raise HarError(f"{where}: member '{name}' is truncated (the file shrank while being "
                           f"read?)")
        return data

    def text(name: str) -> str:
        try:
            return read(name).decode("utf-8")
        except UnicodeDecodeError as e:
            raise HarError(f"{where}: {name} is not UTF-8 text: {e}") from None

    def json_member(name: str) -> Any:
        what = f"{where}, member '{name}'"
        try:
            return load_json(text(name), what)
        except LimitError:
            raise
        except json.JSONDecodeError as e:
            raise HarError(f"{where}: {name} is not valid JSON: {e}") from None
        except ValueError as e:  # a duplicate key (load_json names the member), a too long int
            msg = str(e)
            raise HarError(msg if msg.startswith(what) else f"{what}: {msg}") from None

    def npz(name: str) -> _Window:
        return _Window(f, *members[name])

    for need in ("hn.json", "metadata.json"):
        if need not in members:
            raise HarError(f"{where} has no '{need}' (members: {sorted(members)}); was it "
                           f"written by ClientRunner.save_har?")
    meta = json_member("metadata.json")
    if not isinstance(meta, dict) or type(meta.get("har_format", 0)) is not int \
            or not isinstance(meta.get("metadata", {}), dict):
        raise HarError(f"{where}: metadata.json must be an object with an integer "
                       f"'har_format' and a 'metadata' object; was it written by ClientRunner.save_har?")
    if meta.get("har_format", 0) > HAR_FORMAT:
        raise HarError(f"{where} has format {meta.get('har_format')}, newer than this tool "
                       f"reads ({HAR_FORMAT}); upgrade the toolkit")
    stream_infos = json_member("stream_infos.json") if "stream_infos.json" in members else None
    if stream_infos is not None and not (isinstance(stream_infos, list)
                                         and all(isinstance(s, dict) for s in stream_infos)):
        raise HarError(f"{where}: stream_infos.json must be a list of objects or null; was it "
                       f"written by ClientRunner.save_har?")
    model_script = text("model_script.alls") if "model_script.alls" in members else ""
    runner.hn = HNGraph.from_json(text("hn.json"), source=f"{where}, member 'hn.json'")
    for name, attr in (("native.npz", "native_params"), ("fp_optimized.npz", "fp_optimized_params")):
        if name in members:
            setattr(runner, attr, load_params(runner.hn, npz(name), f"{where}, member '{name}'",
                                              allow_compressed=False))
    if "quantized.npz" in members:
        from .qparams_check import validate_quantized_params
        from .quantization.keys import upgrade_kinds

        source = f"{where}, member 'quantized.npz'"
        qp = read_npz(npz("quantized.npz"), source, allow_compressed=False)
        # checked against the HN here, not when inference runs (docs/numerics.md, "Checked at load")
        # a version 1 file's int32 kinds become names, so that it is saved in today's form
        runner.quantized_params = upgrade_kinds(validate_quantized_params(runner.hn, qp, source))
    runner.model_script = model_script
    runner.stream_infos = stream_infos
    runner.metadata = meta.get("metadata", {})
    runner.har_info = {k: v for k, v in meta.items() if k != "metadata"}
