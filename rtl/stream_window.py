"""``qir.window`` -> a sliding-window stream stage: line buffers (an Amaranth ``lib.memory``
Memory, so Yosys maps it to block RAM / LUTRAM), a window register and the padding/stride logic.

The stage walks the *padded* map, one step per cycle, row-major: Hp x Wp steps per image
(Hp = pt + H + pb, Wp = pl + W + pr).  A step inside the input consumes one input beat (one
pixel, all C channels); a step in the padding consumes nothing and uses ``fill``.  Every step
writes its pixel into the line buffer (the last span_h - 1 rows, span = (k - 1) * d + 1) and
shifts the window register (span_h x span_w pixels) by one column.  A step at padded position
(py, px) with py >= span_h - 1, px >= span_w - 1 and the stride phase right emits the window
whose bottom-right corner it is: the taps (ky * dh, kx * dw) in row-major order, each C elements
(``qir.window``'s beat layout), into a registered output.  A step advances when its input beat
(if any) is there and its output (if any) can be taken: out_valid low or out_ready high.
The line buffer is read one column ahead (synchronous read port, so it can be block RAM): the
address is the next step's column, enabled when the step advances.

A 1-D window (L x C) is a 2-D one with H = 1.  The walk (padding, stride phase, emitting steps)
is ``qir.stream.geometry.WindowGeometry``, which the cycle model and the planner share.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from qir.errors import QirError
from qir.stream.geometry import WindowGeometry


def _table(flags) -> Const:
    return Const(sum(1 << i for i, f in enumerate(flags) if f), len(flags))


class WindowStage(wiring.Component):
    def __init__(self, op):
        self.g = g = WindowGeometry(op)
        if g.span_h > 1 and g.Wp < 2:
            raise QirError("--io stream: a window over a map one column wide is not supported")
        pw = g.C * g.ew
        self.pw = pw
        super().__init__({"i": In(stream.Signature(pw)), "o": Out(stream.Signature(g.taps * pw)), "rst": In(1)})

    def elaborate(self, platform):
        g, m, pw = self.g, Module(), self.pw
        py = Signal(range(max(g.Hp, 2)), init=0)
        px = Signal(range(max(g.Wp, 2)), init=0)
        interior, emit = Signal(), Signal()
        m.d.comb += [
            interior.eq(_table([g.interior_row(y) for y in range(g.Hp)]).bit_select(py, 1)
                        & _table([g.interior_col(x) for x in range(g.Wp)]).bit_select(px, 1)),
            emit.eq(_table([g.emit_row(y) for y in range(g.Hp)]).bit_select(py, 1)
                    & _table([g.emit_col(x) for x in range(g.Wp)]).bit_select(px, 1)),
        ]
        out_free, adv = Signal(), Signal()
        m.d.comb += [
            out_free.eq(~self.o.valid | self.o.ready),
            adv.eq((~interior | self.i.valid) & (~emit | out_free)),
            self.i.ready.eq(interior & (~emit | out_free)),
        ]
        fill = Const(g.fill & ((1 << g.ew) - 1), g.ew)
        pixel = Signal(pw)
        m.d.comb += pixel.eq(Mux(interior, self.i.payload, Cat(*([fill] * g.C))))
        last_x, last_y = px == g.Wp - 1, py == g.Hp - 1
        nxt_px = Signal.like(px)
        m.d.comb += nxt_px.eq(Mux(last_x, 0, px + 1))
        # the column of span_h pixels at px: rows py - span_h + 1 .. py (top first)
        col = []
        if g.span_h > 1:
            mem = Memory(shape=unsigned((g.span_h - 1) * pw), depth=g.Wp, init=[])
            m.submodules.linebuf = mem
            wr = mem.write_port()
            rd = mem.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(nxt_px), rd.en.eq(adv)]
            col = [rd.data[r * pw:(r + 1) * pw] for r in range(g.span_h - 1)]
            col.append(pixel)
            m.d.comb += [wr.addr.eq(px), wr.en.eq(adv), wr.data.eq(Cat(*col[1:]))]
        else:
            col = [pixel]
        win = [[Signal(pw, name=f"win_{r}_{c}", init=0) for c in range(g.span_w - 1)] for r in range(g.span_h)]
        new = [row + [col[r]] for r, row in enumerate(win)]
        beat = Cat(*(new[ky * g.dh][kx * g.dw] for ky in range(g.kh) for kx in range(g.kw)))
        with m.If(self.rst):
            m.d.sync += [py.eq(0), px.eq(0), self.o.valid.eq(0)]
        with m.Else():
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(adv):
                m.d.sync += px.eq(nxt_px)
                with m.If(last_x):
                    m.d.sync += py.eq(Mux(last_y, 0, py + 1))
                for r in range(g.span_h):
                    for c in range(g.span_w - 1):
                        m.d.sync += win[r][c].eq(new[r][c + 1])
                with m.If(emit):
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(beat)]
        return m
