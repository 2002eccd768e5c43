"""Fixed-point numbers in the ap_fixed convention, shared by every layer of qir.

A value of type ``fixed<W,I>`` (signed) or ``ufixed<W,I>`` is ``n * 2**(I-W)`` with an integer
mantissa ``n`` of ``W`` bits; ``I`` counts the sign bit and may be <= 0 or > W.  Everything in qir
computes on integer mantissas; real values only appear at the edges (model files, .npy files).

Rounding and overflow modes are ap_fixed's and are always passed explicitly (they live on the
``qir.quantize`` op, never on the type).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qir.errors import QirError

#: ap_fixed rounding modes (``AP_TRN`` ... ``AP_RND_CONV``) by their qir spelling.
ROUNDING_MODES = ("trn", "trn_zero", "rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv")
#: ap_fixed overflow modes.
OVERFLOW_MODES = ("wrap", "sat", "sat_zero", "sat_sym")

#: Widest mantissa qir accepts (wider values are computed with Python integers in numpy
#: object arrays by the interpreter; hardware widths beyond this are a user error).
MAX_WIDTH = 1024

_TYPE_RE = re.compile(r"^\s*(u?fixed)\s*<\s*(\d+)\s*,\s*(-?\d+)\s*>\s*$")


@dataclass(frozen=True, order=True)
class Fixed:
    """A fixed-point format: ``width`` bits, ``integer`` integer bits (incl. sign), ``signed``."""

    width: int
    integer: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise QirError(f"fixed-point width must be between 1 and {MAX_WIDTH}, got {self.width}")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def frac(self) -> int:
        """Number of fractional bits (may be negative): value = mantissa * 2**-frac."""
        return self.width - self.integer

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** (-self.frac)

    def __str__(self) -> str:
        return f"{'fixed' if self.signed else 'ufixed'}<{self.width},{self.integer}>"

    @staticmethod
    def parse(text: str) -> Fixed:
        """Parse the CLI spelling ``fixed<W,I>`` / ``ufixed<W,I>``."""
        m = _TYPE_RE.match(text)
        if not m:
            raise QirError(
                f"cannot parse fixed-point type {text!r}: write fixed<W,I> or ufixed<W,I> "
                "(W total bits, I integer bits including the sign)"
            )
        return Fixed(int(m.group(2)), int(m.group(3)), m.group(1) == "fixed")

    @staticmethod
    def for_range(lo: int, hi: int, frac: int) -> Fixed:
        """The narrowest format with ``frac`` fractional bits holding mantissas in [lo, hi]."""
        if lo > hi:
            raise ValueError("empty range")
        if lo >= 0:
            width = max(int(hi).bit_length(), 1)
            return Fixed(width, width - frac, False)
        width = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1
        return Fixed(width, width - frac, True)

    def contains(self, lo: int, hi: int) -> bool:
        return self.min_int <= lo and hi <= self.max_int

    # -- conversions ----------------------------------------------------------------------------
    def to_real(self, mant: np.ndarray) -> np.ndarray:
        return np.ldexp(np.asarray(mant, dtype=np.float64), -self.frac)

    def from_real(self, values: np.ndarray, what: str) -> np.ndarray:
        """Exact mantissas of real values that must lie on this type's grid and range."""
        x = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise QirError(f"{what}: contains NaN or infinite values")
        scaled = np.ldexp(x, self.frac)
        mant = np.rint(scaled)
        off = np.flatnonzero(mant != scaled)
        if off.size:
            i = np.unravel_index(off[0], x.shape)
            raise QirError(
                f"{what}: value {float(x[i])!r} at index {tuple(int(k) for k in i)} is not on the grid of "
                f"{self} (step {self.lsb!r}); quantize the inputs to that type (qir sim/eval "
                "--quantize-inputs: nearest, ties to even, saturated) or pick another --input-type"
            )
        bad = np.flatnonzero((mant < self.min_int) | (mant > self.max_int))
        if bad.size:
            i = np.unravel_index(bad[0], x.shape)
            raise QirError(
                f"{what}: value {float(x[i])!r} at index {tuple(int(k) for k in i)} is outside the range "
                f"of {self} [{self.min_int * self.lsb!r}, {self.max_int * self.lsb!r}]"
            )
        return mant.astype(np.int64) if self.width <= 62 else mant.astype(object)


def mantissa_array(values, width: int) -> np.ndarray:
    """An integer array wide enough for ``width``-bit intermediate values."""
    return np.asarray(values, dtype=np.int64 if width <= 62 else object)


def shift_round(mant: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """Divide integer mantissas by 2**shift (shift >= 0) with an ap_fixed rounding mode.

    Every mode is ``(n + c) >> shift`` with an arithmetic shift and a correction ``c`` that
    depends on the mode, the sign and (for rnd_conv) the kept LSB; rtl/ builds the same sums.
    """
    n = np.asarray(mant)
    if shift <= 0:
        return n * (1 << -shift) if shift < 0 else n
    half = 1 << (shift - 1)
    neg = (n < 0).astype(n.dtype)
    if rounding == "trn":
        c = 0
    elif rounding == "trn_zero":
        c = neg * ((1 << shift) - 1)
    elif rounding == "rnd":
        c = half
    elif rounding == "rnd_zero":
        c = half - 1 + neg
    elif rounding == "rnd_inf":
        c = half - neg
    elif rounding == "rnd_min_inf":
        c = half - 1
    elif rounding == "rnd_conv":
        keep_lsb = (n >> shift) & 1
        c = half - 1 + keep_lsb
    else:
        raise QirError(f"unknown rounding mode {rounding!r}; use one of {', '.join(ROUNDING_MODES)}")
    return (n + c) >> shift


def overflow(mant: np.ndarray, t: Fixed, mode: str) -> np.ndarray:
    """Bring integer mantissas into ``t``'s range with an ap_fixed overflow mode."""
    n = np.asarray(mant)
    if mode == "wrap":
        m = n & ((1 << t.width) - 1)
        if t.signed:
            m = np.where(m > t.max_int, m - (1 << t.width), m)
        return m
    if mode == "sat":
        return np.clip(n, t.min_int, t.max_int)
    if mode == "sat_sym":
        lo = -t.max_int if t.signed else 0
        return np.clip(n, lo, t.max_int)
    if mode == "sat_zero":
        return np.where((n < t.min_int) | (n > t.max_int), 0, n)
    raise QirError(f"unknown overflow mode {mode!r}; use one of {', '.join(OVERFLOW_MODES)}")


def requantize(mant: np.ndarray, src: Fixed, dst: Fixed, rounding: str, ovf: str) -> np.ndarray:
    """Exact semantics of ``qir.quantize``: re-grid from ``src`` to ``dst`` and handle overflow."""
    shifted = shift_round(mantissa_array(mant, max(src.width, dst.width) + 2 + abs(src.frac - dst.frac)),
                          src.frac - dst.frac, rounding)
    out = overflow(shifted, dst, ovf)
    return mantissa_array(out, dst.width)
