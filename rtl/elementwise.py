"""Element-wise ops -> hardware: ``qir.relu`` and ``qir.quantize``.

``quantize`` mirrors ``qir.fixed.requantize`` exactly.  Re-gridding by ``s = src.frac - dst.frac``
bits: ``s < 0`` is a left shift, ``s > 0`` is ``(n + c) >> s`` (arithmetic shift) with the
rounding mode's correction ``c`` built from the constant ``half = 2^(s-1)``, the sign bit ``neg``
and, for ``rnd_conv``, the kept LSB (bit ``s`` of ``n``), exactly as ``shift_round`` defines it.
Overflow then compares the re-gridded value against the destination range, but only on the
sides its bounds can reach; ``wrap`` is the ``.eq()`` truncation to the destination width (two's
complement for signed results).  Element bounds (see ``Tensor``) remove logic that can never
act: after a relu, for example, no sign handling and no lower saturation are built.

Narrow inputs (at most ``TABLE_MAX_CODES`` possible codes, a result with at most
``TABLE_MAX_SEGMENTS`` runs of equal value) take another route: the quantizer is a step
function of the input code, so the reference ``qir.fixed.requantize`` is evaluated on every
code the element can hold and each result bit becomes pure logic over constant comparisons
``x >= T`` at the codes where the result changes (written as AND/OR chains, not as adders).
Bit-exact by construction, and without a carry chain ABC maps the quantizer together with its
neighbours (Yosys synth_xilinx on qkeras_mnist_dense, whose 784 ``ufixed<9,1>`` pixels go
through ``quantized_relu(2)`` into a po2 layer: 41,132 instead of 42,169 LUTs, 16,647 instead
of 18,999 carry cells).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from qir.rtl import registry
from qir.rtl.values import Tensor, comb_module, elem_shape, range_shape

from qir.dialect import QuantizeOp, ReluOp, elem
from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed, requantize


@registry.generator(ReluOp, "relu")
def relu(op: ReluOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    """max(x, 0) per element; elements that cannot be negative pass through as wires."""
    (x,) = ins
    shape = elem_shape(x.spec)
    elems, stmts = [], []
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        if lo >= 0:
            elems.append(v)
        elif hi <= 0:
            elems.append(Const(0, shape))
        else:
            s = Signal(shape, name=f"{prefix}_y{k}")
            stmts.append(s.eq(Mux(v[-1], 0, v)))
            elems.append(s)
    out = Tensor(x.spec, x.shape, elems, [max(lo, 0) for lo in x.lo], [max(hi, 0) for hi in x.hi])
    return comb_module(stmts), out


@registry.check(QuantizeOp)
def check_quantize(op: QuantizeOp, where: str) -> None:
    if op.rounding.data not in ROUNDING_MODES:
        raise QirError(f"qir.quantize rounding mode {op.rounding.data!r} has no RTL implementation", where=where)
    if op.overflow.data not in OVERFLOW_MODES:
        raise QirError(f"qir.quantize overflow mode {op.overflow.data!r} has no RTL implementation", where=where)


@registry.generator(QuantizeOp, "quant")
def quantize(op: QuantizeOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    check_quantize(op, where)
    (x,) = ins
    dst = elem(op.output.type)
    rounding, ovf = op.rounding.data, op.overflow.data
    m = Module()
    shape = elem_shape(dst)
    elems, los, his, stmts = [], [], [], []
    tables: dict[tuple[int, int], list[tuple[int, int]] | None] = {}
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        s = Signal(shape, name=f"{prefix}_y{k}")
        if (lo, hi) not in tables:
            tables[(lo, hi)] = step_segments(lo, hi, x.spec, dst, rounding, ovf)
        segs = tables[(lo, hi)]
        if segs is not None:
            body, olo, ohi = step_logic(s, v, x.spec, segs, dst, f"{prefix}_t{k}")
        else:
            r, rlo, rhi = regrid(v, lo, hi, x.spec, dst.frac, rounding)
            body, olo, ohi = overflow(s, r, rlo, rhi, dst, ovf, f"{prefix}_r{k}")
        stmts += body
        elems.append(s)
        los.append(olo)
        his.append(ohi)
    m.d.comb += stmts
    return m, Tensor(dst, x.shape, elems, los, his)


#: the table route is taken for inputs with at most this many possible codes ...
TABLE_MAX_CODES = 1 << 10
#: ... and results with at most this many runs of equal value
TABLE_MAX_SEGMENTS = 16


def step_segments(lo: int, hi: int, src: Fixed, dst: Fixed, rounding: str, ovf: str,
                  max_codes: int | None = None, max_segments: int | None = None
                  ) -> list[tuple[int, int]] | None:
    """``requantize`` on every code in [lo, hi] as runs ``(first code, result)``, ascending; None
    when the input has too many codes or the result too many runs for the table route."""
    max_codes = TABLE_MAX_CODES if max_codes is None else max_codes
    max_segments = TABLE_MAX_SEGMENTS if max_segments is None else max_segments
    if hi - lo + 1 > max_codes or src.width > 62 or dst.width > 62:
        return None
    codes = np.arange(lo, hi + 1, dtype=np.int64)
    y = requantize(codes, src, dst, rounding, ovf)
    starts = [0, *(np.flatnonzero(y[1:] != y[:-1]) + 1).tolist()]
    if len(starts) > max_segments:
        return None
    return [(lo + i, int(y[i])) for i in starts]


def _ge(u: Value, t: int) -> Value | None:
    """``u >= t`` for an unsigned field ``u`` and a constant 0 < t < 2^len(u), as an AND/OR chain
    from the LSB up (no comparator cell, so no carry chain); None means always true."""
    g: Value | None = None
    for i in range(len(u)):
        if (t >> i) & 1:
            g = u[i] if g is None else u[i] & g
        elif g is not None:
            g = u[i] | g
    return g


def step_logic(out: Signal, v: Value, src: Fixed, segs: list[tuple[int, int]], dst: Fixed, name: str
               ) -> tuple[list, int, int]:
    """Statements driving ``out`` with the step function ``segs`` (see ``step_segments``) of the
    mantissa ``v`` of ``src``; also the bounds of the result."""
    vals = [y for _, y in segs]
    if len(segs) == 1:
        return [out.eq(vals[0])], vals[0], vals[0]
    # compare in offset binary: flipping the sign bit makes signed order unsigned order
    u = Cat(v[:-1], ~v[-1]) if src.signed else v
    stmts = []
    ge: list[Value] = []  # ge[m]: input >= first code of run m (m >= 1)
    for m, (start, _) in enumerate(segs[1:], 1):
        t = Signal(name=f"{name}_ge{m}")
        stmts.append(t.eq(_ge(u, start - src.min_int)))
        ge.append(t)
    n = len(segs)

    def run(m1: int, m2: int) -> Value:  # the input lies in runs m1..m2
        e: Value | None = ge[m1 - 1] if m1 > 0 else None
        if m2 < n - 1:
            e = ~ge[m2] if e is None else e & ~ge[m2]
        return e if e is not None else Const(1, 1)

    bits = []
    mask = (1 << dst.width) - 1
    for b in range(dst.width):
        on = [((y & mask) >> b) & 1 for y in vals]
        terms, m = [], 0
        while m < n:
            if on[m]:
                m2 = m
                while m2 + 1 < n and on[m2 + 1]:
                    m2 += 1
                terms.append(run(m, m2))
                m = m2 + 1
            else:
                m += 1
        if not terms:
            bits.append(Const(0, 1))
        else:
            e = terms[0]
            for t in terms[1:]:
                e = e | t
            bits.append(e)
    stmts.append(out.eq(Cat(*bits)))
    return stmts, min(vals), max(vals)


def regrid(v: Value, lo: int, hi: int, src: Fixed, frac: int, rounding: str) -> tuple[Value, int, int]:
    """``shift_round`` in hardware: ``v``, a mantissa of ``src`` in [lo, hi], moved to ``frac``
    fractional bits.  Returns the expression and bounds of its value."""
    s = src.frac - frac
    if s <= 0:
        return (v << -s if s else v), lo << -s, hi << -s
    half = 1 << (s - 1)
    can_neg = lo < 0  # only then is the sign bit ever set (and only signed types can be < 0)
    neg = v[-1]
    if rounding == "trn":
        t, clo, chi = v, 0, 0
    elif rounding == "trn_zero":
        t, clo, chi = (v + neg.replicate(s), 0, (1 << s) - 1) if can_neg else (v, 0, 0)
    elif rounding == "rnd":
        t, clo, chi = v + half, half, half
    elif rounding == "rnd_zero":
        t, clo, chi = (v + (half - 1) + neg, half - 1, half) if can_neg else (v + (half - 1), half - 1, half - 1)
    elif rounding == "rnd_inf":
        t, clo, chi = (v + half - neg, half - 1, half) if can_neg else (v + half, half, half)
    elif rounding == "rnd_min_inf":
        t, clo, chi = v + (half - 1), half - 1, half - 1
    elif rounding == "rnd_conv":
        # the kept LSB is bit s of the two's-complement mantissa; ``v`` may be narrower than
        # ``src`` (its bounds, e.g. a constant), so above its width that bit is its sign
        if s < len(v):
            t, clo, chi = v + (half - 1) + v[s], half - 1, half
        elif can_neg:  # n >> s is 0 or -1 here, so the kept LSB is the sign
            t, clo, chi = v + (half - 1) + neg, half - 1, half
        else:
            t, clo, chi = v + (half - 1), half - 1, half - 1
    else:
        raise QirError(f"qir.quantize: rounding mode {rounding!r} has no RTL implementation")
    # Amaranth sums are full width; ``>>`` is arithmetic on signed values, like the reference.
    return t >> s, (lo + clo) >> s, (hi + chi) >> s


def overflow(out: Signal, r: Value, rlo: int, rhi: int, dst: Fixed, mode: str, name: str
             ) -> tuple[list, int, int]:
    """Statements driving ``out`` (of ``dst``'s shape) with ``overflow(r, dst, mode)``, where
    every value of ``r`` lies in [rlo, rhi]; also the bounds of the result."""
    dmin, dmax = dst.min_int, dst.max_int
    if mode == "wrap":
        # .eq() keeps the low dst.width bits: two's-complement wrap-around
        return [out.eq(r)], *((rlo, rhi) if dmin <= rlo and rhi <= dmax else (dmin, dmax))
    if mode == "sat" or mode == "sat_zero":
        floor = dmin
    elif mode == "sat_sym":
        floor = -dmax if dst.signed else 0
    else:
        raise QirError(f"qir.quantize: overflow mode {mode!r} has no RTL implementation")
    over, under = rhi > dmax, rlo < floor
    if not (over or under):
        return [out.eq(r)], rlo, rhi
    rs = Signal(range_shape(rlo, rhi), name=name)
    stmts = [rs.eq(r)]
    if mode == "sat_zero":
        if over and under:
            cond = (rs > dmax) | (rs < floor)
        else:
            cond = rs > dmax if over else rs < floor
        stmts.append(out.eq(Mux(cond, 0, rs)))
        kept = (max(rlo, floor), min(rhi, dmax))
        if kept[0] > kept[1]:
            return stmts, 0, 0
        return stmts, min(kept[0], 0), max(kept[1], 0)
    e: Value = rs
    if under:
        e = Mux(rs < floor, floor, e)
    if over:
        e = Mux(rs > dmax, dmax, e)
    stmts.append(out.eq(e))

    def clamp(n: int) -> int:
        return min(max(n, floor), dmax)

    return stmts, clamp(rlo), clamp(rhi)
