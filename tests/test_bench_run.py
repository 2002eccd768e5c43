"""bench/run.py's pure-Python parts: the cell summary, the side-by-side table, process timing and
the ``--da4ml-results`` cache (digest, reuse, refusal of a stale entry).  Runs neither da4ml nor
Yosys."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from qir.report import parse_stat

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


STAT = """
=== top ===

   Number of wires:               10
   Number of cells:              31
     CARRY8                          3
     FDRE                            4
     INV                             5
     LUT2                            6
     LUT6                            2
     MUXF7                           1
     MUXF8                           2
     IBUF                            4
"""


def test_synth_summary_splits_muxf_and_drops_cells(run):
    s = run.synth_summary(parse_stat(STAT, "xilinx"))
    assert (s["lut"], s["lut_only"], s["inv"], s["carry"], s["ff"]) == (13, 8, 5, 3, 4)
    assert (s["muxf7"], s["muxf8"], s["muxf9"], s["muxf"]) == (1, 2, 0, 3)
    assert "cells" not in s


def _row(model, q, d):
    return {"model": model, "qir_latency": 3, "qir_seconds": 2.0, "qir_cpu": 1.5, "qir_load": 0.5,
            "qir_checked": "verilator 10, icarus 10", "qir_synth": q,
            "da4ml_latency": 4, "da4ml_seconds": 1.0, "da4ml_cpu": 0.9, "da4ml_load": 0.4,
            "da4ml_checked": "model 10, 0 bad", "da4ml_synth": d, "da4ml_cached": "2026-01-01 00:00 UTC"}


def test_table_has_both_tools_and_the_lut_and_ff_ratios(run):
    q = run.synth_summary(parse_stat(STAT, "xilinx"))
    d = dict(q, lut=26, lut_only=20, inv=6, ff=5, muxf7=0, muxf8=0, muxf9=1)
    lines = run.table([_row("m", q, d)]).splitlines()
    assert lines[0].split()[:9] == ["model", "tool", "LUT+INV", "LUT1-6", "INV", "MUXF7/8/9", "carry", "FF", "DSP"]
    assert lines[1].split()[:8] == ["m", "qir", "13", "8", "5", "1/2/0", "3", "4"]
    assert lines[2].split()[:8] == ["m", "da4ml", "26", "20", "6", "0/0/1", "3", "5"]
    assert "(cached 2026-01-01 00:00 UTC)" in lines[2]
    assert lines[3].split() == ["m", "qir/da4ml", "0.500", "0.800"]


def test_timed_counts_the_cpu_of_child_processes(run):
    busy = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(range(3_000_000))'])"
    r, tm = run.timed([sys.executable, "-c", busy])
    assert r.returncode == 0
    assert tm["cpu"] > 0.05 and tm["wall"] > 0 and tm["load"] >= 0


def test_digest_follows_every_input(run):
    chain = {"name": "m", "ops": [{"op": "dense", "w": [[1, 2]], "w_frac": 0}]}
    x = np.arange(6).reshape(3, 2)
    base = run.da4ml_digest(chain, x, "exact", "xilinx")
    assert base == run.da4ml_digest({"ops": chain["ops"], "name": "m"}, x.copy(), "exact", "xilinx")
    changed = {"name": "m", "ops": [{"op": "dense", "w": [[1, 3]], "w_frac": 0}]}
    assert len({base, run.da4ml_digest(changed, x, "exact", "xilinx"),
                run.da4ml_digest(chain, x + 1, "exact", "xilinx"), run.da4ml_digest(chain, x, "rnd", "xilinx"),
                run.da4ml_digest(chain, x, "exact", "ecp5")}) == 5


def test_cache_reuses_a_matching_entry_and_refuses_a_stale_one(run, tmp_path):
    f = tmp_path / "d.json"
    meta = {"da4ml": "0.6.0", "yosys": "Yosys 0.23", "inputs_sha256": "a" * 64}
    assert run.cache_lookup(f, "m", meta) is None  # no file yet
    run.cache_store(f, "m", {**meta, "da4ml_latency": 4})
    run.cache_store(f, run.cache_key("m", "ecp5"), {**meta, "da4ml_latency": 5})
    assert run.cache_lookup(f, "m", meta)["da4ml_latency"] == 4
    assert run.cache_lookup(f, "m@ecp5", meta)["da4ml_latency"] == 5
    assert run.cache_lookup(f, "other", meta) is None
    assert run.cache_lookup(f, "m", meta, refresh=True) is None
    for k, v in (("inputs_sha256", "b" * 64), ("yosys", "Yosys 0.40"), ("da4ml", "0.7.0")):
        with pytest.raises(SystemExit, match=f"{k}.*--da4ml-refresh"):
            run.cache_lookup(f, "m", {**meta, k: v})


def test_synth_summary_of_ecp5_has_no_muxf_split(run):
    stat = STAT.replace("CARRY8", "CCU2C").replace("LUT2", "LUT4").replace("FDRE", "TRELLIS_FF")
    s = run.synth_summary(parse_stat(stat, "ecp5"), "ecp5")
    assert (s["lut"], s["carry"], s["ff"]) == (11, 3, 4) and "muxf7" not in s
