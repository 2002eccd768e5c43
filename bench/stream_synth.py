"""--io stream designs through Yosys ``synth_xilinx -family xcup -flatten``: where the line buffers go.

Compiles (once; ``--work`` keeps the outputs) a 3x3 16->16 conv (+relu, seeded random fixed<8,3>
weights, ``bench/stream_scaling.py``) over a 32x32 and a 64x64 map and jetTagger_Conv2D_Small
(``tests/data``, ``--precision 'fixed<18,8>'``) with ``qir compile --io stream``, synthesizes each
with ``qir.report.synthesize`` and prints a table: logic LUTs, LUTRAM cells (and the SLICEM LUTs
they occupy), block RAM (RAMB36 + RAMB18), DSP, FF, carry, the line-buffer bits of report.json.

    .venv/bin/python bench/stream_synth.py --work /tmp/stream_synth [--only conv32,conv64,jet]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QIR = Path(sys.executable).parent / "qir"
JET = ROOT / "tests" / "data" / "jettagger_conv2d_small" / "jetTagger_Conv2D_Small.json"
FLOAT = ["--precision", "fixed<18,8>", "--softmax", "none", "--input-type", "fixed<16,6>"]


def _designs(work: Path) -> dict[str, tuple[Path, list[str]]]:
    sys.path.insert(0, str(ROOT / "bench"))
    from stream_scaling import conv_ir

    out = {}
    for h in (32, 64):
        src = work / f"conv{h}.mlir"
        if not src.exists():
            src.write_text(conv_ir(h, h, 16, 16))
        out[f"conv{h}"] = (src, [])
    out["jet"] = (JET, FLOAT)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="folder for the compiled designs and the synthesis JSON (reused)")
    ap.add_argument("--only", default="conv32,conv64,jet")
    a = ap.parse_args(argv)
    from qir.report import synthesize

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (src, opts) in _designs(work).items():
        if name not in a.only.split(","):
            continue
        out = work / name
        if not (out / "report.json").exists():
            subprocess.run([str(QIR), "compile", str(src), "-o", str(out), "--io", "stream", "-q", *opts], check=True)
        rep = json.loads((out / "report.json").read_text())
        cache = out / "synth_xilinx.json"
        if not cache.exists():
            s = synthesize([out / f for f in rep["rtl"]], rep["top"], "xilinx")
            cache.write_text(json.dumps(s, indent=1))
        s = json.loads(cache.read_text())
        rows.append((name, rep, s))
    print(f"{'design':8} {'mem bits':>9} {'LUT':>7} {'LUTRAM cells (LUTs)':>20} {'RAMB36+18':>10} "
          f"{'DSP':>4} {'FF':>7} {'carry':>6} {'yosys s':>8}  memory cells")
    for name, rep, s in rows:
        mem = ", ".join(f"{n} {c}" for c, n in sorted(s["cells"].items()) if c.startswith("RAM"))
        print(f"{name:8} {rep.get('memory_bits', 0):9,} {s['lut']:7,} {s['lutram']:>11,} ({s['lutram_luts']:,}) "
              f"{s['bram36']:>6}+{s['bram18']:<3} {s['dsp']:4} {s['ff']:7,} {s['carry']:6,} {s['seconds']:8}  {mem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
