"""The examples run as documented: examples/jet_tagger/run.sh (compile, reference, Verilator and
Icarus on 500 vectors, report) from the repository's one copy of the model files."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
