"""Max pooling -> hardware: one balanced comparator tree per output element.

``qir.pool kind "max"``: for each output position and channel, the window's elements that lie
inside the input (padding never wins, so padded taps are simply absent) are reduced pairwise by
``a >= b ? a : b`` nodes, each a Signal of the input type, in a balanced tree (depth
ceil(log2(taps))).  The result has the input type exactly, as the verifier requires; bounds are
the max of the operands' bounds.  Average pooling is linear and is lowered to ``qir.cmvm`` by
``qir-lower-conv`` (``check`` rejects it here with that hint).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from qir.rtl import registry
from qir.rtl.values import Tensor, comb_module, elem_shape

from qir.dialect import PoolOp, int_values, shape_of, window_taps
from qir.errors import QirError


@registry.check(PoolOp)
def check(op: PoolOp, where: str) -> None:
    if op.kind.data != "max":
        raise QirError(f"qir.pool kind {op.kind.data!r} has no RTL generator; run the lowering pass "
                       "qir-lower-conv first (it makes average pooling a qir.cmvm)", where=where)


@registry.generator(PoolOp, "pool")
def generate(op: PoolOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    check(op, where)
    (x,) = ins
    in_sp, c = x.shape[:-1], x.shape[-1]
    oshape = shape_of(op.output.type)
    out_sp = oshape[:-1]
    window = int_values(op.window)
    per_pos: dict[tuple, list[int]] = {}
    taps = window_taps(op.geometry(), int_values(op.strides), (1,) * len(window), int_values(op.pads), out_sp)
    for p, _, src in taps:
        flat = 0
        for d, i in enumerate(src):
            flat = flat * in_sp[d] + i
        per_pos.setdefault(p, []).append(flat * c)
    sh = elem_shape(x.spec)
    stmts, elems, los, his = [], [], [], []
    n = 0
    for p in sorted(per_pos):
        for ch in range(c):
            level = [(x.elems[b + ch], x.lo[b + ch], x.hi[b + ch]) for b in per_pos[p]]
            while len(level) > 1:
                nxt = []
                for k in range(0, len(level) - 1, 2):
                    (va, la, ha), (vb, lb, hb) = level[k], level[k + 1]
                    if la >= hb:  # a can never lose
                        nxt.append(level[k])
                        continue
                    if lb >= ha:
                        nxt.append(level[k + 1])
                        continue
                    s = Signal(sh, name=f"{prefix}_m{n}")
                    n += 1
                    stmts.append(s.eq(Mux(va >= vb, va, vb)))
                    nxt.append((s, max(la, lb), max(ha, hb)))
                if len(level) & 1:
                    nxt.append(level[-1])
                level = nxt
            v, lo, hi = level[0]
            elems.append(v)
            los.append(lo)
            his.append(hi)
    out = Tensor(x.spec, oshape, elems, los, his)
    return comb_module(stmts), out
