"""Exact result types: the narrowest ``Fixed`` that holds every result of an exact op.

One place for the rule that frontends (when they build ops) and ``qir-infer-widths`` (when it
re-derives widths) both apply, so an imported model and a re-inferred one agree bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from xdsl.ir import SSAValue

from qir.dialect import DenseOp, dense_bounds, elem
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
