"""``qir.map`` -> a stream stage: the body model's datapath (built by ``qir.rtl.top`` exactly as a
parallel design, one beat in, one beat out, ``latency`` pipeline registers) with a clock enable
on all its registers (Amaranth ``EnableInserter``): the whole pipeline advances when its last
stage is empty or taken (ce = ~out_valid | out_ready), and in_ready = ce.  So backpressure stalls
it without losing or duplicating a beat, and at full rate it takes one beat per cycle.  A body with
folded layers (``qir.folding``, reuse R) takes a beat every ``ii`` = max R cycles: its
``in_ready`` (low for ii - 1 enabled cycles after a beat) gates ours."""
from __future__ import annotations

from amaranth.hdl import EnableInserter, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class MapStage(wiring.Component):
    def __init__(self, op):
        from qir.rtl.top import _plan, _Top

        model = op.model()
        self.plan = _plan(model)
        self.latency = self.plan.latency
        self.ii = self.plan.ii
        self.core = _Top(model, self.plan, own_domain=False)
        w_in, w_out = self.plan.inputs[0].width, self.plan.outputs[0].width
        super().__init__({"i": In(stream.Signature(w_in)), "o": Out(stream.Signature(w_out)), "rst": In(1)})

    def elaborate(self, platform):
        m, core = Module(), self.core
        ce = Signal()
        m.d.comb += ce.eq(~core.out_valid | self.o.ready)
        m.submodules.core = EnableInserter(ce)(core)
        m.d.comb += [
            core.rst.eq(self.rst),
            core.in_valid.eq(self.i.valid),
            core.in_data.eq(self.i.payload),
            self.i.ready.eq(ce & core.in_ready if self.ii > 1 else ce),
            self.o.valid.eq(core.out_valid),
            self.o.payload.eq(core.out_data),
        ]
        return m
