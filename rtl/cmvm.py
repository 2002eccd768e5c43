"""``qir.cmvm`` -> hardware: constant-matrix times vector plus offset, exact.

out[j] = sum_i x[i] * matrix[i, j] + offset[j] on integer mantissas.  Implementation styles are
registered in ``STYLES`` by the op's ``style`` string; a new style adds one function.

Style ``mac``: per output, the non-zero constant products x_i * c (in input order) and the
offset (last, when non-zero) are summed by a balanced binary adder tree.  Products by +-1 and
+-2^k are wires, shifts and negations; other constants are constant multiplications left to
synthesis.  Every tree node is its own Signal whose width is exact for the interval the node can
take (from the input elements' bounds, at most the input type's range); the root has the result
type's width.  Amaranth arithmetic never overflows and every node's bounds are exact, so the
``.eq()`` truncations into the nodes are lossless.
"""
from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import Const, Module, Signal, Value
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape, range_shape

from qir.dialect import CmvmOp, elem, elements_to_numpy, shape_of
from qir.errors import QirError
from qir.fixed import Fixed

#: style name -> builder(module, x, matrix columns as lists, offsets, result type, prefix) -> result
Style = Callable[[Module, Tensor, list[list[int]], list[int], Fixed, tuple[int, ...], str], Tensor]


@registry.check(CmvmOp)
def check(op: CmvmOp, where: str) -> None:
    """Reject what ``generate`` cannot build, before any hardware is made."""
    if op.style.data not in STYLES:
        raise QirError(f"qir.cmvm style {op.style.data!r} has no RTL generator (supported: {', '.join(STYLES)})",
                       where=where)


@registry.generator(CmvmOp, "cmvm")
def generate(op: CmvmOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module, Tensor]:
    """A module computing ``op`` on ``ins[0]``; returns it and the result tensor."""
    check(op, where)
    (x,) = ins
    matrix = elements_to_numpy(op.matrix)
    offset = elements_to_numpy(op.offset)
    n_out = offset.size
    # N-D tensors are flattened row-major on both sides.
    cols = matrix.reshape(x.size, n_out).T.tolist()  # Python ints: no overflow anywhere below
    m = Module()
    out = STYLES[op.style.data](m, x, cols, offset.reshape(n_out).tolist(), elem(op.output.type),
                                shape_of(op.output.type), prefix)
    return m, out


def _product(x: Value, c: int) -> Value:
    """x * c for a non-zero constant c: wires/shifts/negation for +-2^k, else a multiplication."""
    a = -c if c < 0 else c
    if a & (a - 1) == 0:
        k = a.bit_length() - 1
        p = x << k if k else x
        return -p if c < 0 else p
    return x * c


def _mac(m: Module, x: Tensor, cols: list[list[int]], offsets: list[int], out_spec: Fixed,
         out_shape: tuple[int, ...], prefix: str) -> Tensor:
    xs, xlo, xhi = x.elems, x.lo, x.hi
    root_shape = elem_shape(out_spec)
    elems, los, his, stmts = [], [], [], []
    for j, col in enumerate(cols):
        # leaves: (value, lower bound, upper bound)
        level: list[tuple[Value, int, int]] = []
        for i, c in enumerate(col):
            if c:
                a, b = xlo[i] * c, xhi[i] * c
                level.append((_product(xs[i], c), a, b) if a <= b else (_product(xs[i], c), b, a))
        off = offsets[j]
        if off:
            level.append((Const(off), off, off))
        root_name = f"{prefix}_y{j}"
        if not level:
            elems.append(Const(0, root_shape))
            los.append(0)
            his.append(0)
            continue
        depth = 0
        while len(level) > 1:
            last = len(level) == 2
            nxt = []
            for k in range(0, len(level) - 1, 2):
                va, la, ha = level[k]
                vb, lb, hb = level[k + 1]
                nlo, nhi = la + lb, ha + hb
                node = Signal(root_shape if last else range_shape(nlo, nhi),
                              name=root_name if last else f"t{j}_{depth}_{k >> 1}")
                stmts.append(node.eq(va + vb))
                nxt.append((node, nlo, nhi))
            if len(level) & 1:
                nxt.append(level[-1])
            level = nxt
            depth += 1
        root, rlo, rhi = level[0]
        if depth == 0:  # a single term: still give the output its own signal of the result type
            node = Signal(root_shape, name=root_name)
            stmts.append(node.eq(root))
            root = node
        elems.append(root)
        los.append(rlo)
        his.append(rhi)
    m.d.comb += stmts
    return Tensor(out_spec, out_shape, elems, los, his)


STYLES: dict[str, Style] = {"mac": _mac}
