"""Products and reductions -> hardware: ``qir.mul`` and ``qir.reduce``.

``mul``: one multiplier per result element, ``a[k] * b[bi[k]]`` (``bi`` the broadcast index of
``qir.dialect.broadcast_index``), exact (Amaranth products are full width and handle mixed
signedness), shifted left onto the result grid.  An element whose two operands have constant
bounds is a constant.

``reduce``: per output element, the input elements of its group (the reduced axis, row-major
order) go through a balanced binary tree: adders for ``sum`` (every node a Signal just wide
enough for its exact bounds), comparators ``Mux(a > b, a, b)`` for ``max`` and ``maxabs`` (the
latter after ``Mux(x < 0, -x, x)`` on each leaf that can be negative).  The root is moved onto
the result grid by a left shift; the verifier guarantees the result type holds it.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, Value
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape, range_shape

from qir.dialect import MulOp, ReduceOp, broadcast_index, elem, shape_of


class _Builder:
    def __init__(self, prefix: str):
        self.prefix, self.stmts, self.n = prefix, [], 0

    def node(self, expr: Value, lo: int, hi: int, tag: str) -> Value:
        """A Signal holding ``expr`` (bounds [lo, hi]), or a constant when lo == hi."""
        if lo == hi:
            return Const(lo, range_shape(lo, hi))
        s = Signal(range_shape(lo, hi), name=f"{self.prefix}_{tag}{self.n}")
        self.n += 1
        self.stmts.append(s.eq(expr))
        return s

    def module(self) -> Module | None:
        if not self.stmts:
            return None
        m = Module()
        m.d.comb += self.stmts
        return m


def _out(b: _Builder, out_t, expr: Value, lo: int, hi: int, k: int) -> Value:
    if lo == hi:
        return Const(lo, elem_shape(out_t))
    s = Signal(elem_shape(out_t), name=f"{b.prefix}_y{k}")
    b.stmts.append(s.eq(expr))
    return s


@registry.generator(MulOp, "mul")
def mul(op: MulOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    a, c = ins
    out_t = elem(op.output.type)
    shift = out_t.frac - (a.spec.frac + c.spec.frac)
    bi = broadcast_index(a.shape, c.shape)
    b = _Builder(prefix)
    elems, los, his = [], [], []
    for k, (va, alo, ahi) in enumerate(zip(a.elems, a.lo, a.hi)):
        j = int(bi[k])
        vb, blo, bhi = c.elems[j], c.lo[j], c.hi[j]
        corners = [x * y for x in (alo, ahi) for y in (blo, bhi)]
        lo, hi = min(corners) << shift, max(corners) << shift
        elems.append(_out(b, out_t, (va * vb) << shift, lo, hi, k))
        los.append(lo)
        his.append(hi)
    return b.module(), Tensor(out_t, a.shape, elems, los, his)


def _groups(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """(outputs, n): the flat input indices of every output's group, outputs in row-major order
    of the keepdims result."""
    idx = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return np.moveaxis(idx, axis, -1).reshape(-1, shape[axis])


@registry.generator(ReduceOp, "reduce")
def reduce(op: ReduceOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    (x,) = ins
    out_t = elem(op.output.type)
    kind = op.kind.data
    shift = out_t.frac - x.spec.frac
    b = _Builder(prefix)
    elems, los, his = [], [], []
    for k, group in enumerate(_groups(x.shape, op.axis.value.data)):
        nodes = []
        for i in group.tolist():
            v, lo, hi = x.elems[i], x.lo[i], x.hi[i]
            if kind == "maxabs" and lo < 0:
                alo = 0 if hi >= 0 else -hi
                ahi = max(-lo, hi)
                v, lo, hi = b.node(Mux(v < 0, -v, v), alo, ahi, "abs"), alo, ahi
            nodes.append((v, lo, hi))
        while len(nodes) > 1:
            nxt = []
            for p in range(0, len(nodes) - 1, 2):
                (u, ulo, uhi), (w, wlo, whi) = nodes[p], nodes[p + 1]
                if kind == "sum":
                    lo, hi = ulo + wlo, uhi + whi
                    nxt.append((b.node(u + w, lo, hi, "s"), lo, hi))
                else:
                    lo, hi = max(ulo, wlo), max(uhi, whi)
                    nxt.append((b.node(Mux(u > w, u, w), lo, hi, "m"), lo, hi))
            if len(nodes) % 2:
                nxt.append(nodes[-1])
            nodes = nxt
        v, lo, hi = nodes[0]
        lo, hi = lo << shift, hi << shift
        elems.append(_out(b, out_t, v << shift, lo, hi, k))
        los.append(lo)
        his.append(hi)
    return b.module(), Tensor(out_t, shape_of(op.output.type), elems, los, his)
