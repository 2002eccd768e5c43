"""Element-wise ops -> hardware: ``qir.relu`` and ``qir.quantize``.

``quantize`` mirrors ``qir.fixed.requantize`` exactly.  Re-gridding by ``s = src.frac - dst.frac``
bits: ``s < 0`` is a left shift, ``s > 0`` is ``(n + c) >> s`` (arithmetic shift) with the
rounding mode's correction ``c`` built from the constant ``half = 2^(s-1)``, the sign bit ``neg``
and, for ``rnd_conv``, the kept LSB (bit ``s`` of ``n``), exactly as ``shift_round`` defines it.
Overflow then compares the re-gridded value against the destination range, but only on the
sides its bounds can reach; ``wrap`` is the ``.eq()`` truncation to the destination width (two's
complement for signed results).  Element bounds (see ``Tensor``) remove logic that can never
act: after a relu, for example, no sign handling and no lower saturation are built.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value

from qir.dialect import QuantizeOp, ReluOp, elem
from qir.errors import QirError
from qir.fixed import OVERFLOW_MODES, ROUNDING_MODES, Fixed
from qir.rtl.values import Tensor, elem_shape, range_shape


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
    if not stmts:
        return None, out
    m = Module()
    m.d.comb += stmts
    return m, out


def check_quantize(op: QuantizeOp, where: str) -> None:
    if op.rounding.data not in ROUNDING_MODES:
        raise QirError(f"qir.quantize rounding mode {op.rounding.data!r} has no RTL implementation", where=where)
    if op.overflow.data not in OVERFLOW_MODES:
        raise QirError(f"qir.quantize overflow mode {op.overflow.data!r} has no RTL implementation", where=where)


def quantize(op: QuantizeOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    check_quantize(op, where)
    (x,) = ins
    dst = elem(op.output.type)
    rounding, ovf = op.rounding.data, op.overflow.data
    m = Module()
    shape = elem_shape(dst)
    elems, los, his, stmts = [], [], [], []
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        r, rlo, rhi = regrid(v, lo, hi, x.spec, dst.frac, rounding)
        s = Signal(shape, name=f"{prefix}_y{k}")
        body, olo, ohi = overflow(s, r, rlo, rhi, dst, ovf, f"{prefix}_r{k}")
        stmts += body
        elems.append(s)
        los.append(olo)
        his.append(ohi)
    m.d.comb += stmts
    return m, Tensor(dst, x.shape, elems, los, his)


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
        if s < src.width:
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
