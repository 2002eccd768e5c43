"""The search that builds shared adder graphs for constant matrix-vector products (the ``cmvm``
lowering style); what a graph is (``AdderGraph``, CSD digits, ranges, stages, the codec to op
properties) is the core module ``qir.addergraph``.

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
   ``SCORES`` (node width; LUT bits, i.e. the bits where both operands can be non-zero; mixes;
   fewer on wide layers) and the graph with the lowest target cost wins (``AdderGraph.target_cost``; Xilinx:
   LUT bits.  qkeras_3layer: 24,995 LUT bits with the width weight and Huffman output trees,
   24,485 with the best weight, 23,968 with the output trees of step 3 too).
3. **Output trees**: each output's remaining terms are summed cheapest adder first (fewest LUT
   bits) as long as the rest still fits in its depth budget and in the depth of the layer's
   deepest output tree, so outputs with spare levels become chains whose wide partial sums
   meet narrow terms (outputs beyond ``LUT_REDUCE_MAX_TERMS`` terms: shallowest first, a
   Huffman tree on depth, narrowest first among equal depths; "cheapest" is the target's cost
   of the adder, ``AdderGraph.target_cost``).  Identical adders built for
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

import numpy as np

from qir.addergraph import ASIC_FULL, ASIC_HALF, TARGETS, AdderGraph, combine_forms, csd, linear_bounds, range_bits, tz  # noqa: F401  (re-exported)


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
        c = combine_forms(self.coefs[a], sa, self.coefs[b], sb, s)
        lo, hi = linear_bounds(c, self.in_lo, self.in_hi)
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
#: only (MNIST's 784-input layer, 6.1 million pairs: 4 groups, one weight)
MAX_PAIRS = 3_200_000


def build(matrix, offset=None, in_lo=None, in_hi=None, *, cse: bool = True,
          depth_slack: int = 1, max_pairs: int = MAX_PAIRS, scores=None, target: str = "xilinx") -> AdderGraph:
    """The shared adder graph of ``x @ matrix + offset`` for x[i] in [in_lo[i], in_hi[i]].

    The subexpression search is greedy, so it runs once per pattern score in ``scores``
    (default ``SCORES``, ``WIDE_SCORES`` for layers beyond ``FEW_WEIGHTS_PAIRS``; only the first
    for layers beyond ``max_pairs``, searched in input groups) and keeps the graph
    with the lowest cost for ``target`` (``AdderGraph.target_cost``: LUT bits for ``xilinx``)
    among those at most ``DEPTH_TOLERANCE`` adder levels deeper than the first."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
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
    default = scores is None
    scores = list(SCORES if target == "xilinx" else TARGET_SCORES) if default else list(scores)
    if default and cse and n_pairs > FEW_WEIGHTS_PAIRS:
        scores = list(WIDE_SCORES)
    if not cse or n_pairs > max_pairs:
        # grouped search of a very wide layer: the LUT-bit weight won on all three measured
        # (qkeras_mnist_dense 784x20, mlp_128_256_128_10 128x256 and 256x128)
        scores = scores[:1]
    elif n_pairs > FEW_WEIGHTS_PAIRS:
        scores = scores[:2]
    best = None
    inits: dict = {}  # pair statistics per input group, shared by the weights
    # other targets also try the Xilinx output trees (cheapest in LUT bits first): neither order
    # is best for every layer, and so no layer costs more than with the default trees
    runs = [(score, tree) for score in scores for tree in dict.fromkeys((target, "xilinx"))]
    for score, tree in runs:
        g = _build_one(m, offset, in_lo, in_hi, live, cse, depth_slack, max_pairs, n_pairs, score, inits, tree)
        cost = g.target_cost(target)
        if best is None:
            best, depth0, cost0 = g, g.max_depth(), cost
        elif g.max_depth() <= depth0 + DEPTH_TOLERANCE and cost < cost0:
            best, cost0 = g, cost
    return best


def _build_one(m, offset, in_lo, in_hi, live, cse, depth_slack, max_pairs, n_pairs, score,
               inits: dict | None = None, target: str = "xilinx") -> AdderGraph:
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
            node, shift, sgn = _reduce_lut(bld, items, min(layer_depth, budget[j]), target)
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
#: layers beyond this many two-term pairs run ``WIDE_SCORES`` instead: on the 13 layers of
#: bench/search_speed.py's models the width weight never gave the fewest LUT bits (2-9% above
#: the best) and the sum won on none this large, so these chose the same graph on all of them
FEW_WEIGHTS_PAIRS = 500_000
WIDE_SCORES = (score_overlap, score_mixed)
#: the weights for the ecp5 and asic targets (``SCORES`` without the width weight; the figures
#: in bench/README.md were measured with these)
TARGET_SCORES = (score_overlap, score_mixed, score_sum)
#: adder levels a candidate may exceed the first (width-scored) graph by
DEPTH_TOLERANCE = 1


#: pattern keys are ints, ordered as the tuples (n1, n2, ds, s) they encode (so ties between
#: equal scores break the same way): n1 << (_NB + _DSB + 1) | n2 << (_DSB + 1) | (ds + _DSOFF) << 1
#: | (s > 0).  Hashing and comparing one int is much cheaper than a 4-tuple in the pair loops.
_NB, _DSB = 24, 13
_DSOFF = 1 << (_DSB - 1)
_NH, _NA = _DSB + 1, _NB + _DSB + 1  # the shifts of n2 and n1 in a key


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


#: heap entries are ints ordered as the tuples (-score, -count, key) they encode:
#: -score << _HS | (_HC - count) << _HK | key (one int compare instead of a tuple compare)
_HK = 1 + _DSB + 2 * _NB
_KMASK = (1 << _HK) - 1
_HS = _HK + 32
_HC = 1 << 32
#: outputs with at least this many terms compute their pair keys with numpy (``_TermArrays``)
_NP_TERMS = 96


class _TermArrays:
    """One output's terms (node, shift, sign) as numpy columns, kept compact (a removed term's
    slot takes the last term): the keys of one term against all others are computed in numpy,
    the same ints as the pair loops of ``_cse`` (in another order, which counting ignores)."""

    def __init__(self, t: dict[int, tuple[int, int, int]]):
        n = len(t)
        cap = max(2 * n, 16)
        self.cols = np.zeros((3, cap), np.int64)
        self.tid = [0] * cap
        self.pos = {}
        for p, (i, tm) in enumerate(t.items()):
            self.cols[:, p] = tm
            self.tid[p] = i
            self.pos[i] = p
        self.n = n

    def kill(self, i: int) -> None:
        p = self.pos.pop(i)
        last = self.n - 1
        if p != last:
            self.cols[:, p] = self.cols[:, last]
            moved = self.tid[last]
            self.tid[p] = moved
            self.pos[moved] = p
        self.n = last

    def add(self, i: int, nd: int, k: int, sg: int) -> None:
        if self.n == self.cols.shape[1]:
            self.cols = np.concatenate([self.cols, np.zeros_like(self.cols)], axis=1)
            self.tid += [0] * len(self.tid)
        p = self.n
        self.cols[:, p] = (nd, k, sg)
        self.tid[p] = i
        self.pos[i] = p
        self.n += 1

    def keys(self, m1: int, q1: int, r1: int) -> np.ndarray:
        m2, q2, r2 = self.cols[:, :self.n]
        base = (m1 << _NA) + (_DSOFF << 1) + (r2 == r1)
        d = (q2 - q1) << 1
        # (m1, m2, q2 - q1) unless m2 sorts first: (m2, m1, q1 - q2)
        return np.where((m2 < m1) | ((m2 == m1) & (q2 < q1)),
                        (m2 << _NA) + (m1 << _NH) + (_DSOFF << 1) - d + (r2 == r1),
                        base + (m2 << _NH) + d)


def _pair_stats(terms) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Initial pattern counts and, per pattern, the outputs holding it (ascending), for the
    patterns that occur at least twice (between inputs only, so their counts never grow); the
    same for every pattern weight, so ``build`` computes it once per layer (or input group)."""
    chunks, owners = [], []
    for j, t in enumerate(terms):
        if len(t) < 2:
            continue
        a = np.array(list(t.values()), dtype=np.int64).T  # (3, T) node, shift, sign in term order
        x, y = np.triu_indices(a.shape[1], 1)
        n1, k1, s1 = a[:, x]
        n2, k2, s2 = a[:, y]
        swap = (n1 > n2) | ((n1 == n2) & (k1 > k2))
        lo = np.where(swap, n2, n1)
        hi = np.where(swap, n1, n2)
        ds = np.where(swap, k1 - k2, k2 - k1)
        chunks.append((((((lo << _NB) | hi) << _DSB) | (ds + _DSOFF)) << 1) | (s1 == s2))
        owners.append(np.full(len(x), j, np.int64))
    if not chunks:
        return {}, {}
    keys = np.concatenate(chunks)
    js = np.concatenate(owners)
    uk, counts = np.unique(keys, return_counts=True)
    multi = counts >= 2
    stats = dict(zip(uk[multi].tolist(), counts[multi].tolist()))
    # the outputs of each repeated pattern: distinct (key, output) pairs, sorted by key then output
    sel = np.isin(keys, uk[multi])
    pairs = np.unique(np.stack([keys[sel], js[sel]], axis=1), axis=0)
    where: dict[int, list[int]] = {}
    if len(pairs):
        cut = np.flatnonzero(np.diff(pairs[:, 0])) + 1
        starts = np.concatenate([[0], cut]).tolist()
        ends = np.concatenate([cut, [len(pairs)]]).tolist()
        kl = pairs[:, 0].tolist()
        jl = pairs[:, 1].tolist()
        for a0, b0 in zip(starts, ends):
            where[kl[a0]] = jl[a0:b0]
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
        heap = [(-(stats[key] - 1) * wk << _HS) | ((_HC - stats[key]) << _HK) | key for key, wk in zip(keys, w)]
    else:
        heap = [(-score(key, stats[key]) << _HS) | ((_HC - stats[key]) << _HK) | key for key in keys]
    heapq.heapify(heap)
    push = heapq.heappush
    pop = heapq.heappop
    get = stats.get
    mget = minus.get
    blocked: set[int] = set()
    next_tid = max((max(t) for t in terms if t), default=0) + 1
    depth = bld.depth
    # per output: the Kraft sum (sum of 2^depth) and the depth histogram of its terms, so the
    # depth budget is checked without a scan of all terms (``_tree_depth`` of the rest)
    kraft = [sum(1 << depth[tm[0]] for tm in t.values()) for t in terms]
    dhist = [Counter(depth[tm[0]] for tm in t.values()) for t in terms]
    # per output, for the pair keys of a replaced or new term against all others in numpy
    # (outputs of many terms): the terms' (node, shift, sign) in insertion order, dead ones masked
    big = [len(t) >= _NP_TERMS for t in terms]
    arrs = [_TermArrays(t) if b else None for t, b in zip(terms, big)]
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
        e = pop(heap)
        key = e & _KMASK
        c = get(key, 0) - mget(key, 0)
        if c < 2 or key in blocked:
            continue
        sc = score(key, c)
        if -(e >> _HS) != sc:
            push(heap, (-sc << _HS) | ((_HC - c) << _HK) | key)  # stale entry: its count went down
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
            rest = kraft[j] + (len(mine) << new_depth)
            gone: dict[int, int] = {}
            for i in used:
                d = depth[t[i][0]]
                rest -= 1 << d
                gone[d] = gone.get(d, 0) + 1
            md = new_depth
            for d, cnt in dhist[j].items():
                if d > md and cnt > gone.get(d, 0):
                    md = d
            if max(md, (rest - 1).bit_length()) > budget[j]:
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
            ta = arrs[j]
            hist = dhist[j]
            for i in (i1, i2):  # the pairs of the two replaced terms go
                m1, q1, r1 = t.pop(i)
                del ix[m1][i]
                d = depth[m1]
                kraft[j] -= 1 << d
                hist[d] -= 1
                if ta is not None:
                    ta.kill(i)
                    minus.update(ta.keys(m1, q1, r1).tolist())
                else:
                    minus.update([
                        (((((m2 << _NB) | m1) << _DSB) | (q1 - q2 + _DSOFF)) << 1) | (r1 == r2)
                        if m1 > m2 or (m1 == m2 and q1 > q2) else
                        (((((m1 << _NB) | m2) << _DSB) | (q2 - q1 + _DSOFF)) << 1) | (r1 == r2)
                        for m2, q2, r2 in t.values()])
            m1, q1, r1 = node, min(k1, k2), s1 * flip
            if ta is not None:
                new = ta.keys(m1, q1, r1).tolist()
                ta.add(next_tid, m1, q1, r1)
            else:
                new = [  # the pairs of the new term come
                    (((((m2 << _NB) | m1) << _DSB) | (q1 - q2 + _DSOFF)) << 1) | (r1 == r2)
                    if m1 > m2 or (m1 == m2 and q1 > q2) else
                    (((((m1 << _NB) | m2) << _DSB) | (q2 - q1 + _DSOFF)) << 1) | (r1 == r2)
                    for m2, q2, r2 in t.values()]
            stats.update(new)
            dirty.update(new)
            d = depth[m1]
            kraft[j] += 1 << d
            hist[d] += 1
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
                push(heap, (-score(kk, cc) << _HS) | ((_HC - cc) << _HK) | kk)


#: "lut": ``_reduce_lut`` for outputs of at most ``LUT_REDUCE_MAX_TERMS`` terms; "tree": ``_reduce``
REDUCE_STYLE = "lut"
#: outputs with more terms than this are summed by ``_reduce`` (``_reduce_lut`` is cubic)
LUT_REDUCE_MAX_TERMS = 64


def target_cost(g: AdderGraph, target: str = "xilinx") -> int:
    """``g.target_cost(target)``: what ``build`` minimizes for ``target``."""
    return g.target_cost(target)


def _reduce_lut(bld: _Builder, items, depth: int, target: str = "xilinx") -> tuple[int, int, int]:
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
        if len(cur) > _NP_REDUCE:
            xy = _best_pair_np(infos, kraft, budget, target)
            if xy is None:
                return _reduce(bld, cur)
            best = xy
        else:
            best = None
        for x in range(len(cur) if best is None else 0):
            d1, lo1, hi1, w1 = infos[x]
            for y in range(x + 1, len(cur)):
                d2, lo2, hi2, w2 = infos[y]
                dn = (d1 if d1 > d2 else d2) + 1
                if kraft - (1 << d1) - (1 << d2) + (1 << dn) > budget:
                    continue
                lo = lo1 if lo1 > lo2 else lo2
                ov = (hi1 if hi1 < hi2 else hi2) - lo
                if ov <= 0:
                    ov = 0
                elif target != "xilinx":  # chain bits: from the overlap to the carry out
                    ch = (hi1 if hi1 > hi2 else hi2) + 1 - lo
                    ov = ch if target == "ecp5" else ASIC_FULL * ov + ASIC_HALF * (ch - ov)
                # equal cost: the pair holding the widest partial sum (it grows into a chain)
                key = (ov, -(w1 if w1 > w2 else w2), dn, x, y)
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


#: ``_reduce_lut`` picks its pair with numpy (``_best_pair_np``) above this many partial sums
_NP_REDUCE = 12
_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _best_pair_np(infos, kraft: int, budget: int, target: str) -> tuple[int, int] | None:
    """The pair (x, y) ``_reduce_lut``'s loops pick (lowest key (cost, -widest, new depth, x,
    y) among the pairs within the Kraft budget), computed on all pairs at once."""
    n = len(infos)
    if n not in _TRIU:
        _TRIU[n] = np.triu_indices(n, 1)  # row-major: (x, y) in the loops' order
    x, y = _TRIU[n]
    d, lo_, hi_, w = np.array(infos, dtype=np.int64).T
    d1, d2 = d[x], d[y]
    dn = np.maximum(d1, d2) + 1
    ok = kraft - (1 << d1) - (1 << d2) + (1 << dn) <= budget
    if not ok.any():
        return None
    lo = np.maximum(lo_[x], lo_[y])
    ov = np.minimum(hi_[x], hi_[y]) - lo
    live = ov > 0
    if target != "xilinx":
        ch = np.maximum(hi_[x], hi_[y]) + 1 - lo
        ov = ch if target == "ecp5" else ASIC_FULL * ov + ASIC_HALF * (ch - ov)
    ov = np.where(live, ov, 0)
    mw = np.maximum(w[x], w[y])
    for col, pick in ((ov, np.min), (-mw, np.min), (dn, np.min)):
        ok &= col == pick(col[ok])
    k = int(np.argmax(ok))
    return int(x[k]), int(y[k])


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
