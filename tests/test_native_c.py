"""The C library's own checks, driven from pytest: unit tests, the C++ interop program over
freshly written golden vectors, the sanitizer run and the fuzzer (native/Makefile)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import golden

NATIVE = Path(__file__).resolve().parent.parent / "native"
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def run_make(*args: str, timeout: float = 900) -> str:
    """Runs `make -C native ARGS`; fails the test with the tail of the output on error."""
    proc = subprocess.run([MAKE, "-C", str(NATIVE), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MAKEFLAGS": ""})
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"make {' '.join(args)} exited {proc.returncode}:\n{output[-6000:]}")
    return output


def test_c_unit_tests():
    run_make("check")


def test_cpp_interop_over_fresh_golden_vectors(tmp_path):
    cases = list(golden.fixed_cases())
    import stream_cases

    cases += list(stream_cases.random_golden_cases(600, seed=20261127))
    golden.write_cases(cases, tmp_path)
    output = run_make("interop", f"GOLDEN_DIR={tmp_path}")
    match = re.search(r"(\d+) passed, (\d+) failed", output)
    assert match, f"no 'N passed, M failed' line in:\n{output[-3000:]}"
    passed, failed = map(int, match.groups())
    assert failed == 0, output[-6000:]
    assert passed == len(cases), f"{passed} passed of {len(cases)} written"


@pytest.mark.slow
def test_sanitizers():
    run_make("asan")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang (libFuzzer) is not installed")
def test_fuzz():
    run_make("fuzz", "FUZZ_SECONDS=20")
