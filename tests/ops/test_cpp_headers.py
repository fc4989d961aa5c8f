"""Builds the C++ header tests (csrc/tests, CMakeLists.txt) in a temporary folder and runs ctest."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None,
                    reason="cmake / ctest not installed")
def test_header_tests_build_and_pass(tmp_path: Path) -> None:
    build = tmp_path / "build"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    configure = run("cmake", "-S", str(ROOT), "-B", str(build), "-DAUTOSAMPLE_HEADER_TESTS_ONLY=ON",
                    "-DCMAKE_BUILD_TYPE=Release")
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = run("cmake", "--build", str(build), "--target", "header_tests", "--parallel", "2")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    tests = run("ctest", "--test-dir", str(build), "--output-on-failure")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "100% tests passed" in tests.stdout
    assert "0 tests failed out of 6" in tests.stdout
