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
``qir.collect`` -> ``stream_collect.CollectStage``, ``qir.join`` -> ``stream_join.JoinStage``.
The model is a DAG from the one input to the one output: a value with several users gets a
``stream_join.ForkStage``, a join input whose branch arrives early a ``stream_join.FifoStage``
(depth: ``qir.stream.geometry.fifo_depth`` plus the throughput slack found by the cycle model);
every other stage holds its output until it is taken.  Which stages, forks and FIFOs, in which
order, is ``qir.stream.graph.stage_graph`` (the graph ``qir-fold-auto`` plans with); this module
builds its nodes as components.
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
from qir.dialect.stream_ops import CollectOp, JoinOp, MapOp, StreamMvuOp, WindowOp
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


def _graph(model) -> list:
    """The stream ops of ``model`` in order; checks they form a DAG from the one input to the one
    output (every operand a stream-op result or the input)."""
    ops = list(model.block.ops)
    ins = [o for o in ops if isinstance(o, InputOp)]
    out = ops[-1]
    if len(ins) != 1 or not isinstance(out, OutputOp) or len(out.outs) != 1:
        raise QirError(f"--io stream: model @{model.sym_name.data} needs exactly one input and one output")
    stages = []
    for o in ops:
        if isinstance(o, (InputOp, OutputOp)):
            continue
        if not isinstance(o, (WindowOp, MapOp, JoinOp, CollectOp, StreamMvuOp)):
            raise QirError(f"--io stream: '{o.name}' at the stream level; run qir-stream-conv and qir-stream-form")
        stages.append(o)
    for o in stages:
        for r in o.results:
            if not r.uses:
                raise QirError(f"--io stream: the result of '{o.name}' in @{model.sym_name.data} is unused")
    if not stages or out.outs[0] != stages[-1].results[0] or len(list(out.outs[0].uses)) != 1:
        raise QirError(f"--io stream: the output of @{model.sym_name.data} must be the last stream op's "
                       "result and nothing else's operand")
    return stages


def _stage(op):
    from qir.rtl.stream_collect import CollectStage
    from qir.rtl.stream_join import JoinStage
    from qir.rtl.stream_map import MapStage
    from qir.rtl.stream_mvu import StreamMvuStage
    from qir.rtl.stream_window import WindowStage

    return {WindowOp: WindowStage, MapOp: MapStage, JoinOp: JoinStage, CollectOp: CollectStage,
            StreamMvuOp: StreamMvuStage}[type(op)](op)


class _StreamTop(wiring.Component):
    """``stages``: [(name, component)] in topological order; ``edges``: [(src, dst)] with src/dst
    interface objects (src None = the top input); the last stage's ``o`` is the top output."""

    def __init__(self, stages, edges, w_in: int, w_out: int):
        self._stages, self._edges = stages, edges
        super().__init__({"clk": In(1), "rst": In(1), "in_valid": In(1), "in_ready": Out(1), "in_data": In(w_in),
                          "out_valid": Out(1), "out_ready": In(1), "out_data": Out(w_out)})

    def elaborate(self, platform):
        m = Module()
        cd = ClockDomain("sync", reset_less=True)
        m.domains.sync = cd
        m.d.comb += cd.clk.eq(self.clk)
        for name, st in self._stages:
            m.submodules[name] = st
            m.d.comb += st.rst.eq(self.rst)
        for src, dst in self._edges:
            if src is None:
                m.d.comb += [dst.valid.eq(self.in_valid), dst.payload.eq(self.in_data), self.in_ready.eq(dst.ready)]
            else:
                wiring.connect(m, src, dst)
        last = self._stages[-1][1]
        m.d.comb += [self.out_valid.eq(last.o.valid), self.out_data.eq(last.o.payload), last.o.ready.eq(self.out_ready)]
        return m


def generate_stream(model, top: str | None = None, fifo_delta: int | None = None,
                    convert: bool = True) -> StreamRtlDesign:
    """The stages, forks and FIFOs of ``qir.stream.graph.stage_graph`` as Amaranth components.
    FIFO depths: ``min_depth`` (``qir.stream.geometry.fifo_depth``, the least that cannot
    deadlock) plus the least common slack with which the cycle model reaches the II and latency
    of unbounded FIFOs (``StageGraph.size_fifos``).  ``fifo_delta`` (tests only): depths
    min_depth + fifo_delta, no slack search, no timing (to show that min_depth is needed)."""
    from qir.rtl.stream_collect import check_collect
    from qir.rtl.stream_join import FifoStage, ForkStage

    from qir.stream.graph import stage_graph

    if top is None:
        top = legalize(model.sym_name.data)
    elif not is_identifier(top):
        raise QirError(f"top module name {top!r} is not a plain Verilog identifier")
    ops = _graph(model)
    for o in ops:
        if isinstance(o, CollectOp):
            check_collect(o)
    in_t, out_t = model.inputs()[0].result.type, model.output().outs[0].type
    built = {op: _stage(op) for op in ops}
    graph = stage_graph(model, ops, lambda op: (built[op].latency, built[op].ii), fifo_delta=fifo_delta or 0)
    if fifo_delta is not None:
        latency = ii = ii_images = None
    else:
        latency, ii, ii_images = graph.size_fifos(model.sym_name.data)
    w_in = shape_of(in_t)[-1] * elem(in_t).width
    fifo_at = {f.node: f for f in graph.fifos}
    n_fifos = {}  # join node -> its FIFOs (named before them: s<k>_join with k the first FIFO's index)
    for f in graph.fifos:
        n_fifos[f.join] = n_fifos.get(f.join, 0) + 1

    def layer_of(op) -> str | None:
        layer = op.attributes.get("layer")
        return layer.data if layer is not None else None

    names, comps, info, fifos = [], [], [], []
    for k, n in enumerate(graph.nodes):
        if n.kind == "fork":
            names.append(legalize(f"s{k}_fork", "s"))
            (s, _), = n.ins
            comps.append(ForkStage(n.n_out, w_in if s < 0 else comps[s].o.payload.shape().width))
        elif n.kind == "fifo":
            f = fifo_at[k]
            names.append(legalize(f"s{k}_fifo_{layer_of(n.op) or ''}".rstrip("_"), "s"))
            width = shape_of(f.value.type)[-1] * elem(f.value.type).width
            comps.append(FifoStage(f.depth, width))
            fifos.append({"stage": names[-1], "join": f.join, "input": ("lhs", "rhs")[f.port], "depth": f.depth,
                          "min_depth": f.min_depth, "width": width})
        else:
            st = built[n.op]
            names.append(legalize(f"s{k - n_fifos.get(k, 0)}_{n.kind}_{layer_of(n.op) or ''}".rstrip("_"), "s"))
            comps.append(st)
            d = {"stage": names[-1], "kind": n.kind, "layer": layer_of(n.op)}
            if n.kind in ("map", "join"):
                d.update(latency_cycles=st.latency, **({"ii_cycles": st.ii} if st.ii > 1 else {}))
            elif n.kind == "window":
                g = n.info
                d.update(memory_bits=g.memory_bits, line_buffer_rows=g.span_h - 1, line_buffer_depth=g.Wp,
                         steps_per_image=g.steps)
            elif n.kind == "stream_mvu":
                d.update(beats=st.n, reuse=st.R, groups=st.G, cycles_per_beat=st.cycles_per_beat,
                         memory_bits=st.memory_bits)
            else:
                d.update(beats=st.n, register_bits=st.register_bits)
            info.append(d)
    for f in fifos:
        f["join"] = names[f["join"]]

    def out_iface(k, p):
        return None if k < 0 else (comps[k].outs()[p] if graph.nodes[k].kind == "fork" else comps[k].o)

    def in_iface(k, q):
        return comps[k].ins()[q] if graph.nodes[k].kind == "join" else comps[k].i

    stages = list(zip(names, comps))
    edges = [(out_iface(*s), in_iface(*d)) for s, d in graph.edges]
    w_out = stages[-1][1].o.payload.shape().width
    if convert:
        text = verilog.convert(_StreamTop(stages, edges, w_in, w_out), name=top, emit_src=False,
                               strip_internal_attrs=True)
    else:  # only the plan was wanted: the stages are never elaborated
        text = ""
        for _, st in stages:
            for e in (st, getattr(st, "core", None)):
                if e is not None:
                    e._MustUse__silence = True
    one = lambda n, d: {"name": n, "direction": d, "width": 1, "type": None, "shape": None}  # noqa: E731
    ports = [one("clk", "input"), one("rst", "input"), one("in_valid", "input"), one("in_ready", "output"),
             _port("in_data", "input", in_t), one("out_valid", "output"), one("out_ready", "input"),
             _port("out_data", "output", out_t)]
    stream = {"io": "stream", "ii_cycles": ii, "ii_images": ii_images, "beats_in": graph.beats_in,
              "beats_out": graph.beats_out,
              "memory_bits": sum(d.get("memory_bits", 0) for d in info), "fifo_depths": fifos, "stages": info,
              "timing_graph": None}
    design = StreamRtlDesign(top=top, files={f"{top}.v": _with_waivers(text)}, latency=latency, ports=ports,
                             stream=stream)
    design.timing_nodes = graph.timing_nodes()
    return design
