"""Hostile and careless HAR / NPZ files (issue "Untrusted files and careless users").

A real quantized HAR (MTCNN ONet) is built once; a corpus of hostile files is made from it:
compressed (gzip, a 2 MB gzip that inflates to 2 GB, bzip2, xz), a GNU sparse member, a
duplicate member, unknown members (one of 2.5 GB), links / directories / devices, pax and GNU
long-name headers, sizes beyond the limits or beyond the end of the file, a truncated tar, NPZ
members that are compressed junk, lie about their shape, hold objects or pickles or appear
twice, and JSON that is nested too deep or repeats a key. Each is loaded in a subprocess under an
address-space limit (what loading the good HAR needs + 1.5 GB): it must give its named error
(class and key words), stay far below the limit, and leave the file byte for byte as it was.
Then: an interrupted save (an exception or Ctrl-C inside, SIGKILL from outside) leaves the old
HAR whole and no temporary; a symlink at the old predictable temporary name is not followed; and
a seeded fuzz over the members of a valid HAR gets only the package's own errors.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import random
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import traceback
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import data_sources as ds
from emulator.errors import EmulatorError, ParamsError
from emulator.limits import LIMITS, LimitError

ROOT = Path(__file__).resolve().parents[2]
GB = 1 << 30
MARGIN = 3 * GB // 2  # address space a hostile load may take beyond what the good HAR needs

# --- a loader in a subprocess, under an address-space limit ----------------------------------

CHILD = r"""
import json, os, resource, sys, traceback
mode, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = {}
try:
    if mode == "har":
        from emulator import ClientRunner
        r = ClientRunner(har=path)
        out["result"] = "ok"
        out["quantized_keys"] = len(r.quantized_params or {})
    else:
        from emulator.npz import read_npz
        out["result"] = "ok"
        out["keys"] = len(read_npz(path))
except BaseException as e:
    tb = traceback.extract_tb(e.__traceback__)
    out.update(result="error", cls=type(e).__name__, mro=[c.__name__ for c in type(e).__mro__],
               message=str(e)[:4000], origin=tb[-1].filename if tb else "")
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
out["vm_peak_kb"] = int(status["VmPeak"].split()[0])
out["vm_hwm_kb"] = int(status["VmHWM"].split()[0])
print("RESULT " + json.dumps(out))
"""


def child(path, limit: int, mode: str = "har", env_limits: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("EMULATOR_LIMITS", None)
    if env_limits:
        env["EMULATOR_LIMITS"] = env_limits
    p = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(limit)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT))
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    assert p.returncode == 0 and lines, f"the loader crashed (rc {p.returncode}): {p.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def digest(path) -> str:
    """sha256 of the content, reading only the data extents of a sparse file (holes are zeros,
    so (offset, data) of every extent plus the size identify the content)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        h.update(str(size).encode())
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # no more data (ENXIO): the rest is a hole
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            h.update(struct.pack("<QQ", start, end))
            os.lseek(fd, start, os.SEEK_SET)
            left = end - start
            while left:
                chunk = os.read(fd, min(left, 16 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            pos = end
    finally:
        os.close(fd)
    return h.hexdigest()


# --- the good HAR ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qrunner():
    from emulator import parse_keras, run_quantization_from_np

    r = parse_keras(ds.mtcnn_net("onet"), net_name="onet")
    run_quantization_from_np(r, ds.mtcnn_inputs(64, (48, 48), seed=11), calib_num_batch=2,
                             batch_size=32)
    return r


@pytest.fixture(scope="module")
def good(qrunner, tmp_path_factory):
    """(path, {member: bytes}) of the saved quantized HAR."""
    path = tmp_path_factory.mktemp("good") / "onet.har"
    qrunner.save_har(path)
    with tarfile.open(path) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    return path, members


@pytest.fixture(scope="module")
def budget(good):
    """The address-space limit: what loading the good HAR takes in the subprocess, + MARGIN."""
    r = child(good[0], 0)
    assert r["result"] == "ok" and r["quantized_keys"] > 100, r
    limit = r["vm_peak_kb"] * 1024 + MARGIN
    under = child(good[0], limit)
    assert under["result"] == "ok", under  # the good HAR loads under the same limit
    print(f"\n[memory] good HAR: VmPeak {r['vm_peak_kb'] / 1024:.0f} MiB, VmHWM "
          f"{r['vm_hwm_kb'] / 1024:.0f} MiB; limit RLIMIT_AS = {limit / 2**20:.0f} MiB")
    return {"limit": limit, "hwm_kb": under["vm_hwm_kb"], "peak_kb": under["vm_peak_kb"]}


# --- building tars and zips by hand ------------------------------------------------------------

def checksum(buf: bytearray) -> bytearray:
    chk = sum(buf[:148]) + 8 * 32 + sum(buf[156:])
    buf[148:156] = b"%06o\x00 " % chk
    return buf


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, linkname: str = "",
           fmt=tarfile.GNU_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode, info.mtime = size, kind, linkname, 0o644, 0
    return info.tobuf(format=fmt)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def member(name: str, data: bytes) -> bytes:
    return header(name, len(data)) + pad(data)


def tar_of(chunks) -> bytes:
    return b"".join(chunks) + bytes(1024)


def har_with(members: dict, replace: dict | None = None, extra: list | None = None) -> bytes:
    """The good members (in order), some replaced, extra raw chunks before metadata.json."""
    replace = replace or {}
    chunks = [member(n, replace.get(n, d)) for n, d in members.items() if n != "metadata.json"]
    chunks += extra or []
    chunks.append(member("metadata.json", replace.get("metadata.json", members["metadata.json"])))
    return tar_of(chunks)


def pax_member(name: str, data: bytes, records: dict) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.pax_headers = len(data), 0o644, 0, records
    return info.tobuf(format=tarfile.PAX_FORMAT) + pad(data)


def sparse_header(name: str, stored: int, realsize: int) -> bytes:
    """A GNU old-style sparse member: `stored` bytes of data at offset 0, a hole up to realsize."""
    buf = bytearray(header(name, stored, tarfile.GNUTYPE_SPARSE))
    buf[386:398] = b"%011o\x00" % 0        # sparse[0].offset
    buf[398:410] = b"%011o\x00" % stored   # sparse[0].numbytes
    buf[482] = 0                           # isextended
    buf[483:495] = b"%011o\x00" % realsize  # realsize
    return bytes(checksum(buf))


def zip_raw(entries) -> bytes:
    """A zip of (name, method, crc, compressed bytes, uncompressed size) as given (no zip64)."""
    out, central = io.BytesIO(), []
    for name, method, crc, cdata, usize in entries:
        off = out.tell()
        n = name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                              len(cdata), usize, len(n), 0) + n)
        out.write(cdata)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21,
                                   crc, len(cdata), usize, len(n), 0, 0, 0, 0, 0, off) + n)
    cd = b"".join(central)
    cd_off = out.tell()
    out.write(cd)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(cd),
                          cd_off, 0))
    return out.getvalue()


def zip_entries(npz: bytes) -> list:
    """The entries of an .npz as zip_raw takes them (stored, as np.savez writes)."""
    with zipfile.ZipFile(io.BytesIO(npz)) as z:
        return [(i.filename, zipfile.ZIP_STORED, i.CRC, z.read(i), i.file_size) for i in z.infolist()]


def npy_header(shape, descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": tuple(shape)})
    return buf.getvalue()


def deflated_junk(nbytes: int):
    """(crc, deflated bytes, size) of an .npy of float64 zeros of about `nbytes` bytes, made
    from one deflated 64 MiB block repeated (full flushes make the blocks independent)."""
    chunk = 64 << 20
    count = (nbytes - 128) // 8
    head = npy_header((count,))
    data_len = count * 8
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)]
    block = co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    zeros = bytes(chunk)
    full, rest = divmod(data_len, chunk)
    for _ in range(full):
        crc = zlib.crc32(zeros, crc)
    parts.append(block * full)
    parts.append(co.compress(bytes(rest)) + co.flush())
    crc = zlib.crc32(bytes(rest), crc)
    cdata = b"".join(parts)
    assert zlib.decompressobj(-15).decompress(cdata, len(head) + 1000)[:len(head)] == head
    return crc, cdata, len(head) + data_len


class Evil:
    """Unpickling this creates MARKER (harmless, but proves code ran)."""
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def object_npy(marker: str) -> bytes:
    Evil.marker = marker
    buf = io.BytesIO()
    np.save(buf, np.array([Evil()], dtype=object), allow_pickle=True)
    return buf.getvalue()


def with_extra_key(npz: bytes, name: str, data: bytes, method=zipfile.ZIP_STORED, usize=None,
                   crc=None) -> bytes:
    return zip_raw(zip_entries(npz) + [(name, method, zlib.crc32(data) if crc is None else crc,
                                        data, len(data) if usize is None else usize)])


# --- the corpus --------------------------------------------------------------------------------
# each case: path -> expected (class name, [key words]) after being written by its builder

def _gzip_bomb(m: dict, path: Path) -> None:
    """A 2 MB gzip (concatenated members) inflating to a 2 GB tar."""
    size = 2_000_000_000
    head = member("hn.json", m["hn.json"]) + header("native.npz", size)
    zeros = gzip.compress(bytes(64 << 20), 9)
    full, rest = divmod(size + -size % 512, 64 << 20)
    with open(path, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(full):
            f.write(zeros)
        f.write(gzip.compress(bytes(rest) + bytes(1024)))
    assert path.stat().st_size < 3_000_000


def _huge_unknown(m: dict, path: Path) -> None:
    """A 2.5 GB member 'weights.bin' (a hole on disk) between hn.json and the rest."""
    size = 5 * GB // 2
    with open(path, "wb") as f:
        f.write(member("hn.json", m["hn.json"]) + header("weights.bin", size))
        f.seek(size, os.SEEK_CUR)
        f.write(tar_of(member(n, d) for n, d in m.items() if n != "hn.json"))


def _npz_junk(m: dict, nbytes: int) -> bytes:
    crc, cdata, usize = deflated_junk(nbytes)
    return with_extra_key(m["quantized.npz"], "junk.npy", cdata, zipfile.ZIP_DEFLATED, usize, crc)


def _lying_npz(m: dict, shape=(1 << 40,), descr="<f4", data=b"\x00" * 1024) -> bytes:
    return with_extra_key(m["quantized.npz"], "junk.npy", npy_header(shape, descr) + data)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def _writer(fn):
    """A builder from a function of the good members that returns the file's bytes."""
    def build(m, path):
        path.write_bytes(fn(m))
    return build


def _extra(*chunks):
    """The good HAR with raw tar chunks before metadata.json."""
    return _writer(lambda m: har_with(m, extra=list(chunks)))


def _replaced(name: str, fn):
    """The good HAR with member `name` replaced by fn(good members)."""
    return _writer(lambda m: har_with(m, {name: fn(m)}))


def _npz_plus(name: str, key: str, data: bytes, *args, **kw):
    """The good HAR whose npz member `name` has one more zip entry `key`."""
    return _replaced(name, lambda m: with_extra_key(m[name], key, data, *args, **kw))


def _head_then(*chunks):
    """hn.json, then raw chunks, then the end of the archive."""
    return _writer(lambda m: tar_of([member("hn.json", m["hn.json"]), *chunks]))


_SPARSE = ("GNUSparseFile.0/quantized.npz", bytes(512),
           {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "quantized.npz",
            "GNU.sparse.realsize": str(2 * GB - 1)})
_PICKLE = pickle.dumps({"a": 1})

CASES = {
    # compressed: refused by their magic bytes, before anything is inflated
    "gzip": (_writer(lambda m: gzip.compress(har_with(m))), "HarError",
             ["compressed (gzip)", "plain tar", "decompress"]),
    "gzip_bomb_2MB_to_2GB": (_gzip_bomb, "HarError", ["compressed (gzip)", "plain tar"]),
    "bzip2": (_writer(lambda m: bz2.compress(har_with(m))), "HarError", ["compressed (bzip2)"]),
    "xz": (_writer(lambda m: lzma.compress(har_with(m))), "HarError", ["compressed (xz)"]),
    # tar members: refused by name and kind from their headers, before their bytes are read
    "sparse_member_18KB_to_2GB": (
        _head_then(sparse_header("quantized.npz", 512, 2 * GB - 1) + bytes(512)),
        "HarError", ["member 'quantized.npz'", "sparse file", "re-save"]),
    "pax_sparse_1.0": (_extra(pax_member(*_SPARSE)), "HarError", ["quantized.npz", "sparse file"]),
    "duplicate_member": (_writer(lambda m: har_with(m, extra=[member("native.npz", m["native.npz"])])),
                         "HarError", ["member 'native.npz'", "appears twice", "re-save"]),
    "unknown_member": (_extra(member("notes.txt", b"hello")),
                       "HarError", ["member 'notes.txt'", "not a HAR member", "re-save"]),
    "unknown_member_2.5GB": (_huge_unknown, "HarError", ["member 'weights.bin'", "not a HAR member"]),
    "symlink_member": (_extra(header("quantized.npz", 0, tarfile.SYMTYPE, "/etc/passwd")),
                       "HarError", ["member 'quantized.npz'", "symbolic link"]),
    "hardlink_member": (_extra(header("quantized.npz", 0, tarfile.LNKTYPE, "hn.json")),
                        "HarError", ["member 'quantized.npz'", "hard link"]),
    "directory_member": (_extra(header("fp_optimized.npz", 0, tarfile.DIRTYPE)),
                         "HarError", ["fp_optimized.npz", "directory"]),
    "device_member": (_extra(header("fp_optimized.npz", 0, tarfile.CHRTYPE)),
                      "HarError", ["member 'fp_optimized.npz'", "character device"]),
    "fifo_member": (_extra(header("fp_optimized.npz", 0, tarfile.FIFOTYPE)),
                    "HarError", ["member 'fp_optimized.npz'", "FIFO"]),
    # a 1.5 KB file whose pax header declares 7 GB (tarfile would read it whole)
    "pax_header_7GB": (_writer(lambda m: tar_of([header("PaxHeaders/hn.json", 7 * GB, tarfile.XHDTYPE)])),
                       "HarError", ["pax extended header", "7,516,192,768", "65,536"]),
    "pax_path_renames_a_member": (_extra(pax_member("notes.txt", b"x", {"path": "../../etc/passwd"})),
                                  "HarError", ["member '../../etc/passwd'", "not a HAR member"]),
    "pax_size_100GB": (_extra(pax_member("fp_optimized.npz", b"x", {"size": str(100 * GB)})),
                       "LimitError", ["member 'fp_optimized.npz'", "107,374,182,400", "max_member_bytes"]),
    "gnu_long_name": (_extra(member("x" * 150, b"1")), "HarError", ["GNU long-name header"]),
    # sizes
    "member_declares_3GB": (_head_then(header("native.npz", 3 * GB)), "LimitError",
                            ["member 'native.npz'", "3,221,225,472", "max_member_bytes", "raise it"]),
    "member_declares_9GB_base256": (_head_then(header("native.npz", 9 * GB)), "LimitError",
                                    ["member 'native.npz'", "9,663,676,416", "max_member_bytes"]),
    "member_beyond_end_of_file": (_head_then(header("native.npz", GB)), "HarError",
                                  ["truncated", "member 'native.npz'", "1,073,741,824"]),
    "truncated_tar": (_writer(lambda m: har_with(m)[:1_000_000]), "HarError",
                      ["truncated", "copy it again"]),
    "truncated_in_header": (_writer(lambda m: har_with(m)[:512 + len(pad(m["hn.json"])) + 300]),
                            "HarError", ["truncated"]),
    "not_a_tar": (_writer(lambda m: b"garbage" * 200), "HarError", ["not a readable HAR"]),
    "empty_file": (_writer(lambda m: b""), "HarError", ["empty"]),
    "npz_instead_of_har": (_writer(lambda m: m["native.npz"]), "HarError", ["zip archive", "load_params"]),
    # NPZ members: .npy headers checked before any data is read or inflated
    "npz_compressed_junk_key_to_1.9GB": (
        _replaced("quantized.npz", lambda m: _npz_junk(m, 1_900_000_000)),
        "ParamsError", ["member 'quantized.npz'", "key 'junk'", "compressed", "re-save"]),
    "npz_key_declares_2^40_elements": (
        _replaced("quantized.npz", _lying_npz), "LimitError",
        ["member 'quantized.npz'", "key 'junk'", "1,099,511,627,776", "max_tensor_elements"]),
    "npz_key_shape_does_not_match_data": (
        _replaced("quantized.npz", lambda m: _lying_npz(m, (1000, 1000))),
        "ParamsError", ["member 'quantized.npz'", "key 'junk'", "damaged"]),
    "npz_zip_entry_declares_3GB": (_npz_plus("quantized.npz", "junk.npy", b"x" * 64, usize=3 * GB),
                                   "ParamsError", ["key 'junk'", "damaged"]),
    "npz_object_dtype_pickle": (None, "ParamsError",  # built in the test: it needs the marker's path
                                ["member 'native.npz'", "key 'evil'", "object", "never loaded"]),
    "npz_member_is_a_pickle": (_npz_plus("native.npz", "evil.npy", _PICKLE),
                               "ParamsError", ["key 'evil'", "not a readable .npy"]),
    "npz_member_not_npy": (_npz_plus("native.npz", "evil.pkl", _PICKLE),
                           "ParamsError", ["'evil.pkl'", "not an .npy"]),
    "npz_is_a_pickle": (_replaced("native.npz", lambda m: pickle.dumps({"a": np.zeros(3)})),
                        "ParamsError", ["member 'native.npz'", "pickle", "never loaded"]),
    "npz_duplicate_key": (
        _replaced("native.npz", lambda m: zip_raw(zip_entries(m["native.npz"]) * 2)),
        "ParamsError", ["member 'native.npz'", "appears twice"]),
    "npz_bzip2_member": (_npz_plus("quantized.npz", "junk.npy", bz2.compress(bytes(1000)), 12, 1000),
                         "ParamsError", ["key 'junk'", "method 12"]),
    # JSON
    "metadata_nested_100k": (
        _replaced("metadata.json", lambda m: b'{"har_format": 1, "metadata": {"x": %s}}'
                  % _deep(100_000).encode()),
        "LimitError", ["member 'metadata.json'", "levels deep", "max_json_depth"]),
    "metadata_duplicate_key": (
        _replaced("metadata.json", lambda m: b'{"har_format": 1, "har_format": 0, "metadata": {}}'),
        "HarError", ["member 'metadata.json'", "'har_format' appears twice"]),
    "metadata_5000_digit_int": (
        _replaced("metadata.json", lambda m: b'{"har_format": 1, "metadata": {"n": %s}}' % (b"9" * 5000)),
        "HarError", ["member 'metadata.json'", "digits"]),
    "stream_infos_nested_100k": (_replaced("stream_infos.json", lambda m: _deep(100_000).encode()),
                                 "LimitError", ["member 'stream_infos.json'", "nested", "max_json_depth"]),
    "stream_infos_not_a_list": (_replaced("stream_infos.json", lambda m: b'{"a": 1}'),
                                "HarError", ["stream_infos.json", "list of objects"]),
    "hn_nested_100k": (_replaced("hn.json", lambda m: _deep(100_000).encode()),
                       "LimitError", ["hn.json", "nested", "max_json_depth"]),
    "hn_not_utf8": (_replaced("hn.json", lambda m: b'{"name": "\xff\xfe"}'),
                    "HarError", ["hn.json", "UTF-8"]),
}

# NPZ files loaded on their own (runner.load_params(path) / read_npz(path)): deflate is allowed
NPZ_CASES = {
    "npz_file_compressed_junk_3GB": (lambda m: _npz_junk(m, 3 * GB), "LimitError",
                                     ["key 'junk'", "3,221,225,4", "max_member_bytes", "raise it"]),
    "npz_file_key_declares_2^40_elements": (lambda m: _lying_npz(m), "LimitError",
                                            ["key 'junk'", "max_tensor_elements"]),
    "npy_named_npz": (lambda m: npy_header((4,)) + bytes(32), "ParamsError", ["single .npy array"]),
}


def _check(r: dict, cls: str, words: list, budget: dict, path: Path, name: str) -> None:
    assert r["result"] == "error", f"{name}: loaded without an error: {r}"
    assert r["cls"] == cls, f"{name}: {r['cls']} (raised in {r['origin']}): {r['message']}"
    assert "EmulatorError" in r["mro"]
    for w in words:
        assert w in r["message"], f"{name}: {w!r} not in: {r['message']}"
    # refused from the headers: no more memory than the good HAR took (+ a little)
    assert r["vm_hwm_kb"] < budget["hwm_kb"] + 64 * 1024, (name, r["vm_hwm_kb"], budget)
    assert r["vm_peak_kb"] * 1024 < budget["limit"]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_har(name, good, budget, tmp_path):
    members = good[1]
    build, cls, words = CASES[name]
    path = tmp_path / f"{name}.har"
    marker = tmp_path / "pickle-ran"
    if build is None:  # the object-dtype case needs the marker's path
        evil = with_extra_key(members["native.npz"], "evil.npy", object_npy(str(marker)))
        path.write_bytes(har_with(members, {"native.npz": evil}))
    else:
        build(members, path)
    before = digest(path)
    r = child(path, budget["limit"])
    print(f"[{name}] {path.stat().st_size:,} bytes -> {r.get('cls')}: {r.get('message', '')[:300]} "
          f"(VmPeak {r['vm_peak_kb'] // 1024} MiB, VmHWM {r['vm_hwm_kb'] // 1024} MiB)")
    _check(r, cls, words, budget, path, name)
    assert f"HAR '{path}'" in r["message"] or f"'{path}'" in r["message"]
    assert digest(path) == before
    assert not marker.exists()


@pytest.mark.parametrize("name", list(NPZ_CASES))
def test_hostile_npz_file(name, good, budget, tmp_path):
    build, cls, words = NPZ_CASES[name]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(build(good[1]))
    before = digest(path)
    r = child(path, budget["limit"], mode="npz")
    print(f"[{name}] {path.stat().st_size:,} bytes -> {r.get('cls')}: {r.get('message', '')[:300]}")
    _check(r, cls, words, budget, path, name)
    assert f"'{path}'" in r["message"]
    assert digest(path) == before


@pytest.mark.parametrize("what", ["fifo", "directory", "/dev/zero"])
def test_har_path_not_a_regular_file(what, tmp_path, budget):
    path = {"fifo": tmp_path / "pipe.har", "directory": tmp_path / "dir.har",
            "/dev/zero": Path("/dev/zero")}[what]
    if what == "fifo":
        os.mkfifo(path)  # opening it must not block
    elif what == "directory":
        path.mkdir()
    r = child(path, budget["limit"])
    assert r["cls"] == "HarError" and "not a regular file" in r["message"], r


@pytest.mark.parametrize("setting, words", [
    ("max_member_bytes=1M", ["member 'native.npz'", "1,561,828", "max_member_bytes = 1,048,576"]),
    ("max_har_bytes=1500K", ["max_har_bytes = 1,536,000"]),
    ("max_json_bytes=5000", ["member 'hn.json'", "9,5", "max_json_bytes = 5,000"]),
    # in a HAR, hn.py checks the kernels' sizes first; on its own, the NPZ is checked by key
    ("max_tensor_elements=100000",
     ["key 'onet/dense1/kernel:0'", "294,912", "max_tensor_elements = 100,000"]),
])
def test_limits_are_settable(setting, words, good, budget, tmp_path):
    path, mode = good[0], "har"
    if setting.startswith("max_tensor_elements"):
        path, mode = tmp_path / "native.npz", "npz"
        path.write_bytes(good[1]["native.npz"])
    r = child(path, budget["limit"], mode=mode, env_limits=setting)
    _check(r, "LimitError", words + ["EMULATOR_LIMITS"], budget, path, setting)


def test_limits_set_in_python(good, monkeypatch):
    from emulator import ClientRunner

    monkeypatch.setattr(LIMITS, "max_json_depth", 2)
    with pytest.raises(LimitError, match=r"metadata.json.*max_json_depth = 2"):
        ClientRunner(har=good[0])


def test_har_repacked_by_other_tools_loads(good, tmp_path):
    """Plain tars as other writers make them: pax headers (GNU tar --format=pax adds atime /
    ctime to each member), GNU and v7 headers, a ustar prefix field."""
    from emulator import ClientRunner

    members = good[1]
    variants = {
        "python_pax": tar_of(pax_member(n, d, {"mtime": "1.5", "comment": "x" * 3000})
                             for n, d in members.items()),
        "python_ustar": tar_of(header(n, len(d), fmt=tarfile.USTAR_FORMAT) + pad(d)
                               for n, d in members.items()),
        "pax_path": tar_of(pax_member("renamed", d, {"path": n}) for n, d in members.items()),
    }
    for name, data in variants.items():
        (tmp_path / f"{name}.har").write_bytes(data)
    tar = shutil.which("tar")
    if tar:
        src = tmp_path / "src"
        src.mkdir()
        for n, d in members.items():
            (src / n).write_bytes(d)
        for fmt in ("gnu", "oldgnu", "ustar", "posix", "v7"):
            subprocess.run([tar, f"--format={fmt}", "-cf", str(tmp_path / f"tar_{fmt}.har"), "-C",
                            str(src)] + list(members), check=True)
    hars = sorted(tmp_path.glob("*.har"))
    assert len(hars) == len(variants) + (5 if tar else 0)
    for p in hars:
        back = ClientRunner(har=p)
        assert back.hn.name == "onet" and len(back.quantized_params) > 100, p


def test_good_har_round_trip_and_compressed_npz_outside_a_har(good, qrunner, tmp_path):
    from emulator import ClientRunner

    back = ClientRunner(har=good[0])
    assert set(back.quantized_params) == set(qrunner.quantized_params)
    for k, v in qrunner.quantized_params.items():
        a = back.quantized_params[k]
        assert a.dtype == np.asarray(v).dtype and np.array_equal(a, v), k
    assert back.stream_infos == qrunner.stream_infos and back.metadata == qrunner.metadata
    # np.savez_compressed files load on their own (bounded by the same checks) ...
    np.savez_compressed(tmp_path / "c.npz", **qrunner.native_params)
    back.load_params(tmp_path / "c.npz")
    assert all(np.array_equal(back.native_params[k], v) for k, v in qrunner.native_params.items())
    # ... but not inside a HAR, whose members are what save_har writes
    path = tmp_path / "c.har"
    path.write_bytes(har_with(good[1], {"native.npz": (tmp_path / "c.npz").read_bytes()}))
    with pytest.raises(ParamsError, match="compressed"):
        ClientRunner(har=path)


# --- saving ------------------------------------------------------------------------------------

def _leftovers(directory: Path, keep: set) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.mark.parametrize("where, at", [("npz_bytes", 2), ("addfile", 3)])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_save_keeps_the_old_har(where, at, exc, qrunner, tmp_path, monkeypatch):
    import emulator.npz

    path = tmp_path / "onet.har"
    qrunner.save_har(path)
    before = digest(path)
    calls = []

    def interrupt(original):
        def wrapper(*a, **k):
            calls.append(1)
            if len(calls) == at:  # hn.json and native.npz done: midway
                raise exc("interrupted")
            return original(*a, **k)
        return wrapper

    if where == "npz_bytes":
        monkeypatch.setattr(emulator.npz, "npz_bytes", interrupt(emulator.npz.npz_bytes))
    else:
        monkeypatch.setattr(tarfile.TarFile, "addfile", interrupt(tarfile.TarFile.addfile))
    with pytest.raises(exc):
        qrunner.save_har(path)
    assert len(calls) == at
    assert digest(path) == before
    assert _leftovers(tmp_path, {"onet.har"}) == []
    monkeypatch.undo()
    from emulator import ClientRunner

    ClientRunner(har=path)


def test_save_npz_interrupted_keeps_the_old_file(qrunner, tmp_path):
    from emulator.npz import read_npz, save_npz

    path = tmp_path / "p.npz"
    save_npz(path, qrunner.native_params)
    before = digest(path)

    class Bad:
        def __array__(self, *a, **k):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_npz(path, {"a": np.zeros(3), "b": Bad()})
    assert digest(path) == before and _leftovers(tmp_path, {"p.npz"}) == []
    assert set(read_npz(path)) == set(qrunner.native_params)


def test_symlink_at_the_old_temporary_name_is_not_followed(qrunner, tmp_path):
    from emulator import ClientRunner

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "onet.har"
    trap = Path(f"{path}.tmp{os.getpid()}")  # the name the old save_har wrote to
    trap.symlink_to(victim)
    qrunner.save_har(path)  # a new file
    qrunner.save_har(path)  # over an existing one
    assert victim.read_text() == "precious"
    assert trap.is_symlink() and os.readlink(trap) == str(victim)
    ClientRunner(har=path)
    # a symlink at the HAR's own path is replaced by the file, never written through
    link = tmp_path / "link.har"
    link.symlink_to(victim)
    qrunner.save_har(link)
    assert victim.read_text() == "precious" and not link.is_symlink()
    ClientRunner(har=link)


def test_save_refuses_what_loading_would_refuse(qrunner, tmp_path, monkeypatch):
    path = tmp_path / "onet.har"
    qrunner.save_har(path)
    before = digest(path)
    deep: list = []
    for _ in range(LIMITS.max_json_depth + 5):
        deep = [deep]
    old = qrunner.metadata
    qrunner.metadata = {"deep": deep}
    try:
        with pytest.raises(LimitError, match="max_json_depth"):
            qrunner.save_har(path)
    finally:
        qrunner.metadata = old
    assert digest(path) == before and _leftovers(tmp_path, {"onet.har"}) == []
    for limit in ("max_member_bytes", "max_har_bytes"):
        with monkeypatch.context() as m:
            m.setattr(LIMITS, limit, 1 << 20)  # native.npz is 1.5 MB
            with pytest.raises(LimitError, match=f"saving HAR '{path}'.*native.npz.*{limit}"):
                qrunner.save_har(path)
        assert digest(path) == before and _leftovers(tmp_path, {"onet.har"}) == []


SAVER = r"""
import sys, numpy as np
from emulator import ClientRunner
r = ClientRunner(har=sys.argv[1])
# 160 MB in a member that loading does not check against the network: the model script
r.model_script = "# " + np.random.default_rng(0).integers(97, 123, 160 << 20, dtype=np.uint8).tobytes().decode()
i = 0
while True:
    print("start", i, flush=True)
    r.save_har(sys.argv[2])
    print("done", i, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_while_saving_leaves_a_whole_har(good, tmp_path):
    """A saver rewriting a 160 MB HAR in a loop is killed until a kill lands inside a save."""
    from emulator import ClientRunner

    path = tmp_path / "big.har"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    rng = random.Random(5)
    for attempt in range(12):
        p = subprocess.Popen([sys.executable, "-c", SAVER, str(good[0]), str(path)],
                             stdout=subprocess.PIPE, text=True, env=env)
        lines = []
        while not (lines and lines[-1].startswith("done")):  # one whole save first
            lines.append(p.stdout.readline().strip())
            assert lines[-1], "the saver died"
        lines.append(p.stdout.readline().strip())  # "start 1": a save is under way
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        lines += [l.strip() for l in p.stdout.read().splitlines()]
        p.stdout.close()
        mid_save = lines[-1].startswith("start")
        assert _leftovers(tmp_path, {"big.har"}) == [], lines
        back = ClientRunner(har=path)  # whole: every member there, every check passes
        assert len(back.model_script) == 2 + (160 << 20)
        if mid_save:
            print(f"[sigkill] landed inside save {lines[-1].split()[1]} on attempt {attempt + 1}")
            return
    pytest.fail("no kill landed inside a save in 12 attempts")


# --- fuzz --------------------------------------------------------------------------------------

def _mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    op = rnd.randrange(6)
    if not b or op == 0:  # truncate
        return bytes(b[:rnd.randrange(len(b) + 1)])
    if op == 1:  # flip bytes, dense in the first KB (headers, the zip's directory at the end)
        for _ in range(rnd.randint(1, 8)):
            region = rnd.choice([(0, min(len(b), 1024)), (max(0, len(b) - 1024), len(b)), (0, len(b))])
            i = rnd.randrange(*region) if region[1] > region[0] else 0
            b[i] = rnd.randrange(256)
        return bytes(b)
    if op == 2:  # insert JSON-ish tokens
        i = rnd.randrange(len(b) + 1)
        return bytes(b[:i] + rnd.choice([b"[", b"{", b"}", b"]", b",", b'"', b"-1", b"1e999",
                                         b"null", b"\\u0000", b'"x":', b"99999999999999999999"]) + b[i:])
    if op == 3:  # delete a span
        i = rnd.randrange(len(b))
        return bytes(b[:i] + b[i + rnd.randint(1, 64):])
    if op == 4:  # change a digit (shapes, sizes, params)
        digits = [i for i, c in enumerate(b[:200_000]) if 48 <= c <= 57]
        if digits:
            for _ in range(rnd.randint(1, 3)):
                b[rnd.choice(digits)] = rnd.choice(b"0123456789")
        return bytes(b)
    i = rnd.randrange(len(b))  # duplicate a span
    j = min(len(b), i + rnd.randint(1, 200))
    return bytes(b[:j] + b[i:j] + b[j:])


_ODD_VALUES = [None, -1, 0, 2 ** 70, 1e308, float("nan"), "", "x", "onet/conv1", [], [-1, 0], [[1]],
               {}, {"a": 1}, True, 3.5, [-1, 48, 48, 3], [3, 3, 3, 32], "prelu", "softmax"]


def _mutate_json(data: bytes, rnd: random.Random) -> bytes:
    """A structural change: a value replaced by an odd one, a key dropped, a key added."""
    tree = json.loads(data)
    for _ in range(rnd.randint(1, 3)):
        nodes = [tree]
        i = 0
        while i < len(nodes) and len(nodes) < 5000:  # every container, breadth first
            kids = nodes[i].values() if isinstance(nodes[i], dict) else nodes[i]
            nodes += [k for k in kids if isinstance(k, (dict, list)) and k]
            i += 1
        node = rnd.choice(nodes)
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = rnd.choice(keys)
        op = rnd.randrange(3)
        if op == 0:
            node[key] = rnd.choice(_ODD_VALUES)
        elif op == 1:
            del node[key]
        elif isinstance(node, dict):
            new_key = rnd.choice(["zzz", "type", "input", "params", "kernel_shape", "strides"])
            node[new_key] = rnd.choice(_ODD_VALUES)
        else:
            node.append(rnd.choice(_ODD_VALUES))
    return json.dumps(tree).encode()


def _fuzz(members: dict, tmp_path: Path, n: int, seed: int) -> tuple[dict, list]:
    from emulator import ClientRunner

    rnd = random.Random(seed)
    outcomes: dict = {}
    escapes = []
    path = tmp_path / "fuzz.har"
    names = list(members)
    for i in range(n):
        name = rnd.choice(names + ["hn.json", "native.npz", "quantized.npz", "tar"])
        if name == "tar":  # the archive's own bytes
            data = _mutate(har_with(members), rnd)
        elif name.endswith(".json") and rnd.random() < 0.5:
            data = har_with(members, {name: _mutate_json(members[name], rnd)})
        else:
            data = har_with(members, {name: _mutate(members[name], rnd)})
        path.write_bytes(data)
        try:
            ClientRunner(har=path)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except EmulatorError as e:
            outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            tb = traceback.extract_tb(e.__traceback__)
            escapes.append((i, name, type(e).__name__, str(e)[:200],
                            f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""))
    return outcomes, escapes


@pytest.mark.slow
def test_fuzz_members_give_only_package_errors(good, tmp_path):
    outcomes, escapes = _fuzz(good[1], tmp_path, 400, seed=1234)
    print(f"[fuzz] {outcomes}")
    assert not escapes, "\n".join(map(str, escapes))
    assert sum(v for k, v in outcomes.items() if k != "ok") > 100
