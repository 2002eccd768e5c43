"""``qir.addergraph`` -> hardware: a shared adder graph, pipelined, with its fused epilogue.

Every adder node is its own Signal (shared nodes must not be duplicated expressions), of the
node's exact width: ``(v[a] << sa) +/- (v[b] << sb)``.  In a parallel design (``qir.rtl.top``)
the adder itself is an ``Instance`` of a module shared by all adders of its shape
(``qir.rtl.separate.Leaves``: the same expression, converted once), so Amaranth's per-bit netlist
sees one opaque cell per adder; elsewhere (stream map bodies) it is written inline.  Shifted-in zero LSBs are not added
(synthesis keeps them as wires), so an adder costs only the bits where both operands can be
non-zero.  A node in stage s whose operand was made in an earlier stage reads a registered copy
(one register per node and stage, shared by all readers).  Each node is stored as an unsigned
field f with v = base +/- f (``AdderGraph.polarity``: fewer complemented bits standing alone,
each an ``INV`` on Xilinx), and a complemented operand is written as a subtraction
(``qir.rtl.separate.adder_value``) so that the carry chain needs no inverter where both overlap.

Outputs: ``acc[j] = offset[j] +/- (v[node] << shift)``.  With a fused epilogue (relu, then
re-gridding by s = acc frac - result frac bits with ``rnd``/``rnd_conv``/``trn`` and ``sat`` or
``wrap``), the rounding constant 2^(s-1) is folded into ``offset[j]`` (one constant add instead
of two), ``>> s`` is a slice, round-half-to-even clears the kept LSB when the dropped bits of
``acc + 2^(s-1)`` are all zero (a tie), and relu and saturation are bit tests on the slice (sign
bit, OR / AND of the bits above the result width) instead of comparators.  Other rounding and
overflow modes reuse ``qir.rtl.elementwise``.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Instance, Module, Mux, Signal, Value, signed, unsigned
from qir.rtl import elementwise, registry, separate
from qir.rtl.values import Tensor, elem_shape, range_shape

from qir.addergraph import range_bits
from qir.dialect import AdderGraphOp, elem, shape_of
from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed

_FOLDED_ROUNDING = ("trn", "rnd", "rnd_conv")
_FOLDED_OVERFLOW = ("sat", "wrap")


@registry.check(AdderGraphOp)
def check(op: AdderGraphOp, where: str) -> None:
    if op.rounding is not None and (op.rounding.data not in ROUNDING_MODES or op.overflow.data not in OVERFLOW_MODES):
        raise QirError(f"qir.addergraph epilogue {op.rounding.data}/{op.overflow.data} has no RTL implementation",
                       where=where)


@registry.latency(AdderGraphOp)
def latency(op: AdderGraphOp) -> int:
    """Clock cycles from the op's input to its result (its internal pipeline registers)."""
    return op.latency.value.data


def _shape(lo: int, hi: int):
    return unsigned(range_bits(lo, hi)) if lo >= 0 else signed(range_bits(lo, hi))


@registry.generator(AdderGraphOp, "addergraph")
def generate(op: AdderGraphOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    check(op, where)
    (x,) = ins
    g = op.graph()
    m = Module()
    comb, sync = [], []
    n_in, n_add = g.n_in, g.n_adders
    st = _ints(op)
    node_stage = [0] * n_in + st[:n_add]
    out_stage = st[n_add:]
    # Offset binary: node k is held as the unsigned field u[k] = v[k] - base[k] (u[k] <= top[k]),
    # so no adder ever sign-extends an operand (sign-extension bits cost a LUT each, zero bits
    # ride the carry chain for free); the bases are constants folded into each output's offset.
    base: list[int] = []
    top: list[int] = []
    vals: list[Value] = []
    for i, v in enumerate(x.elems):
        if g.lo[i] < 0:  # two's complement -> offset binary: flip the sign bit (base = type min)
            vals.append(Cat(v[:-1], ~v[-1]) if len(v) > 1 else ~v[-1])
        else:
            vals.append(v)
        base.append(g.lo[i])
        top.append(g.hi[i] - g.lo[i])
    staged: dict[tuple[int, int], Value] = {}

    def at(k: int, stage: int) -> Value:
        """Node k's field as seen from ``stage`` (registered copies for later stages)."""
        s0 = node_stage[k]
        if stage <= s0:
            return vals[k]
        hit = staged.get((k, stage))
        if hit is not None:
            return hit
        prev = at(k, stage - 1)
        r = Signal(unsigned(max(top[k].bit_length(), 1)), name=f"{prefix}_n{k}_s{stage}", reset_less=True)
        sync.append(r.eq(prev))
        staged[(k, stage)] = r
        return r

    lib = separate.leaves()
    cut = separate.chunks(prefix, g.cost())  # big graphs: adders in chunk modules

    def field(k: int, stage: int) -> Value:
        f = at(k, stage)
        wk = max(top[k].bit_length(), 1)
        return f[:wk] if len(f) > wk else f

    def operand(k: int, stage: int, shift: int, width: int) -> Value:
        """field(k) << shift, one extra zero LSB, zero-extended to ``width`` bits (the extra LSB:
        ``separate.adder_value``)."""
        bits = Cat(Const(0, shift + 1), field(k, stage))  # unsigned: the sum zero-extends it implicitly
        return bits[:width] if len(bits) > width else bits

    # Storage polarity (``AdderGraph.polarity``): node k's field f[k] holds v[k] = base[k] +
    # pol[k] * f[k], chosen so that few subtractions leave complemented bits outside the other
    # operand's field (one INV each); the adder computes f_a + f_b, f_a + ~f_b or ~f_a + f_b
    # (``AdderGraph.node_form``), and the outputs' constants absorb any polarity.
    out_t = elem(op.output.type)
    acc_t = op.acc_spec
    epi = op.acc_type is not None
    rounding = op.rounding.data if epi else None
    ovf = op.overflow.data if epi else None
    fold = epi and rounding in _FOLDED_ROUNDING and ovf in _FOLDED_OVERFLOW
    s = acc_t.frac - out_t.frac if epi else 0
    c0 = (1 << (s - 1)) if fold and s > 0 and rounding != "trn" else 0
    # nodes read in a later stage keep their all-+1 fields (with their operands): a changed
    # registered field cost Yosys flip-flops on qkeras_3layer (8,754 -> 8,793)
    later = {k for i in range(n_add) for k in (g.a[i], g.b[i]) if node_stage[n_in + i] > node_stage[k]}
    later |= {k for j, k in enumerate(g.onode) if k >= 0 and out_stage[j] > node_stage[k]}
    pol = g.polarity(c0, later)
    for i in range(n_add):
        k = n_in + i
        st_k = node_stage[k]
        b0, t0, (a, sa, b, sb, neg) = g.node_form(i, pol, base, top)
        base.append(b0)
        top.append(t0)
        w = max(top[k].bit_length(), 1)
        if lib is not None:  # one Instance of a shared adder module (fewer Amaranth objects per bit)
            fa, fbv = field(a, st_k), field(b, st_k)
            node = Signal(unsigned(w), name=f"{prefix}_n{k}")
            mod = lib.adder(len(fa), len(fbv), sa, sb, neg, w)
            cut.add(m, f"{prefix}_a{k}", Instance(mod, i_a=fa, i_b=fbv, o_y=node))
            vals.append(node)
            continue
        node = Signal(unsigned(w), name=f"{prefix}_n{k}")
        # the same expression as the shared leaf modules (an extra LSB keeps Yosys from merging
        # adder chains into $macc trees; a subtraction is written so that no bit needs an INV)
        comb.append(node.eq(separate.adder_value(field(a, st_k), field(b, st_k), sa, sb, neg, w)))
        vals.append(node)

    elems, los, his = [], [], []
    for j in range(g.n_out):
        k, lo, hi = g.onode[j], *g.out_bounds(j)
        name = f"{prefix}_y{j}"
        ylo, yhi = lo + c0, hi + c0
        if k < 0:
            y: Value = Const(g.offset[j] + c0, _shape(ylo, yhi))
        else:
            sh = g.oshift[j]
            # y = offset + c0 + osign * ((base + pol * f) << sh): the field (or its complement)
            # plus one constant
            const, neg, wy = g.out_constant(j, pol, base, top, c0)
            mod = 1 << (wy + 2)
            y = Signal(_shape(ylo, yhi), name=f"{name}_acc" if epi else name)
            if neg:  # const + (~u << sh) as a subtraction from the constant: no INV on the DI inputs
                e = separate.adder_value(Const(const % (mod >> 1), wy + 1), field(k, out_stage[j]), 0, sh, True, wy)
            else:
                e = (operand(k, out_stage[j], sh, wy + 2) + Const((const << 1) % mod, wy + 2))[1:wy + 1]
            comb.append(y.eq(e.as_signed() if ylo < 0 else e))
        if not epi:
            if k < 0:
                y = Const(g.offset[j], elem_shape(out_t))
            elif range_bits(ylo, yhi) != out_t.width or (ylo < 0) != out_t.signed:
                yy = Signal(elem_shape(out_t), name=f"{name}_out")
                comb.append(yy.eq(y))
                y = yy
            elems.append(y)
            los.append(lo)
            his.append(hi)
            continue
        res = Signal(elem_shape(out_t), name=name)
        if fold:
            body, rlo, rhi = _folded_epilogue(res, y, ylo, yhi, s, rounding, ovf, bool(op.relu.value.data),
                                               out_t, name)
        else:
            body, rlo, rhi = _generic_epilogue(res, y, lo, hi, acc_t, out_t, rounding, ovf,
                                                bool(op.relu.value.data), name)
        comb += body
        elems.append(res)
        los.append(rlo)
        his.append(rhi)
    cut.finish(m, comb + sync)
    m.d.comb += comb
    if sync:
        m.d.sync += sync
    return m, Tensor(out_t, shape_of(op.output.type), elems, los, his)


def _ext(v: Value, shift: int, is_signed: bool, width: int) -> Value:
    """``v << shift`` as an unsigned ``width``-bit value (sign bits replicated explicitly)."""
    bits = Cat(Const(0, shift), v) if shift else v
    n = len(bits)
    if n >= width:
        return bits[:width]
    pad = bits[-1].replicate(width - n) if is_signed else Const(0, width - n)
    return Cat(bits, pad)


def _ints(op: AdderGraphOp) -> list[int]:
    from qir.dialect import elements_to_numpy

    return [int(v) for v in elements_to_numpy(op.stages).ravel()]


def _folded_epilogue(res: Signal, y: Value, ylo: int, yhi: int, s: int, rounding: str, ovf: str, relu: bool,
                     dst: Fixed, name: str) -> tuple[list, int, int]:
    """``res`` = overflow(round(relu?(acc))) from y = acc + c0 (c0 = 2^(s-1) for rnd/rnd_conv)."""
    stmts = []
    # t = round(acc >> s) as bits, and its exact bounds (rounding is monotone: the bounds are
    # the rounded ends of the accumulator's range)
    if s > 0:
        tlo, thi = ylo >> s, yhi >> s
        w = range_bits(ylo, yhi)
        if s >= w:  # every bit is dropped: t is 0 or -1 (sign)
            t: Value = y[-1].replicate(1).as_signed() if ylo < 0 else Const(0, 1)
        else:
            t = y[s:].as_signed() if ylo < 0 else y[s:]
        if rounding == "rnd_conv":
            # a tie (dropped bits of acc + 2^(s-1) all zero) with an odd kept value goes down to
            # the even one: clear the LSB.  Needed even when tlo == thi: one kept value can still
            # be reached by a tie (a constant accumulator on a tie, e.g. a channel of zero weights).
            mask = (1 << s) - 1
            if (ylo & mask) == 0 and tlo & 1:
                tlo -= 1
            if (yhi & mask) == 0 and thi & 1:
                thi -= 1
            tie = Signal(name=f"{name}_tie")
            stmts.append(tie.eq(y[:min(s, w)] == 0))
            ts = Signal(_shape(tlo, thi), name=f"{name}_t")
            stmts.append(ts.eq(t))
            tt = Signal(_shape(tlo, thi), name=f"{name}_rne")
            stmts.append(tt.eq(Cat(ts[0] & ~tie, ts[1:]).as_signed() if tlo < 0 else Cat(ts[0] & ~tie, ts[1:])))
            t = tt
    else:  # the result grid is as fine as the accumulator's or finer: an exact left shift
        t = y << -s if s else y
        tlo, thi = ylo << -s, yhi << -s
    neg_possible = tlo < 0
    dmin, dmax = dst.min_int, dst.max_int
    floor = max(dmin, 0) if relu else dmin
    if relu and not neg_possible:
        relu = False
    if ovf == "wrap":
        if relu:
            stmts.append(res.eq(Mux(t[-1], 0, t)))
            rlo, rhi = 0, max(thi, 0)
        else:
            stmts.append(res.eq(t))
            rlo, rhi = tlo, thi
        if not (dmin <= rlo and rhi <= dmax):
            rlo, rhi = dmin, dmax
        return stmts, rlo, rhi
    # saturation by bit tests: the value fits the destination iff the bits above its width are
    # copies of its sign (signed) or zero (unsigned, non-negative)
    wt = range_bits(tlo, thi)
    over = thi > dmax
    under = tlo < floor
    if not (over or under):
        stmts.append(res.eq(t))
        return stmts, tlo, thi
    tsig = Signal(_shape(tlo, thi), name=f"{name}_q")
    stmts.append(tsig.eq(t))
    sign = tsig[-1] if neg_possible else Const(0, 1)
    zero = Const(0, 1)
    if dst.signed and not relu:
        # fits iff bits [W-1, wt) all equal the sign (all zero when t cannot be negative)
        upper = tsig[dst.width - 1:wt]
        if not neg_possible:
            is_over, is_under = upper.any(), zero
        else:
            is_over, is_under = ~sign & upper.any(), sign & ~upper.all()
        low_val = dmin
    else:
        # result >= 0: fits iff t >= 0 and its magnitude bits above the result's are zero
        keep = dst.width - 1 if dst.signed else dst.width
        top = wt - 1 if neg_possible else wt
        is_over = (~sign & tsig[keep:top].any()) if keep < top else zero
        is_under = sign
        low_val = 0
    e: Value = tsig
    if under:
        e = Mux(is_under, low_val, e)
    if over:
        e = Mux(is_over, dmax, e)
    stmts.append(res.eq(e))
    return stmts, min(max(tlo, floor), dmax), min(max(thi, floor), dmax)


def _generic_epilogue(res: Signal, acc: Value, lo: int, hi: int, acc_t: Fixed, dst: Fixed, rounding: str,
                      ovf: str, relu: bool, name: str) -> tuple[list, int, int]:
    stmts = []
    v = acc
    if relu and lo < 0:
        r = Signal(_shape(0, max(hi, 0)), name=f"{name}_relu")
        stmts.append(r.eq(Mux(acc[-1], 0, acc)))
        v, lo, hi = r, 0, max(hi, 0)
        src = Fixed.for_range(lo, hi, acc_t.frac)
    else:
        src = acc_t
    r, rlo, rhi = elementwise.regrid(v, lo, hi, src, dst.frac, rounding)
    body, olo, ohi = elementwise.overflow(res, r, rlo, rhi, dst, ovf, f"{name}_r")
    return stmts + body, olo, ohi


__all__ = ["check", "generate", "latency", "range_shape"]
