"""Runs the FileCheck/lit suite (tests/filecheck/**.mlir) as part of pytest."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_filecheck_suite():
    lit = Path(sys.executable).parent / "lit"
    r = subprocess.run([str(lit), "-q", str(HERE / "filecheck")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
