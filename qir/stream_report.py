"""``qir report`` estimate of a stream-level model (``--io stream``): the sum of its stages.

- ``qir.map``: the body model's own estimate (``qir.report.estimate``: adder graphs, xnor,
  multipliers, pipeline registers) plus its valid chain: hardware for ONE beat, whatever the
  number of beats (the kernel is reused at every position).
- ``qir.window``: the window register (span_h x (span_w - 1) pixels), the registered output
  window (taps pixels), the padding mux (one LUT per pixel bit), step counters; the line buffer
  is memory (``memory_bits`` = (span_h - 1) rows x padded width x pixel bits), not LUTs.
- ``qir.collect``: N - 1 beats of shift register plus the N-beat output register (flip-flops).
- ``qir.stream_mvu``: its ``cost()`` (``qir.folding.estimate`` of the stream form: LUT, FF, DSP,
  weight-ROM bits).
So only the line buffers and a flatten before a dense layer grow with the map size.
"""
from __future__ import annotations

from math import ceil, log2


def estimate_stream(model) -> dict:
    from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp, WindowOp
    from qir.report import LUT_PER_ADDER_BIT, estimate
    from qir.stream.geometry import WindowGeometry, collect_geometry

    tot = {"adder_bits": 0, "epilogue_luts": 0, "other_luts": 0, "multipliers": 0, "reg_bits": 0,
           "memory_bits": 0}
    layers = []
    for op in model.block.ops:
        layer = op.attributes["layer"].data if "layer" in op.attributes else None
        if isinstance(op, (MapOp, JoinOp)):
            from qir.rtl.top import _plan

            e = estimate(op.model())
            lat = _plan(op.model()).latency
            for k in ("adder_bits", "epilogue_luts", "other_luts", "multipliers", "reg_bits"):
                tot[k] += e[k]
            for k in ("dsp", "memory_bits"):  # folded layers (weight ROMs, DSPs)
                if k in e:
                    tot[k] = tot.get(k, 0) + e[k]
            tot["reg_bits"] += lat  # valid chain
            for lay in e["layers"]:
                layers.append({**lay, "stage": "map"})
        elif isinstance(op, WindowOp):
            g = WindowGeometry(op)
            pw = g.C * g.ew
            regs = g.span_h * (g.span_w - 1) * pw + g.taps * pw + 1
            cnt = ceil(log2(max(g.Hp, 2))) + ceil(log2(max(g.Wp, 2)))
            regs += cnt
            luts = (pw if g.pt + g.pb + g.pl + g.pr else 0) + 2 * cnt + 4
            tot["reg_bits"] += regs
            tot["other_luts"] += luts
            tot["memory_bits"] += g.memory_bits
            layers.append({"layer": layer, "op": op.name, "style": "window", "reg_bits": regs, "luts": luts,
                           "memory_bits": g.memory_bits})
        elif isinstance(op, StreamMvuOp):
            e = op.cost()
            tot["other_luts"] += e["lut"]
            tot["reg_bits"] += e["ff"]
            tot["memory_bits"] += e["memory_bits"]
            tot["dsp"] = tot.get("dsp", 0) + e["dsp"]
            layers.append({"layer": layer, "op": op.name, "reuse": e["cycles_per_beat"], "impl": op.impl.data, **e})
        elif isinstance(op, CollectOp):
            n, bw = collect_geometry(op)
            regs = ((2 * n - 1) * bw if n > 1 else 0) + ceil(log2(max(n, 2))) + 1
            tot["reg_bits"] += regs
            tot["other_luts"] += ceil(log2(max(n, 2))) + 2
            layers.append({"layer": layer, "op": op.name, "style": "collect", "reg_bits": regs})
    if any(isinstance(op, JoinOp) for op in model.block.ops):
        from qir.rtl.stream_top import generate_stream

        for o in model.block.ops:  # fork stages: one "taken" flag per output
            for r in o.results:
                n = len(list(r.uses))
                if n > 1:
                    tot["reg_bits"] += n
                    tot["other_luts"] += 2 * n
                    layers.append({"layer": o.attributes["layer"].data if "layer" in o.attributes else o.name,
                                   "op": "fork", "style": "fork", "reg_bits": n, "luts": 2 * n})
        for f in generate_stream(model, convert=False).stream["fifo_depths"]:
            # SyncFIFOBuffered: depth - 1 entries of memory, an output register, two pointers, a level
            cnt = ceil(log2(max(f["depth"], 2)))
            mem, regs = (f["depth"] - 1) * f["width"], f["width"] + 3 * cnt + 1
            tot["memory_bits"] += mem
            tot["reg_bits"] += regs
            tot["other_luts"] += 3 * cnt + 4
            layers.append({"layer": f["stage"], "op": "fifo", "style": "fifo", "depth": f["depth"], "reg_bits": regs,
                           "luts": 3 * cnt + 4, "memory_bits": mem})
    luts = round(tot["adder_bits"] * LUT_PER_ADDER_BIT) + tot["epilogue_luts"] + tot["other_luts"]
    return {"luts_estimate": luts, **tot, "layers": layers}
