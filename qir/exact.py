"""Exact result types: the narrowest ``Fixed`` that holds every result of an exact op.

The fact lives on the ops (``exact_bounds()``/``exact_spec()``, ``qir.dialect.types.ExactResult``)
and ``OpClass.exact(operands, properties, shape)`` builds an op with its inferred type; this module
keeps the helpers the frontends and ``qir-infer-widths`` share, so an imported model and a
re-inferred one agree bit for bit.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import Operation, SSAValue

from qir.dialect import dense_bounds, elem, elements_to_numpy, fold_affine, tensor_of
from qir.fixed import Fixed


def dense_type(in_t: Fixed, matrix: np.ndarray, offset: np.ndarray, frac: int) -> Fixed:
    """Type of ``x @ matrix + offset`` (mantissas on the grid 2^-frac) for x in ``in_t``'s range."""
    lo, hi = dense_bounds(in_t, matrix, offset)
    return Fixed.for_range(int(min(lo, default=0)), int(max(hi, default=0)), frac)


def dense_result(x: SSAValue, props: dict) -> tuple[Fixed, int]:
    """(exact result type, output count) of a ``qir.dense`` on ``x`` with ``props`` (the same
    ``fold_affine`` as ``DenseOp.folded``; no op is built)."""
    in_t = elem(x.type)
    b = props.get("bias")
    bt = props.get("bias_type")
    w, off, frac = fold_affine(in_t.frac, elements_to_numpy(props["weights"]), props["weight_type"].spec,
                               None if b is None else elements_to_numpy(b), None if bt is None else bt.spec)
    return dense_type(in_t, w, off, frac), w.shape[1]


def inferred_type(op: Operation):
    """The result type ``op`` should have (``qir-infer-widths``'s rule: the op's ``exact_spec()``),
    or None to keep it (ops without one)."""
    spec = getattr(op, "exact_spec", None)
    if spec is None:
        return None
    return tensor_of(spec(), op.results[0].type.get_shape())


def build_exact(cls, operands: Sequence[SSAValue], props: dict, shape) -> Operation:
    """A new op ``cls`` whose result has the narrowest exact type (``cls.exact``)."""
    return cls.exact(operands, props, shape)
