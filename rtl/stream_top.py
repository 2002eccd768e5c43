"""A stream-level ``qir.model`` (``io = "stream"``) -> one Verilog file: a chain of stream stages.

Top-level interface (``--io stream``)
------------------------------------
``clk``, ``rst`` (synchronous, active high), ``in_valid``, ``in_ready``, ``in_data``,
``out_valid``, ``out_ready``, ``out_data``.  A tensor crosses a port as a sequence of beats: one
beat is one vector along the last axis (for H x W x C, one pixel with its C channels, pixels in
row-major order; a 1-D vector is one beat), element k of a beat in bits ``[k*W+W-1 : k*W]``.  A
beat moves at a rising edge where valid and ready are both high (AXI-Stream style); ``in_ready``
never depends on ``in_valid`` and ``out_valid`` never on ``out_ready`` combinationally except
through a latency-0 map (a purely combinational stage passes valid/ready through).

Stages (one Amaranth ``lib.wiring`` Component each, connected with ``lib.stream`` interfaces):
``qir.window`` -> ``stream_window.WindowStage`` (line buffer = ``lib.memory.Memory``),
``qir.map`` -> ``stream_map.MapStage`` (the body's pipeline with a stall enable),
``qir.collect`` -> ``stream_collect.CollectStage``.  The model is a chain (every op uses the
previous op's result); joins (add/concat of two streams) are not supported yet, so no FIFOs are
needed: every stage holds its output until it is taken.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qir.rtl.top import RtlDesign, _with_waivers

from qir.dialect import InputOp, OutputOp, elem, shape_of
from qir.dialect.stream_ops import CollectOp, MapOp, WindowOp
from qir.errors import QirError
from qir.names import is_identifier, legalize


@dataclass
class StreamRtlDesign(RtlDesign):
    stream: dict = field(default_factory=dict)   # report.json's stream fields


def _port(name: str, direction: str, t) -> dict:
    shape = shape_of(t)
    spec = elem(t)
    return {"name": name, "direction": direction, "width": shape[-1] * spec.width, "type": str(spec),
            "shape": list(shape), "beat_shape": [shape[-1]], "beats": prod(shape[:-1]),
            "beat_order": "row-major over the leading axes; a beat = the last axis"}


def _chain(model) -> list:
    ops = list(model.block.ops)
    ins = [o for o in ops if isinstance(o, InputOp)]
    out = ops[-1]
    if len(ins) != 1 or not isinstance(out, OutputOp) or len(out.outs) != 1:
        raise QirError(f"--io stream: model @{model.sym_name.data} needs exactly one input and one output")
    stages, prev = [], ins[0].result
    for o in ops:
        if isinstance(o, (InputOp, OutputOp)):
            continue
        if not isinstance(o, (WindowOp, MapOp, CollectOp)):
            raise QirError(f"--io stream: '{o.name}' at the stream level; run qir-stream-conv and qir-stream-form")
        if list(o.operands) != [prev]:
            raise QirError(f"--io stream: the stream graph of @{model.sym_name.data} is not a chain "
                           "(add/concat of streams is not supported yet)")
        stages.append(o)
        prev = o.results[0]
    if out.outs[0] != prev:
        raise QirError(f"--io stream: the output of @{model.sym_name.data} is not the end of its chain")
    return stages


def _stage(op):
    from qir.rtl.stream_collect import CollectStage
    from qir.rtl.stream_map import MapStage
    from qir.rtl.stream_window import WindowStage

    return {WindowOp: WindowStage, MapOp: MapStage, CollectOp: CollectStage}[type(op)](op)


class _StreamTop(wiring.Component):
    def __init__(self, stages, w_in: int, w_out: int):
        self._stages = stages
        super().__init__({"clk": In(1), "rst": In(1), "in_valid": In(1), "in_ready": Out(1), "in_data": In(w_in),
                          "out_valid": Out(1), "out_ready": In(1), "out_data": Out(w_out)})

    def elaborate(self, platform):
        m = Module()
        cd = ClockDomain("sync", reset_less=True)
        m.domains.sync = cd
        m.d.comb += cd.clk.eq(self.clk)
        for k, (name, st) in enumerate(self._stages):
            m.submodules[name] = st
            m.d.comb += st.rst.eq(self.rst)
            if k:
                wiring.connect(m, self._stages[k - 1][1].o, st.i)
        first, last = self._stages[0][1], self._stages[-1][1]
        m.d.comb += [first.i.valid.eq(self.in_valid), first.i.payload.eq(self.in_data), self.in_ready.eq(first.i.ready),
                     self.out_valid.eq(last.o.valid), self.out_data.eq(last.o.payload), last.o.ready.eq(self.out_ready)]
        return m


def generate_stream(model, top: str | None = None) -> StreamRtlDesign:
    from qir.rtl.stream_timing import simulate
    from qir.rtl.stream_window import WindowGeometry

    if top is None:
        top = legalize(model.sym_name.data)
    elif not is_identifier(top):
        raise QirError(f"top module name {top!r} is not a plain Verilog identifier")
    ops = _chain(model)
    if not ops:
        raise QirError(f"--io stream: model @{model.sym_name.data} has no stream stages")
    stages, timing, info = [], [], []
    for k, op in enumerate(ops):
        st = _stage(op)
        kind = {WindowOp: "window", MapOp: "map", CollectOp: "collect"}[type(op)]
        layer = op.attributes.get("layer")
        name = legalize(f"s{k}_{kind}_{layer.data if layer is not None else ''}".rstrip("_"), "s")
        stages.append((name, st))
        d = {"stage": name, "kind": kind, "layer": layer.data if layer is not None else None}
        if kind == "window":
            g = WindowGeometry(op)
            timing.append(("window", g))
            d.update(memory_bits=g.memory_bits, line_buffer_rows=g.span_h - 1, line_buffer_depth=g.Wp,
                     steps_per_image=g.steps)
        elif kind == "map":
            timing.append(("map", st.latency))
            d.update(latency_cycles=st.latency)
        else:
            timing.append(("collect", st.n))
            d.update(beats=st.n, register_bits=st.register_bits)
        info.append(d)
    in_t, out_t = model.inputs()[0].result.type, model.output().outs[0].type
    beats_in, beats_out = prod(shape_of(in_t)[:-1]), prod(shape_of(out_t)[:-1])
    latency, ii = simulate(timing, beats_in, beats_out)
    w_in, w_out = stages[0][1].i.payload.shape().width, stages[-1][1].o.payload.shape().width
    text = verilog.convert(_StreamTop(stages, w_in, w_out), name=top, emit_src=False, strip_internal_attrs=True)
    one = lambda n, d: {"name": n, "direction": d, "width": 1, "type": None, "shape": None}  # noqa: E731
    ports = [one("clk", "input"), one("rst", "input"), one("in_valid", "input"), one("in_ready", "output"),
             _port("in_data", "input", in_t), one("out_valid", "output"), one("out_ready", "input"),
             _port("out_data", "output", out_t)]
    stream = {"io": "stream", "ii_cycles": ii, "beats_in": beats_in, "beats_out": beats_out,
              "memory_bits": sum(d.get("memory_bits", 0) for d in info), "fifo_depths": [], "stages": info}
    return StreamRtlDesign(top=top, files={f"{top}.v": _with_waivers(text)}, latency=latency, ports=ports,
                           stream=stream)
