"""Exact result types: the narrowest ``Fixed`` that holds every result of an exact op.

One place for the rule (``inferred_type``) that frontends (when they build ops) and ``qir-infer-widths`` (when it
re-derives widths) both apply, so an imported model and a re-inferred one agree bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    AddOp,
    CmvmOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    LeakyReluOp,
    MulOp,
    PadOp,
    PoolOp,
    ReduceOp,
    RegOp,
    ReluOp,
    ReshapeOp,
    ScaleOp,
    TransposeOp,
    dense_bounds,
    elem,
    elements_to_numpy,
    tensor_of,
)
from qir.fixed import Fixed


def dense_type(in_t: Fixed, matrix: np.ndarray, offset: np.ndarray, frac: int) -> Fixed:
    """Type of ``x @ matrix + offset`` (mantissas on the grid 2^-frac) for x in ``in_t``'s range."""
    lo, hi = dense_bounds(in_t, matrix, offset)
    return Fixed.for_range(int(min(lo, default=0)), int(max(hi, default=0)), frac)


def dense_result(x: SSAValue, props: dict) -> tuple[Fixed, int]:
    """(exact result type, output count) of a ``qir.dense`` on ``x`` with ``props``."""
    probe = DenseOp.create(operands=[x], result_types=[x.type], properties=props)
    try:
        w, off, frac, _ = probe.folded()
    finally:
        probe.erase()
    return dense_type(elem(x.type), w, off, frac), w.shape[1]


def op_result(cls, operands: Sequence[SSAValue], props: dict) -> Fixed:
    """Type of an op ``cls`` with an ``exact_bounds()`` method, built on ``operands``/``props``."""
    probe = cls.create(operands=list(operands), result_types=[operands[0].type], properties=props)
    try:
        lo, hi, frac = probe.exact_bounds()
    finally:
        probe.erase()
    return Fixed.for_range(int(lo), int(hi), frac)


def inferred_type(op: Operation):
    """The result type ``op`` should have (``qir-infer-widths``'s rule), or None to keep it."""
    if isinstance(op, DenseOp):
        w, off, frac, _ = op.folded()
        t = dense_type(elem(op.input.type), w, off, frac)
    elif isinstance(op, CmvmOp):
        in_t = elem(op.input.type)
        t = dense_type(in_t, elements_to_numpy(op.matrix), elements_to_numpy(op.offset),
                       in_t.frac + op.shift.value.data)
    elif isinstance(op, (ReluOp, RegOp)):
        return op.input.type
    elif isinstance(op, (PoolOp, ReduceOp)) and op.kind.data == "max" or isinstance(op, (ReshapeOp, TransposeOp, PadOp)):
        t = elem(op.input.type)
    elif isinstance(op, (ConvOp, PoolOp, ScaleOp, LeakyReluOp, AddOp, ConcatOp, MulOp, ReduceOp)):
        t = Fixed.for_range(*op.exact_bounds())
    else:
        return None
    return tensor_of(t, op.results[0].type.get_shape())


def build_exact(cls, operands: Sequence[SSAValue], props: dict, shape) -> Operation:
    """A new op ``cls`` whose result has the narrowest type ``inferred_type`` gives it."""
    probe = cls.create(operands=list(operands), result_types=[tensor_of(Fixed(62, 31), shape)], properties=props)
    try:
        t = inferred_type(probe)
    finally:
        probe.erase()
    return cls.create(operands=list(operands), result_types=[t], properties=props)
