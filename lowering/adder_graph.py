"""Constant matrix-vector products as shared adder graphs (the ``cmvm`` lowering style).

``build(matrix, offset, in_lo, in_hi)`` turns ``out[j] = sum_i x[i] * matrix[i, j] + offset[j]``
(integer mantissas, ``x[i]`` in ``[in_lo[i], in_hi[i]]``) into a graph of two-input adders:

1. **CSD**: every constant is written in canonical signed digits, so each output starts as a
   list of terms ``±(x_i << k)``.
2. **Common subexpressions across all outputs**: the most profitable two-term pattern
   ``(a, b, relative shift, relative sign)`` is turned into one adder node and substituted
   everywhere it occurs; repeated until no pattern occurs twice.  Profit is counted in adder
   bits (occurrences - 1) * width of the new node, so wide shared sums win over narrow ones.
   A depth budget per output (its CSD-only balanced-tree depth plus ``depth_slack``) keeps the
   sharing from building long chains.  The greedy search runs once per pattern weight in
   ``SCORES`` (node width; LUT bits, i.e. the bits where both operands can be non-zero; mixes)
   and the graph with the fewest LUT bits wins (qkeras_3layer: 24,995 LUT bits with the width
   weight and Huffman output trees, 24,485 with the best weight, 23,968 with the output trees
   of step 3 too).
3. **Output trees**: each output's remaining terms are summed cheapest adder first (fewest LUT
   bits) as long as the rest still fits in its depth budget and in the depth of the layer's
   deepest output tree, so outputs with spare levels become chains whose wide partial sums
   meet narrow terms (outputs beyond ``LUT_REDUCE_MAX_TERMS`` terms: shallowest first, a
   Huffman tree on depth, narrowest first among equal depths).  Identical adders built for
   different outputs are shared.
4. **Exact widths**: every node is a known linear form of the inputs, so its exact value
   interval (hence its minimal width) and its known-zero LSBs follow from the constants; adders
   only span the bits where both operands can be non-zero (LSBs below pass through), and
   subtractions are oriented so that the subtrahend is the operand with more zero LSBs.

A node is ``value = (v[a] << sa) + sign * (v[b] << sb)`` with ``sa, sb >= 0`` and
``sign`` +1/-1; node ids ``0 .. n_in-1`` are the inputs.  Each output is
``offset[j] + osign[j] * (v[onode[j]] << oshift[j])``, or just ``offset[j]`` when ``onode[j]``
is -1 (a zero column).

Cost model (``AdderGraph.cost``): one unit per result bit an adder computes, i.e. the result
width minus the pass-through LSBs, plus the same for each output's constant add or negation.
``AdderGraph.lut_bits`` counts what Yosys actually spends on the offset-binary RTL of
``qir.rtl.addergraph``: one LUT per bit where both operands can be non-zero (bits of one
operand only, and constant adds, ride the carry chain without a LUT).
"""
from __future__ import annotations

import heapq
from collections import Counter
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


def _linear_bounds(coef: dict[int, int], in_lo, in_hi) -> tuple[int, int]:
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


def _combine(ca: dict[int, int], sa: int, cb: dict[int, int], sb: int, s: int) -> dict[int, int]:
    """The linear form (a << sa) + s * (b << sb), zero coefficients dropped."""
    out = {i: c << sa for i, c in ca.items()}
    for i, c in cb.items():
        v = out.get(i, 0) + s * (c << sb)
        if v:
            out[i] = v
        else:
            out.pop(i, None)
    return out


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
            c = _combine(coefs[a], sa, coefs[b], sb, s)
            coefs.append(c)
            l, h = _linear_bounds(c, self.in_lo, self.in_hi)
            lo.append(l)
            hi.append(h)
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


# ------------------------------------------------------------------------------ the builder
class _Builder:
    def __init__(self, in_lo, in_hi):
        self.n_in = len(in_lo)
        self.in_lo = [int(v) for v in in_lo]
        self.in_hi = [int(v) for v in in_hi]
        self.lo = list(self.in_lo)
        self.hi = list(self.in_hi)
        self.tz = [0] * self.n_in
        self.depth = [0] * self.n_in
        self.coefs: list[dict[int, int]] = [{k: 1} for k in range(self.n_in)]
        self.ops: list[tuple[int, int, int, int, int]] = []
        self.memo: dict[tuple, tuple[int, int]] = {}

    def node(self, a: int, sa: int, b: int, sb: int, s: int) -> tuple[int, int]:
        """The node (a << sa) + s * (b << sb), as (node id, sign) with the sign to apply;
        subtractions are turned so the subtrahend has the higher zero LSBs."""
        if s < 0 and self.tz[b] + sb < self.tz[a] + sa:
            a, sa, b, sb = b, sb, a, sa
            flip = -1
        else:
            flip = 1
        m = min(sa, sb)
        sa, sb = sa - m, sb - m  # callers keep the common shift outside
        if s > 0 and (b, sb, a, sa) < (a, sa, b, sb):
            a, sa, b, sb = b, sb, a, sa
        key = (a, sa, b, sb, s)
        hit = self.memo.get(key)
        if hit is not None:
            return hit[0], flip
        c = _combine(self.coefs[a], sa, self.coefs[b], sb, s)
        lo, hi = _linear_bounds(c, self.in_lo, self.in_hi)
        k = len(self.lo)
        self.coefs.append(c)
        self.lo.append(lo)
        self.hi.append(hi)
        self.tz.append(min((tz(x) for x in c.values()), default=0))
        self.depth.append(max(self.depth[a], self.depth[b]) + 1)
        self.ops.append((a, sa, b, sb, s))
        self.memo[key] = (k, 1)
        return k, flip

    def est_width(self, a: int, b: int, ds: int, s: int) -> int:
        """Interval-arithmetic width of a + s * (b << ds) (ds may be negative)."""
        la, ha, lb, hb = self.lo[a], self.hi[a], self.lo[b], self.hi[b]
        if ds >= 0:
            lb, hb = lb << ds, hb << ds
        else:
            la, ha = la << -ds, ha << -ds
        if s < 0:
            lb, hb = -hb, -lb
        return range_bits(la + lb, ha + hb) - max(0, -ds)

    def est_overlap(self, a: int, b: int, ds: int) -> int:
        """Bits where both operands of a + (b << ds) can be non-zero (ds may be negative): what
        the adder costs in LUTs, each operand held as an unsigned field of width
        ``(hi - lo).bit_length()`` above its known-zero LSBs (the RTL's offset binary)."""
        la, ha = self.tz[a], max((self.hi[a] - self.lo[a]).bit_length(), 1)
        lb, hb = self.tz[b], max((self.hi[b] - self.lo[b]).bit_length(), 1)
        if ds >= 0:
            lb, hb = lb + ds, hb + ds
        else:
            la, ha = la - ds, ha - ds
        return max(min(ha, hb) - max(la, lb), 0)


def _tree_depth(depths) -> int:
    """Depth of the shallowest binary tree over leaves of the given depths."""
    if not depths:
        return 0
    total = sum(1 << d for d in depths)
    return max(max(depths), (total - 1).bit_length())


#: above this many two-term pairs in a layer, subexpressions are shared within groups of inputs
#: only (MNIST's 784-input layer, 6.1 million pairs: 4 groups, 2 weights, ~30 s of CPU)
MAX_PAIRS = 3_200_000


def build(matrix, offset=None, in_lo=None, in_hi=None, *, cse: bool = True,
          depth_slack: int = 1, max_pairs: int = MAX_PAIRS, scores=None) -> AdderGraph:
    """The shared adder graph of ``x @ matrix + offset`` for x[i] in [in_lo[i], in_hi[i]].

    The subexpression search is greedy, so it runs once per pattern score in ``scores``
    (default ``SCORES``; only the first two for layers beyond ``max_pairs``) and keeps the graph
    with the fewest LUT bits (``AdderGraph.lut_bits``) among those at most ``DEPTH_TOLERANCE``
    adder levels deeper than the first."""
    m = np.asarray(matrix, dtype=object)
    if m.ndim != 2:
        raise ValueError("matrix must be 2-D (n_in x n_out)")
    n_in, n_out = m.shape
    offset = [0] * n_out if offset is None else [int(v) for v in np.asarray(offset, dtype=object).ravel()]
    in_lo = [-128] * n_in if in_lo is None else [int(v) for v in in_lo]
    in_hi = [127] * n_in if in_hi is None else [int(v) for v in in_hi]
    live = [not (in_lo[i] == 0 and in_hi[i] == 0) for i in range(n_in)]  # constant-zero inputs
    n_pairs = 0
    for j in range(n_out):
        n_t = sum(len(csd(m[i, j])) for i in range(n_in) if live[i] and m[i, j] != 0)
        n_pairs += n_t * (n_t - 1) // 2
    scores = list(SCORES if scores is None else scores)
    if not cse:
        scores = scores[:1]
    elif n_pairs > max_pairs:
        scores = scores[:2]  # grouped search on a very wide layer: the width and the LUT-bit weight
    best = None
    inits: dict = {}  # pair statistics per input group, shared by the weights
    for score in scores:
        g = _build_one(m, offset, in_lo, in_hi, live, cse, depth_slack, max_pairs, n_pairs, score, inits)
        if best is None:
            best, depth0, cost0 = g, g.max_depth(), g.lut_bits()
        elif g.max_depth() <= depth0 + DEPTH_TOLERANCE and g.lut_bits() < cost0:
            best, cost0 = g, g.lut_bits()
    return best


def _build_one(m, offset, in_lo, in_hi, live, cse, depth_slack, max_pairs, n_pairs, score,
               inits: dict | None = None) -> AdderGraph:
    n_in, n_out = m.shape
    bld = _Builder(in_lo, in_hi)
    # terms[j]: dict term-id -> (node, shift, sign); term ids are unique per output
    terms: list[dict[int, tuple[int, int, int]]] = []
    tid = 0
    for j in range(n_out):
        t = {}
        for i in range(n_in):
            if not live[i] or m[i, j] == 0:
                continue
            for pos, d in csd(m[i, j]):
                t[tid] = (i, pos, d)
                tid += 1
        terms.append(t)
    budget = [_tree_depth([0] * len(t)) + depth_slack for t in terms]

    # the pair statistics grow with the square of the terms per output: very wide layers (e.g. a
    # 784-input MNIST layer) share subexpressions within groups of inputs only, which keeps the
    # work about linear in the layer size; the groups' partial sums meet in the output trees
    if cse:
        inits = {} if inits is None else inits
        if n_pairs <= max_pairs:
            if None not in inits:
                inits[None] = _pair_stats(terms)
            _cse(bld, terms, budget, score, inits[None])
        else:
            n_groups = -(-n_pairs // max_pairs) * 2
            size = -(-n_in // n_groups)
            merged = [dict() for _ in terms]
            for g0 in range(0, n_in, size):
                part = [{tid: tm for tid, tm in t.items() if g0 <= tm[0] < g0 + size} for t in terms]
                _cse(bld, part, budget, score)  # groups: not cached, one group's statistics at a time
                for j, t in enumerate(part):
                    for tm in t.values():  # fresh ids: each group numbers its new terms itself
                        merged[j][len(merged[j])] = tm
            terms = merged

    onode, oshift, osign = [], [], []
    layer_depth = max((_tree_depth([bld.depth[nd] for nd, _, _ in t.values()]) for t in terms), default=0)
    for j in range(n_out):
        items = list(terms[j].values())
        if REDUCE_STYLE == "lut" and 2 < len(items) <= LUT_REDUCE_MAX_TERMS:
            node, shift, sgn = _reduce_lut(bld, items, min(layer_depth, budget[j]))
        else:
            node, shift, sgn = _reduce(bld, items)
        onode.append(node)
        oshift.append(shift)
        osign.append(sgn)
    g = AdderGraph(n_in, in_lo, in_hi,
                   a=[o[0] for o in bld.ops], sa=[o[1] for o in bld.ops],
                   b=[o[2] for o in bld.ops], sb=[o[3] for o in bld.ops],
                   sign=[o[4] for o in bld.ops],
                   onode=onode, oshift=oshift, osign=osign, offset=offset)
    return prune(g)


def score_width(bld: _Builder, n1: int, n2: int, ds: int, s: int) -> int:
    """Pattern weight: the width of the new node (wide shared sums first)."""
    return bld.est_width(n1, n2, ds, s)


def score_overlap(bld: _Builder, n1: int, n2: int, ds: int, s: int) -> int:
    """Pattern weight: the adder's LUT bits (where both operands can be non-zero), i.e. what
    each further occurrence saves; the node width breaks ties."""
    return 64 * bld.est_overlap(n1, n2, ds) + bld.est_width(n1, n2, ds, s)


def score_mixed(bld: _Builder, n1: int, n2: int, ds: int, s: int) -> int:
    """Pattern weight between the two: LUT bits count twice, the node width once."""
    return 2 * bld.est_overlap(n1, n2, ds) + bld.est_width(n1, n2, ds, s)


def score_sum(bld: _Builder, n1: int, n2: int, ds: int, s: int) -> int:
    return bld.est_overlap(n1, n2, ds) + bld.est_width(n1, n2, ds, s)


# each weight is a linear form co * LUT bits + cw * width: the search scores the initial patterns
# (all of the inputs) with numpy from that form (``_initial_scores``); the functions are the
# reference and serve the patterns of new nodes
score_width.linear = (0, 1)
score_overlap.linear = (64, 1)
score_mixed.linear = (2, 1)
score_sum.linear = (1, 1)

#: the pattern weights ``build`` tries, the first being the reference for the depth bound
SCORES = (score_width, score_overlap, score_mixed, score_sum)
#: adder levels a candidate may exceed the first (width-scored) graph by
DEPTH_TOLERANCE = 1


#: pattern keys are ints, ordered as the tuples (n1, n2, ds, s) they encode (so ties between
#: equal scores break the same way): n1 << (_NB + _DSB + 1) | n2 << (_DSB + 1) | (ds + _DSOFF) << 1
#: | (s > 0).  Hashing and comparing one int is much cheaper than a 4-tuple in the pair loops.
_NB, _DSB = 24, 13
_DSOFF = 1 << (_DSB - 1)


def _decode(key: int) -> tuple[int, int, int, int]:
    s = 1 if key & 1 else -1
    key >>= 1
    ds = (key & ((1 << _DSB) - 1)) - _DSOFF
    key >>= _DSB
    return key >> _NB, key & ((1 << _NB) - 1), ds, s


def _bit_length(x: np.ndarray) -> np.ndarray:
    """int.bit_length of non-negative int64 values below 2^53 (exact through float64)."""
    return np.frexp(x.astype(np.float64))[1].astype(np.int64)


def _range_bits_np(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    pos = np.maximum(_bit_length(np.maximum(hi, 0)), 1)
    neg = np.maximum(_bit_length(np.maximum(hi, 0)), _bit_length(np.maximum(-lo - 1, 0))) + 1
    return np.where(lo >= 0, pos, neg)


def _initial_scores(bld: _Builder, keys: list[int]):
    """(LUT bits, width) of every pattern in ``keys`` (between input nodes), as ``est_overlap``
    and ``est_width`` compute them, vectorized; None when the values are too wide for int64."""
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo = np.array(bld.lo[:bld.n_in], dtype=object)
    hi = np.array(bld.hi[:bld.n_in], dtype=object)
    big = max(max(abs(int(v)) for v in lo), max(abs(int(v)) for v in hi))
    k = np.array(keys, dtype=np.int64)
    sgn = (k & 1).astype(bool)
    k = k >> 1
    ds = (k & ((1 << _DSB) - 1)) - _DSOFF
    k = k >> _DSB
    n1, n2 = k >> _NB, k & ((1 << _NB) - 1)
    if big.bit_length() + int(np.abs(ds).max()) + 2 > 50 or int(max(n1.max(), n2.max())) >= bld.n_in:
        return None
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    tzs = np.array(bld.tz[:bld.n_in], dtype=np.int64)
    pos = ds >= 0
    sh_a, sh_b = np.where(pos, 0, -ds), np.where(pos, ds, 0)
    la, ha = lo[n1] << sh_a, hi[n1] << sh_a
    lb, hb = lo[n2] << sh_b, hi[n2] << sh_b
    lb, hb = np.where(sgn, lb, -hb), np.where(sgn, hb, -lb)
    width = _range_bits_np(la + lb, ha + hb) - np.maximum(0, -ds)
    span = np.maximum(_bit_length(hi - lo), 1)
    oa_lo, oa_hi = tzs[n1] + sh_a, span[n1] + sh_a
    ob_lo, ob_hi = tzs[n2] + sh_b, span[n2] + sh_b
    overlap = np.maximum(np.minimum(oa_hi, ob_hi) - np.maximum(oa_lo, ob_lo), 0)
    return overlap, width


def _pair_stats(terms) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Initial pattern counts and, per pattern, the outputs holding it (ascending); the same
    for every pattern weight, so ``build`` computes it once per layer (or input group)."""
    stats: dict[int, int] = {}
    where: dict[int, list[int]] = {}
    get = stats.get
    for j, t in enumerate(terms):
        items = list(t.values())
        seen = set()
        for x in range(len(items)):
            n1, k1, s1 = items[x]
            for y in range(x + 1, len(items)):
                n2, k2, s2 = items[y]
                if n1 > n2 or (n1 == n2 and k1 > k2):
                    key = (((((n2 << _NB) | n1) << _DSB) | (k1 - k2 + _DSOFF)) << 1) | (s1 == s2)
                else:
                    key = (((((n1 << _NB) | n2) << _DSB) | (k2 - k1 + _DSOFF)) << 1) | (s1 == s2)
                stats[key] = get(key, 0) + 1
                seen.add(key)
        for key in seen:
            w = where.get(key)
            if w is None:
                where[key] = [j]
            else:
                w.append(j)
    return stats, where


def _cse(bld: _Builder, terms, budget, weight=score_width, init=None) -> None:
    """Greedy two-term subexpression sharing across the outputs ``terms`` (mutated in place):
    repeatedly the pattern with the highest (occurrences - 1) * ``weight`` becomes one node.
    ``init``: ``_pair_stats(terms)``, shared by the runs of several weights (not mutated)."""
    stats0, where0 = _pair_stats(terms) if init is None else init
    stats = Counter(stats0)  # Counter.update(keys) counts in C
    # outputs a pattern (ever) occurred in: the initial lists plus the ones added since; outputs
    # no longer holding it stay listed, the counts are authoritative
    # outputs a node was introduced into as a term: with ``where0`` a superset of the outputs
    # holding a pattern (every new pattern involves a new node)
    new_outputs: dict[int, list[int]] = {}
    minus: Counter = Counter()  # count of a pattern = stats - minus (both only ever grow)
    score_cache: dict[int, int] = {}
    weight_of = score_cache.get

    def score(key: int, c: int) -> int:
        w = weight_of(key)
        if w is None:
            n1, n2, ds, s = _decode(key)
            w = weight(bld, n1, n2, ds, s)
            score_cache[key] = w
        return (c - 1) * w

    keys = [key for key, c in stats.items() if c >= 2]
    lin = getattr(weight, "linear", None)
    est = _initial_scores(bld, keys) if lin is not None else None
    if est is not None:
        w = (lin[0] * est[0] + lin[1] * est[1]).tolist()
        score_cache.update(zip(keys, w))
        heap = [(-(stats[key] - 1) * wk, -stats[key], key) for key, wk in zip(keys, w)]
    else:
        heap = [(-score(key, stats[key]), -stats[key], key) for key in keys]
    heapq.heapify(heap)
    push = heapq.heappush
    pop = heapq.heappop
    get = stats.get
    mget = minus.get
    blocked: set[int] = set()
    next_tid = max((max(t) for t in terms if t), default=0) + 1
    depth = bld.depth
    # per output: node -> its term ids in insertion order (the order of ``terms[j]``), so an
    # output is searched for a pattern's occurrences without a scan of all its terms
    index: list[dict[int, dict[int, None]]] = []
    for t in terms:
        ix: dict[int, dict[int, None]] = {}
        for i, tm in t.items():
            d = ix.get(tm[0])
            if d is None:
                ix[tm[0]] = {i: None}
            else:
                d[i] = None
        index.append(ix)
    while heap:
        neg_score, _, key = pop(heap)
        c = get(key, 0) - mget(key, 0)
        if c < 2 or key in blocked:
            continue
        if -neg_score != score(key, c):
            push(heap, (-score(key, c), -c, key))  # stale entry: its count went down
            continue
        n1, n2, ds, s = _decode(key)
        # disjoint occurrences, per output, respecting the depth budget
        occ: list[tuple[int, int, int]] = []
        new_depth = max(depth[n1], depth[n2]) + 1
        js = set(where0.get(key, ()))
        js.update(new_outputs.get(n1, ()))
        js.update(new_outputs.get(n2, ()))
        for j in sorted(js):
            t = terms[j]
            ix = index[j]
            by1, by2 = ix.get(n1), ix.get(n2)
            if not by1 or not by2:
                continue
            used: set[int] = set()
            mine = []
            for i1 in by1:
                if i1 in used:
                    continue
                _, k1, s1 = t[i1]
                for i2 in by2:
                    if i2 in used or i2 == i1:
                        continue
                    _, k2, s2 = t[i2]
                    if k2 - k1 == ds and s1 * s2 == s:
                        used.update((i1, i2))
                        mine.append((j, i1, i2))
                        break
            if not mine:
                continue
            depths = [depth[nd] for i, (nd, _, _) in t.items() if i not in used]
            depths += [new_depth] * len(mine)
            if _tree_depth(depths) > budget[j]:
                continue
            occ.extend(mine)
        if len(occ) < 2:
            blocked.add(key)
            continue
        # build the node once; shifts of the pattern: n1 at 0, n2 at ds (or n1 at -ds)
        sa, sb = (0, ds) if ds >= 0 else (-ds, 0)
        node, flip = bld.node(n1, sa, n2, sb, s)
        dirty: set[int] = set()
        for j, i1, i2 in occ:
            t = terms[j]
            ix = index[j]
            _, k1, s1 = t[i1]
            _, k2, _ = t[i2]
            for i in (i1, i2):  # the pairs of the two replaced terms go
                m1, q1, r1 = t.pop(i)
                del ix[m1][i]
                minus.update([
                    (((((m2 << _NB) | m1) << _DSB) | (q1 - q2 + _DSOFF)) << 1) | (r1 == r2)
                    if m1 > m2 or (m1 == m2 and q1 > q2) else
                    (((((m1 << _NB) | m2) << _DSB) | (q2 - q1 + _DSOFF)) << 1) | (r1 == r2)
                    for m2, q2, r2 in t.values()])
            m1, q1, r1 = node, min(k1, k2), s1 * flip
            new = [  # the pairs of the new term come
                (((((m2 << _NB) | m1) << _DSB) | (q1 - q2 + _DSOFF)) << 1) | (r1 == r2)
                if m1 > m2 or (m1 == m2 and q1 > q2) else
                (((((m1 << _NB) | m2) << _DSB) | (q2 - q1 + _DSOFF)) << 1) | (r1 == r2)
                for m2, q2, r2 in t.values()]
            stats.update(new)
            dirty.update(new)
            t[next_tid] = (m1, q1, r1)
            d = ix.get(m1)
            if d is None:
                ix[m1] = {next_tid: None}
            else:
                d[next_tid] = None
            next_tid += 1
        lst = new_outputs.get(node)
        if lst is None:
            new_outputs[node] = [j for j, _, _ in occ]
        else:
            lst.extend(j for j, _, _ in occ)
        # one heap entry per pattern whose count went up (its priority rose); the lazy checks
        # above make the choice the same as pushing at every increment
        for kk in dirty:
            cc = stats[kk] - mget(kk, 0)
            if cc >= 2:
                push(heap, (-score(kk, cc), -cc, kk))


#: "lut": ``_reduce_lut`` for outputs of at most ``LUT_REDUCE_MAX_TERMS`` terms; "tree": ``_reduce``
REDUCE_STYLE = "lut"
#: outputs with more terms than this are summed by ``_reduce`` (``_reduce_lut`` is cubic)
LUT_REDUCE_MAX_TERMS = 64


def _reduce_lut(bld: _Builder, items, depth: int) -> tuple[int, int, int]:
    """Sum the terms of one output within ``depth`` adder levels, cheapest adder first: each
    step adds the pair of partial sums with the fewest LUT bits (``_Builder.est_overlap``) among
    the pairs after which the rest still fits in ``depth`` levels (Kraft: sum of 2^depth <=
    2^depth).  Outputs with spare levels below ``depth`` trade them for chains, whose wide
    partial sums meet narrow terms instead of each other."""
    cur = [(nd, k, s) for nd, k, s in items]
    budget = 1 << depth

    def info(item):
        # (depth, lowest and highest+1 bit position that can be non-zero, range width): the
        # adder's LUT bits (``_Builder.est_overlap``) are the overlap of the two bit spans
        nd, k, _ = item
        rng = bld.hi[nd] - bld.lo[nd]
        return bld.depth[nd], bld.tz[nd] + k, max(rng.bit_length(), 1) + k, rng.bit_length()

    infos = [info(it) for it in cur]
    while len(cur) > 1:
        kraft = sum(1 << d for d, _, _, _ in infos)
        best = None
        for x in range(len(cur)):
            d1, lo1, hi1, w1 = infos[x]
            for y in range(x + 1, len(cur)):
                d2, lo2, hi2, w2 = infos[y]
                dn = (d1 if d1 > d2 else d2) + 1
                if kraft - (1 << d1) - (1 << d2) + (1 << dn) > budget:
                    continue
                ov = (hi1 if hi1 < hi2 else hi2) - (lo1 if lo1 > lo2 else lo2)
                # equal LUT bits: the pair holding the widest partial sum (it grows into a chain)
                key = (ov if ov > 0 else 0, -(w1 if w1 > w2 else w2), dn, x, y)
                if best is None or key < best:
                    best = key
        if best is None:  # cannot happen when depth >= the tree depth of the items; stay safe
            return _reduce(bld, cur)
        x, y = best[-2:]
        (n1, k1, s1), (n2, k2, s2) = cur[x], cur[y]
        base = min(k1, k2)
        if s1 < 0 and s2 > 0:  # keep the positive term first
            n1, k1, s1, n2, k2, s2 = n2, k2, s2, n1, k1, s1
        node, flip = bld.node(n1, k1 - base, n2, k2 - base, s1 * s2)
        del cur[y], cur[x], infos[y], infos[x]
        cur.append((node, base, s1 * flip))
        infos.append(info(cur[-1]))
    return cur[0]


def _reduce(bld: _Builder, items) -> tuple[int, int, int]:
    """Sum the terms of one output with a balanced, shallowest-first tree; returns
    (node, shift, sign) or (-1, 0, 1) for no terms."""
    if not items:
        return -1, 0, 1
    heap = []
    for n, (nd, k, s) in enumerate(items):
        msb = range_bits(bld.lo[nd], bld.hi[nd]) + k
        heap.append((bld.depth[nd], msb, n, nd, k, s))
    heapq.heapify(heap)
    uid = len(items)
    while len(heap) > 1:
        d1, m1, _, n1, k1, s1 = heapq.heappop(heap)
        d2, m2, _, n2, k2, s2 = heapq.heappop(heap)
        base = min(k1, k2)
        if s1 < 0 and s2 > 0:  # keep the positive term first
            n1, k1, s1, n2, k2, s2 = n2, k2, s2, n1, k1, s1
        node, flip = bld.node(n1, k1 - base, n2, k2 - base, s1 * s2)
        sign = s1 * flip
        msb = range_bits(bld.lo[node], bld.hi[node]) + base
        heapq.heappush(heap, (bld.depth[node], msb, uid, node, base, sign))
        uid += 1
    _, _, _, nd, k, s = heap[0]
    return nd, k, s


def prune(g: AdderGraph) -> AdderGraph:
    """Drop adder nodes no output depends on and renumber the rest."""
    need = [False] * g.n_nodes
    stack = [k for k in g.onode if k >= 0]
    while stack:
        k = stack.pop()
        if need[k]:
            continue
        need[k] = True
        if k >= g.n_in:
            i = k - g.n_in
            stack.extend((g.a[i], g.b[i]))
    if all(need[g.n_in:]):
        return g
    remap = list(range(g.n_in))
    keep = []
    for k in range(g.n_in, g.n_nodes):
        if need[k]:
            remap.append(g.n_in + len(keep))
            keep.append(k - g.n_in)
        else:
            remap.append(-1)
    return AdderGraph(g.n_in, g.in_lo, g.in_hi,
                      a=[remap[g.a[i]] for i in keep], sa=[g.sa[i] for i in keep],
                      b=[remap[g.b[i]] for i in keep], sb=[g.sb[i] for i in keep],
                      sign=[g.sign[i] for i in keep],
                      onode=[remap[k] if k >= 0 else -1 for k in g.onode],
                      oshift=list(g.oshift), osign=list(g.osign), offset=list(g.offset))
