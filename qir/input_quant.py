"""Real (float) input data onto a model's input grid: ``--quantize-inputs`` and ``Design.predict``.

The rule, stated once: every value is rounded to the nearest point of the input type's grid, ties
to even (``rnd_conv``, what numpy's ``rint`` and QKeras's ``quantized_bits`` do), then saturated to
the type's range (``sat``).  NaN or infinity is an error.  The counts of rounded and saturated
values are returned so the caller can say how far the data was from the grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qir.errors import QirError
from qir.fixed import Fixed

#: How off-grid inputs are made representable (said in ``--help`` and the README).
ROUNDING_NOTE = "rounded to nearest, ties to even, and saturated to the input type"


@dataclass(frozen=True)
class InputQuantization:
    """What quantizing one input array did."""

    type: Fixed
    count: int  #: values in total
    rounded: int  #: values that were not on the grid
    saturated: int  #: values outside the type's range (clipped to its min or max)

    def summary(self, what: str = "inputs") -> str:
        return (f"{what}: {self.count} values to {self.type}: {self.rounded} rounded (nearest, ties to even), "
                f"{self.saturated} saturated")


def quantize_inputs(values, t: Fixed, what: str = "inputs") -> tuple[np.ndarray, InputQuantization]:
    """Mantissas of ``t`` for real ``values``: round half to even, then saturate to ``t``."""
    x = np.asarray(values)
    if x.dtype.kind not in "fiub":
        raise QirError(f"{what}: expected a numeric array, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise QirError(f"{what}: contains NaN or infinite values")
    scaled = np.ldexp(x, t.frac)
    mant = np.rint(scaled)
    rounded = int(np.count_nonzero(mant != scaled))
    lo, hi = float(t.min_int), float(t.max_int)
    saturated = int(np.count_nonzero((mant < lo) | (mant > hi)))
    mant = np.clip(mant, lo, hi)
    if t.width <= 52:
        out = mant.astype(np.int64)
    else:  # beyond float64's exact integers: clip with Python ints
        out = np.vectorize(lambda v: max(t.min_int, min(t.max_int, int(v))), otypes=[object])(mant)
    return out, InputQuantization(t, int(x.size), rounded, saturated)
