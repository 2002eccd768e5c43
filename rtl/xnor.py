"""``qir.xnor`` -> hardware: XNOR with constant weights, popcount, threshold compare.

Per input element only one bit matters: bit k of its raw code (k = ``XnorOp.bit``, the lowest
bit in which the codes ``one`` and ``zero`` differ; the sign bit for +-1 in ``fixed<2,2>``).
The XNOR with a constant weight bit is that bit or its inverse: term = raw_k ^ one_k ^ w.  Per
output the terms are counted in groups of ``LEAF_BITS`` (6) by pure logic (full/half adders
written as XOR/AND/OR, so synthesis maps each 6-input count bit to one LUT instead of carry
chains), then summed by a balanced tree of adders whose widths are exact for their maximum
count (``qir.dialect.popcount_tree``).  With thresholds the root is compared with the
constant T (``p >= T``) and selects one of two constant codes (wires or inverters of the
compare bit); T = 0 or T > n_in is a constant output with no logic at all.

``qir.threshold`` (the same step after a non-binary value): per element one compare of the
input with the channel's constant threshold and the same choice of two constant codes.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from qir.rtl import registry
from qir.rtl.values import Tensor, comb_module, elem_shape

from qir.dialect import ThresholdOp, XnorOp, elem, elements_to_numpy, popcount_tree, shape_of


def _compress(bits: list[Value]) -> list[Value]:
    """The count of ``bits`` (at most 6) as little-endian bits, from full and half adders in
    plain logic."""
    cols: list[list[Value]] = [list(bits)]
    out = []
    w = 0
    while w < len(cols):
        col = cols[w]
        while len(col) > 1:
            if len(col) >= 3:
                a, b, c = col.pop(0), col.pop(0), col.pop(0)
                s, cy = a ^ b ^ c, (a & b) | (a & c) | (b & c)
            else:
                a, b = col.pop(0), col.pop(0)
                s, cy = a ^ b, a & b
            col.append(s)
            if w + 1 == len(cols):
                cols.append([])
            cols[w + 1].append(cy)
        out.append(col[0] if col else Const(0, 1))
        w += 1
    return out


def popcount(terms: list[Value], n_max: int, name: str, stmts: list) -> Value:
    """A Signal holding the number of 1s among the 1-bit ``terms``."""
    leaves, levels = popcount_tree(len(terms))
    level: list[tuple[Value, int]] = []
    start = 0
    for k, size in enumerate(leaves):
        group = terms[start:start + size]
        start += size
        if size == 1:
            level.append((group[0], 1))
            continue
        s = Signal(unsigned(size.bit_length()), name=f"{name}_l{k}")
        stmts.append(s.eq(Cat(*_compress(group))[:size.bit_length()]))
        level.append((s, size))
    depth = 0
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level) - 1, 2):
            (va, ma), (vb, mb) = level[k], level[k + 1]
            w = (ma + mb).bit_length()
            s = Signal(unsigned(w), name=f"{name}_t{depth}_{k >> 1}")
            # one extra zero LSB on both operands, result bits [1, w]: the same sum, but Yosys's
            # alumacc cannot merge the tree into a $macc (LUT logic instead of carry chains)
            stmts.append(s.eq((Cat(Const(0, 1), va) + Cat(Const(0, 1), vb))[1:w + 1]))
            nxt.append((s, ma + mb))
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
        depth += 1
    return level[0][0]


@registry.generator(XnorOp, "xnor")
def generate(op: XnorOp, ins: list[Tensor], prefix: str, where: str,
             start: Value | None = None, rst: Value | None = None) -> tuple[Module | None, Tensor]:
    (x,) = ins
    if op.R > 1:  # folded (reuse, issue 12): rtl/fold.py
        from qir.rtl.fold import generate_xnor

        return generate_xnor(op, x, prefix, start, rst)
    w = elements_to_numpy(op.weights).tolist()
    n = op.n_in
    k = op.bit()
    one_k = (op.one.value.data >> k) & 1
    out_spec = elem(op.output.type)
    sh = elem_shape(out_spec)
    tt = op.threshold_table()
    stmts: list = []
    elems, los, his = [], [], []
    for j, row in enumerate(w):
        if tt is not None:
            t, below, above = (int(v[j]) for v in tt)
            if t <= 0 or t > n:  # constant output
                c = above if t <= 0 else below
                elems.append(Const(c, sh))
                los.append(c)
                his.append(c)
                continue
        terms = []
        for i, wb in enumerate(row):
            raw = x.elems[i][k]
            terms.append(~raw if one_k ^ wb else raw)
        p = popcount(terms, n, f"{prefix}_p{j}", stmts)
        y = Signal(sh, name=f"{prefix}_y{j}")
        if tt is None:  # the count on the result grid (frac >= 0, verified)
            stmts.append(y.eq(p << out_spec.frac))
            los.append(0)
            his.append(n << out_spec.frac)
        else:
            stmts.append(y.eq(Mux(p >= t, Const(above, sh), Const(below, sh))))
            los.append(min(above, below))
            his.append(max(above, below))
        elems.append(y)
    out = Tensor(out_spec, shape_of(op.output.type), elems, los, his)
    return comb_module(stmts), out


@registry.generator(ThresholdOp, "threshold")
def threshold(op: ThresholdOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    """``qir.threshold``: per element one compare with the channel's constant and a choice of
    two constant codes; a threshold outside the element's bounds is a constant."""
    (x,) = ins
    t, below, above = (v.tolist() for v in op.table())
    c = len(t)
    out_spec = elem(op.output.type)
    sh = elem_shape(out_spec)
    stmts: list = []
    elems, los, his = [], [], []
    for k, v in enumerate(x.elems):
        tk, b, a = t[k % c], below[k % c], above[k % c]
        if tk <= x.lo[k] or tk > x.hi[k] or a == b:
            val = a if tk <= x.lo[k] else b
            elems.append(Const(val, sh))
            los.append(val)
            his.append(val)
            continue
        y = Signal(sh, name=f"{prefix}_y{k}")
        stmts.append(y.eq(Mux(v >= tk, Const(a, sh), Const(b, sh))))
        elems.append(y)
        los.append(min(a, b))
        his.append(max(a, b))
    out = Tensor(out_spec, shape_of(op.output.type), elems, los, his)
    return comb_module(stmts), out
