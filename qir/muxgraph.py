"""What a *multiplexed* adder graph is (``qir.muxgraph``, issue #12): R constant adder graphs
(``qir.addergraph.AdderGraph``), one per phase, merged into one time-multiplexed graph.

A layer ``y = x @ W + off`` folded by R over its *outputs*: phase r (cycle r of R) computes the
output group G_r (``phase_cols``) from the same held input vector with the adder graph of
``W[:, G_r]``; the R phase graphs share one set of adders.  A merged adder ``k`` (id n_in + i)
computes in phase r ``(v[a] << sa) + sign * (v[b] << sb)`` (the phase's operands; ``a = -1``:
the adder is idle in that phase, its value unused), so in hardware each operand is an R:1
multiplexer of the phase sources (fewer where phases agree or idle).  Output slot q computes in
phase r ``off + osign * (v[node] << oshift)`` for output column ``col`` (-1: the slot is unused in
that phase; node -1: the constant ``off``), registered into that output's register.  The inputs
(ids 0..n_in-1) are the same in every phase.

Arrays (the op's properties, ``to_arrays``/``from_arrays``): ``nodes`` (N*R, 5) [a, sa, b, sb,
sign] adder-major (row i*R + r), ``outputs`` (Q*R, 4) [col, node, shift, sign], ``offset``
(Q*R,).  ``phase(r)`` is phase r's ``AdderGraph`` (idle adders as a harmless x0 + x0), so every
phase's exact ranges, evaluation and cost come from the one adder-graph module.

Cost (``target_cost``; ``qir.folding`` turns it into LUTs): per merged adder the bits where both
operand fields can be non-zero (the union over phases) times the LUTs of an adder bit with
multiplexed operands (``bit_luts``), plus the bits of a multiplexed operand outside that overlap
and of the output slots whose operand or constant changes with the phase.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from qir.addergraph import AdderGraph, range_bits

#: an idle adder in a phase's ``AdderGraph`` view (x0 + x0: any valid node works)
_IDLE = (0, 0, 0, 0, 1)


def _lut6s(n: int) -> int:
    """LUT6s of a function of n inputs built as a chain (each further LUT6 takes 5 new inputs)."""
    return 1 if n <= 6 else 1 + ceil((n - 6) / 5)


def mux_luts(k: int) -> int:
    """LUT6s of a k:1 multiplexer as ``rtl/muxgraph.py`` writes it: a chain of 2:1 muxes on k - 1
    one-hot phase selects (shared per phase set), 2k - 1 inputs: 1 up to 3:1, 2 for 4:1."""
    return 0 if k <= 1 else _lut6s(2 * k - 1)


def bit_luts(ka: int, kb: int, target: str = "xilinx") -> float:
    """Cost of one adder bit whose operands are ka:1 and kb:1 multiplexers (1 = a plain node).

    ``xilinx`` (the declared metric: Yosys ``synth_xilinx -family xcup`` LUT cells, issue #13):
    the bit's LUT computes propagate = A ^ B, the carry chain takes generate = A (A: the operand
    with fewer sources, written first): the propagate LUT(s) take A and B's 2kb - 1 mux inputs
    (1 LUT up to a 3:1 B), and a multiplexed A is a mux of its own (the generate input).  So
    1:1 + 2:1 = 1, 2:1 + 2:1 = 2 (Yosys maps a LUT3 mux plus the propagate LUT; Vivado could pack
    the pair into one LUT6_2 -- not verified here, no Vivado), 1:1 + 4:1 = 2, 4:1 + 4:1 = 4.
    Checked against Yosys on a 16x16 layer (6-bit weights) built at P = 2, 3, 4: 1.10x, 1.10x,
    1.02x of this cost (INV included), against 1.32x for the unfolded graph's LUT bits.
    ``ecp5``: a CCU2C half (its LUT4 takes A, B, and a 2:1 mux of one operand) plus a LUT4 per
    further 2:1 mux.  ``asic``: a full adder (24, units of NAND2/3) plus a MUX2 (7) per extra source."""
    ka, kb = sorted((max(ka, 1), max(kb, 1)))
    if target == "xilinx":
        return (1 if kb == 1 else _lut6s(2 * kb)) + mux_luts(ka)
    if target == "ecp5":
        extra = (ka - 1) + (kb - 1)
        return 1 + max(extra - 1, 0)
    if target == "asic":
        return 24 + 7 * ((ka - 1) + (kb - 1))
    raise ValueError(f"unknown target {target!r}")


@dataclass
class MuxGraph:
    """R phase adder graphs merged into one (module docstring)."""

    n_in: int
    in_lo: list[int]
    in_hi: list[int]
    R: int
    #: [i][r] = (a, sa, b, sb, sign) of merged adder i in phase r; a == -1: idle
    ops: list[list[tuple[int, int, int, int, int]]] = field(default_factory=list)
    #: [q][r] = (col, node, shift, sign) of output slot q in phase r; col == -1: unused
    slots: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    #: [q][r] = the constant offset of slot q in phase r
    offsets: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        self._phases = [self._phase(r) for r in range(self.R)]

    @property
    def n_adders(self) -> int:
        return len(self.ops)

    @property
    def n_out(self) -> int:
        return 1 + max((s[0] for row in self.slots for s in row), default=-1)

    def active(self, i: int, r: int) -> bool:
        return self.ops[i][r][0] >= 0

    def _phase(self, r: int) -> AdderGraph:
        rows = [op[r] if op[r][0] >= 0 else _IDLE for op in self.ops]
        sl = [s[r] for s in self.slots]
        return AdderGraph(self.n_in, list(self.in_lo), list(self.in_hi),
                          a=[o[0] for o in rows], sa=[o[1] for o in rows], b=[o[2] for o in rows],
                          sb=[o[3] for o in rows], sign=[o[4] for o in rows],
                          onode=[s[1] if s[0] >= 0 else -1 for s in sl], oshift=[s[2] for s in sl],
                          osign=[s[3] if s[0] >= 0 else 1 for s in sl],
                          offset=[self.offsets[q][r] if sl[q][0] >= 0 else 0 for q in range(len(sl))])

    def phase(self, r: int) -> AdderGraph:
        """Phase r's adder graph (idle adders as x0 + x0; unused slots as constant 0)."""
        return self._phases[r]

    def phase_cols(self, r: int) -> list[int]:
        """The output columns phase r computes, in slot order (-1: slot unused)."""
        return [s[r][0] for s in self.slots]

    # -- exact ranges ---------------------------------------------------------------------
    def node_range(self, k: int) -> tuple[int, int]:
        """[lo, hi] of node k over the phases where it is used (inputs: their range)."""
        if k < self.n_in:
            return self.in_lo[k], self.in_hi[k]
        i = k - self.n_in
        act = [r for r in range(self.R) if self.active(i, r)]
        return (min(self._phases[r].lo[k] for r in act), max(self._phases[r].hi[k] for r in act))

    def slot_range(self, q: int) -> tuple[int, int]:
        """[lo, hi] of output slot q over the phases where it is used."""
        b = [self._phases[r].out_bounds(q) for r in range(self.R) if self.slots[q][r][0] >= 0]
        return (min(v[0] for v in b), max(v[1] for v in b)) if b else (0, 0)

    def out_bounds(self, j: int) -> tuple[int, int]:
        for q, row in enumerate(self.slots):
            for r, s in enumerate(row):
                if s[0] == j:
                    return self._phases[r].out_bounds(q)
        raise KeyError(j)

    # -- offset-binary fields (what ``qir.rtl.muxgraph`` builds) ----------------------------
    def fields(self) -> tuple[list[list[int | None]], list[list[int | None]], list[int]]:
        """(base[k][r], top[k][r], width[k]): node k is held as the unsigned field
        u = v - base[k][r] in [0, top[k][r]] in phase r, ``width[k]`` bits (the widest phase);
        a subtrahend is complemented over its own field, as ``qir.rtl.addergraph`` does.  None:
        the node is idle in that phase."""
        R = self.R
        base: list[list[int | None]] = [[int(self.in_lo[k])] * R for k in range(self.n_in)]
        top: list[list[int | None]] = [[int(self.in_hi[k] - self.in_lo[k])] * R for k in range(self.n_in)]
        width = [max(t[0].bit_length(), 1) for t in top]
        for row in self.ops:
            bk: list[int | None] = [None] * R
            tk: list[int | None] = [None] * R
            for r, (a, sa, b, sb, s) in enumerate(row):
                if a < 0:
                    continue
                if s > 0:
                    bk[r] = (base[a][r] << sa) + (base[b][r] << sb)
                    tk[r] = (top[a][r] << sa) + (top[b][r] << sb)
                else:
                    fb = (1 << width[b]) - 1
                    bk[r] = (base[a][r] << sa) - ((base[b][r] + fb) << sb)
                    tk[r] = (top[a][r] << sa) + (fb << sb)
            base.append(bk)
            top.append(tk)
            width.append(max(max(t for t in tk if t is not None).bit_length(), 1))
        return base, top, width

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Every output column for integer inputs ``x`` (N, n_in): phase r's graph gives the
        columns of G_r."""
        x = np.asarray(x)
        outs = [self._phases[r].evaluate(x) for r in range(self.R)]
        wide = any(o.dtype == object for o in outs)
        y = np.zeros((x.shape[0], self.n_out), dtype=object if wide else np.int64)
        for q, row in enumerate(self.slots):
            for r, s in enumerate(row):
                if s[0] >= 0:
                    y[:, s[0]] = outs[r][:, q]
        return y

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, offset): the constant matrix and offset the merged graph computes."""
        m = np.zeros((self.n_in, self.n_out), dtype=object)
        off = np.zeros(self.n_out, dtype=object)
        for r in range(self.R):
            pm = self._phases[r].matrix()
            for q, row in enumerate(self.slots):
                j = row[r][0]
                if j >= 0:
                    m[:, j] = pm[:, q]
                    off[j] = self.offsets[q][r]
        return m, off

    def depth(self) -> int:
        """Adder levels of the deepest phase (plus its output add)."""
        return max((self._phases[r].max_depth() for r in range(self.R)), default=0)

    # -- cost -----------------------------------------------------------------------------
    def operand_variants(self, i: int, which: int) -> int:
        """Distinct sources (node, shift, negated) of operand ``which`` (0: a, 1: b) of merged
        adder i over its active phases: the fan-in of its multiplexer."""
        seen = set()
        for a, sa, b, sb, s in self.ops[i]:
            if a >= 0:
                seen.add((a, sa, 1) if which == 0 else (b, sb, s))
        return len(seen)

    def zero_lsbs(self) -> list[list[int]]:
        """[k][r]: the field's LSBs that are constant zeros in phase r (shifted-in zeros;
        a complemented subtrahend's zeros become ones: constants too, but not zeros)."""
        zl = [[0] * self.R for _ in range(self.n_in)]
        for row in self.ops:
            zl.append([(min(sa + zl[a][r], sb + (zl[b][r] if s > 0 else 0)) if a >= 0 else 1 << 30)
                       for r, (a, sa, b, sb, s) in enumerate(row)])
        return zl

    def _spans(self, i: int, width: list[int], zl: list[list[int]]) -> tuple[tuple[int, int], tuple[int, int]]:
        """Bit spans [lo, hi) of the two operand fields where some active phase has a live
        (non-constant) bit."""
        sp = [[1 << 30, 0], [1 << 30, 0]]
        for r, (a, sa, b, sb, _) in enumerate(self.ops[i]):
            if a < 0:
                continue
            for w, (k, sh) in enumerate(((a, sa), (b, sb))):
                sp[w][0] = min(sp[w][0], sh + min(zl[k][r], width[k]))
                sp[w][1] = max(sp[w][1], sh + width[k])
        return (sp[0][0], sp[0][1]), (sp[1][0], sp[1][1])

    def target_cost(self, target: str = "xilinx") -> float:
        """Adder LUT bits (``bit_luts`` per bit where both operands can be non-zero), plus a mux
        per bit where only a multiplexed operand is live, plus the output slots' bits where the
        operand or the constant changes with the phase (a constant add is free otherwise)."""
        _, _, width = self.fields()
        zl = self.zero_lsbs()
        tot = 0.0
        one = bit_luts(1, 1, target)

        def only(k: int) -> float:  # a bit where only a k:1-multiplexed operand is live
            return 0 if k <= 1 else mux_luts(k) if target == "xilinx" else one
        for i in range(self.n_adders):
            ka, kb = self.operand_variants(i, 0), self.operand_variants(i, 1)
            (a0, a1), (b0, b1) = self._spans(i, width, zl)
            ov = max(0, min(a1, b1) - max(a0, b0))
            tot += ov * bit_luts(ka, kb, target)
            tot += (a1 - a0 - ov) * only(ka) + (b1 - b0 - ov) * only(kb)
        for q, row in enumerate(self.slots):
            used = [s for s in row if s[0] >= 0]
            srcs = {(s[1], s[2], s[3]) for s in used if s[1] >= 0}
            consts = {self.offsets[q][r] for r, s in enumerate(row) if s[0] >= 0}
            if len(srcs) > 1 or (srcs and len(consts) > 1):
                lo, hi = self.slot_range(q)
                k = len(srcs)
                tot += range_bits(lo, hi) * (bit_luts(1, k, target) if target == "xilinx"
                                             else one * (1 + mux_luts(k)) if k > 4 else one)
        return tot

    def register_bits(self, out_width: int) -> int:
        """Flip-flops: the held input, one register per output column, the one-hot phase."""
        in_w = max(range_bits(lo, hi) for lo, hi in zip(self.in_lo, self.in_hi)) if self.n_in else 0
        return self.n_in * in_w + self.n_out * out_width + self.R


# ------------------------------------------------------------------------------ the codec
def to_arrays(g: MuxGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes (N*R, 5), outputs (Q*R, 4), offset (Q*R,)) of ``g``."""
    nodes = np.array([o for row in g.ops for o in row], dtype=np.int64).reshape(-1, 5)
    outs = np.array([s for row in g.slots for s in row], dtype=np.int64).reshape(-1, 4)
    off = np.array([v for row in g.offsets for v in row], dtype=object)
    return nodes, outs, off


def from_arrays(n_in: int, in_lo, in_hi, R: int, nodes, outputs, offset) -> MuxGraph:
    """The ``MuxGraph`` of ``to_arrays``'s arrays (R phases)."""
    nodes = [tuple(int(v) for v in r) for r in np.asarray(nodes).reshape(-1, 5).tolist()]
    outs = [tuple(int(v) for v in r) for r in np.asarray(outputs).reshape(-1, 4).tolist()]
    off = [int(v) for v in np.asarray(offset).ravel()]
    return MuxGraph(n_in, list(in_lo), list(in_hi), R,
                    ops=[nodes[i:i + R] for i in range(0, len(nodes), R)],
                    slots=[outs[q:q + R] for q in range(0, len(outs), R)],
                    offsets=[off[q:q + R] for q in range(0, len(off), R)])


def check_arrays(n_in: int, n_out: int, R: int, nodes: np.ndarray, outputs: np.ndarray,
                 offset: np.ndarray) -> str | None:
    """Why the arrays are not a valid merged graph (None when they are): shapes, operands
    defined before use (and active in the phase), shifts >= 0, signs +-1, every output column
    computed in exactly one (phase, slot)."""
    if R < 1 or nodes.ndim != 2 or nodes.shape[1] != 5 or nodes.shape[0] % R:
        return f"nodes must be an (N*{R}) x 5 array [a, sa, b, sb, sign]"
    if outputs.ndim != 2 or outputs.shape[1] != 4 or outputs.shape[0] % R or offset.shape != (outputs.shape[0],):
        return f"outputs must be a (Q*{R}) x 4 array [col, node, shift, sign] and offset (Q*{R},)"
    act: list[set[int]] = [set(range(n_in)) for _ in range(R)]
    rows = nodes.tolist()
    for idx, (a, sa, b, sb, sg) in enumerate(rows):
        k, r = n_in + idx // R, idx % R
        if a < 0:
            continue
        if a not in act[r] or b not in act[r] or sa < 0 or sb < 0 or sg not in (1, -1) or sa > 256 or sb > 256:
            return f"adder {k} phase {r} is not (v[a] << sa) +/- (v[b] << sb) of earlier nodes of that phase"
        act[r].add(k)
    seen = set()
    for idx, (col, node, sh, sg) in enumerate(outputs.tolist()):
        r = idx % R
        if col < 0:
            continue
        if col >= n_out or col in seen or sh < 0 or sh > 256 or sg not in (1, -1) or (node >= 0 and node not in act[r]):
            return f"output slot {idx // R} phase {r} is not a valid output of that phase"
        seen.add(col)
    if len(seen) != n_out:
        return f"the outputs compute {len(seen)} of {n_out} columns"
    return None
