"""Layout ops -> hardware: ``qir.reshape``, ``qir.transpose``, ``qir.pad``, ``qir.concat``.

All four are wiring.  Reshape keeps the flattened (row-major) element list; transpose and pad
permute it (pad puts constant zero elements in the border); concat interleaves its inputs along
the axis.  No logic is built except where a concat input's type differs from the result type:
that element is re-gridded (shift left by the difference of fractional bits, which is exact)
and sign- or zero-extended into a Signal of the result type.  Element bounds travel with the
elements (padding is [0, 0]).
"""
from __future__ import annotations

from math import prod

import numpy as np
from amaranth.hdl import Const, Module, Signal
from qir.rtl import registry
from qir.rtl.values import Tensor, comb_module, elem_shape

from qir.dialect import ConcatOp, PadOp, ReshapeOp, TransposeOp, elem, int_values, shape_of


@registry.generator(ReshapeOp, "reshape")
def reshape(op: ReshapeOp, ins: list[Tensor], prefix: str, where: str) -> tuple[None, Tensor]:
    (x,) = ins
    return None, Tensor(x.spec, shape_of(op.output.type), list(x.elems), list(x.lo), list(x.hi))


def _gather(x: Tensor, shape, index: np.ndarray) -> Tensor:
    """Elements ``x[index]`` (flat indices, -1 = constant zero) as a tensor of ``shape``."""
    zero = Const(0, elem_shape(x.spec))
    elems, lo, hi = [], [], []
    for k in index.ravel().tolist():
        if k < 0:
            elems.append(zero)
            lo.append(0)
            hi.append(0)
        else:
            elems.append(x.elems[k])
            lo.append(x.lo[k])
            hi.append(x.hi[k])
    return Tensor(x.spec, tuple(shape), elems, lo, hi)


@registry.generator(TransposeOp, "transpose")
def transpose(op: TransposeOp, ins: list[Tensor], prefix: str, where: str) -> tuple[None, Tensor]:
    (x,) = ins
    idx = np.arange(x.size).reshape(x.shape).transpose(int_values(op.perm))
    return None, _gather(x, shape_of(op.output.type), idx)


@registry.generator(PadOp, "pad")
def pad(op: PadOp, ins: list[Tensor], prefix: str, where: str) -> tuple[None, Tensor]:
    (x,) = ins
    pads = int_values(op.pads)
    n = len(x.shape)
    idx = np.pad(np.arange(x.size).reshape(x.shape), [(pads[d], pads[n + d]) for d in range(n)],
                 constant_values=-1)
    return None, _gather(x, shape_of(op.output.type), idx)


@registry.generator(ConcatOp, "concat")
def concat(op: ConcatOp, ins: list[Tensor], prefix: str, where: str) -> tuple[Module | None, Tensor]:
    out_t = elem(op.output.type)
    oshape = shape_of(op.output.type)
    axis = op.axis.value.data
    sh = elem_shape(out_t)
    stmts = []
    parts = []  # per input: its elements on the result grid, shaped (outer, axis size, inner)
    for i, x in enumerate(ins):
        s = out_t.frac - x.spec.frac
        if x.spec == out_t:
            vals = list(zip(x.elems, x.lo, x.hi))
        else:
            vals = []
            for k, (v, lo, hi) in enumerate(zip(x.elems, x.lo, x.hi)):
                if lo == hi:
                    vals.append((Const(lo << s, sh), lo << s, hi << s))
                    continue
                y = Signal(sh, name=f"{prefix}_i{i}_{k}")
                stmts.append(y.eq(v << s if s else v))  # exact: the verifier checked the range
                vals.append((y, lo << s, hi << s))
        outer = prod(x.shape[:axis])
        parts.append([vals[o * (len(vals) // outer):(o + 1) * (len(vals) // outer)] for o in range(outer)]
                     if outer else [])
    elems, lo, hi = [], [], []
    for o in range(prod(oshape[:axis])):
        for p in parts:
            for v, a, b in p[o]:
                elems.append(v)
                lo.append(a)
                hi.append(b)
    out = Tensor(out_t, oshape, elems, lo, hi)
    return comb_module(stmts), out
