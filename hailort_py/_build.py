"""The one cffi build script of the toolkit (API mode).

It compiles the C stream layer (native/src/*.c) into the extension module
`hailort_py._native` and declares to cffi exactly what the public header
native/include/hailo_stream.h declares: the cdef is derived from the header at build time,
so the header stays the single source of truth.

Used by setup.py (`cffi_modules=["hailort_py/_build.py:ffibuilder"]`); can also be run by
hand (`python hailort_py/_build.py`) to build the module in place for development.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
HEADER = NATIVE / "include" / "hailo_stream.h"

# Compiled with the C library's own numeric contract: exact float32, no fused multiply-add.
# -fvisibility=hidden with HAILO_STREAM_STATIC (HAILO_STREAM_API then marks nothing): the
# module exports only PyInit__native, so its hailo_* functions neither leak nor collide with
# libhailort's when pyhailort shares the process (the `hailort` driver).
EXTRA_COMPILE_ARGS = ["-std=c11", "-O3", "-ffp-contract=off", "-fvisibility=hidden"]
DEFINE_MACROS = [("HAILO_STREAM_STATIC", "1")]

# Batch loops of the extension itself (not part of the C library): one Python call turns N
# contiguous frames into N contiguous frames, so a batch costs one GIL release, not N.
# On failure *failed_frame is the index of the frame that failed and the status is returned.
BATCH_HELPERS_CDEF = """
hailo_status hailort_py_transform_input_frames(hailo_input_transform_context context,
    const void *src, size_t src_frame_size, void *dst, size_t dst_frame_size,
    size_t frames, size_t *failed_frame);
hailo_status hailort_py_transform_output_frames(hailo_output_transform_context context,
    const void *src, size_t src_frame_size, void *dst, size_t dst_frame_size,
    size_t frames, size_t *failed_frame);
"""

BATCH_HELPERS_SOURCE = """
#define HAILORT_PY_FRAME_LOOP(transform_frame)                                              \\
    {                                                                                       \\
        const unsigned char *s = (const unsigned char *)src;                                \\
        unsigned char *d = (unsigned char *)dst;                                            \\
        for (size_t i = 0; i < frames; i++) {                                               \\
            hailo_status status = transform_frame(context, s + i * src_frame_size,          \\
                                                  src_frame_size, d + i * dst_frame_size,   \\
                                                  dst_frame_size);                          \\
            if (status != HAILO_SUCCESS) {                                                  \\
                *failed_frame = i;                                                          \\
                return status;                                                              \\
            }                                                                               \\
        }                                                                                   \\
        return HAILO_SUCCESS;                                                               \\
    }

hailo_status hailort_py_transform_input_frames(hailo_input_transform_context context,
    const void *src, size_t src_frame_size, void *dst, size_t dst_frame_size,
    size_t frames, size_t *failed_frame)
HAILORT_PY_FRAME_LOOP(hailo_transform_frame_by_input_transform_context)

hailo_status hailort_py_transform_output_frames(hailo_output_transform_context context,
    const void *src, size_t src_frame_size, void *dst, size_t dst_frame_size,
    size_t frames, size_t *failed_frame)
HAILORT_PY_FRAME_LOOP(hailo_transform_frame_by_output_transform_context)
"""

# The header's export macro: a preprocessor name cffi's parser does not know.
_EXPORT_MACRO = re.compile(r"\bHAILO_STREAM_API\b\s*")
_INTEGER_DEFINE = re.compile(r"^\s*#\s*define\s+\w+\s+(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*(/\*.*\*/)?\s*$")


def cdef_from_header(text: str) -> str:
    """The header as cffi's cdef: preprocessor lines dropped except integer #defines (which
    cffi turns into module constants), and the `#ifdef __cplusplus` blocks (the extern "C"
    guards) dropped whole. A preprocessor line continued with a backslash is one line (a
    macro such as HAILO_DEFAULT_TRANSFORM_PARAMS is dropped whole). The export macro
    HAILO_STREAM_API is removed. Comments are left for cffi's parser, which ignores them."""
    out = []
    in_cplusplus = False  # inside an #ifdef __cplusplus block
    nesting = 0  # #if nesting inside that block
    continued = False  # the previous line was a preprocessor line ending in a backslash
    for line in text.splitlines():
        stripped = line.strip()
        if continued:
            continued = stripped.endswith("\\")
            continue
        if stripped.startswith("#") and stripped.endswith("\\"):
            continued = True
            continue
        if in_cplusplus:
            if re.match(r"#\s*if", stripped):
                nesting += 1
            elif re.match(r"#\s*endif", stripped):
                if nesting == 0:
                    in_cplusplus = False
                else:
                    nesting -= 1
            continue
        if re.match(r"#\s*ifdef\s+__cplusplus\b", stripped):
            in_cplusplus, nesting = True, 0
            continue
        if stripped.startswith("#"):
            if _INTEGER_DEFINE.match(stripped):
                out.append(stripped)
            continue
        out.append(_EXPORT_MACRO.sub("", line))
    return "\n".join(out) + "\n"


def _source_path(path: Path) -> str:
    """setuptools wants source paths relative to the setup.py directory when they are
    inside it (object files then land in build/, not next to the sources)."""
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def make_ffibuilder(relative_paths: bool = True) -> FFI:
    """The builder. setup.py wants paths relative to the project; cffi's own compile() runs in
    its tmpdir and needs absolute ones."""
    path = _source_path if relative_paths else str
    builder = FFI()
    builder.cdef(cdef_from_header(HEADER.read_text(encoding="utf-8")) + BATCH_HELPERS_CDEF)
    sources = sorted((NATIVE / "src").glob("*.c"))
    if not sources:
        raise RuntimeError(f"no C sources in {NATIVE / 'src'}: the extension would not link")
    builder.set_source(
        "hailort_py._native",
        '#include "hailo_stream.h"\n' + BATCH_HELPERS_SOURCE,
        sources=[path(p) for p in sources],
        include_dirs=[path(NATIVE / "include"), path(NATIVE / "src")],
        extra_compile_args=EXTRA_COMPILE_ARGS,
        define_macros=DEFINE_MACROS,
        # Both build routes (setup.py, and ffi.compile below) must write the same file name.
        # cffi's setuptools hook defaults to the limited API (`_native.abi3.so`) while
        # ffi.compile names it `_native.cpython-3XY-<platform>.so`, which the import system
        # prefers: a module built by hand would silently shadow every later `pip install -e`.
        py_limited_api=False,
        depends=[path(p) for p in [HEADER, *sorted((NATIVE / "src").glob("*.h"))]],
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    import shutil

    built = make_ffibuilder(relative_paths=False).compile(tmpdir=str(ROOT / "build" / "cffi"), verbose=True)
    shutil.copy(built, ROOT / "hailort_py")
