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
operand only, and constant adds, ride the carry chain without a LUT, except where that bit is
complemented: an ``INV``, which ``AdderGraph.polarity`` keeps few).
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

    # -- storage polarity (``qir.rtl.addergraph``) -------------------------------------------
    def _field_width(self, k: int) -> int:
        return max((self.hi[k] - self.lo[k]).bit_length(), 1)

    def _alone_bits(self, i: int) -> tuple[int, int]:
        """(bits of operand a's field outside operand b's, and b's outside a's) of adder i."""
        spans = []
        for k, sh in ((self.a[i], self.sa[i]), (self.b[i], self.sb[i])):
            spans.append((sh, sh + self._field_width(k)))
        ov = max(0, min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]))
        return spans[0][1] - spans[0][0] - ov, spans[1][1] - spans[1][0] - ov

    def polarity_cost(self, i: int, pol: list[int]) -> int:
        """Inverted stand-alone bits of adder i (node n_in + i) under storage polarities ``pol``:
        node k's field f holds v = base + pol[k] * f, so the adder computes f_a +/- f_b (with
        alpha = pol[k] pol[a], beta = pol[k] sign pol[b]): a plain sum costs no inverter, ``a +
        ~b`` one per bit where only b is live, ``~a + b`` one per bit where only a is (where both
        are live the carry-chain LUT absorbs it); alpha = beta = -1 is never chosen."""
        k = self.n_in + i
        alpha = pol[k] * pol[self.a[i]]
        beta = pol[k] * self.sign[i] * pol[self.b[i]]
        if alpha > 0 and beta > 0:
            return 0
        a_only, b_only = self._alone_bits(i)
        if alpha > 0:
            return b_only
        if beta > 0:
            return a_only
        raise ValueError("polarity: both operands of an adder complemented")

    def polarity(self, c0: int = 0, keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """A storage polarity (+1: v = base + f, -1: v = base - f) per node that keeps the
        inverted stand-alone bits of ``polarity_cost`` low: each node in graph order takes the
        cheaper of its two valid choices (pol[a], or sign * pol[b]), then two passes in reverse
        order flip a node where that lowers its own and its readers' cost and every reader stays
        valid.  Inputs are +1, and so are the nodes in ``keep`` and all their operands, transitively
        (their fields stay exactly those of the all-+1 graph: ``qir.rtl.addergraph`` keeps the
        registered nodes so, since a changed field there cost flip-flops in Yosys).
        Deterministic; the outputs absorb any polarity (their constant)."""
        n = self.n_in
        pol = [1] * self.n_nodes
        readers: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for i in range(self.n_adders):
            readers[self.a[i]].append(i)
            if self.b[i] != self.a[i]:
                readers[self.b[i]].append(i)

        fixed = set(keep)
        for i in reversed(range(self.n_adders)):
            if n + i in fixed:
                fixed.update((self.a[i], self.b[i]))

        def valid(i: int) -> bool:
            k = n + i
            return pol[k] * pol[self.a[i]] > 0 or pol[k] * self.sign[i] * pol[self.b[i]] > 0

        for i in range(self.n_adders):
            k = n + i
            if k in fixed:
                continue  # its operands are fixed too: +1 is valid
            best = None
            for p in sorted({pol[self.a[i]], self.sign[i] * pol[self.b[i]]}, reverse=True):
                pol[k] = p
                c = self.polarity_cost(i, pol)
                if best is None or c < best[0]:
                    best = (c, p)
            pol[k] = best[1]
        for _ in range(2):
            changed = False
            for i in reversed(range(self.n_adders)):
                k = n + i
                if k in fixed:
                    continue
                group = [i] + readers[k]
                before = sum(self.polarity_cost(j, pol) for j in group)
                pol[k] = -pol[k]
                if all(valid(j) for j in group) and sum(self.polarity_cost(j, pol) for j in group) < before:
                    changed = True
                    continue
                pol[k] = -pol[k]
            if not changed:
                break
        # nodes read by outputs only: their polarity also sets their outputs' constants, so
        # take the one with fewer inverted bits in the adder and the constant adds together
        outs: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for j, k in enumerate(self.onode):
            if k >= n:
                outs[k].append(j)
        base, top, _ = self.fields(pol)
        for i in range(self.n_adders):
            k = n + i
            if readers[k] or not outs[k] or k in fixed:
                continue
            best = None
            for p in (pol[k], -pol[k]):
                pol[k] = p
                if not valid(i):
                    continue
                b0, t0, _ = self.node_form(i, pol, base, top)
                base[k], top[k] = b0, t0
                c = self.polarity_cost(i, pol) + sum(self.out_inv_bits(j, pol, base, top, c0) for j in outs[k])
                if best is None or c < best[0]:
                    best = (c, p, b0, t0)
            pol[k], base[k], top[k] = best[1], best[2], best[3]
        return pol

    def node_form(self, i: int, pol: list[int], base: list[int], top: list[int]) -> tuple[int, int, tuple]:
        """(base, top, (a, sa, b, sb, neg)) of adder i's node under the storage polarities
        ``pol``, given its operands' ``base`` and ``top`` (the field's largest value): v = (v_a <<
        sa) + sign (v_b << sb) with v_x = base[x] + pol[x] f_x is stored as f = alpha f_a << sa +
        beta f_b << sb + K >= 0 (alpha = pol pol_a, beta = pol sign pol_b; K the complement's
        constant), so v = base + pol f with base = (base_a << sa) + sign (base_b << sb) - pol K.
        The triple is what the hardware adds: (f_a << sa) + (f_b, or ~f_b with ``neg``, << sb),
        the operands swapped when alpha = -1 (``qir.rtl.separate.adder_value``)."""
        k = self.n_in + i
        a, b, sa, sb, s = self.a[i], self.b[i], self.sa[i], self.sb[i], self.sign[i]
        alpha, beta = pol[k] * pol[a], pol[k] * s * pol[b]
        c = (base[a] << sa) + s * (base[b] << sb)
        if alpha > 0 and beta > 0:
            return c, (top[a] << sa) + (top[b] << sb), (a, sa, b, sb, False)
        if alpha > 0:  # f_a + ~f_b (~ over b's field: fb - f_b)
            fb = (1 << max(top[b].bit_length(), 1)) - 1
            return c - pol[k] * (fb << sb), (top[a] << sa) + (fb << sb), (a, sa, b, sb, True)
        if beta > 0:  # ~f_a + f_b
            fa = (1 << max(top[a].bit_length(), 1)) - 1
            return c - pol[k] * (fa << sa), (fa << sa) + (top[b] << sb), (b, sb, a, sa, True)
        raise ValueError("adder graph polarity: both operands of an adder complemented")

    def fields(self, pol: list[int]) -> tuple[list[int], list[int], list[tuple]]:
        """(base, top, forms) of every node under ``pol`` (``node_form``; inputs are offset
        binary: base = the input's minimum, top = its span)."""
        base = [int(v) for v in self.lo[:self.n_in]]
        top = [int(h) - int(lo) for lo, h in zip(self.lo[:self.n_in], self.hi[:self.n_in])]
        forms = []
        for i in range(self.n_adders):
            b0, t0, form = self.node_form(i, pol, base, top)
            base.append(b0)
            top.append(t0)
            forms.append(form)
        return base, top, forms

    def out_constant(self, j: int, pol: list[int], base: list[int], top: list[int], c0: int = 0
                     ) -> tuple[int, bool, int]:
        """(const, neg, width) of output j's constant add: y = offset + c0 + osign (v << sh) is
        const + (f << sh), or const + (~f << sh) with ``neg`` (~ over the field's width), over
        ``width`` bits (the exact range of y)."""
        k, sh = self.onode[j], self.oshift[j]
        lo, hi = self.out_bounds(j)
        fk = (1 << max(top[k].bit_length(), 1)) - 1
        neg = self.osign[j] * pol[k] < 0
        const = self.offset[j] + c0 + ((self.osign[j] * base[k] - (fk if neg else 0)) << sh)
        return const, neg, range_bits(lo + c0, hi + c0)

    def out_inv_bits(self, j: int, pol: list[int], base: list[int], top: list[int], c0: int = 0) -> int:
        """Inverted bits of output j's constant add: carry-chain bits whose sum input is the
        field bit XOR 1 (const bit 1 on f, const bit 0 on ~f), one ``INV`` each."""
        if self.onode[j] < 0:
            return 0
        const, neg, wy = self.out_constant(j, pol, base, top, c0)
        sh = self.oshift[j]
        w = max(top[self.onode[j]].bit_length(), 1)
        bits = [(const >> t) & 1 for t in range(sh, min(sh + w, wy))]
        return bits.count(0) if neg else bits.count(1)

    def inv_bits(self, pol: list[int] | None = None) -> int:
        """Inverted stand-alone adder bits (``polarity_cost``) under ``pol`` (default: ``polarity``)."""
        pol = self.polarity() if pol is None else pol
        return sum(self.polarity_cost(i, pol) for i in range(self.n_adders))

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
