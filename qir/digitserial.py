"""What a *digit-serial* constant adder graph is (``qir.digitserial``, ``impl = "digitserial"``,
issue #12): a layer ``y = x @ W + off`` folded by R into D digit cycles of the SAME constant
adder graph as R = 1, on a k-bit digit of every input at a time.

The input x (n bits, two's complement or unsigned) is shifted into offset binary first:
``u = x - x_min`` (x_min = -2^(n-1) for a signed type: the sign bit inverted; 0 for an unsigned
one), so u in [0, 2^n - 1] and every digit ``u_d = (u >> k*d) mod 2^k`` is unsigned k-bit
(``digit_shape``: k = ceil(n / D'), D = ceil(n / k) <= R digits, the top digit zero-padded).
Then exactly

    y = sum_d 2^(k*d) * (W u_d) + off',   off' = off + x_min * colsum(W)   (``base_offset``)

with ``W u_d`` the adder graph on the digit vector (input range [0, 2^k - 1]: its adders are k +
weight bits wide instead of n + weight bits) and off' added once.  The hardware accumulates LSB
first (``partial_ranges``): the accumulator holds A_d = floor(P_d / 2^(k*d)) of the partial sum
P_d = off' + sum_{e<=d} 2^(k*e) g_e, so A_d = (A_{d-1} >> k) + g_d (an arithmetic shift, the k
low bits retire into a shift register); y = A_{D-1} * 2^(k*(D-1)) + the retired bits, exact.

Cost (``qir.folding.estimate_digitserial`` is the one formula home): the graph's LUT bits at the
digit width, an accumulator adder per output, the digit multiplexer / hold shift register of the
inputs, the control.
"""
from __future__ import annotations

import numpy as np

from qir.addergraph import AdderGraph, range_bits


def digit_shape(n_bits: int, R: int) -> tuple[int, int]:
    """(D, k): D digits of k bits for an ``n_bits``-bit input folded by R (D <= R cycles; when R
    does not divide the bits, k = ceil(n / R) and D = ceil(n / k); R > n: bit-serial, D = n)."""
    if n_bits < 1 or R < 1:
        raise ValueError(f"digit_shape: need n_bits >= 1 and R >= 1, got {n_bits}, {R}")
    k = -(-n_bits // min(R, n_bits))
    return -(-n_bits // k), k


def base_offset(matrix, offset, x_min: int) -> list[int]:
    """off' = off + x_min * colsum(W): the offset of the product on u = x - x_min."""
    m = np.asarray(matrix, dtype=object)
    cols = m.sum(axis=0) if m.size else np.zeros(m.shape[1], dtype=object)
    return [int(o) + int(x_min) * int(c) for o, c in zip(np.asarray(offset, dtype=object).ravel(), cols)]


def digit_bounds(matrix, k: int, bits: int) -> tuple[list[int], list[int]]:
    """Per output, [lo, hi] of the graph's sum W u_d for a digit of ``bits`` <= k live bits
    (u_d in [0, 2^bits - 1])."""
    m = np.asarray(matrix, dtype=object)
    h = (1 << bits) - 1
    neg = [int(v) * h for v in np.minimum(m, 0).sum(axis=0)] if m.size else [0] * m.shape[1]
    pos = [int(v) * h for v in np.maximum(m, 0).sum(axis=0)] if m.size else [0] * m.shape[1]
    return neg, pos


def digit_bits(n_bits: int, D: int, k: int, d: int) -> int:
    """Live bits of digit d (the top one may be narrower than k)."""
    return min(k, n_bits - k * d)


def partial_ranges(matrix, offset, x_min: int, n_bits: int, D: int, k: int) -> list[tuple[int, int]]:
    """Per output, [lo, hi] of the accumulator register over all digit cycles: the union over d
    of floor(P_d / 2^(k*d)) (module docstring), exact."""
    off = base_offset(matrix, offset, x_min)
    lo, hi = list(off), list(off)
    acc_lo, acc_hi = list(off), list(off)
    for d in range(D):
        glo, ghi = digit_bounds(matrix, k, digit_bits(n_bits, D, k, d))
        for j in range(len(off)):
            lo[j] += glo[j] << (k * d)
            hi[j] += ghi[j] << (k * d)
            acc_lo[j] = min(acc_lo[j], lo[j] >> (k * d))
            acc_hi[j] = max(acc_hi[j], hi[j] >> (k * d))
    return list(zip(acc_lo, acc_hi))


def acc_width(ranges: list[tuple[int, int]]) -> int:
    """Bits of the widest accumulator register (``partial_ranges``)."""
    return max((range_bits(lo, hi) for lo, hi in ranges), default=1)


def evaluate(g: AdderGraph, offset, x_min: int, n_bits: int, D: int, k: int, x: np.ndarray) -> np.ndarray:
    """y (N, n_out) for integer inputs ``x`` (N, n_in): the graph on every digit of u = x - x_min,
    shifted and summed, plus off' (what the hardware computes, exactly)."""
    x = np.asarray(x)
    u = x.astype(object) - int(x_min)
    m = g.matrix()
    y = np.tile(np.asarray(base_offset(m, offset, x_min), dtype=object), (x.shape[0], 1))
    mask = (1 << k) - 1
    for d in range(D):
        ud = (u >> (k * d)) & mask
        y = y + (np.asarray(g.evaluate(ud.astype(np.int64) if k < 62 else ud), dtype=object) << (k * d))
    return y


def digit_graph(g: AdderGraph, k: int) -> AdderGraph:
    """The same graph (nodes, outputs) with every input in [0, 2^k - 1] (a digit) and no
    offset: what ``qir.digitserial`` builds; its ``lut_bits`` price the digit-width adders."""
    n = g.n_in
    return AdderGraph(n, [0] * n, [(1 << k) - 1] * n, a=list(g.a), sa=list(g.sa), b=list(g.b), sb=list(g.sb),
                      sign=list(g.sign), onode=list(g.onode), oshift=list(g.oshift), osign=list(g.osign),
                      offset=[0] * len(g.onode))
