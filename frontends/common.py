"""Facts both frontends compute the same way: exact dyadic constants, window geometry, integer
array properties.  One definition each, used by the Keras and the ONNX importers alike."""
from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, i64

from qir.errors import QirError
from qir.fixed import Fixed

Shape = tuple[int, ...]


def exact_fixed(values, what: str = "values", max_width: int = 64) -> tuple[np.ndarray, Fixed]:
    """Integer mantissas and the narrowest fixed-point type holding dyadic ``values`` exactly
    (all zeros or empty: ``ufixed<1,1>``)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QirError(f"{what} contain NaN or infinite values")
    nz = v[v != 0]
    frac = 0
    if nz.size:
        mant, exp = np.frexp(nz)
        # smallest frac with every value * 2^frac an integer: 53-bit mantissas, trailing zeros removed
        ints = np.abs(np.ldexp(mant, 53)).astype(np.int64)
        tz = np.frexp((ints & -ints).astype(np.float64))[1] - 1
        frac = int(np.max(53 - exp - tz))
        if np.max(np.abs(np.ldexp(nz, frac))) >= 2.0 ** 62:
            raise QirError(f"{what} span too many binary orders of magnitude (more than 62 bits)")
    mant = np.ldexp(v, frac).astype(np.int64)
    lo, hi = (int(mant.min()), int(mant.max())) if mant.size else (0, 0)
    t = Fixed.for_range(lo, hi, frac)
    if t.width > max_width:
        raise QirError(f"{what} need {t.width} bits to be represented exactly (values are not on a "
                       "narrow power-of-two grid)")
    return mant, t


def same_pads(size: int, k: int, s: int, d: int, lower: bool = False) -> tuple[int, int]:
    """'same' padding (begin, end) of one spatial axis: the output has ceil(size / s) positions.
    The odd pixel goes at the end (TensorFlow/Keras 'same', ONNX SAME_UPPER) or, with ``lower``,
    at the beginning (ONNX SAME_LOWER)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    begin = total - total // 2 if lower else total // 2
    return begin, total - begin


def window_out(spatial: Shape, window, strides, dilations, pads) -> Shape:
    """Output spatial shape of a window op; ``pads`` in ONNX order [begins..., ends...]."""
    n = len(spatial)
    out = tuple((spatial[i] + pads[i] + pads[n + i] - dilations[i] * (window[i] - 1) - 1) // strides[i] + 1
                for i in range(n))
    if min(out, default=1) < 1:
        raise QirError(f"the window {tuple(window)} does not fit the (padded) input of spatial shape "
                       f"{tuple(spatial)}")
    return out


def int_array(values) -> DenseArrayBase:
    """An ``array<i64: ...>`` property (window, strides, pads, perm)."""
    return DenseArrayBase.from_list(i64, [int(v) for v in values])
