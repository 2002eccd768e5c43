"""``qir report OUTDIR --html``: one self-contained HTML page (no scripts, no external files).

It holds the design summary (top, latency, initiation interval, ports, the timing estimate of
report.json and its source), a bar chart of the estimated LUTs, flip-flops and memory bits per
layer (matplotlib, inline SVG), the per-layer table, and the Yosys synthesis results when
``--synth`` ran (FPGA flows and the ASIC NAND2-equivalent side by side).

Per-layer figures come from the same cost model as ``qir report`` (``qir.report``): adder-graph
LUTs (adder LUT bits x ``LUT_PER_ADDER_BIT`` + epilogue), XNOR popcount LUTs, one LUT per result
bit of other element-wise ops; flip-flops = ``qir.reg`` banks + registered adder-graph nodes of
the layer; memory = bits of ``qir.lut`` tables.  Ops without a layer name are listed as "(model)".
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

from qir.errors import QirError

II = 1  # fully pipelined designs accept one sample per cycle (folded designs: report.json ii_cycles)


def layer_costs(model) -> list[dict]:
    """[{layer, ops, luts, ffs, memory_bits}] in model order."""
    import numpy as np

    from qir.dialect import AdderGraphOp, InputOp, LutOp, ModelOp, OutputOp, RegOp, elem, elements_to_numpy, shape_of
    from qir.ir import get_model, layer_of
    from qir.report import LUT_PER_ADDER_BIT

    if not isinstance(model, ModelOp):
        model = get_model(model)
    rows: dict[str, dict] = {}
    for op in model.block.ops:
        if isinstance(op, (InputOp, OutputOp)):
            continue
        name = layer_of(op) or "(model)"
        row = rows.setdefault(name, {"layer": name, "ops": [], "luts": 0, "ffs": 0, "memory_bits": 0})
        if op.name not in row["ops"]:
            row["ops"].append(op.name)
        if getattr(op, "cycles", None) is not None and op.cycles():  # a folded layer (qir.folding)
            e = op.cost()
            row["luts"] += e["lut"]
            row["ffs"] += e["ff"]
            row["memory_bits"] += e["memory_bits"]
        elif isinstance(op, AdderGraphOp):
            e = op.cost()
            row["luts"] += round(e["adder_bits"] * LUT_PER_ADDER_BIT) + e["epilogue_luts"]
            row["ffs"] += e["reg_bits"]
        elif op.name == "qir.xnor":
            row["luts"] += op.cost()["luts"]
        elif isinstance(op, RegOp):
            row["ffs"] += elem(op.input.type).width * int(np.prod(shape_of(op.input.type)))
        elif isinstance(op, LutOp):
            row["memory_bits"] += int(elements_to_numpy(op.table).size) * elem(op.output.type).width
        elif op.name in ("qir.reshape", "qir.transpose", "qir.pad", "qir.concat"):
            pass  # wiring
        elif op.name == "qir.relu" and not elem(op.results[0].type).signed:
            pass
        elif op.results:
            try:
                t = elem(op.results[0].type)
                row["luts"] += t.width * int(np.prod(shape_of(op.results[0].type)))
            except Exception:  # ops without a fixed-point tensor result cost nothing here
                pass
    return list(rows.values())


def bar_chart_svg(rows: list[dict]) -> str:
    """Grouped bars (LUTs, FFs, memory bits) per layer as SVG text (deterministic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [r["layer"] for r in rows]
    series = [("LUTs (est.)", "luts", "#1f77b4"), ("FFs", "ffs", "#ff7f0e"), ("memory bits", "memory_bits", "#2ca02c")]
    x = np.arange(len(rows))
    wbar = 0.8 / len(series)
    with plt.rc_context({"svg.hashsalt": "qir", "svg.fonttype": "path", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 3.6), dpi=100)
        for i, (lab, key, color) in enumerate(series):
            vals = [r[key] for r in rows]
            ax.bar(x + (i - 1) * wbar, vals, wbar, label=lab, color=color)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("count (bits for memory)")
        ax.set_title("Estimated resources per layer")
        ax.legend(loc="upper right")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "qir"})
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _table(head: list[str], rows: list[list]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render(outdir: str | Path, r: dict) -> str:
    """The HTML text for the report ``r`` of ``qir.report.report(outdir, ...)``."""
    from qir.ir import read_module

    d = Path(outdir)
    rep = json.loads((d / "report.json").read_text())
    rows = layer_costs(read_module(d / "lowered.mlir"))
    est = r["estimate"]
    per_layer = {lay["layer"]: lay for lay in est["layers"]}
    trows = []
    for row in rows:
        lay = per_layer.get(row["layer"], {})
        trows.append([row["layer"], ", ".join(row["ops"]), lay.get("style", ""), lay.get("adders", ""),
                      lay.get("adder_bits", ""), lay.get("depth", ""), lay.get("latency", ""), row["luts"],
                      row["ffs"], row["memory_bits"]])
    trows.append(["total", "", "", "", est["adder_bits"], "", "", sum(x["luts"] for x in rows),
                  sum(x["ffs"] for x in rows), sum(x["memory_bits"] for x in rows)])
    t = rep.get("timing") or {}
    summary = [["top", rep["top"]], ["model", rep.get("model", "")], ["latency", f"{rep['latency_cycles']} cycles"],
               ["initiation interval (II)", f"{II} cycle (one sample per clock)" if rep.get("ii_cycles", II) == II
                else f"{rep['ii_cycles']} cycles (folded layers)"],
               ["estimated LUTs (whole design)", est["luts_estimate"]],
               ["register bits (incl. the valid chain)", est["reg_bits"]],
               ["multipliers", est["multipliers"]], ["pipeline", rep.get("pipeline", "")]]
    if t:
        summary += [["levels per stage", t.get("levels_per_stage")], ["target clock", f"{t.get('clock_ns')} ns"
                     if t.get("clock_ns") else "not set"],
                    ["estimated Fmax", f"{t.get('fmax_mhz_estimate')} MHz" if t.get("fmax_mhz_estimate") else "n/a"],
                    ["Fmax source", t.get("source", "")]]
    ports = [[p["name"], p["direction"], p["width"], p.get("type") or "", "x".join(map(str, p.get("shape") or []))]
             for p in rep["ports"]]
    synth = []
    for k, v in r.items():
        if not k.startswith("synth_"):
            continue
        flow = k[6:]
        if flow == "asic":
            synth.append([flow, v["command"], "", v["ff"], "", "", "", "", sum(v["cells"].values()),
                          v["nand2_equivalent"], v["longest_path_cells"], v["seconds"]])
        else:
            synth.append([flow, v["command"], v["lut"], v["ff"], v["carry"], v["dsp"], v.get("bram", ""),
                          v.get("lutram", ""), "", "", v["longest_path_cells"], v["seconds"]])
    synth_html = (_table(["flow", "Yosys command", "LUT", "FF", "carry", "DSP", "BRAM", "LUTRAM", "gates",
                          "NAND2 eq.", "longest path (cells)", "seconds"], synth) if synth
                  else "<p>Not run (<code>qir report OUTDIR --synth xilinx,ecp5,asic --html</code>).</p>")
    css = ("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}"
           "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
           "td:first-child,th:first-child{text-align:left}#chart svg{max-width:100%;height:auto}"
           "table.kv td{text-align:left}")
    return "\n".join([
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>qir report: {html.escape(rep['top'])}</title><style>{css}</style></head><body>",
        f"<h1>qir report: {html.escape(rep['top'])}</h1>",
        "<h2>Summary</h2>", _table(["", ""], summary).replace("<table>", "<table class=\"kv\">", 1),
        "<h2>Estimated resources per layer</h2>", f"<div id=\"chart\">{bar_chart_svg(rows)}</div>",
        _table(["layer", "ops", "style", "adders", "adder bits", "adder depth", "internal latency", "LUTs (est.)",
                "FFs", "memory bits"], trows),
        "<h2>Synthesis (Yosys)</h2>", synth_html,
        "<h2>Ports</h2>", _table(["port", "direction", "width", "type", "shape"], ports),
        "</body></html>", ""])


def write_html(outdir: str | Path, r: dict, path: str | Path | None = None) -> Path:
    d = Path(outdir)
    if not (d / "report.json").is_file():
        raise QirError("not a qir compile output (no report.json)", where=str(d))
    out = Path(path) if path else d / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(d, r), encoding="utf-8")
    _add_to_manifest(d, out)
    return out


def _add_to_manifest(d: Path, f: Path) -> None:
    """A page written inside the compile output is qir's own file: list it in ``.qir-manifest`` so a
    later ``qir compile -o`` into the folder may replace it (``qir.safety``)."""
    from qir.safety import MANIFEST

    manifest = d / MANIFEST
    try:
        rel = f.resolve().relative_to(d.resolve()).as_posix()
    except ValueError:
        return
    if not manifest.is_file() or manifest.is_symlink():
        return
    lines = manifest.read_text(encoding="utf-8").splitlines()
    if rel not in lines:
        manifest.write_text("".join(f"{x}\n" for x in sorted(lines + [rel])), encoding="utf-8")
