"""--io stream on a QKeras CNN of the held-out kind: 28x28x1 -> QConv2D(8, 3x3) relu -> MaxPool 2
-> QConv2D(16, 3x3) relu -> MaxPool 2 -> Flatten -> QDense(10); 4-bit weights (seeded).
Prints compile time, estimate, II, latency; with --sim N also runs qir sim (Verilator).

    .venv/bin/python bench/stream_qcnn28.py [--sim 50] [-o OUTDIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def write_model(d: Path) -> Path:
    from test_frontend_keras_layers import node, write_functional

    rng = np.random.default_rng(28)
    q = "quantized_bits(4,0,alpha=1)"
    layers = [
        node("QActivation", "qin", ["inp"], activation="quantized_bits(8,0,alpha=1)"),
        node("QConv2D", "c1", ["qin"], filters=8, kernel_size=[3, 3], strides=[1, 1], padding="valid",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=True, kernel_quantizer=q,
             bias_quantizer=q),
        node("MaxPooling2D", "p1", ["c1"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("QConv2D", "c2", ["p1"], filters=16, kernel_size=[3, 3], strides=[1, 1], padding="valid",
             dilation_rate=[1, 1], activation="quantized_relu(6,2)", use_bias=True, kernel_quantizer=q,
             bias_quantizer=q),
        node("MaxPooling2D", "p2", ["c2"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
        node("Flatten", "fl", ["p2"]),
        node("QDense", "d", ["fl"], units=10, activation="linear", use_bias=True, kernel_quantizer=q,
             bias_quantizer=q),
    ]
    w = {"c1": {"kernel": rng.integers(-8, 8, (3, 3, 1, 8)) / 8, "bias": rng.integers(-8, 8, 8) / 8},
         "c2": {"kernel": rng.integers(-8, 8, (3, 3, 8, 16)) / 8, "bias": rng.integers(-8, 8, 16) / 8},
         "d": {"kernel": rng.integers(-8, 8, (400, 10)) / 8, "bias": rng.integers(-8, 8, 10) / 8}}
    return write_functional(d, "qcnn28", layers, w, ["d"], [28, 28, 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", type=int, default=0, help="vectors to simulate in Verilator (0: none)")
    ap.add_argument("-o", "--outdir", default=None)
    a = ap.parse_args(argv)
    from qir.flow import compile_model
    from qir.ir import read_module
    from qir.report import estimate

    work = Path(a.outdir or tempfile.mkdtemp(prefix="qcnn28_"))
    work.mkdir(parents=True, exist_ok=True)
    path = write_model(work)
    t0, c0 = time.perf_counter(), time.process_time()
    rep = compile_model(path, work / "stream", io="stream")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    e = estimate(read_module(work / "stream" / "lowered.mlir"))
    print(f"qcnn28 --io stream: compile {wall:.1f} s wall ({cpu:.1f} s CPU), ~{e['luts_estimate']:,} LUTs, "
          f"{e['reg_bits']:,} FF, {e['memory_bits']:,} memory bits, II {rep['ii_cycles']}, "
          f"latency {rep['latency_cycles']}")
    if a.sim:
        from qir.sim.run import sim_command

        x = np.random.default_rng(1).integers(-128, 128, (a.sim, 28, 28, 1)) / 128
        np.save(work / "x.npy", x)
        sim_command(work / "stream", work / "x.npy", "verilator", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
