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
(depth: ``stream_join.fifo_depth`` plus the throughput slack found by the cycle model); every
other stage holds its output until it is taken.
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


def _needs(ops, in_value, beats_in: int) -> dict:
    """Per stream value, per beat j of one image: the model-input beats needed before it exists."""
    from qir.rtl.stream_collect import collect_geometry
    from qir.rtl.stream_window import WindowGeometry

    need = {in_value: list(range(1, beats_in + 1))}
    for op in ops:
        if isinstance(op, MapOp):
            need[op.output] = need[op.input]
        elif isinstance(op, JoinOp):
            need[op.output] = [max(a, b) for a, b in zip(need[op.lhs], need[op.rhs])]
        elif isinstance(op, CollectOp):
            need[op.output] = [need[op.input][collect_geometry(op)[0] - 1]]
        elif isinstance(op, StreamMvuOp):
            need[op.output] = [need[op.input][op.beats - 1]]
        else:
            g, src, out, taken = WindowGeometry(op), need[op.input], [], 0
            for py in range(g.Hp):
                for px in range(g.Wp):
                    if g.interior_row(py) and g.interior_col(px):
                        taken += 1
                    if g.emit_row(py) and g.emit_col(px):
                        out.append(src[taken - 1] if taken else 0)
            need[op.output] = out
    return need


def _size_fifos(model, nodes, n_out, beats_in, beats_out, fifos) -> tuple[int, int, int]:
    """Adds the throughput slack to every FIFO (see ``generate_stream``); (latency, steady-state
    ii, images the cycle model fed to reach it: ``stream_timing.simulate_dag(steady=True)``)."""
    from qir.rtl.stream_timing import simulate_dag

    def run(k):
        depth = {f["node"]: f["min_depth"] + k for f in fifos}
        try:
            return simulate_dag([(kd, depth.get(n, i), ins) for n, (kd, i, ins) in enumerate(nodes)], n_out,
                                beats_in, beats_out, steady=True)
        except RuntimeError as e:  # a bug in the depth computation, never the user's input
            raise QirError(f"--io stream: internal error, the stream graph of @{model.sym_name.data} "
                           f"does not run in the cycle model ({e})") from None

    if not fifos:
        return run(0)
    lo, hi = 0, max(f["beats"] for f in fifos) + 4
    best = run(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if run(mid)[:2] == best[:2]:
            hi = mid
        else:
            lo = mid + 1
    for f in fifos:
        f["depth"] = f["min_depth"] + lo
        f["fifo"].depth = f["depth"]
    return run(lo)


def generate_stream(model, top: str | None = None, fifo_delta: int | None = None,
                    convert: bool = True) -> StreamRtlDesign:
    """FIFO depths: ``min_depth`` (``stream_join.fifo_depth``, the least that cannot deadlock)
    plus the least common slack k with which the cycle model reaches the II and latency of
    unbounded FIFOs (SyncFIFOBuffered's two-cycle fall-through and the branch pipelines otherwise
    throttle the fork).  ``fifo_delta`` (tests only): depths min_depth + fifo_delta, no slack
    search, no timing (to show that min_depth is needed)."""
    from qir.rtl.stream_join import FifoStage, ForkStage, fifo_depth
    from qir.rtl.stream_window import WindowGeometry

    if top is None:
        top = legalize(model.sym_name.data)
    elif not is_identifier(top):
        raise QirError(f"top module name {top!r} is not a plain Verilog identifier")
    ops = _graph(model)
    from qir.rtl.stream_collect import check_collect

    from qir.dialect.stream_ops import CollectOp

    for o in ops:
        if isinstance(o, CollectOp):
            check_collect(o)
    in_v = model.inputs()[0].result
    in_t, out_t = in_v.type, model.output().outs[0].type
    beats_in, beats_out = prod(shape_of(in_t)[:-1]), prod(shape_of(out_t)[:-1])
    need = _needs(ops, in_v, beats_in)
    stages, edges, nodes, n_out, info, fifos = [], [], [], [], [], []
    src: dict = {}  # value -> list of (interface, node, port) still free, one per user

    def add(name, comp, kind, tinfo, ins):
        stages.append((name, comp))
        nodes.append((kind, tinfo, [(n, p) for _, n, p in ins]))
        return len(nodes) - 1

    def provide(v, iface, node, width):
        users = len(list(v.uses))
        if users <= 1:
            src[v] = [(iface, node, 0)]
            return
        f = ForkStage(users, width)
        k = add(legalize(f"s{len(stages)}_fork", "s"), f, "fork", users, [(iface, node, 0)])
        edges.append((iface, f.i))
        n_out.append(users)
        src[v] = [(o, k, p) for p, o in enumerate(f.outs())]

    def take(v, dst):
        iface, node, port = src[v].pop(0)
        edges.append((iface, dst))
        return (iface, node, port)

    def holding(v) -> int:
        h = 0
        while len(list(v.uses)) == 1 and isinstance(v.owner, (WindowOp, MapOp, CollectOp, JoinOp, StreamMvuOp)):
            st = built[v.owner]
            h += 1 if (getattr(st, "latency", 1) >= 1 and getattr(st, "n", 2) > 1) else 0
            if isinstance(v.owner, JoinOp):
                break
            v = v.owner.input
        return h

    built: dict = {}
    w_in = shape_of(in_t)[-1] * elem(in_t).width
    provide(in_v, None, -1, w_in)
    for op in ops:
        st = _stage(op)
        built[op] = st
        kind = {WindowOp: "window", MapOp: "map", JoinOp: "join", CollectOp: "collect",
                StreamMvuOp: "stream_mvu"}[type(op)]
        layer = op.attributes.get("layer")
        name = legalize(f"s{len(stages)}_{kind}_{layer.data if layer is not None else ''}".rstrip("_"), "s")
        d = {"stage": name, "kind": kind, "layer": layer.data if layer is not None else None}
        if kind == "join":
            ins = []
            for port, (v, other) in enumerate(((op.lhs, op.rhs), (op.rhs, op.lhs))):
                depth = fifo_depth(need[v], need[other], holding(v))
                if depth and fifo_delta is not None:
                    depth = max(depth + fifo_delta, 0)
                dst = st.ins()[port]
                if depth:
                    width = shape_of(v.type)[-1] * elem(v.type).width
                    f = FifoStage(depth, width)
                    fname = legalize(f"s{len(stages)}_fifo_{layer.data if layer is not None else ''}".rstrip("_"), "s")
                    fk = add(fname, f, "fifo", depth, [take(v, f.i)])
                    n_out.append(1)
                    fifos.append({"stage": fname, "join": name, "input": ("lhs", "rhs")[port], "depth": depth,
                                  "min_depth": depth, "width": width, "node": fk, "fifo": f,
                                  "beats": len(need[v])})
                    edges.append((f.o, dst))
                    ins.append((f.o, fk, 0))
                else:
                    ins.append(take(v, dst))
            tinfo = (st.latency, st.ii) if st.ii > 1 else st.latency
            d.update(latency_cycles=st.latency, **({"ii_cycles": st.ii} if st.ii > 1 else {}))
        else:
            ins = [take(op.input, st.i)]
            if kind == "window":
                g = WindowGeometry(op)
                tinfo = g
                d.update(memory_bits=g.memory_bits, line_buffer_rows=g.span_h - 1, line_buffer_depth=g.Wp,
                         steps_per_image=g.steps)
            elif kind == "map":
                tinfo = (st.latency, st.ii) if st.ii > 1 else st.latency
                d.update(latency_cycles=st.latency, **({"ii_cycles": st.ii} if st.ii > 1 else {}))
            elif kind == "stream_mvu":
                tinfo = (st.n, st.cycles_per_beat)
                d.update(beats=st.n, reuse=st.R, groups=st.G, cycles_per_beat=st.cycles_per_beat,
                         memory_bits=st.memory_bits)
            else:
                tinfo = st.n
                d.update(beats=st.n, register_bits=st.register_bits)
        node = add(name, st, kind, tinfo, ins)
        n_out.append(1)
        info.append(d)
        provide(op.output, st.o, node, st.o.payload.shape().width)
    if fifo_delta is not None:
        latency = ii = ii_images = None
    else:
        latency, ii, ii_images = _size_fifos(model, nodes, n_out, beats_in, beats_out, fifos)
    fifos = [{k: v for k, v in f.items() if k not in ("node", "fifo", "beats")} for f in fifos]
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
    stream = {"io": "stream", "ii_cycles": ii, "ii_images": ii_images, "beats_in": beats_in, "beats_out": beats_out,
              "memory_bits": sum(d.get("memory_bits", 0) for d in info), "fifo_depths": fifos, "stages": info,
              "timing_graph": None}
    design = StreamRtlDesign(top=top, files={f"{top}.v": _with_waivers(text)}, latency=latency, ports=ports,
                             stream=stream)
    design.timing_nodes = (nodes, n_out, beats_in, beats_out)
    return design
