"""The examples run as tests: examples/notebook/workflow.py (in its --fast form) and
examples/jet_tagger/run.sh (compile, reference, Verilator and Icarus on 500 vectors, report) from
the repository's one copy of the model files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.sim
def test_notebook_workflow_example(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook" / "workflow.py"), str(tmp_path / "out"),
                        "--fast"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "RTL = reference on 20 vectors" in r.stdout
    assert "100.00%" in r.stdout
    plots = sorted(p.name for p in (tmp_path / "out" / "profile").glob("*.png"))
    assert plots == sorted(f"{n}.png" for n in ("fc1_input", "fc1", "relu1", "fc2", "relu2", "fc3", "relu3",
                                                 "output"))
    assert (tmp_path / "out" / "rtl" / "report.json").is_file()


@pytest.mark.slow
@pytest.mark.sim
def test_jet_tagger_run_sh(tmp_path):
    out = tmp_path / "jet"
    r = subprocess.run(["bash", str(ROOT / "examples" / "jet_tagger" / "run.sh")], capture_output=True, text=True,
                       env={**os.environ, "OUT": str(out)}, timeout=3000)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "latency" in r.stdout and "LUTs" in r.stdout
    for f in ("report.json", "net.mlir", "lowered.mlir", "y_reference.npy", "y_verilator.npy", "y_icarus.npy"):
        assert (out / f).is_file(), f
