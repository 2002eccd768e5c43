"""Stages that make a stream graph a DAG (``--io stream`` with add/concat of two streams).

- ``ForkStage``: one stream to n consumers.  Per output a "taken" flag: output k is valid while
  the input is valid and k has not taken this beat yet; the input is ready when every output
  has taken the beat or takes it now; the flags clear when the input beat moves.  No storage.
- ``JoinStage`` (``qir.join``): the two-input body built by ``qir.rtl.top`` as a parallel design
  under one clock enable ce = ~out_valid | out_ready (as ``stream_map``); the body takes a pair
  of beats when both inputs are valid (each input's ready = ce & the other's valid; with a
  folded layer in the body, also & the body's in_ready: a pair every ii cycles).
- ``FifoStage``: Amaranth ``lib.fifo.SyncFIFOBuffered`` (block-RAM friendly) in front of the
  join input whose branch reaches the join first.

``qir.stream.geometry.fifo_depth`` computes the depth each join input needs so that no input or
stall pattern can deadlock; ``qir.stream.graph.stage_graph`` places a FIFO where it is positive.
"""
from __future__ import annotations

from amaranth.hdl import EnableInserter, Module, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out


class ForkStage(wiring.Component):
    def __init__(self, n: int, width: int):
        self.n = n
        super().__init__({"i": In(stream.Signature(width)), "rst": In(1),
                          **{f"o{k}": Out(stream.Signature(width)) for k in range(n)}})

    def outs(self):
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        taken = [Signal(name=f"taken_{k}") for k in range(self.n)]
        done = Signal()
        acc = 1
        for t, o in zip(taken, self.outs()):
            m.d.comb += [o.valid.eq(self.i.valid & ~t), o.payload.eq(self.i.payload)]
            acc = acc & (t | o.ready)
        m.d.comb += [done.eq(acc), self.i.ready.eq(done)]
        with m.If(self.rst | (self.i.valid & done)):
            m.d.sync += [t.eq(0) for t in taken]
        with m.Else():
            for t, o in zip(taken, self.outs()):
                with m.If(o.valid & o.ready):
                    m.d.sync += t.eq(1)
        return m


class JoinStage(wiring.Component):
    def __init__(self, op):
        from qir.rtl.top import _plan, _Top

        model = op.model()
        self.plan = _plan(model)
        self.latency = self.plan.latency
        self.ii = self.plan.ii  # > 1: a folded layer in the body (qir.folding): pairs every ii cycles
        self.core = _Top(model, self.plan, own_domain=False)
        wa, wb = (p.width for p in self.plan.inputs)
        super().__init__({"a": In(stream.Signature(wa)), "b": In(stream.Signature(wb)),
                          "o": Out(stream.Signature(self.plan.outputs[0].width)), "rst": In(1)})

    def ins(self):
        return [self.a, self.b]

    def elaborate(self, platform):
        m, core = Module(), self.core
        ce, take = Signal(), Signal()
        m.d.comb += ce.eq(~core.out_valid | self.o.ready)
        m.d.comb += take.eq(ce & core.in_ready if self.ii > 1 else ce)  # a folded body's in_ready gates both
        m.submodules.core = EnableInserter(ce)(core)
        pa, pb = (getattr(core, p.name) for p in self.plan.inputs)
        m.d.comb += [
            core.rst.eq(self.rst),
            core.in_valid.eq(self.a.valid & self.b.valid),
            pa.eq(self.a.payload), pb.eq(self.b.payload),
            self.a.ready.eq(take & self.b.valid),
            self.b.ready.eq(take & self.a.valid),
            self.o.valid.eq(core.out_valid),
            self.o.payload.eq(core.out_data),
        ]
        return m


class FifoStage(wiring.Component):
    def __init__(self, depth: int, width: int):
        self.depth = depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width)), "rst": In(1)})

    def elaborate(self, platform):
        m = Module()
        fifo = SyncFIFOBuffered(width=self.i.payload.shape().width, depth=self.depth)
        m.submodules.fifo = ResetInserter(self.rst)(fifo)
        wiring.connect(m, wiring.flipped(self.i), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.o))
        return m
