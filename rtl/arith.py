"""Element-wise arithmetic -> hardware: ``qir.scale``, ``qir.leaky_relu``, ``qir.add``.

Every result element is one Signal of the result type driven by an exact expression: Amaranth
arithmetic widens as needed and never overflows, and the verifier guarantees the result type
holds every exact value, so the ``.eq()`` into the result is lossless.

Constant products are shift-and-add: ``x * c`` is the sum of the canonical signed digits of
``c`` (``qir.lowering.adder_graph.csd``), ``+-(x << k)`` each, summed as a balanced tree; a
power-of-two constant is a wire shift, 0 is the constant 0.  Binary points are aligned by left
shifts (which are exact), as the reference interpreter does.  Bounds per element follow from
the input bounds and the constants; an element whose bounds are a single value is a constant.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, Value
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape

from qir.addergraph import csd
from qir.dialect import AddOp, LeakyReluOp, ScaleOp, elem, elements_to_numpy, shape_of


def const_mul(v: Value, c: int) -> Value:
    """``v * c`` as shifts and adds of ``c``'s canonical signed digits (exact width)."""
    if c == 0:
        return Const(0)
    terms = [(-(v << k) if d < 0 else (v << k)) for k, d in csd(c)]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def _mul_bounds(lo: int, hi: int, c: int) -> tuple[int, int]:
    a, b = lo * c, hi * c
    return (a, b) if a <= b else (b, a)


class _Out:
    """Collects result elements: a Signal of the result type per element, or a constant."""

    def __init__(self, spec, prefix: str):
        self.spec, self.prefix, self.sh = spec, prefix, elem_shape(spec)
        self.elems, self.lo, self.hi, self.stmts = [], [], [], []

    def add(self, expr: Value, lo: int, hi: int) -> None:
        if lo == hi:
            self.elems.append(Const(lo, self.sh))
        else:
            s = Signal(self.sh, name=f"{self.prefix}_y{len(self.elems)}")
            self.stmts.append(s.eq(expr))
            self.elems.append(s)
        self.lo.append(lo)
        self.hi.append(hi)

    def result(self, shape) -> tuple[Module | None, Tensor]:
        t = Tensor(self.spec, tuple(shape), self.elems, self.lo, self.hi)
        if not self.stmts:
            return None, t
        m = Module()
        m.d.comb += self.stmts
        return m, t


@registry.generator(ScaleOp, "scale")
def scale(op: ScaleOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    (x,) = ins
    out_t = elem(op.output.type)
    s, t, frac = op.folded()
    d = out_t.frac - frac
    chans = len(s)
    out = _Out(out_t, prefix)
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        c, b = int(s[k % chans]) << d, int(t[k % chans]) << d
        plo, phi = _mul_bounds(lo, hi, c)
        e = const_mul(v, c)
        out.add(e + b if b else e, plo + b, phi + b)
    return out.result(shape_of(op.output.type))


@registry.generator(LeakyReluOp, "leaky")
def leaky_relu(op: LeakyReluOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    (x,) = ins
    in_t, out_t, at = x.spec, elem(op.output.type), op.alpha_type.spec
    frac = in_t.frac + max(at.frac, 0)
    d = out_t.frac - frac
    pos_sh = frac - in_t.frac + d
    neg_sh = frac - in_t.frac - at.frac + d
    alpha = np.broadcast_to(elements_to_numpy(op.alpha), (shape_of(op.input.type)[-1],))
    chans = len(alpha)
    out = _Out(out_t, prefix)
    for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
        a = int(alpha[k % chans]) << neg_sh
        pos = (v << pos_sh, max(lo, 0) << pos_sh, max(hi, 0) << pos_sh) if hi >= 0 else None
        neg = (const_mul(v, a), *_mul_bounds(lo, min(hi, -1), a)) if lo < 0 else None
        if pos is None:
            out.add(*neg)
        elif neg is None:
            out.add(*pos)
        else:
            out.add(Mux(v[-1], neg[0], pos[0]), min(pos[1], neg[1]), max(pos[2], neg[2]))
    return out.result(shape_of(op.output.type))


@registry.generator(AddOp, "add")
def add(op: AddOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    out_t = elem(op.output.type)
    shifts = [out_t.frac - x.spec.frac for x in ins]
    out = _Out(out_t, prefix)
    for k in range(ins[0].size):
        terms, lo, hi = [], 0, 0
        for x, s in zip(ins, shifts):
            terms.append(x.elems[k] << s if s else x.elems[k])
            lo += x.lo[k] << s
            hi += x.hi[k] << s
        while len(terms) > 1:
            terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
        out.add(terms[0], lo, hi)
    return out.result(shape_of(op.output.type))
