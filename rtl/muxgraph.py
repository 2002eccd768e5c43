"""``qir.muxgraph`` -> hardware: P phase adder graphs time-multiplexed through one set of adders
(``qir.muxgraph``, issue #12; below R = P, the phases; with P < reuse the graph idles between
inputs, which the top spaces reuse cycles apart).

- ``start`` (the valid of the op's input, from ``qir.rtl.top``) loads the input into ``hold``
  and the one-hot phase register ``ph`` (R flip-flops, cleared by ``rst``) to phase 0; phase r
  runs in the cycle after ``ph`` reached r, the last one R cycles after the start;
- every merged adder is one Signal of its widest phase's field, in the offset binary of
  ``qir.rtl.addergraph`` (node = v - base, subtrahends complemented over their own field, one
  extra zero LSB on both operands against alumacc's adder merging); the per-phase bases differ,
  so each output's constant is a per-phase constant.  Each operand is a multiplexer of its
  phase sources (an idle phase takes any: fewer inputs), selected by OR-ed ``ph`` bits (shared
  per phase set); the operand with fewer sources is written first, so the carry chain's
  generate input (Yosys's ``DI = A``) needs no multiplexer where one operand has a single source;
- output slot q computes, in phase r, ``const[r] + operand[r]`` for output column col[q][r], and
  the output's register loads it when ``ph[r]`` is set (a clock enable); constant columns are
  constants.  The result is complete R + 1 cycles after the start and held until that output's
  next phase (at least R cycles later: the top's ``in_ready``).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from qir.rtl import registry
from qir.rtl.values import Tensor, elem_shape

from qir.addergraph import range_bits
from qir.dialect import MuxGraphOp, elem, shape_of


@registry.ii(MuxGraphOp)
def _ii(op: MuxGraphOp) -> int:
    """Cycles per input: R."""
    return op.R


@registry.latency(MuxGraphOp)
def _latency(op: MuxGraphOp) -> int:
    """Cycles from input to result: P + 1 (``cycles()``)."""
    return op.cycles()


@registry.generator(MuxGraphOp, "muxgraph")
def generate(op: MuxGraphOp, ins: list[Tensor], prefix: str, where: str, start: Value | None = None,
             rst: Value | None = None):
    (x,) = ins
    g = op.graph()
    R, n_in = g.R, g.n_in
    m = Module()
    comb, sync = [], []
    xsh = elem_shape(x.spec)
    vals: list[Value] = []
    for i, e in enumerate(x.elems):
        h = Signal(xsh, name=f"{prefix}_hold{i}", reset_less=True)
        sync.append(h.eq(Mux(start, e, h)))
        vals.append(Cat(h[:-1], ~h[-1]) if g.in_lo[i] < 0 else h)  # offset binary (base = type min)
    ph = [Signal(name=f"{prefix}_ph{r}", init=0) for r in range(R)]
    sync.append(ph[0].eq(start & ~rst))
    for r in range(1, R):
        sync.append(ph[r].eq(ph[r - 1] & ~rst))
    sels: dict[frozenset, Value] = {}

    def sel(phases: frozenset) -> Value:
        hit = sels.get(phases)
        if hit is None:
            if len(phases) == 1:
                hit = ph[next(iter(phases))]
            else:
                hit = Signal(name=f"{prefix}_sel{len(sels)}")
                comb.append(hit.eq(Cat(*(ph[r] for r in sorted(phases))).any()))
            sels[phases] = hit
        return hit

    base, top, width = g.fields()

    def field(k: int, shift: int, negate: bool, w: int) -> Value:
        f = vals[k]
        f = f[:width[k]] if len(f) > width[k] else f
        if negate:
            f = ~f
        bits = Cat(Const(0, shift + 1), f)
        return bits[:w] if len(bits) > w else bits

    def mux(variants: dict, w: int) -> tuple[Value, int]:
        """variants: key (node, shift, negate) -> set of phases; idle phases join the largest."""
        order = sorted(variants.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        expr = field(*order[0][0], w)
        for key, phases in order[1:]:
            expr = Mux(sel(frozenset(phases)), field(*key, w), expr)
        return expr, len(order)

    for i, row in enumerate(g.ops):
        k = n_in + i
        w = width[k]
        va: dict = {}
        vb: dict = {}
        for r, (a, sa, b, sb, s) in enumerate(row):
            if a >= 0:
                va.setdefault((a, sa, False), set()).add(r)
                vb.setdefault((b, sb, s < 0), set()).add(r)
        ea, na = mux(va, w + 2)
        eb, nb = mux(vb, w + 2)
        if nb < na:
            ea, eb = eb, ea
        node = Signal(w, name=f"{prefix}_n{k}")
        # the extra zero LSB: Yosys's alumacc cannot merge adder chains into $macc trees
        comb.append(node.eq((ea + eb)[1:w + 1]))
        vals.append(node)

    out_t = elem(op.output.type)
    sh_out = elem_shape(out_t)
    n_out = shape_of(op.output.type)[0]
    elems: list[Value | None] = [None] * n_out
    los, his = [0] * n_out, [0] * n_out
    for q, row in enumerate(g.slots):
        live = [(r, s) for r, s in enumerate(row) if s[0] >= 0]
        for r, (col, k, _sh, _sg) in live:
            lo, hi = g.phase(r).out_bounds(q)
            los[col], his[col] = lo, hi
            if k < 0:
                elems[col] = Const(g.offsets[q][r], sh_out)
        live = [(r, s) for r, s in live if s[1] >= 0]
        if not live:
            continue
        b = [g.phase(r).out_bounds(q) for r, _ in live]
        ylo, yhi = min(v[0] for v in b), max(v[1] for v in b)
        wy = range_bits(ylo, yhi)
        mod = 1 << (wy + 2)
        opnd: dict = {}
        consts: dict = {}
        for r, (_col, k, sh, sg) in live:
            fk = (1 << width[k]) - 1
            c = g.offsets[q][r] + ((base[k][r] << sh) if sg > 0 else -((base[k][r] + fk) << sh))
            opnd.setdefault((k, sh, sg < 0), set()).add(r)
            consts.setdefault((c << 1) % mod, set()).add(r)
        ve, _ = mux(opnd, wy + 2)
        corder = sorted(consts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ce: Value = Const(corder[0][0], wy + 2)
        for cv, phases in corder[1:]:
            ce = Mux(sel(frozenset(phases)), Const(cv, wy + 2), ce)
        e = Signal(range_shape_of(ylo, wy), name=f"{prefix}_s{q}")
        raw = (ce + ve)[1:wy + 1]  # the constant first: the carry chain's generate is a constant
        comb.append(e.eq(raw.as_signed() if ylo < 0 else raw))
        for r, (col, _k, _sh, _sg) in live:
            y = Signal(sh_out, name=f"{prefix}_y{col}", reset_less=True)
            with m.If(ph[r]):
                m.d.sync += y.eq(e)
            elems[col] = y
    m.d.comb += comb
    m.d.sync += sync
    return m, Tensor(out_t, shape_of(op.output.type), elems, los, his)


def range_shape_of(lo: int, w: int):
    """The ``w``-bit shape of a value whose lower bound is ``lo`` (signed when negative)."""
    from amaranth.hdl import signed, unsigned

    return signed(w) if lo < 0 else unsigned(w)
