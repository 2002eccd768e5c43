"""What the RTL generators pass around: tensors of Amaranth values with exact integer bounds.

A ``Tensor`` is the hardware form of one SSA value: its fixed-point element type, its shape and
one Amaranth value per element in row-major (flattened) order.  Every element value has exactly
the element type's shape (``signed(W)`` / ``unsigned(W)``, raw mantissa bits), so packing a
tensor onto a port is a plain ``Cat``.  Elements are Signals (or constants): an Amaranth
expression used in several places is duplicated, so generators never hand out bare expressions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Module, Shape, Value, signed, unsigned

from qir.fixed import Fixed


def elem_shape(spec: Fixed) -> Shape:
    """The Amaranth shape of one mantissa of ``spec``."""
    return signed(spec.width) if spec.signed else unsigned(spec.width)


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in [lo, hi] (unsigned when lo >= 0)."""
    if lo >= 0:
        return unsigned(max(hi.bit_length(), 1))
    return signed(max(hi.bit_length(), (-lo - 1).bit_length()) + 1)


@dataclass
class Tensor:
    """One SSA value in hardware: element type, shape, flattened element values and, per
    element, integer bounds [lo, hi] its mantissa always lies in (the type's range unless a
    generator knows better, e.g. relu outputs are >= 0 and adder-tree roots have exact bounds).
    Generators use the bounds to drop logic that can never act (a saturation side that cannot
    be reached, the sign handling of a value that cannot be negative) and to size adder nodes."""

    spec: Fixed
    shape: tuple[int, ...]
    elems: list[Value]
    lo: list[int] = field(default_factory=list)
    hi: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lo:
            self.lo = [self.spec.min_int] * len(self.elems)
            self.hi = [self.spec.max_int] * len(self.elems)
        assert len(self.lo) == len(self.hi) == len(self.elems)
        assert all(self.spec.min_int <= a <= b <= self.spec.max_int for a, b in zip(self.lo, self.hi))

    @property
    def size(self) -> int:
        return len(self.elems)


def comb_module(stmts: list):
    """A Module holding ``stmts`` in its comb domain, or None when there are none (an op made of
    wiring and constants only)."""
    if not stmts:
        return None
    m = Module()
    m.d.comb += stmts
    return m
