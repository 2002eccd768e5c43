"""``qir.stream_mvu`` -> a stream stage that multiplies a flattened stream by a constant matrix beat
by beat (FINN's MVU on a stream; ``qir.folding`` for the parameters and the cost).

Per tensor N beats of C inputs come in; each beat is loaded into ``hold`` (C registers) and
takes R x G cycles (R = ``reuse`` input chunks of S = ceil(C / R) inputs, G = ``groups`` output
groups of P = ceil(n_out / G) outputs; chunk-major: the chunk stays for G cycles, then ``hold``
shifts down by S).  Every cycle issues ROM word ``a`` (0 .. N x R x G - 1, the frame's cycle
counter): the S x P weight fields of (beat, chunk, group), in ``rtl.fold.rom`` (one synchronous
read port: Yosys infers block RAM / LUTRAM).  The read takes one cycle, so the chunk, the group
and the first/last flags move with it through one register stage; then the S x P products
(``rtl.fold.product``: mac / po2 / ternary) are summed per output slot and added (one adder per
slot, its G accumulators selected by the group) into the exact accumulators of that group
(``qir.folding.acc_range``; the frame's first chunk adds the offset to 0).  At the last chunk of
the last beat each group's new sums go to the output register; after the last group ``o.valid``
rises and stays until taken.

Style ``xnor`` (a binary dense): ``hold`` keeps only bit k of each input (``qir.xnor``'s bit),
the ROM field is one bit per weight (the XNOR constant ``one_k ^ w``; 0 in padded slots, so they
count nothing), each slot's S terms ``x ^ field`` are counted by ``rtl.xnor.popcount`` and added
into exact popcount accumulators (offset 0, [0, n_in]); the output register takes the count or,
with thresholds, ``above``/``below`` from the compare of the final count with T.

Handshake: every register advances with ``ce = ~o.valid | o.ready`` (the ROM port's enable too),
so a full output stalls the stage; ``i.ready = ce & (~full | last cycle of the held beat)``: at
full rate a beat is accepted every R x G cycles.  ``qir/stream/cycles.py`` (``_StreamMvu``) models
exactly these equations.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from qir.rtl.fold import _select, po2_code, product, rom, tree_sum
from qir.rtl.values import elem_shape, range_shape
from qir.rtl.xnor import popcount

from qir.dialect import elem, elements_to_numpy, shape_of
from qir.folding import acc_range, column_shifts, geometry, shift_span, weight_bits
from qir.stream.geometry import stream_mvu_timing


class StreamMvuStage(wiring.Component):
    def __init__(self, op):
        self.op = op
        self.n, self.C = op.beats, op.beat
        self.R, self.G = op.R, op.G
        self.S = geometry(self.C, self.R)[0]
        self.n_out = shape_of(op.output.type)[0]
        self.P = -(-self.n_out // self.G)
        self.in_t, self.out_t = elem(op.input.type), elem(op.output.type)
        super().__init__({"i": In(stream.Signature(self.C * self.in_t.width)),
                          "o": Out(stream.Signature(self.n_out * self.out_t.width)), "rst": In(1)})

    @property
    def cycles_per_beat(self) -> int:
        return stream_mvu_timing(self.op)[1]

    @property
    def memory_bits(self) -> int:
        """Bits of the weight ROM."""
        fields, fb = self._fields()[:2]
        return len(fields) * self.S * self.P * fb

    def _fields(self):
        if getattr(self, "_cache", None) is None:
            self._cache = self._make_fields()
        return self._cache

    def _make_fields(self):
        """(fields[word][s][p], field bits, per-slot constant shift k0[p], shift bits kb)."""
        op, S, P, C, R, G = self.op, self.S, self.P, self.C, self.R, self.G
        w = elements_to_numpy(op.matrix)
        n_in = w.shape[0]
        style = op.style.data
        pad = None
        if style == "xnor":  # one bit per weight: the XNOR constant one_k ^ w (term = input bit ^ field)
            one_k = (op.one.value.data >> op.bit()) & 1
            fb, k0, kb, pad = 1, [0] * P, 0, 0  # padded slots: input 0 ^ field 0 = no count
            code = lambda v, p: one_k ^ int(v)  # noqa: E731
        elif style == "mac":
            fb, k0, kb = weight_bits(w, "mac"), [0] * P, 0
            code = lambda v, p: int(v)  # noqa: E731
        else:  # one constant shift per output slot (output j in slot j % P): qir.folding's rule
            k0, kb = column_shifts(w, P), shift_span(w, P).bit_length()
            fb = 2 + kb
            code = lambda v, p: po2_code(int(v), k0[p])  # noqa: E731
        fields = []
        for b in range(self.n):
            for r in range(R):
                for g in range(G):
                    word = []
                    for s in range(S):
                        c = r * S + s
                        i = b * C + c
                        word.append([code(w[i, g * P + p], p) if c < C and i < n_in and g * P + p < self.n_out
                                     else (code(0, p) if pad is None else pad) for p in range(P)])
                    fields.append(word)
        return fields, fb, k0, kb

    def elaborate(self, platform):
        m = Module()
        op, N, C, R, G, S, P = self.op, self.n, self.C, self.R, self.G, self.S, self.P
        style = op.style.data
        xnor = style == "xnor"
        # xnor: only bit k of each input code is held (``qir.xnor``'s bit)
        xsh, osh = (unsigned(1) if xnor else elem_shape(self.in_t)), elem_shape(self.out_t)
        iw = self.in_t.width
        kbit = op.bit() if xnor else 0
        words = N * R * G
        fields, fb, k0, kb = self._fields()
        rd, field = rom(m, fields, fb)

        ce, full, take, done = Signal(), Signal(), Signal(), Signal()
        k = Signal(range(max(R * G, 2)), init=0)  # at least one bit: no zero-width wire in the Verilog
        g = Signal(range(max(G, 2)), init=0)
        a = Signal(range(words), init=0)
        m.d.comb += [ce.eq(~self.o.valid | self.o.ready), done.eq(k == R * G - 1),
                     self.i.ready.eq(ce & (~full | done)), take.eq(self.i.valid & self.i.ready),
                     rd.addr.eq(a), rd.en.eq(ce)]
        hold = [Signal(xsh, name=f"hold{c}", init=0) for c in range(C)]
        slot = lambda c: hold[c] if c < C else Const(0, xsh)  # noqa: E731
        # stage 1 (the ROM read): chunk, group and the frame flags of the word being read
        v1, first1, last1, final1 = Signal(), Signal(), Signal(), Signal()
        g1 = Signal(range(max(G, 2)), init=0)
        chunk1 = [Signal(xsh, name=f"x{s}", init=0) for s in range(S)]
        if xnor:  # popcounts: every partial count lies in [0, n_in]
            lo, hi = 0, N * C
            stmts: list = []
            parts = [popcount([chunk1[s] ^ field[s][p] for s in range(S)], S, f"p{p}", stmts) for p in range(P)]
            m.d.comb += stmts
        else:
            lo, hi = acc_range(elements_to_numpy(op.matrix), elements_to_numpy(op.offset), self.in_t.min_int,
                               self.in_t.max_int)
            parts = [tree_sum([product(style, chunk1[s], field[s][p], k0[p], kb) for s in range(S)])
                     for p in range(P)]
        acc = [Signal(range_shape(lo, hi), name=f"acc{j}", init=0) for j in range(self.n_out)]
        out = [Signal(osh, name=f"y{j}", init=0) for j in range(self.n_out)]
        offsets = [int(v) for v in elements_to_numpy(op.offset).ravel()]
        result = self._result if xnor else (lambda j, v: v)
        with m.If(self.rst):
            m.d.sync += [full.eq(0), k.eq(0), g.eq(0), a.eq(0), v1.eq(0), self.o.valid.eq(0)]
        with m.Elif(ce):
            m.d.sync += [v1.eq(full), g1.eq(g), first1.eq(a < G), last1.eq(a >= words - G),
                         final1.eq(a == words - 1)]
            m.d.sync += [chunk1[s].eq(slot(s)) for s in range(S)]
            with m.If(full):
                m.d.sync += [a.eq(Mux(a == words - 1, 0, a + 1)), g.eq(Mux(g == G - 1, 0, g + 1)),
                             k.eq(Mux(done, 0, k + 1))]
                with m.If(g == G - 1):
                    m.d.sync += [hold[c].eq(slot(c + S)) for c in range(C)]
                with m.If(done):
                    m.d.sync += full.eq(0)
            with m.If(take):
                m.d.sync += [full.eq(1), k.eq(0), g.eq(0)]
                m.d.sync += [hold[c].eq(self.i.payload[c * iw + kbit] if xnor else self.i.payload[c * iw:(c + 1) * iw])
                             for c in range(C)]
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(v1):
                for p in range(P):  # one adder per output slot, shared by the slot's G accumulators
                    js = [g * P + p for g in range(G) if g * P + p < self.n_out]
                    if xnor:  # offset 0; the slot's accumulators by a mux tree (no partial case: lint)
                        cur, off = _select([acc[j] for j in js], g1), Const(0, acc[0].shape())
                    else:
                        cur = acc[js[0]] if G == 1 else Array([acc[j] for j in js])[g1]
                        off = Const(offsets[js[0]], acc[0].shape()) if G == 1 else \
                            Array([Const(offsets[j], acc[0].shape()) for j in js])[g1]
                    new = Signal(acc[0].shape(), name=f"sum{p}")
                    m.d.comb += new.eq(Mux(first1, off, cur) + parts[p])
                    for gg, j in enumerate(js):
                        with m.If(g1 == gg):
                            m.d.sync += acc[j].eq(new)
                            with m.If(last1):
                                m.d.sync += out[j].eq(result(j, new))
                with m.If(final1):
                    m.d.sync += self.o.valid.eq(1)
        m.d.comb += self.o.payload.eq(Cat(*out))
        return m

    def _result(self, j: int, count: Value) -> Value:
        """xnor: output j from its final popcount: the count on the result's grid, or with
        thresholds the code above[j] if count >= T[j] else below[j] (``qir.xnor``'s)."""
        osh = elem_shape(self.out_t)
        tt = self.op.threshold_table()
        if tt is None:
            return count << self.out_t.frac if self.out_t.frac > 0 else count
        t, below, above = (int(v[j]) for v in tt)
        return Mux(count >= t, Const(above, osh), Const(below, osh))
