"""The search that builds a multiplexed adder graph (``qir.muxgraph.MuxGraph``, issue #12): a
constant matrix folded over its outputs into R phases, each phase's adder graph from the
existing search (``qir.lowering.adder_graph.build``), the R graphs merged into one.

1. **Phases**: the output columns are split into R contiguous blocks, and (layers up to
   ``BOTH_SPLITS_MAX`` weights) also dealt by their CSD digit count (largest first, each to the
   phase with the fewest digits so far, so the phase graphs are about equal); the cheaper merged
   graph is kept.
2. **Merge by depth**: adders pair only with adders of the same adder depth in the other phases
   (so every merged adder's operands are merged adders of lower depth: the merged graph is
   ordered), widest with widest; among the candidates (a window in width order plus every adder
   that already reads the same operand) the pair (and operand order of a sum) that adds the
   fewest LUTs wins (``_pair_luts``: a shared operand source needs no multiplexer; similar bit
   spans).
3. **Outputs**: phase r's outputs go to the slots whose merged output node they share (no
   multiplexer), then to any free slot.

``build_mux(matrix, offset, in_lo, in_hi, P)``; ``lower_mvu`` turns a ``qir.mvu`` with
``impl = "muxgraph"`` (reuse R) into the ``qir.muxgraph`` op with the P <= R phases
``qir.folding.muxgraph_phases`` picks (called by ``qir-lower-cmvm``).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from qir.lowering.adder_graph import build

from qir.addergraph import AdderGraph, csd
from qir.muxgraph import MuxGraph, bit_luts

#: candidates per adder beyond those sharing an operand: this many neighbours in width order
WINDOW = 12


def phase_columns(matrix, R: int) -> list[list[int]]:
    """The output columns of each phase: balanced by CSD digits (module docstring, step 1);
    every phase gets at least one column when R <= n_out; columns in increasing order."""
    m = np.asarray(matrix, dtype=object)
    n_out = m.shape[1]
    digits = [sum(len(csd(int(v))) for v in m[:, j] if v) for j in range(n_out)]
    load = [0] * R
    cols: list[list[int]] = [[] for _ in range(R)]
    for j in sorted(range(n_out), key=lambda j: (-digits[j], j)):
        r = min(range(R), key=lambda r: (len(cols[r]) >= -(-n_out // R), load[r], r))
        cols[r].append(j)
        load[r] += digits[j]
    return [sorted(c) for c in cols]


def build_mux(matrix, offset, in_lo, in_hi, R: int, *, depth_slack: int = 1, target: str = "xilinx") -> MuxGraph:
    """The multiplexed adder graph of ``x @ matrix + offset`` folded over its outputs by R."""
    m = np.asarray(matrix, dtype=object)
    n_in, n_out = m.shape
    off = [int(v) for v in np.asarray(offset, dtype=object).ravel()] if offset is not None else [0] * n_out
    if not 1 <= R <= max(n_out, 1):
        raise ValueError(f"a multiplexed adder graph folds the outputs: R must be 1..{n_out}, got {R}")
    best = None
    for cols in [contiguous_columns(n_out, R)] + ([phase_columns(m, R)] if m.size <= BOTH_SPLITS_MAX else []):
        graphs = [build(m[:, c], [off[j] for j in c], in_lo, in_hi, depth_slack=depth_slack, target=target)
                  for c in cols]
        g = merge(graphs, cols)
        cost = g.target_cost(target)
        if best is None or cost < best[0]:
            best = (cost, g)
    return best[1]


#: layers up to this many weights try both output splits (contiguous and digit-balanced) and
#: keep the cheaper merged graph (qkeras_3layer at R = 2, LUT6_2 cost: contiguous 19,034 LUTs, balanced
#: 19,454)
BOTH_SPLITS_MAX = 1 << 14


def contiguous_columns(n_out: int, R: int) -> list[list[int]]:
    """Phase r computes the r-th of R contiguous column blocks (sizes differ by at most one)."""
    return [list(range(r * n_out // R, (r + 1) * n_out // R)) for r in range(R)]


def merge(graphs: list[AdderGraph], cols: list[list[int]]) -> MuxGraph:
    """Merge the phase graphs (phase r computes columns ``cols[r]``) into one ``MuxGraph``."""
    R = len(graphs)
    g0 = graphs[0]
    n_in = g0.n_in
    # merged id of every phase node: inputs are shared
    where: list[dict[int, int]] = [{k: k for k in range(n_in)} for _ in range(R)]
    ops: list[list[tuple[int, int, int, int, int]]] = []
    levels = max((max(g.depth, default=0) for g in graphs), default=0)
    for d in range(1, levels + 1):
        per = [[k for k in range(g.n_in, g.n_nodes) if g.depth[k] == d] for g in graphs]
        for r in range(R):
            per[r].sort(key=lambda k, g=graphs[r]: (-g.width(k), k))
        anchor = max(range(R), key=lambda r: (len(per[r]), -r))
        rows: list[_Row] = []
        for k in per[anchor]:
            row = _Row(R)
            row.put(anchor, _entries(graphs[anchor], k, where[anchor])[0])
            rows.append(row)
            where[anchor][k] = n_in + len(ops) + len(rows) - 1
        for r in range(R):
            if r != anchor:
                _assign(graphs[r], per[r], r, rows, where[r], n_in + len(ops))
        ops.extend(row.ops for row in rows)
    slots, offsets = _slots(graphs, cols, where)
    return MuxGraph(n_in, list(g0.in_lo), list(g0.in_hi), R, ops=ops, slots=slots, offsets=offsets)


class _Row:
    """A merged adder being built: its op per phase and, for the pairing cost, its operand
    sources and live bit spans per phase."""

    def __init__(self, R: int):
        self.ops = [(-1, 0, 0, 0, 1)] * R
        self.ents: list[tuple] = []

    def put(self, r: int, ent: tuple) -> None:
        self.ops[r] = ent[0]
        self.ents.append(ent)

    def cost(self, extra: tuple | None = None) -> int:
        ents = self.ents + ([extra] if extra is not None else [])
        ka = len({e[1] for e in ents})
        kb = len({e[3] for e in ents})
        a0, a1 = min(e[2][0] for e in ents), max(e[2][1] for e in ents)
        b0, b1 = min(e[4][0] for e in ents), max(e[4][1] for e in ents)
        ov = max(0, min(a1, b1) - max(a0, b0))
        both = ov if ka > 1 and kb > 1 else 0  # half a LUT more per bit: fewer two-mux adders
        return 2 * ov * _pair_luts(ka, kb) + both + 2 * ((a1 - a0 - ov) * (ka > 1) + (b1 - b0 - ov) * (kb > 1))


def _pair_luts(ka: int, kb: int) -> int:
    """LUTs per overlapping bit for the pairing: ``bit_luts`` (two for two 2:1-multiplexed
    operands, Yosys's count; measured on qkeras_3layer at R = 2, the pairing that counted them as
    two was cheaper also in the LUT6_2 count: 19,454 vs 19,760 LUT6_2-model LUTs, 27,830 vs
    28,746 two-LUT-model LUTs)."""
    return bit_luts(ka, kb)


def _entries(g: AdderGraph, k: int, where: dict[int, int]) -> list[tuple]:
    """Phase node k as merged-adder entries: (op, a source, a span, b source, b span), both
    operand orders of a sum."""
    i = k - g.n_in
    out = []
    sides = [(g.a[i], g.sa[i]), (g.b[i], g.sb[i])]
    for (a, sa), (b, sb) in ([sides, sides[::-1]] if g.sign[i] > 0 else [sides]):
        s = g.sign[i]
        wa, wb = _field(g, a), _field(g, b)
        za = min(g.zero_lsbs[a], wa)
        zb = min(g.zero_lsbs[b], wb)
        out.append(((where[a], sa, where[b], sb, s), (where[a], sa), (sa + za, sa + wa),
                    (where[b], sb, s), (sb + zb, sb + wb)))
    return out


def _field(g: AdderGraph, k: int) -> int:
    return max((g.hi[k] - g.lo[k]).bit_length(), 1)


def _assign(g: AdderGraph, nodes: list[int], r: int, rows: list[_Row], where: dict[int, int], first: int) -> None:
    """Pair phase r's adders of one depth with the merged adders ``rows`` of that depth (the
    cheapest increase of the merged cost; ``first``: the merged id of ``rows[0]``)."""
    n = len(rows)
    free = set(range(n))
    by_src: dict[tuple, set[int]] = defaultdict(set)
    for t, row in enumerate(rows):
        for e in row.ents:
            by_src[e[1]].add(t)
            by_src[e[3][:2]].add(t)
    base = [row.cost() for row in rows]
    order = list(range(n))  # rows are in decreasing width order (the anchor's sort)
    rank = 0
    for k in nodes:
        ents = _entries(g, k, where)
        cand = set()
        for e in ents:
            cand |= (by_src.get(e[1], set()) | by_src.get(e[3][:2], set())) & free
        while rank < n and order[rank] not in free:
            rank += 1
        cand.update([t for t in order[rank:rank + 4 * WINDOW] if t in free][:WINDOW])
        best = None
        for t in cand:
            for e in ents:
                c = rows[t].cost(e) - base[t]
                if best is None or (c, t) < best[:2]:
                    best = (c, t, e)
        if best is None:  # more adders at this depth than the anchor phase: cannot happen
            raise AssertionError("merge: the anchor phase has the most adders per depth")
        _, t, e = best
        free.discard(t)
        rows[t].put(r, e)
        base[t] = rows[t].cost()
        where[k] = first + t


def _slots(graphs: list[AdderGraph], cols: list[list[int]], where: list[dict[int, int]]):
    """Output slots: phase r's outputs placed where their merged node already is (step 3)."""
    R = len(graphs)
    Q = max(len(c) for c in cols)
    slots = [[(-1, -1, 0, 1)] * R for _ in range(Q)]
    offsets = [[0] * R for _ in range(Q)]
    for r, (g, c) in enumerate(zip(graphs, cols)):
        free = set(range(Q))
        outs = [(g.onode[j], g.oshift[j], g.osign[j], g.offset[j], c[j]) for j in range(g.n_out)]
        node_of = {}
        for q in range(Q):
            for s in slots[q][:r]:
                if s[0] >= 0 and s[1] >= 0:
                    node_of.setdefault((s[1], s[2], s[3]), q)
        later = []
        for node, sh, sg, off, col in outs:
            key = (where[r][node] if node >= 0 else -1, sh, sg)
            q = node_of.get(key)
            if q is not None and q in free:
                free.discard(q)
                slots[q][r] = (col, key[0], sh, sg)
                offsets[q][r] = off
            else:
                later.append((key, off, col))
        for key, off, col in later:
            q = min(free)
            free.discard(q)
            slots[q][r] = (col, key[0], key[1], key[2])
            offsets[q][r] = off
    return slots, offsets


def lower_mvu(mv, depth_slack: int = 1, target: str = "xilinx", phases: int | None = None):
    """A ``qir.mvu`` with ``impl = "muxgraph"`` -> ``qir.muxgraph`` (replaces it); ``phases``
    (2 .. min(R, outputs)) overrides the cost model's choice (tests)."""
    from xdsl.rewriter import Rewriter

    from qir.dialect import MuxGraphOp, elem, elements_to_numpy, shape_of
    from qir.folding import muxgraph_phases
    from qir.ir import layer_of
    from qir.progress import note

    in_t = elem(mv.input.type)
    (n_in,) = shape_of(mv.input.type)
    m = elements_to_numpy(mv.matrix)
    note(f"multiplexed adder graph search: layer {layer_of(mv) or '?'} ({m.shape[0]}x{m.shape[1]}, reuse {mv.R})")
    P = phases or muxgraph_phases(m, mv.R) or 1  # fewer phases than R cycles where that is cheaper
    g = build_mux(m, elements_to_numpy(mv.offset), [in_t.min_int] * n_in, [in_t.max_int] * n_in, P,
                  depth_slack=depth_slack, target=target)
    op = MuxGraphOp.of(mv.input, mv.output.type, g, mv.shift, mv.style, mv.reuse,
                       {k: v for k, v in mv.attributes.items() if k == "layer"})
    Rewriter.replace_op(mv, op)
    return op
