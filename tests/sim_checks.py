"""The checks many RTL tests share: ``qir sim`` of a compiled design on saved inputs (0
mismatches) and ``verilator --lint-only -Wall`` of one Verilog file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def sim_ok(out: Path, x: np.ndarray, tmp_path: Path, simulator: str = "icarus", *options: str,
           timeout: int = 600) -> subprocess.CompletedProcess:
    """``qir sim`` of the compiled design ``out`` on ``x`` (saved as tmp_path/x.npy; ``options``
    such as ``--quantize-inputs`` passed on): exit 0 and 0 mismatches; returns the run."""
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "-m", "qir.cli", "sim", str(out), "--inputs", str(tmp_path / "x.npy"),
                        "--simulator", simulator, *options], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and " 0 mismatches" in r.stdout, r.stdout + r.stderr
    return r


def lint_clean(v: Path, top: str) -> None:
    """``verilator --lint-only -Wall`` of the one file ``v`` passes."""
    from qir.sim import tools

    lint = subprocess.run([str(tools.find_verilator().exe), "--lint-only", "-Wall", "--top-module", top, str(v)],
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stderr
