"""--io stream: hardware grows with the kernel, not the map.

Prints a table: the `qir report` estimate of one 3x3 16->16 conv (+relu) on a 32x32 and a 64x64
map (streaming; must differ by < 10% apart from line-buffer memory bits), and the 16x16x3 ->
8-filter 3x3 conv streaming vs parallel (streaming estimate >= 10x below; compile < 10 s).
Weights are seeded random fixed<8,3>, inputs fixed<8,3>.

    .venv/bin/python bench/stream_scaling.py [--no-parallel]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from qir.lowering import DEFAULT_PIPELINE, STREAM_PIPELINE

from qir.flow import run_passes
from qir.ir import get_model, parse_module
from qir.report import estimate


def conv_ir(h: int, w: int, cin: int, cout: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    k = rng.integers(-128, 128, size=(3, 3, cin, cout)).tolist()
    b = rng.integers(-128, 128, size=(cout,)).tolist()
    return f"""
qir.model @conv_{h}x{w}x{cin}_{cout} {{
  %0 = qir.input "x" : tensor<{h}x{w}x{cin}x!qir.fixed<8,3>>
  %1 = qir.conv %0 weights(dense<{k}> : tensor<3x3x{cin}x{cout}xi32> : !qir.fixed<8,3>)
      bias(dense<{b}> : tensor<{cout}xi32> : !qir.fixed<8,3>)
      strides [1, 1] dilations [1, 1] pads [1, 1, 1, 1] groups 1 {{layer = "conv"}}
      : tensor<{h}x{w}x{cin}x!qir.fixed<8,3>> -> tensor<{h}x{w}x{cout}x!qir.fixed<60,30>>
  %2 = qir.relu %1 {{layer = "conv"}} : tensor<{h}x{w}x{cout}x!qir.fixed<60,30>>
  %3 = qir.quantize %2 rounding "rnd_conv" overflow "sat" {{layer = "conv"}}
      : tensor<{h}x{w}x{cout}x!qir.fixed<60,30>> -> tensor<{h}x{w}x{cout}x!qir.fixed<16,8>>
  qir.output %3 : tensor<{h}x{w}x{cout}x!qir.fixed<16,8>>
}}
"""


def run(h, w, cin, cout, io: str) -> dict:
    """Lower (qir compile's pipeline), generate Verilog, estimate; wall seconds of the whole."""
    from qir.rtl import generate

    t0 = time.perf_counter()
    mod = parse_module(conv_ir(h, w, cin, cout))
    run_passes(mod, STREAM_PIPELINE if io == "stream" else DEFAULT_PIPELINE)
    design = generate(get_model(mod))
    secs = time.perf_counter() - t0
    e = estimate(get_model(mod))
    return {"luts": e["luts_estimate"], "ff": e["reg_bits"], "mem": e.get("memory_bits", 0), "secs": secs,
            "verilog_bytes": sum(len(t) for t in design.files.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-parallel", action="store_true", help="skip the (slow) parallel 16x16x3->8 compile")
    a = ap.parse_args(argv)
    rows = []
    r32, r64 = run(32, 32, 16, 16, "stream"), run(64, 64, 16, 16, "stream")
    rows += [("3x3 16->16, 32x32", "stream", r32), ("3x3 16->16, 64x64", "stream", r64)]
    s8 = run(16, 16, 3, 8, "stream")
    rows.append(("3x3 3->8, 16x16", "stream", s8))
    if not a.no_parallel:
        rows.append(("3x3 3->8, 16x16", "parallel", run(16, 16, 3, 8, "parallel")))
    print(f"{'layer':22} {'io':9} {'LUT est':>9} {'FF est':>8} {'mem bits':>9} {'compile s':>9} {'Verilog':>10}")
    for name, io, r in rows:
        print(f"{name:22} {io:9} {r['luts']:9,} {r['ff']:8,} {r['mem']:9,} {r['secs']:9.1f} {r['verilog_bytes']:10,}")
    d_lut = abs(r64["luts"] - r32["luts"]) / r32["luts"]
    d_ff = abs(r64["ff"] - r32["ff"]) / r32["ff"]
    print(f"32x32 vs 64x64: LUT estimate differs by {d_lut:.2%}, FF by {d_ff:.2%} "
          f"(memory bits {r32['mem']:,} vs {r64['mem']:,})")
    if not a.no_parallel:
        print(f"16x16x3->8: parallel / stream LUT estimate = {rows[-1][2]['luts'] / s8['luts']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
