"""``qir.collect`` -> a stream stage that gathers the N beats of one tensor into one beat
(Flatten before a dense layer): a shift register of N - 1 beats plus a registered output.
The input is taken at full rate; only the last beat of a tensor waits for a free output."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from qir.dialect.stream_ops import COLLECT_MAX_BITS
from qir.stream.geometry import collect_geometry

#: Amaranth's netlist numbers the bits of a cell output or port with 16 bits (``Net.from_cell``)
MAX_SIGNAL_BITS = COLLECT_MAX_BITS


def check_collect(op) -> None:
    """One error line, before any hardware is built, for a flatten whose one output beat is wider
    than an Amaranth signal can be (issue #12: a 16384-element 4-bit flatten is 65,536 bits)."""
    n, bw = collect_geometry(op)
    if n * bw > MAX_SIGNAL_BITS:
        from qir.errors import QirError

        layer = op.attributes["layer"].data if "layer" in op.attributes else "qir.collect"
        raise QirError(f"--io stream: the flatten of layer '{layer}' is one beat of {n} x {bw} = {n * bw} bits, more "
                       f"than the {MAX_SIGNAL_BITS} bits of one Amaranth signal; narrow the activations before it "
                       "(fewer bits or channels), fold the dense after it (--reuse, --target-ii, --max-luts) "
                       "or use --io parallel")


class CollectStage(wiring.Component):
    def __init__(self, op):
        self.n, self.bw = collect_geometry(op)
        super().__init__({"i": In(stream.Signature(self.bw)), "o": Out(stream.Signature(self.n * self.bw)),
                          "rst": In(1)})

    @property
    def register_bits(self) -> int:
        return self.n * self.bw + (self.n - 1) * self.bw if self.n > 1 else 0

    def elaborate(self, platform):
        m, n = Module(), self.n
        if n == 1:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
            return m
        buf = [Signal(self.bw, name=f"buf_{j}", init=0) for j in range(n - 1)]
        count = Signal(range(n), init=0)
        last, take = Signal(), Signal()
        m.d.comb += [last.eq(count == n - 1),
                     self.i.ready.eq(~last | ~self.o.valid | self.o.ready),
                     take.eq(self.i.valid & self.i.ready)]
        with m.If(self.rst):
            m.d.sync += [count.eq(0), self.o.valid.eq(0)]
        with m.Else():
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(take):
                for j in range(n - 2):
                    m.d.sync += buf[j].eq(buf[j + 1])
                m.d.sync += buf[n - 2].eq(self.i.payload)
                with m.If(last):
                    m.d.sync += [count.eq(0), self.o.valid.eq(1), self.o.payload.eq(Cat(*buf, self.i.payload))]
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        return m
