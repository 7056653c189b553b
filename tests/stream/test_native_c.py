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

NATIVE = Path(__file__).resolve().parents[2] / "native"
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


@pytest.fixture(scope="module")
def golden_dir(tmp_path_factory):
    """Fresh golden vectors: the committed fixed cases plus 600 random ones."""
    import stream_cases

    out = tmp_path_factory.mktemp("golden")
    cases = list(golden.fixed_cases()) + list(stream_cases.random_golden_cases(600, seed=20261127))
    golden.write_cases(cases, out)
    return out, len(cases)


def assert_interop_passed(output: str, expected: int) -> None:
    counts = re.findall(r"(\d+) passed, (\d+) failed", output)
    assert counts, f"no 'N passed, M failed' line in:\n{output[-3000:]}"
    passed, failed = map(int, counts[-1])
    assert failed == 0, output[-6000:]
    assert passed == expected, f"{passed} passed of {expected} written:\n{output[-3000:]}"
    # the C++ program decoded NMS frames of several chunks (HailoRT keeps every chunk's boxes)
    chunks = re.findall(r"(\d+) NMS cases with several chunks passed", output)
    assert chunks and int(chunks[-1]) >= 10, output[-3000:]


def test_cpp_interop_over_fresh_golden_vectors(golden_dir):
    directory, count = golden_dir
    assert_interop_passed(run_make("interop", f"GOLDEN_DIR={directory}"), count)


@pytest.mark.slow
def test_sanitizers(golden_dir):
    """C tests and the interop program under ASan + UBSan, also over our golden vectors."""
    directory, count = golden_dir
    assert_interop_passed(run_make("asan", f"GOLDEN_DIR={directory}"), count)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang (libFuzzer) is not installed")
def test_fuzz():
    output = run_make("fuzz", "FUZZ_SECONDS=20")
    assert "Done" in output or "stat::number_of_executed_units" in output, output[-3000:]
