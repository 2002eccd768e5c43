"""What an adder graph *is*: the data structure of ``qir.addergraph`` and its exact arithmetic.

A node is ``value = (v[a] << sa) + sign * (v[b] << sb)`` with ``sa, sb >= 0`` and ``sign``
+1/-1; node ids ``0 .. n_in-1`` are the inputs.  Each output is
``offset[j] + osign[j] * (v[onode[j]] << oshift[j])``, or just ``offset[j]`` when ``onode[j]``
is -1 (a zero column).  Every node is a known linear form of the inputs, so its exact value
interval (hence its minimal width), its known-zero LSBs and its adder depth follow from the
constants (``AdderGraph``); ``stages`` places nodes into pipeline stages.

The one codec between a graph and the op's properties is ``to_arrays`` / ``from_arrays`` (the
``nodes`` N x 5, ``outputs`` M x 3 and ``offset`` arrays of ``qir.addergraph``); the op's
``graph()`` and ``AdderGraphOp.properties_of`` use it.  The search that builds a graph from a
constant matrix (CSD, subexpression sharing, output trees) is ``qir.lowering.adder_graph``.

Cost model (``AdderGraph.cost``): one unit per result bit an adder computes, i.e. the result
width minus the pass-through LSBs, plus the same for each output's constant add or negation.
``AdderGraph.lut_bits`` counts what Yosys actually spends on the offset-binary RTL of
``qir.rtl.addergraph``: one LUT per bit where both operands can be non-zero (bits of one
operand only, and constant adds, ride the carry chain without a LUT).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


# ------------------------------------------------------------------------------ helpers
def csd(n: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``n`` as (position, +1/-1), LSB first; no two adjacent."""
    out = []
    n = int(n)
    pos = 0
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 if n % 4 == 1, -1 if n % 4 == 3
            out.append((pos, d))
            n -= d
        n >>= 1
        pos += 1
    return out


def tz(n: int) -> int:
    """Trailing zero bits of a non-zero integer (a huge number for 0)."""
    n = int(n)
    return (n & -n).bit_length() - 1 if n else 1 << 30


def range_bits(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement (lo < 0) or unsigned (lo >= 0) holding [lo, hi]."""
    if lo >= 0:
        return max(int(hi).bit_length(), 1)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1


def linear_bounds(coef: dict[int, int], in_lo, in_hi) -> tuple[int, int]:
    """Exact bounds of sum_i coef[i] * x_i for x_i in [in_lo[i], in_hi[i]] (sparse coef)."""
    lo = hi = 0
    for i, c in coef.items():
        if c > 0:
            lo += c * in_lo[i]
            hi += c * in_hi[i]
        elif c < 0:
            lo += c * in_hi[i]
            hi += c * in_lo[i]
    return lo, hi


def combine_forms(ca: dict[int, int], sa: int, cb: dict[int, int], sb: int, s: int) -> dict[int, int]:
    """The linear form (a << sa) + s * (b << sb), zero coefficients dropped."""
    out = {i: c << sa for i, c in ca.items()}
    for i, c in cb.items():
        v = out.get(i, 0) + s * (c << sb)
        if v:
            out[i] = v
        else:
            out.pop(i, None)
    return out


#: the cost models of ``AdderGraph.target_cost`` (``qir compile --target``)
TARGETS = ("xilinx", "ecp5", "asic")
#: ``asic``: NAND2 equivalents x 3 of a full-adder bit (2 XOR, 2 AND, OR) and a half-adder bit
#: (XOR, AND) in ``qir.report.NAND2_EQUIVALENT``'s weights
ASIC_FULL, ASIC_HALF = 24, 10


# ------------------------------------------------------------------------------ the graph
@dataclass
class AdderGraph:
    """A shared adder graph for a constant matrix-vector product (see the module docstring)."""

    n_in: int
    in_lo: list[int]
    in_hi: list[int]
    #: per adder node (ids n_in, n_in+1, ...): operands, shifts and sign of the second operand
    a: list[int] = field(default_factory=list)
    sa: list[int] = field(default_factory=list)
    b: list[int] = field(default_factory=list)
    sb: list[int] = field(default_factory=list)
    sign: list[int] = field(default_factory=list)
    #: per output: node (-1: constant), shift, sign (+1/-1) and constant offset
    onode: list[int] = field(default_factory=list)
    oshift: list[int] = field(default_factory=list)
    osign: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)

    def __post_init__(self):
        self._derive()

    # -- derived quantities ---------------------------------------------------------------
    def _derive(self) -> None:
        """Exact linear form, interval, zero LSBs and adder depth of every node."""
        n = self.n_in
        coefs: list[dict[int, int]] = [{k: 1} for k in range(n)]
        lo = [int(v) for v in self.in_lo]
        hi = [int(v) for v in self.in_hi]
        depth = [0] * n
        for a, sa, b, sb, s in zip(self.a, self.sa, self.b, self.sb, self.sign):
            c = combine_forms(coefs[a], sa, coefs[b], sb, s)
            coefs.append(c)
            lo_, hi_ = linear_bounds(c, self.in_lo, self.in_hi)
            lo.append(lo_)
            hi.append(hi_)
            depth.append(max(depth[a], depth[b]) + 1)
        self.coefs, self.lo, self.hi, self.depth = coefs, lo, hi, depth
        self.zero_lsbs = [min((tz(x) for x in c.values()), default=0) for c in coefs]
        # inputs: their own value may be even; we know nothing, so 0
        for k in range(n):
            self.zero_lsbs[k] = 0

    @property
    def n_out(self) -> int:
        return len(self.onode)

    @property
    def n_nodes(self) -> int:
        return self.n_in + len(self.a)

    @property
    def n_adders(self) -> int:
        return len(self.a)

    def width(self, k: int) -> int:
        return range_bits(self.lo[k], self.hi[k])

    def signed(self, k: int) -> bool:
        return self.lo[k] < 0

    def out_bounds(self, j: int) -> tuple[int, int]:
        k = self.onode[j]
        if k < 0:
            return self.offset[j], self.offset[j]
        lo, hi = self.lo[k] << self.oshift[j], self.hi[k] << self.oshift[j]
        if self.osign[j] < 0:
            lo, hi = -hi, -lo
        return lo + self.offset[j], hi + self.offset[j]

    def matrix(self) -> np.ndarray:
        """The constant matrix this graph computes (n_in x n_out), from the node linear forms."""
        m = np.zeros((self.n_in, self.n_out), dtype=object)
        for j, k in enumerate(self.onode):
            if k >= 0:
                for i, c in self.coefs[k].items():
                    m[i, j] = self.osign[j] * (c << self.oshift[j])
        return m

    def coef_vector(self, k: int) -> list[int]:
        """Node k's linear form as a dense list over the inputs."""
        return [self.coefs[k].get(i, 0) for i in range(self.n_in)]

    # -- cost -----------------------------------------------------------------------------
    def node_cost(self, k: int) -> int:
        """Adder bits of node k (0 for inputs)."""
        if k < self.n_in:
            return 0
        i = k - self.n_in
        ta = self.sa[i] + self.zero_lsbs[self.a[i]]
        tb = self.sb[i] + self.zero_lsbs[self.b[i]]
        start = tb if self.sign[i] < 0 else max(ta, tb)
        return max(self.width(k) - start, 1)

    def out_cost(self, j: int) -> int:
        """Adder bits of output j's constant add / negation (0 when it is a plain wire)."""
        k = self.onode[j]
        if k < 0:
            return 0
        off = self.offset[j]
        if off == 0 and self.osign[j] > 0:
            return 0
        t_node = self.oshift[j] + self.zero_lsbs[k]
        start = t_node if self.osign[j] < 0 else max(t_node, tz(off))
        lo, hi = self.out_bounds(j)
        return max(range_bits(lo, hi) - start, 1)

    def cost(self) -> int:
        """Total adder bits (the instant estimate ``qir report`` prints)."""
        return sum(self.node_cost(k) for k in range(self.n_in, self.n_nodes)) + \
            sum(self.out_cost(j) for j in range(self.n_out))

    def lut_bits(self) -> int:
        """Adder bits where both operands can be non-zero (each node held as an unsigned field
        of width ``(hi - lo).bit_length()`` above its zero LSBs, as ``qir.rtl.addergraph`` does):
        the LUTs a carry-chain FPGA spends; constant adds cost none."""
        tot = 0
        for i in range(self.n_adders):
            spans = []
            for k, sh in ((self.a[i], self.sa[i]), (self.b[i], self.sb[i])):
                spans.append((sh + self.zero_lsbs[k], sh + max((self.hi[k] - self.lo[k]).bit_length(), 1)))
            tot += max(0, min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]))
        return tot

    def adder_spans(self, i: int) -> tuple[int, int, int]:
        """(LUT bits, carry-chain bits, result bits) of adder i (node n_in + i): the overlap of
        the two operand fields (``lut_bits``), the bits from the lower end of that overlap to the
        top of the result field (what a carry chain spans; 0 for a concatenation of disjoint
        fields) and the result field's width above its zero LSBs."""
        spans = []
        for k, sh in ((self.a[i], self.sa[i]), (self.b[i], self.sb[i])):
            spans.append((sh + self.zero_lsbs[k], sh + max((self.hi[k] - self.lo[k]).bit_length(), 1)))
        lo = max(spans[0][0], spans[1][0])
        ov = max(0, min(spans[0][1], spans[1][1]) - lo)
        k = self.n_in + i
        top = self.zero_lsbs[k] + max((self.hi[k] - self.lo[k]).bit_length(), 1)
        return ov, (max(top - lo, ov) if ov else 0), top - self.zero_lsbs[k]

    def chain_bits(self) -> int:
        """Carry-chain bits of all adders (``adder_spans``): ECP5 maps every such bit to half a
        ``CCU2C`` cell (two bits per cell), whether one or both operands are live there."""
        return sum(self.adder_spans(i)[1] for i in range(self.n_adders))

    def target_cost(self, target: str = "xilinx") -> int:
        """What the adder-graph search minimizes for ``target`` (``TARGETS``): ``xilinx``: LUT
        bits (``lut_bits``; one LUT6 per bit where both operands are live, the rest rides the
        CARRY8); ``ecp5``: carry-chain bits (``chain_bits``; 2 x CCU2C, the LUT4 + 2 x CCU2C
        logic count of ``synth_ecp5``); ``asic``: NAND2-equivalent area of ``qir report --synth
        asic``'s generic cells, a full adder (2 XOR + 2 AND + OR, 8.0) per LUT bit and a half
        adder (XOR + AND, 3.33) per further chain bit, in units of 1/3 NAND2 (24 and 10)."""
        if target == "xilinx":
            return self.lut_bits()
        if target == "ecp5":
            return self.chain_bits()
        if target == "asic":
            tot = 0
            for i in range(self.n_adders):
                ov, ch, _ = self.adder_spans(i)
                tot += ASIC_FULL * ov + ASIC_HALF * (ch - ov)
            return tot
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")

    def max_depth(self) -> int:
        return max((self.depth[k] + self.out_extra_depth(j) for j, k in enumerate(self.onode) if k >= 0),
                   default=0)

    def out_extra_depth(self, j: int) -> int:
        k = self.onode[j]
        return int(k >= 0 and (self.offset[j] != 0 or self.osign[j] < 0))

    # -- evaluation -----------------------------------------------------------------------
    def node_values(self, x: np.ndarray) -> list[np.ndarray]:
        """Every node's value for integer inputs ``x`` of shape (N, n_in), exactly (int64, or
        Python ints when a node may exceed 62 bits)."""
        x = np.asarray(x)
        wide = max((self.width(k) + 2 for k in range(self.n_nodes)), default=1) > 62
        dt = object if wide else np.int64
        vals = [x[:, i].astype(dt) for i in range(self.n_in)]
        for a, sa, b, sb, s in zip(self.a, self.sa, self.b, self.sb, self.sign):
            va = vals[a] * (1 << sa) if sa else vals[a]
            vb = vals[b] * (1 << sb) if sb else vals[b]
            vals.append(va + vb if s > 0 else va - vb)
        return vals

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Outputs for integer inputs ``x`` of shape (N, n_in), exactly."""
        x = np.asarray(x)
        vals = self.node_values(x)
        wide = any(range_bits(*self.out_bounds(j)) > 62 for j in range(self.n_out)) or \
            (vals and vals[0].dtype == object)
        dt = object if wide else np.int64
        out = np.zeros((x.shape[0], self.n_out), dtype=dt)
        for j, k in enumerate(self.onode):
            col = np.full(x.shape[0], self.offset[j], dtype=dt)
            if k >= 0:
                v = vals[k].astype(dt) * (1 << self.oshift[j])
                col = col + v if self.osign[j] > 0 else col - v
            out[:, j] = col
        return out

    # -- pipelining -----------------------------------------------------------------------
    def stages(self, max_depth: int, in_level: int = 0) -> tuple[list[int], list[int]]:
        """Stage of every node and every output when at most ``max_depth`` adder levels may
        run between registers and the inputs arrive ``in_level`` levels into stage 0."""
        lev = [in_level + d for d in self.depth]
        st = [0 if k < self.n_in else (lev[k] - 1) // max_depth for k in range(self.n_nodes)]
        out = []
        for j, k in enumerate(self.onode):
            if k < 0:
                out.append(0)
                continue
            e = lev[k] + self.out_extra_depth(j)
            out.append(max(st[k], (e - 1) // max_depth if e else 0))
        return st, out



# ------------------------------------------------------------------------------ the codec
def to_arrays(g: AdderGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes N x 5 [a, sa, b, sb, sign], outputs M x 3 [node, shift, sign], offset (M,)) of ``g``."""
    nodes = np.array([g.a, g.sa, g.b, g.sb, g.sign], dtype=np.int64).T.reshape(-1, 5)
    outs = np.array([g.onode, g.oshift, g.osign], dtype=np.int64).T.reshape(-1, 3)
    return nodes, outs, np.array(g.offset, dtype=object)


def from_arrays(n_in: int, in_lo, in_hi, nodes, outputs, offset) -> AdderGraph:
    """The ``AdderGraph`` of ``to_arrays``'s three arrays, inputs in [in_lo[i], in_hi[i]]."""
    nodes = np.asarray(nodes).reshape(-1, 5).tolist()
    outs = np.asarray(outputs).reshape(-1, 3).tolist()
    return AdderGraph(n_in, list(in_lo), list(in_hi),
                      a=[r[0] for r in nodes], sa=[r[1] for r in nodes], b=[r[2] for r in nodes],
                      sb=[r[3] for r in nodes], sign=[r[4] for r in nodes],
                      onode=[r[0] for r in outs], oshift=[r[1] for r in outs], osign=[r[2] for r in outs],
                      offset=[int(v) for v in np.asarray(offset).ravel()])
