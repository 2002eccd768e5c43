"""Softmax as an explicit table-based approximation (``softmax="table"`` in both frontends).

softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x)) over the last (only) axis of a 1-D
tensor of N logits, built from exact ``qir`` ops plus three explicit roundings:

1. ``m = qir.reduce x kind "max"``; ``d = x - m`` (``qir.dense`` broadcasting -m to N elements
   with weights -1, then ``qir.add``): exact, d <= 0.
2. d is rounded (``rnd_conv``) and saturated (``sat``) to the *index type* (the precision
   configuration's ``table`` key, default ``fixed<10,4>``: 1024 entries over [-8, 8) in steps
   of 1/64; only the non-positive half is ever used), and ``e = qir.lut`` exp(min(d, 0)) with
   every entry rounded to nearest (ties to even) on ``EXP_TYPE`` = ``ufixed<18,1>`` (17
   fractional bits; exp(0) = 1 exactly).
3. ``s = qir.reduce e kind "sum"`` (exact, s in [1, N]); s is rounded (``rnd_conv``, ``sat``)
   to ``ufixed<RECIP_INDEX_BITS, I>`` with I = bit length of N (``ufixed<12,3>`` for N = 5,
   4096 entries in steps of 2^-9) and ``r = qir.lut`` 1/max(s, 1) rounded on
   ``RECIP_TYPE`` = ``ufixed<18,1>``.
4. ``y = qir.mul e, r`` (exact, r broadcast), rounded (``rnd_conv``) and saturated (``sat``) to
   the result type (the precision configuration's ``result``, default ``ufixed<16,0>``).

Error: the index rounding of d (half a step, 2^-7 by default) dominates: each e_i is off by a
relative exp(2^-7) - 1 < 0.79%, so every probability is off by less than about 1.6% relative
(< 0.004 absolute, since p (1 - p) <= 1/4) plus the table and output roundings (2^-18, 2^-17)
and the recip index rounding (relative 2^-10 / s).  Two logits closer than one index step can
map to the same entry and tie (the argmax then picks the lower index).  Measured on the 2000
shared vectors of tests/data/qkeras_3layer (logits ``fixed<16,5>``), against Keras's float
softmax: default ``fixed<10,4>`` index: max |error| 0.0024, argmax agreement 99.50% (all 10
misses are such ties); ``fixed<12,4>``: 0.0011, 99.85%; ``fixed<16,5>``: 0.00094, 100%.
tests/test_softmax_table.py asserts these bounds.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64
from xdsl.ir import Operation, SSAValue

from qir.dialect import (
    AddOp,
    DenseOp,
    LutOp,
    MulOp,
    QuantizeOp,
    ReduceOp,
    elem,
    fixed_type,
    int_elements,
    shape_of,
    tensor_of,
)
from qir.errors import QirError
from qir.exact import build_exact
from qir.fixed import Fixed
from qir.precision import DEFAULT_TABLE_INPUT, quantize_float

#: entries of the exp table: 17 fractional bits, exp(0) = 1 exactly
EXP_TYPE = Fixed(18, 1, False)
#: entries of the reciprocal table
RECIP_TYPE = Fixed(18, 1, False)
#: width of the reciprocal table's index (the rounded sum of the exponentials)
RECIP_INDEX_BITS = 12
#: default type of the softmax result
DEFAULT_SOFTMAX_RESULT = Fixed(16, 0, False)

Emit = Callable[[Operation], SSAValue]


def _exact(cls, operands, props, shape, emit: Emit) -> SSAValue:
    """An exact op with the narrowest result type (``qir-infer-widths``'s rule)."""
    return emit(build_exact(cls, operands, props, shape))


def _table(x: SSAValue, fn, out_t: Fixed, emit: Emit) -> SSAValue:
    in_t = elem(x.type)
    codes = np.arange(in_t.min_int, in_t.max_int + 1, dtype=np.int64)
    mant = quantize_float(np.asarray(fn(in_t.to_real(codes)), dtype=np.float64), out_t)
    return emit(LutOp.create(operands=[x], result_types=[tensor_of(out_t, shape_of(x.type))],
                             properties={"table": int_elements(mant)}))


def softmax_types(n: int, index_type: Fixed | None) -> dict[str, Fixed]:
    """The types the table softmax over ``n`` logits uses (for documentation and tests)."""
    idx = index_type or DEFAULT_TABLE_INPUT
    return {"index": idx, "exp": EXP_TYPE, "recip_index": Fixed(RECIP_INDEX_BITS, max(n.bit_length(), 1), False),
            "recip": RECIP_TYPE}


def build_softmax_table(x: SSAValue, emit: Emit, index_type: Fixed | None = None,
                        result_type: Fixed | None = None) -> SSAValue:
    """Emit the table softmax of the 1-D tensor ``x`` (see the module docstring); returns y."""
    shape = shape_of(x.type)
    if len(shape) != 1:
        raise QirError(f"softmax='table' needs a 1-D (flattened) input, got shape {shape}")
    n = shape[0]
    types = softmax_types(n, index_type)
    idx_t, ridx_t = types["index"], types["recip_index"]
    if not idx_t.signed:
        raise QirError(f"the softmax table index type {idx_t} must be signed (it holds x - max(x) <= 0)")
    out_t = result_type or DEFAULT_SOFTMAX_RESULT
    in_t = elem(x.type)
    m = emit(ReduceOp.create(operands=[x], result_types=[tensor_of(in_t, (1,))],
                             properties={"kind": _s("max"), "axis": _i(0)}))
    neg_m = _exact(DenseOp, [m], {"weights": int_elements(np.full((1, n), -1, dtype=np.int64)),
                                  "weight_type": fixed_type(Fixed(1, 1))}, (n,), emit)
    d = _exact(AddOp, [x, neg_m], {}, (n,), emit)
    di = emit(QuantizeOp(d, tensor_of(idx_t, (n,)), "rnd_conv", "sat"))
    e = _table(di, lambda v: np.exp(np.minimum(v, 0.0)), EXP_TYPE, emit)
    s = _exact(ReduceOp, [e], {"kind": _s("sum"), "axis": _i(0)}, (1,), emit)
    si = emit(QuantizeOp(s, tensor_of(ridx_t, (1,)), "rnd_conv", "sat"))
    r = _table(si, lambda v: 1.0 / np.maximum(v, 1.0), RECIP_TYPE, emit)
    y = _exact(MulOp, [e, r], {}, (n,), emit)
    return emit(QuantizeOp(y, tensor_of(out_t, (n,)), "rnd_conv", "sat"))


def _s(v: str) -> StringAttr:
    return StringAttr(v)


def _i(v: int) -> IntegerAttr:
    return IntegerAttr(v, i64)
