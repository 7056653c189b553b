"""What the C stream layer exports: native/build/libhailo_stream.so exactly the functions the
public header marks HAILO_STREAM_API, and the cffi extension hailort_py._native nothing but
PyInit__native (its copy of the library is hidden, so it can share a process with libhailort).

Symbols are listed with `nm -D --defined-only`, or, without binutils, read from the ELF
.dynsym section here."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "native"
HEADER = NATIVE / "include" / "hailo_stream.h"
SHARED_LIB = NATIVE / "build" / "libhailo_stream.so"
MAKE = shutil.which("make")
NM = shutil.which("nm")

# Defined by some linkers in every shared object (absolute, no code): not the library's exports.
LINKER_SYMBOLS = frozenset({"_init", "_fini", "_edata", "_end", "__bss_start"})


# ------------------------------------------------------------------- the header ---
def _header_code() -> str:
    """The header without comments, preprocessor lines (backslash continuations included)
    and the C++ linkage guards."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"#\s*ifdef\s+__cplusplus.*?#\s*endif", " ", text, flags=re.S)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    return text


def header_declarations() -> tuple[set[str], set[str]]:
    """(every function the header declares, those marked HAILO_STREAM_API)."""
    code = _header_code()
    while True:  # drop struct / enum bodies, innermost first
        stripped = re.sub(r"\{[^{}]*\}", " ", code)
        if stripped == code:
            break
        code = stripped
    declared, marked = set(), set()
    for statement in code.split(";"):
        statement = statement.strip()
        if "(" not in statement or statement.startswith("typedef"):
            continue
        name = re.search(r"(\w+)\s*\(", statement)
        assert name, statement
        declared.add(name.group(1))
        if re.match(r"HAILO_STREAM_API\b", statement):
            marked.add(name.group(1))
    return declared, marked


# -------------------------------------------------------------- dynamic symbols ---
def _elf_dynamic_symbols(path: Path) -> set[str]:
    """Defined global / weak symbols of default or protected visibility in .dynsym: what
    `nm -D --defined-only` lists, read without binutils."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
        section = struct.Struct(end + "IIQQQQIIQQ")  # name type flags addr offset size link ...
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
        section = struct.Struct(end + "IIIIIIIIII")
    sections = [section.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 11:  # SHT_DYNSYM
            continue
        str_offset = sections[link][4]
        for pos in range(offset, offset + size, entsize):
            if is64:
                st_name, st_info, st_other, st_shndx = struct.unpack_from(end + "IBBH", data, pos)
            else:
                st_name, _, _, st_info, st_other, st_shndx = struct.unpack_from(
                    end + "IIIBBH", data, pos)
            bind, kind, visibility = st_info >> 4, st_info & 0xF, st_other & 0x3
            if (st_shndx == 0 or bind not in (1, 2, 10) or kind in (3, 4)  # UNDEF; SECTION, FILE
                    or visibility not in (0, 3)):
                continue
            stop = data.index(b"\0", str_offset + st_name)
            names.add(data[str_offset + st_name:stop].decode())
    return names


def _nm_dynamic_symbols(path: Path) -> set[str]:
    proc = subprocess.run([NM, "-D", "--defined-only", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, f"nm -D --defined-only {path} failed:\n{proc.stderr}"
    # "address type name", the name possibly versioned (name@@VERSION)
    return {line.split()[-1].split("@")[0] for line in proc.stdout.splitlines() if line.strip()}


def exported_symbols(path: Path) -> set[str]:
    names = _nm_dynamic_symbols(path) if NM else _elf_dynamic_symbols(path)
    return names - LINKER_SYMBOLS


def _describe(unexpected: set[str], missing: set[str]) -> str:
    return (f"unexpected exports ({len(unexpected)}): {sorted(unexpected)}; "
            f"missing exports ({len(missing)}): {sorted(missing)}")


# ----------------------------------------------------------------------- files ---
@pytest.fixture(scope="module")
def shared_lib() -> Path:
    """native/build/libhailo_stream.so, brought up to date (instant when it is)."""
    if MAKE is not None:
        proc = subprocess.run([MAKE, "-C", str(NATIVE), "build/libhailo_stream.so"],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "MAKEFLAGS": ""})
        if proc.returncode != 0:
            pytest.fail(f"make -C native build/libhailo_stream.so exited {proc.returncode}:\n"
                        f"{(proc.stdout + proc.stderr)[-4000:]}")
    elif not SHARED_LIB.exists():
        pytest.skip("make is not installed and native/build/libhailo_stream.so is not built")
    return SHARED_LIB


@pytest.fixture(scope="module")
def extension() -> Path:
    spec = importlib.util.find_spec("hailort_py._native")
    if spec is None or not spec.origin:
        pytest.fail("hailort_py._native is not built: python setup.py build_ext --inplace")
    return Path(spec.origin)


# ----------------------------------------------------------------------- tests ---
def test_every_header_function_is_marked_for_export():
    declared, marked = header_declarations()
    assert len(declared) > 25, sorted(declared)
    assert declared == marked, (
        f"declared in {HEADER.name} without HAILO_STREAM_API: {sorted(declared - marked)}")


def test_shared_library_exports_exactly_the_header(shared_lib):
    _, marked = header_declarations()
    exported = exported_symbols(shared_lib)
    assert exported == marked, (
        f"{shared_lib} against the HAILO_STREAM_API functions of {HEADER.name}: "
        + _describe(exported - marked, marked - exported))


def test_extension_exports_only_its_init(extension):
    """Its hailo_* functions (compiled in with HAILO_STREAM_STATIC and -fvisibility=hidden),
    the hs_* internals and the batch helpers are all hidden: cffi calls them from inside."""
    expected = {"PyInit__native"}
    exported = exported_symbols(extension)
    assert exported == expected, (
        f"{extension}: " + _describe(exported - expected, expected - exported)
        + " (built before -fvisibility=hidden? rebuild: python setup.py build_ext --inplace)")


@pytest.mark.skipif(NM is None, reason="nm is not installed: nothing to compare the ELF reader to")
def test_elf_reader_agrees_with_nm(shared_lib, extension):
    """The fallback used without binutils lists what nm lists."""
    for path in (shared_lib, extension):
        assert _elf_dynamic_symbols(path) == _nm_dynamic_symbols(path), path
