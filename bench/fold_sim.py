"""Folded layers (issue #12): estimate, II and latency of a model at several reuse factors R, and
optionally its bit-exactness in simulation (``qir sim``: full rate + random stalls for stream
designs, every vector against the reference interpreter).

    .venv/bin/python bench/fold_sim.py                                  # both models, R = 1,2,4,16
    .venv/bin/python bench/fold_sim.py --models qkeras_3layer --reuse 2,16 --io parallel
    .venv/bin/python bench/fold_sim.py --sim verilator,icarus --icarus-vectors 20

Models: ``qkeras_3layer`` (tests/data, input ``fixed<16,6>``) and ``bnn784`` (a 784-256-256-10
binarized MLP: binary weights, batchnorm + binary activations, tests/mlp_models.py,
``--precision 'fixed<16,6>'``; binary input ``ufixed<1,1>`` (binarized pixels: every layer is
XNOR-popcount), or ``bnn784x8`` with an 8-bit ``fixed<8,3>`` input (first layer: +-a weights on
8-bit values, the folded po2 style)).  Every ``qir.dense`` of the imported ``net.mlir``
gets ``reuse = R`` (R = 1: no attribute, the default adder graphs), then ``qir compile X.mlir``.
Prints one table row per (model, R): the implementation of each folded layer (``rom`` or
``muxgraph``, ``qir.folding.choose_impl``), estimated LUT / FF / DSP (``qir report``), weight-ROM
bits (in logic / block RAM, ``qir.folding.rom_map``),
II and latency (report.json), compile seconds, and the simulation result.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tests"))


def run(*args: str) -> str:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def prepare(name: str, work: Path) -> tuple[Path, Path]:
    """(net.mlir, inputs .npy) of a model."""
    work.mkdir(parents=True, exist_ok=True)
    net = work / f"{name}_net.mlir"
    xs = work / f"{name}_x.npy"
    if name == "qkeras_3layer":
        src = ROOT / "tests/data/qkeras_3layer/qkeras_3layer.json"
        run(BIN / "qir", "import", src, "-o", net, "--input-type", "fixed<16,6>", "--softmax", "none")
        np.save(xs, np.load(ROOT / "tests/data/qkeras_3layer/vectors.npz")["x"])
    elif name in ("bnn784", "bnn784x8"):
        from mlp_models import BNN_PRECISION, INPUT_TYPE, random_inputs, write_mlp

        js = write_mlp(work / "bnn784", "bnn", sizes=(784, 256, 256, 10))
        binary = name == "bnn784"
        run(BIN / "qir", "import", js, "-o", net, "--input-type", "ufixed<1,1>" if binary else INPUT_TYPE,
            "--precision", BNN_PRECISION)
        x = np.random.default_rng(0).integers(0, 2, size=(200, 784)).astype(float) if binary else \
            random_inputs(200, n_in=784)
        np.save(xs, x)
    else:
        raise SystemExit(f"unknown model {name}")
    return net, xs


def with_reuse(net: Path, R: int, out: Path) -> Path:
    from xdsl.dialects.builtin import IntegerAttr, i64

    from qir.dialect import ConvOp, DenseOp
    from qir.ir import print_module, read_module

    m = read_module(net)
    for op in m.walk():
        if isinstance(op, (DenseOp, ConvOp)) and R > 1:
            op.attributes["reuse"] = IntegerAttr(R, i64)
    out.write_text(print_module(m))
    return out


def rom_figures(out: Path) -> str:
    """The weight ROMs of the folded ops in ``out/lowered.mlir`` (map bodies too): their bits and
    where ``qir.folding.rom_map`` puts them (logic, or block RAM in RAMB18 equivalents)."""
    from qir.ir import read_module

    bits = logic = bram18 = 0
    for op in read_module(out / "lowered.mlir").walk():
        if op.name in ("qir.mvu", "qir.xnor") and getattr(op, "R", 1) > 1:
            e = op.cost()
            bits += e["rom_bits"]
            logic += e["rom_bits"] if e["rom"] == "logic" else 0
            bram18 += e["bram18"]
    return f"{bits:,} ({logic:,} logic, {bram18} RAMB18)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qkeras_3layer,bnn784")
    ap.add_argument("--reuse", default="1,2,4,16")
    ap.add_argument("--io", default="stream", choices=("stream", "parallel"))
    ap.add_argument("--sim", default="", help="comma-separated simulators (verilator, icarus)")
    ap.add_argument("--icarus-vectors", type=int, default=20)
    ap.add_argument("--work", default=str(ROOT / "bench" / "out" / "fold"))
    args = ap.parse_args()
    work = Path(args.work)
    rows = []
    for name in args.models.split(","):
        net, xs = prepare(name, work)
        x = np.load(xs)
        for R in [int(r) for r in args.reuse.split(",")]:
            src = with_reuse(net, R, work / f"{name}_r{R}.mlir")
            out = work / f"{name}_r{R}_{args.io}"
            t0 = time.time()
            run(BIN / "qir", "compile", src, "-o", out, "--io", args.io, "-q")
            secs = time.time() - t0
            rep = json.loads((out / "report.json").read_text())
            est = json.loads(run(BIN / "qir", "report", out, "--json"))["estimate"]
            sim = []
            for s in [s for s in args.sim.split(",") if s]:
                n = len(x) if s == "verilator" else min(len(x), args.icarus_vectors)
                np.save(work / "x_sim.npy", x[:n])
                line = run(BIN / "qir", "sim", out, "--inputs", work / "x_sim.npy", "--simulator", s).strip()
                sim.append(f"{s} {n}: " + ("ok" if " 0 mismatches" in line else line.splitlines()[-1]))
            dsp = est.get("dsp", 0) + est.get("multipliers", 0)
            impl = ",".join(lay.get("impl", "rom") for lay in est["layers"] if "cycles_per_beat" in lay) or "unfolded"
            rows.append((name, R, impl, est["luts_estimate"], est["reg_bits"], dsp, rom_figures(out),
                         rep.get("ii_cycles", 1), rep["latency_cycles"], secs, "; ".join(sim)))
            print(rows[-1], flush=True)
    print()
    print(f"| model | R | impl per layer | est. LUT | est. FF | DSP | weight-ROM bits | II | latency | compile s "
          f"| sim ({args.io}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:,} | {r[4]:,} | {r[5]:,} | {r[6]} | {r[7]} | {r[8]} "
              f"| {r[9]:.1f} | {r[10]} |")


if __name__ == "__main__":
    main()
