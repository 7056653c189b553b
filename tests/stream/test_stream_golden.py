"""Golden vectors: the committed set is what `python -m tests.golden --out tests/golden`
writes, the file format round-trips, and the Python C path reproduces every case."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import golden
import stream_cases
from hailort_py import (HailoRTError, InputTransformContext, OutputTransformContext,
                        StreamDirection)
from hailort_py._raw import ffi, lib

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
FIXED = list(golden.fixed_cases())
RANDOM = list(stream_cases.random_golden_cases(golden.DEFAULT_RANDOM_CASES, golden.DEFAULT_SEED))


def test_committed_set_is_up_to_date(tmp_path):
    golden.main(["--out", str(tmp_path)])
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.case")}
    committed = {p.name: p.read_bytes() for p in GOLDEN_DIR.glob("*.case")}
    assert sorted(committed) == sorted(fresh), "regenerate: python -m tests.golden --out tests/golden"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale golden files {stale[:5]}: python -m tests.golden --out tests/golden"
    assert sum(map(len, committed.values())) < 400_000


def test_committed_set_covers_every_config_and_error_kind():
    cases = [golden.decode(p.read_bytes()) for p in GOLDEN_DIR.glob("*.case")]
    statuses = {c.expected_status for c in cases}
    assert statuses >= {0, 2, 5, 6, 25}
    covered = {(int(c.stream.direction), int(c.stream.format.order), int(c.user_format.order))
               for c in cases if c.expected_status == 0}
    wanted = {(int(c.direction), int(c.device_order), int(c.user.order))
              for c in stream_cases.supported_configs()}
    assert wanted <= covered, sorted(wanted - covered)


@pytest.mark.parametrize("case", FIXED + RANDOM, ids=[c.name for c in FIXED + RANDOM])
def test_format_round_trips(case):
    assert golden.decode(golden.encode(case)) == case


def run_case_through_c(case: golden.GoldenCase) -> tuple[int, bytes]:
    """The C++ interop program's semantics, through the Python C path: make the context,
    then transform src (src_size bytes, possibly not the frame size) with the C function."""
    cls = InputTransformContext if case.stream.direction == StreamDirection.H2D else OutputTransformContext
    try:
        ctx = cls(case.stream, case.user_format)
    except HailoRTError as err:
        return err.status, b""
    transform_frame = (lib.hailo_transform_frame_by_input_transform_context
                       if cls is InputTransformContext
                       else lib.hailo_transform_frame_by_output_transform_context)
    dst = np.zeros(ctx.dst_frame_size, np.uint8)
    src = ffi.from_buffer(case.src) if case.src else ffi.new("char[]", 1)
    status = transform_frame(ctx._free_contexts[0], src, len(case.src), ffi.from_buffer(dst),
                             ctx.dst_frame_size)
    return status, dst.tobytes() if status == lib.HAILO_SUCCESS else b""


@pytest.mark.parametrize("case", FIXED + RANDOM, ids=[c.name for c in FIXED + RANDOM])
def test_c_reproduces_golden_case(case):
    status, out = run_case_through_c(case)
    assert status == case.expected_status
    if status == 0:
        assert out == case.expected
